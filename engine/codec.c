/* codec.c: chunk data as zstd frames, one per buffer, each with its content
 * size and a checksum, through contexts made once; counted for the stats. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zstd.h>
#include <zstd_errors.h>
#include "luisa.h"
#include "codec.h"
#include "say.h"

#ifndef ZSTD_MAX_INPUT_SIZE     /* zstd.h before 1.5.5 */
#  define ZSTD_MAX_INPUT_SIZE ((sizeof(size_t) == 8) ? 0xFF00FF00FF00FF00LLU : 0xFF00FF00U)
#endif
#define MAGIC_SIZE 4            /* the frame's magic number, then its header descriptor */
#define CHECKSUM_FLAG 0x04      /* in the descriptor (RFC 8878, 3.1.1.1.1) */

struct lu_codec {
  ZSTD_CCtx *cctx;
  ZSTD_DCtx *dctx;
  int level;
  lu_codec_stats stats;
};

static double now(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void count(lu_codec_count *k, int status, size_t raw, size_t packed, double seconds)
{
  if (status != LUISA_OK) {
    k->refused++;
    return;
  }
  k->frames++;
  k->raw += raw;
  k->packed += packed;
  k->seconds += seconds;
}

int codec_level_ok(int level, char *why, size_t cap)
{
  int lo = ZSTD_minCLevel(), hi = ZSTD_maxCLevel();
  if (level >= lo && level <= hi)
    return 1;
  lu_say(why, cap, 0, "compression level %d is out of range: zstd takes %d..%d "
      "(negative levels are its fast ones), and 0 means no compression", level, lo, hi);
  return 0;
}

int codec_open(int level, lu_codec **out, char *why, size_t cap)
{
  *out = NULL;
  if (!codec_level_ok(level, why, cap))
    return LUISA_ERR_ARG;
  if (level == 0)
    return lu_say(why, cap, LUISA_ERR_ARG, "compression level 0 means no compression: no codec is opened for it");
  lu_codec *c = calloc(1, sizeof *c);
  if (!c || !(c->cctx = ZSTD_createCCtx()) || !(c->dctx = ZSTD_createDCtx())) {
    codec_close(c);
    return lu_say(why, cap, LUISA_ERR_NOMEM, "out of memory making the zstd contexts");
  }
  /* Parameters stick to the context: each ZSTD_compress2 reuses them. */
  size_t rc = ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level);
  if (!ZSTD_isError(rc))
    rc = ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_contentSizeFlag, 1);
  if (!ZSTD_isError(rc))
    rc = ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 1);
  if (ZSTD_isError(rc)) {
    codec_close(c);
    return lu_say(why, cap, LUISA_ERR_ARG, "zstd refused compression level %d: %s", level, ZSTD_getErrorName(rc));
  }
  c->level = level;
  *out = c;
  return LUISA_OK;
}

void codec_close(lu_codec *c)
{
  if (!c)
    return;
  ZSTD_freeCCtx(c->cctx);
  ZSTD_freeDCtx(c->dctx);
  free(c);
}

size_t codec_bound(size_t n)
{
  /* Older zstd computes the bound without this check and wraps. */
  return n >= ZSTD_MAX_INPUT_SIZE ? 0 : ZSTD_compressBound(n);
}

static int compress(lu_codec *c, void *dst, size_t cap, const void *src, size_t n, size_t *size,
                    double *seconds, char *why, size_t wcap)
{
  if (!dst || (!src && n))
    return lu_say(why, wcap, LUISA_ERR_ARG, "codec_compress got a NULL %s", dst ? "source" : "destination");
  size_t bound = codec_bound(n);
  if (!bound)
    return lu_say(why, wcap, LUISA_ERR_ARG, "%zu bytes are too many for one zstd frame (fewer than %llu)",
               n, (unsigned long long)ZSTD_MAX_INPUT_SIZE);
  if (!src)
    src = "";   /* n is 0: zstd is given a real pointer all the same */
  double t0 = now();
  size_t rc = ZSTD_compress2(c->cctx, dst, cap, src, n);
  *seconds = now() - t0;
  if (ZSTD_isError(rc)) {
    ZSTD_ErrorCode e = ZSTD_getErrorCode(rc);
    if (e == ZSTD_error_dstSize_tooSmall)
      return lu_say(why, wcap, LUISA_ERR_ARG, "%zu bytes do not fit in %zu once compressed "
                 "(codec_bound gives %zu)", n, cap, bound);
    return lu_say(why, wcap, e == ZSTD_error_memory_allocation ? LUISA_ERR_NOMEM : LUISA_ERR_ARG,
               "zstd could not compress %zu bytes at level %d: %s", n, c->level, ZSTD_getErrorName(rc));
  }
  *size = rc;
  return LUISA_OK;
}

