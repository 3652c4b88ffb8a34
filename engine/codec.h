/* codec.h: zstd frames for chunk data that leaves a rank's memory, sent to
 * another rank (in transit) or spilled to disk. Not installed. */
#ifndef LUISA_CODEC_H
#define LUISA_CODEC_H

#include <stddef.h>
#include <stdint.h>

typedef struct lu_codec lu_codec;

/* One direction's counters. frames, raw, packed and seconds count the calls
 * that succeeded; refused, the others. */
typedef struct lu_codec_count {
  uint64_t frames;   /* frames made (compress) or read back (decompress) */
  uint64_t raw;      /* bytes of their content */
  uint64_t packed;   /* bytes of the frames themselves */
  uint64_t refused;  /* calls refused */
  double seconds;    /* spent in zstd, CLOCK_MONOTONIC */
} lu_codec_count;

typedef struct lu_codec_stats {
  lu_codec_count compress, decompress;
} lu_codec_stats;

/* 1 if level may be given as the compression level option, else 0 with a
 * sentence in why naming the range, ZSTD_minCLevel()..ZSTD_maxCLevel():
 * negative levels are zstd's fast ones, 1..19 its ordinary ones, 20 and
 * more its "ultra" ones (more memory). 0 is accepted and means no
 * compression: then no codec is opened and data moves raw. */
int codec_level_ok(int level, char *why, size_t cap);

/* A codec compressing at level (a level codec_level_ok accepts, other than
 * 0), with its zstd contexts, made here once: each frame reuses them, so
 * that once the largest chunk has gone through, codec_compress and
 * codec_decompress allocate nothing. A codec serves one thread at a time.
 * @return : LUISA_OK with *out (codec_close it); or LUISA_ERR_ARG (level
 *           out of range or 0), LUISA_ERR_NOMEM, with *out NULL and a
 *           sentence in why. */
int codec_open(int level, lu_codec **out, char *why, size_t cap);
/* codec_close(NULL) does nothing. */
void codec_close(lu_codec *c);

/* The largest frame n bytes can make (ZSTD_compressBound): a dst of that
 * capacity never makes codec_compress fail for room. 0 when n is too large
 * for zstd (n >= ZSTD_MAX_INPUT_SIZE, close to SIZE_MAX), where the bound
 * would not fit a size_t. */
size_t codec_bound(size_t n);

/* src[0..n) as one zstd frame that records n (its content size) and a
 * checksum of the content, written to dst[0..cap), which must not overlap
 * src. n may be 0; src may be NULL when n is 0.
 * @return : LUISA_OK with *size the frame's bytes; or LUISA_ERR_ARG (NULL
 *           pointer, n too large, dst too small: cap >= codec_bound(n) is
 *           always enough), LUISA_ERR_NOMEM, with a sentence in why and
 *           dst's content unspecified. */
int codec_compress(lu_codec *c, void *dst, size_t cap, const void *src, size_t n, size_t *size,
                   char *why, size_t wcap);

/* The frame src[0..n) decompressed into dst[0..expected): it must be
 * exactly one zstd frame that records its content size, equal to expected,
 * and a checksum, which must match. Neither buffer is accessed out of its
 * bounds, whatever the frame holds.
 * @return : LUISA_OK with dst holding the expected bytes; LUISA_ERR_ARG for
 *           a NULL pointer; or LUISA_ERR_DATA when the bytes are not a zstd
 *           frame, are truncated or corrupt (zstd's reason said, e.g. a
 *           checksum that does not match), do not record a content size or a
 *           checksum, record another size than expected (both said), or are
 *           followed by more bytes. On refusal why says which, and dst's
 *           content is unspecified (it may hold part of the data). */
int codec_decompress(lu_codec *c, void *dst, size_t expected, const void *src, size_t n,
                     char *why, size_t wcap);

/* The counters since codec_open. */
void codec_stats(const lu_codec *c, lu_codec_stats *out);
/* Bytes the codec holds now, its zstd contexts' included (they grow with
 * the largest frame seen): for the memory budget. */
size_t codec_memory(const lu_codec *c);

#endif