int codec_compress(lu_codec *c, void *dst, size_t cap, const void *src, size_t n, size_t *size,
                   char *why, size_t wcap)
{
  double seconds = 0;
  *size = 0;
  int st = compress(c, dst, cap, src, n, size, &seconds, why, wcap);
  count(&c->stats.compress, st, n, *size, seconds);
  return st;
}

/* Everything about the frame but its blocks and checksum, which decompressing checks. */
static int check_frame(const unsigned char *src, size_t n, size_t expected, char *why, size_t wcap)
{
  if (n < MAGIC_SIZE + 1)
    return lu_say(why, wcap, LUISA_ERR_DATA, "%zu bytes cannot be a zstd frame: its header alone takes more", n);
  unsigned long magic = (unsigned long)src[0] | (unsigned long)src[1] << 8 | (unsigned long)src[2] << 16 |
                        (unsigned long)src[3] << 24;
  if (magic != ZSTD_MAGICNUMBER)
    return lu_say(why, wcap, LUISA_ERR_DATA, "%zu bytes are not a zstd frame: they start with 0x%08lx, "
               "not zstd's magic number 0x%08lx", n, magic, (unsigned long)ZSTD_MAGICNUMBER);
  unsigned long long size = ZSTD_getFrameContentSize(src, n);
  if (size == ZSTD_CONTENTSIZE_ERROR)
    return lu_say(why, wcap, LUISA_ERR_DATA, "the zstd frame of %zu bytes is truncated or corrupt: "
               "its header does not parse", n);
  if (size == ZSTD_CONTENTSIZE_UNKNOWN)
    return lu_say(why, wcap, LUISA_ERR_DATA, "the zstd frame of %zu bytes does not record its content size "
               "(expected %zu bytes)", n, expected);
  if (size != (unsigned long long)expected)
    return lu_say(why, wcap, LUISA_ERR_DATA, "the zstd frame of %zu bytes holds %llu bytes, expected %zu",
               n, size, expected);
  if (!(src[MAGIC_SIZE] & CHECKSUM_FLAG))
    return lu_say(why, wcap, LUISA_ERR_DATA, "the zstd frame of %zu bytes carries no checksum: "
               "its content could not be verified", n);
  size_t length = ZSTD_findFrameCompressedSize(src, n);
  if (ZSTD_isError(length))
    return lu_say(why, wcap, LUISA_ERR_DATA, "the zstd frame of %zu bytes is truncated or corrupt: %s",
               n, ZSTD_getErrorName(length));
  if (length != n)
    return lu_say(why, wcap, LUISA_ERR_DATA, "the zstd frame of %zu bytes is corrupt or not alone: "
               "it ends after %zu bytes", n, length);
  return LUISA_OK;
}

static int decompress(lu_codec *c, void *dst, size_t expected, const void *src, size_t n,
                      double *seconds, char *why, size_t wcap)
{
  if ((!dst && expected) || (!src && n))
    return lu_say(why, wcap, LUISA_ERR_ARG, "codec_decompress got a NULL %s", src || !n ? "destination" : "source");
  int st = check_frame(src, n, expected, why, wcap);
  if (st != LUISA_OK)
    return st;
  unsigned char none;
  if (!dst)
    dst = &none;   /* expected is 0: nothing is written */
  double t0 = now();
  size_t rc = ZSTD_decompressDCtx(c->dctx, dst, expected, src, n);
  *seconds = now() - t0;
  if (ZSTD_isError(rc))
    return lu_say(why, wcap, LUISA_ERR_DATA, "the zstd frame of %zu bytes is corrupt: %s", n, ZSTD_getErrorName(rc));
  if (rc != expected)   /* its header said expected */
    return lu_say(why, wcap, LUISA_ERR_DATA, "the zstd frame of %zu bytes is corrupt: it decoded to %zu bytes, "
               "expected %zu", n, rc, expected);
  return LUISA_OK;
}

int codec_decompress(lu_codec *c, void *dst, size_t expected, const void *src, size_t n,
                     char *why, size_t wcap)
{
  double seconds = 0;
  int st = decompress(c, dst, expected, src, n, &seconds, why, wcap);
  count(&c->stats.decompress, st, expected, n, seconds);
  return st;
}

void codec_stats(const lu_codec *c, lu_codec_stats *out)
{
  *out = c->stats;
}

size_t codec_memory(const lu_codec *c)
{
  return sizeof *c + ZSTD_sizeof_CCtx(c->cctx) + ZSTD_sizeof_DCtx(c->dctx);
}
