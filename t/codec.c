/* codec.c: engine/codec.c's zstd frames (t/032-codec.t): bit-exact round
 * trips, every refusal of a bad frame, levels, bounds and the counters. One
 * process, no MPI. Frame layouts are read here from RFC 8878, not codec.c. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>
#include "luisa.h"
#include "codec.h"
#include "tap.h"

#define WHY 512
#define GUARD 64                /* canary bytes after each output buffer */
#define CANARY 0xC5
#define MiB (1u << 20)

#define mentions(why, ...) tap_mentions((why), (const char *[]){ __VA_ARGS__, NULL })

static lu_codec *codec;         /* the level-3 codec most cases use */

/* The Makefile links with -Wl,--wrap=calloc: codec_open's allocation can be
 * refused (zstd's own, inside libzstd, cannot). */
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
static int refuse_calloc;
void *__wrap_calloc(size_t n, size_t size)
{
  return refuse_calloc ? NULL : __real_calloc(n, size);
}
static lu_codec_stats want;     /* what its counters must say, summed here */

static unsigned char *alloc(size_t n)
{
  unsigned char *p = malloc(n ? n : 1);
  if (!p) {
    ok(0, "malloc(%zu)", n);
    exit(1);
  }
  return p;
}

static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint64_t next(void)      /* xorshift64* */
{
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545F4914F6CDD1Du;
}

/* A frame of src, through the shared codec, counted in want. */
static unsigned char *frame_of(const void *src, size_t n, size_t *size)
{
  unsigned char *f = alloc(codec_bound(n));
  char why[WHY] = "";
  int st = codec_compress(codec, f, codec_bound(n), src, n, size, why, sizeof why);
  if (st != LUISA_OK)
    tap_print("#   codec_compress of %zu bytes: status %d: %s\n", n, st, why);
  want.compress.frames++;
  want.compress.raw += n;
  want.compress.packed += *size;
  return f;
}

/* Decompressing f[0..n), copied to a block of n bytes (a read past it is
 * ASan's and valgrind's to see), into a buffer of expected bytes followed
 * by a canary: 1 if the canary is whole, status and why returned. */
static int unpack(lu_codec *c, const unsigned char *f, size_t n, size_t expected, unsigned char **out,
                  int *st, char *why)
{
  unsigned char *src = n ? alloc(n) : NULL, *dst = alloc(expected + GUARD);
  if (n)
    memcpy(src, f, n);
  memset(dst, CANARY, expected + GUARD);
  why[0] = '\0';
  *st = codec_decompress(c, dst, expected, src ? src : f, n, why, WHY);
  free(src);
  int whole = 1;
  for (size_t i = expected; i < expected + GUARD; i++)
    whole &= dst[i] == CANARY;
  if (out)
    *out = dst;
  else
    free(dst);
  return whole;
}

/* A frame that must be refused by the shared codec, counted in want. */
static int refused(const unsigned char *f, size_t n, size_t expected, char *why)
{
  int st;
  int whole = unpack(codec, f, n, expected, NULL, &st, why);
  want.decompress.refused++;
  if (st != LUISA_ERR_DATA)
    tap_print("#   status %d, expected %d (LUISA_ERR_DATA): %s\n", st, LUISA_ERR_DATA, why);
  if (!whole)
    tap_print("#   bytes past the %zu expected were written\n", expected);
  return st == LUISA_ERR_DATA && whole && why[0];
}

/* Compressed and back through the shared codec: bit-exact. */
static size_t round_trip(const char *name, const void *src, size_t n)
{
  size_t size = 0;
  unsigned char *f = frame_of(src, n, &size), *back;
  char why[WHY];
  int st;
  ok(size > 0 && size <= codec_bound(n), "%s: %zu bytes make a frame of %zu bytes, within codec_bound's %zu",
     name, n, size, codec_bound(n));
  int whole = unpack(codec, f, size, n, &back, &st, why);
  ok(st == LUISA_OK && whole && (n == 0 || memcmp(back, src, n) == 0), "%s: decompressed bit-exact", name);
  if (st != LUISA_OK)
    tap_print("#   status %d: %s\n", st, why);
  want.decompress.frames++;
  want.decompress.raw += n;
  want.decompress.packed += size;
  free(f);
  free(back);
  return size;
}

/* A Gray-Scott field pair (u, v) after steps explicit steps from a seeded
 * square, on a periodic side x side grid: smooth, as chunks are. */
static double *gray_scott(int side, int steps)
{
  size_t cells = (size_t)side * (size_t)side;
  double *f = calloc(4 * cells, sizeof *f), *u = f, *v = f + cells, *u2 = f + 2 * cells, *v2 = f + 3 * cells;
  if (!f)
    exit(1);
  for (size_t i = 0; i < cells; i++)
    u[i] = 1;
  for (int y = side / 2 - 4; y < side / 2 + 4; y++)
    for (int x = side / 2 - 4; x < side / 2 + 4; x++)
      u[y * side + x] = 0.5, v[y * side + x] = 0.25;
  for (int s = 0; s < steps; s++) {
    for (int y = 0; y < side; y++)
      for (int x = 0; x < side; x++) {
        int i = y * side + x, l = y * side + (x + side - 1) % side, r = y * side + (x + 1) % side;
        int d = ((y + side - 1) % side) * side + x, p = ((y + 1) % side) * side + x;
        double uvv = u[i] * v[i] * v[i];
        u2[i] = u[i] + 0.16 * (u[l] + u[r] + u[d] + u[p] - 4 * u[i]) - uvv + 0.035 * (1 - u[i]);
        v2[i] = v[i] + 0.08 * (v[l] + v[r] + v[d] + v[p] - 4 * v[i]) + uvv - (0.035 + 0.065) * v[i];
      }
    memcpy(u, u2, cells * sizeof *u);
    memcpy(v, v2, cells * sizeof *v);
  }
  return f;   /* u then v: 2 * cells doubles */
}

static void levels(void)
{
  int lo = ZSTD_minCLevel(), hi = ZSTD_maxCLevel();
  char why[WHY], range[64];
  snprintf(range, sizeof range, "%d..%d", lo, hi);
  int good[] = { lo, -7, -1, 0, 1, 3, 19, hi };
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    why[0] = '\0';
    ok(codec_level_ok(good[i], why, sizeof why) == 1 && !why[0], "level %d is accepted", good[i]);
  }
  int bad[] = { lo - 1, hi + 1, INT_MIN, INT_MAX };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    why[0] = '\0';
    ok(codec_level_ok(bad[i], why, sizeof why) == 0 && mentions(why, "out of range", range),
       "level %d is refused naming zstd's range %s: %s", bad[i], range, why);
  }
  lu_codec *c = (lu_codec *)&why;   /* anything but NULL */
  ok(codec_open(hi + 1, &c, why, sizeof why) == LUISA_ERR_ARG && !c && mentions(why, range),
     "codec_open refuses level %d naming the range, *out NULL: %s", hi + 1, why);
  c = (lu_codec *)&why;
  ok(codec_open(0, &c, why, sizeof why) == LUISA_ERR_ARG && !c && mentions(why, "level 0", "no compression"),
     "codec_open refuses level 0, which means no compression: %s", why);
  c = (lu_codec *)&why;
  refuse_calloc = 1;
  int st = codec_open(3, &c, why, sizeof why);
  refuse_calloc = 0;
  ok(st == LUISA_ERR_NOMEM && !c && mentions(why, "out of memory"),
     "codec_open without memory: LUISA_ERR_NOMEM, *out NULL: %s", why);
  ok(codec_level_ok(0, NULL, 0) == 1 && codec_level_ok(hi + 1, NULL, 0) == 0 && codec_level_ok(lo - 1, why, 1) == 0 &&
     why[0] == '\0', "codec_level_ok writes no more than there is room for (NULL, or 1 byte: \"\")");

  /* Every level round-trips, and any codec reads any level's frames. */
  double *gs = gray_scott(48, 60);
  size_t n = 2 * 48 * 48 * sizeof *gs;
  int each[] = { lo, -5, 1, 9, 19, hi };
  for (size_t i = 0; i < sizeof each / sizeof *each; i++) {
    lu_codec *l = NULL;
    size_t size = 0;
    st = codec_open(each[i], &l, why, sizeof why);
    if (!ok(st == LUISA_OK && l, "codec_open at level %d", each[i])) {
      tap_print("#   %s\n", why);
      continue;
    }
    unsigned char *f = alloc(codec_bound(n)), *back;
    st = codec_compress(l, f, codec_bound(n), gs, n, &size, why, sizeof why);
    if (st != LUISA_OK)
      tap_print("#   codec_compress at level %d: %s\n", each[i], why);
    int whole = unpack(codec, f, size, n, &back, &st, why);
    ok(st == LUISA_OK && whole && !memcmp(back, gs, n),
       "level %d: a Gray-Scott field of %zu bytes (frame %zu) comes back bit-exact through the level-3 codec",
       each[i], n, size);
    want.decompress.frames++;
    want.decompress.raw += n;
    want.decompress.packed += size;
    lu_codec_stats s;
    codec_stats(l, &s);
    ok(s.compress.frames == 1 && s.compress.raw == n && s.compress.packed == size && s.compress.refused == 0 &&
       s.decompress.frames == 0 && s.decompress.refused == 0, "level %d: its codec counted the one frame", each[i]);
    free(f);
    free(back);
    codec_close(l);
  }
  free(gs);
  codec_close(NULL);
  ok(1, "codec_close(NULL) does nothing");
}

static void bounds(void)
{
  size_t big = (size_t)ZSTD_MAX_INPUT_SIZE;
  ok(codec_bound(MiB) == MiB + (MiB >> 8), "codec_bound(1 MiB) is 1 MiB + 1/256 (%zu)", codec_bound(MiB));
  ok(codec_bound(0) == 64 && codec_bound(1) == 1 + 63, "codec_bound(0) is 64, codec_bound(1) 64: zstd's margin");
  ok(codec_bound(SIZE_MAX) == 0 && codec_bound(SIZE_MAX - 1) == 0 && codec_bound(big) == 0,
     "codec_bound refuses (0) SIZE_MAX, SIZE_MAX - 1 and %zu rather than wrap", big);
  ok(codec_bound(big - 1) == big - 1 + ((big - 1) >> 8) && codec_bound(big - 1) > big - 1,
     "codec_bound(%zu) is exact, above its argument: no wrap at the largest size", big - 1);
  ok(codec_bound(SIZE_MAX / 2) == SIZE_MAX / 2 + (SIZE_MAX / 2 >> 8), "codec_bound(SIZE_MAX / 2) is exact");

  char why[WHY];
  unsigned char src[16] = { 0 }, dst[128];
  size_t size = 7;
  int st = codec_compress(codec, dst, sizeof dst, src, SIZE_MAX, &size, why, sizeof why);
  char says[64];
  snprintf(says, sizeof says, "%zu bytes", (size_t)SIZE_MAX);
  ok(st == LUISA_ERR_ARG && size == 0 && mentions(why, says, "too many"),
     "codec_compress refuses SIZE_MAX bytes before reading them: %s", why);
  st = codec_compress(codec, dst, sizeof dst, src, big, &size, why, sizeof why);
  ok(st == LUISA_ERR_ARG && mentions(why, "too many"), "and %zu bytes, ZSTD_MAX_INPUT_SIZE", big);
  want.compress.refused += 2;
}

static void trips(void)
{
  size_t n = 256 * 1024, size;
  uint32_t *rising = (uint32_t *)alloc(n);
  for (size_t i = 0; i < n / 4; i++)
    rising[i] = (uint32_t)i;
  size = round_trip("rising uint32 counter, 256 KiB", rising, n);
  ok(size < n, "rising counter: frame %zu < %zu", size, n);
  free(rising);

  double *falling = (double *)alloc(n);
  for (size_t i = 0; i < n / 8; i++)
    falling[i] = (double)(n / 8 - i) * 0.125;
  size = round_trip("falling doubles, 256 KiB", falling, n);
  ok(size < n, "falling doubles: frame %zu < %zu", size, n);
  free(falling);

  double *constant = (double *)alloc(MiB);
  for (size_t i = 0; i < MiB / 8; i++)
    constant[i] = 3.25;
  size = round_trip("constant 3.25, 1 MiB", constant, MiB);
  ok(size < 1024, "constant 1 MiB: frame %zu < 1 KiB", size);
  free(constant);

  unsigned char *zero = calloc(64 * 1024, 1);
  size = round_trip("all-zero, 64 KiB", zero, 64 * 1024);
  ok(size < 64, "all-zero 64 KiB: frame %zu < 64 bytes", size);
  free(zero);

  unsigned char *random = alloc(n);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t r = next();
    memcpy(random + i, &r, 8);
  }
  size = round_trip("random bytes, 256 KiB", random, n);
  ok(size >= n, "random bytes do not compress: frame %zu >= %zu", size, n);
  free(random);

  /* NaNs with payloads and both signs, infinities, -0, subnormals, extremes. */
  uint64_t bits[] = { 0x7FF8000000000000u, 0xFFF8000000000000u, 0x7FF0000000000001u, 0x7FF4000000000000u,
                      0xFFFFFFFFFFFFFFFFu, 0x7FFFFFFFFFFFFFFFu, 0x7FF0000000000000u, 0xFFF0000000000000u,
                      0x8000000000000000u, 0x0000000000000001u, 0x800FFFFFFFFFFFFFu, 0x0010000000000000u,
                      0x7FEFFFFFFFFFFFFFu, 0x3FF0000000000000u };
  size_t kinds = sizeof bits / sizeof *bits, count = 4096;
  double *special = (double *)alloc(count * sizeof *special);
  for (size_t i = 0; i < count; i++) {
    uint64_t b = bits[(i * 7 + i / 13) % kinds] ^ (i % 5 == 0 && i % kinds < 6 ? (i & 0xFFFF) : 0);
    memcpy(special + i, &b, 8);
  }
  size_t nans = 0, infs = 0;
  for (size_t i = 0; i < count; i++)
    nans += isnan(special[i]) != 0, infs += isinf(special[i]) != 0;
  ok(nans > 0 && infs > 0, "the special doubles hold NaNs (%zu) and infinities (%zu)", nans, infs);
  round_trip("NaN (payloads, signs), Inf, -0, subnormal doubles, 32 KiB", special, count * sizeof *special);
  free(special);

  round_trip("0 bytes from a NULL source", NULL, 0);
  unsigned char one = 0xA5;
  size = round_trip("1 byte", &one, 1);
  ok(size > 1, "1 byte: frame %zu bytes (header and checksum)", size);

  double *gs = gray_scott(128, 200);
  size_t gn = 2 * 128 * 128 * sizeof *gs;
  size = round_trip("Gray-Scott u and v, 128 x 128 after 200 steps", gs, gn);
  ok(size < gn / 2, "Gray-Scott field: frame %zu < half of %zu", size, gn);
  free(gs);

  /* Frames carry nothing over: the same chunk twice makes the same frame. */
  unsigned char a[3000], b[5000];
  for (size_t i = 0; i < sizeof a; i++)
    a[i] = (unsigned char)(i * i / 7);
  for (size_t i = 0; i < sizeof b; i++)
    b[i] = (unsigned char)(i % 251);
  size_t s1, s2, s3;
  unsigned char *f1 = frame_of(a, sizeof a, &s1), *f2 = frame_of(b, sizeof b, &s2), *f3 = frame_of(a, sizeof a, &s3);
  ok(s1 == s3 && !memcmp(f1, f3, s1), "a chunk compressed again after another makes the same %zu-byte frame", s1);
  free(f1);
  free(f2);
  free(f3);
}

/* Where a frame's content size field is and how long (RFC 8878 3.1.1.1). */
static size_t fcs_field(const unsigned char *f, size_t *len)
{
  unsigned d = f[4];
  int single = d >> 5 & 1, flag = d >> 6;
  size_t dict[] = { 0, 1, 2, 4 }, sizes[] = { (size_t)single, 2, 4, 8 };
  *len = sizes[flag];
  return 5 + (size_t)!single + dict[d & 3];
}

static void bad_frames(void)
{
  char why[WHY], says[128];
  size_t n = 4096, size;
  double *gs = gray_scott(32, 30);   /* 16 KiB: its first 4096 bytes */
  unsigned char *f = frame_of(gs, n, &size);

  /* Sizes. */
  ok(refused(f, size, n - 1, why) && (snprintf(says, sizeof says, "holds %zu bytes, expected %zu", n, n - 1), 1) &&
     mentions(why, says), "expected %zu bytes for a frame of %zu: refused naming both: %s", n - 1, n, why);
  ok(refused(f, size, n + 1, why) && (snprintf(says, sizeof says, "holds %zu bytes, expected %zu", n, n + 1), 1) &&
     mentions(why, says), "expected %zu: refused naming both", n + 1);
  ok(refused(f, size, 0, why) && mentions(why, "expected 0"), "expected 0: refused");

  /* Truncations: every length, and half in particular. */
  int all = 1;
  for (size_t cut = 0; cut < size; cut++)
    all &= refused(f, cut, n, why);
  ok(all, "every truncation of the %zu-byte frame (0..%zu bytes) is refused, nothing written past", size, size - 1);
  ok(refused(f, size / 2, n, why) && mentions(why, "truncated"), "half a frame: refused as truncated: %s", why);
  ok(refused(f, size - 1, n, why) && mentions(why, "truncated"), "a frame less its last byte: truncated: %s", why);

  /* Bytes after the frame: one, or a second frame. */
  unsigned char *two = alloc(2 * size);
  memcpy(two, f, size);
  memcpy(two + size, f, size);
  snprintf(says, sizeof says, "ends after %zu bytes", size);
  ok(refused(two, size + 1, n, why) && mentions(why, says), "a frame and 1 more byte: refused: %s", why);
  ok(refused(two, 2 * size, n, why) && mentions(why, says), "two frames: refused, one is expected");
  free(two);

  /* One byte changed in the middle of a compressed frame. */
  unsigned char *bad = alloc(size);
  memcpy(bad, f, size);
  bad[size / 2] ^= 0x5A;
  ok(refused(bad, size, n, why) && (strstr(why, "corrupt") || strstr(why, "checksum")),
     "a byte changed in the middle of a compressed frame: refused as corrupt: %s", why);

  /* Every byte changed, one at a time: never wrong data accepted. */
  size_t refusals = 0, exact = 0;
  for (size_t i = 0; i < size; i++)
    for (int x = 0; x < 2; x++) {
      unsigned char *back;
      int st;
      memcpy(bad, f, size);
      bad[i] ^= x ? 0xFF : 0x01;
      int whole = unpack(codec, bad, size, n, &back, &st, why);
      if (st == LUISA_ERR_DATA && whole && why[0])
        refusals++, want.decompress.refused++;
      else if (st == LUISA_OK && whole && !memcmp(back, gs, n)) {
        exact++;
        want.decompress.frames++;
        want.decompress.raw += n;
        want.decompress.packed += size;
      } else
        tap_print("#   byte %zu ^ 0x%02x: status %d, canary %s: %s\n", i, x ? 0xFF : 1, st, whole ? "whole" : "hit", why);
      free(back);
    }
  ok(refusals + exact == 2 * size, "each of the %zu frame bytes changed (^1, ^0xFF): refused (%zu) or decoded "
     "bit-exact (%zu), never wrong", size, refusals, exact);
  free(bad);

  /* Random data is stored raw: a change there is caught by the checksum alone. */
  unsigned char *random = alloc(n);
  for (size_t i = 0; i < n; i++)
    random[i] = (unsigned char)next();
  size_t rsize;
  unsigned char *rf = frame_of(random, n, &rsize);
  rf[rsize / 2] ^= 1;
  ok(refused(rf, rsize, n, why) && mentions(why, "corrupt", ZSTD_getErrorName((size_t)-ZSTD_error_checksum_wrong)),
     "a bit changed in stored random data: refused naming zstd's checksum error: %s", why);
  ok(strstr(why, "checksum") != NULL, "the sentence says checksum");
  free(rf);

  /* A header that lies about the size: zstd stops at the buffer's end. */
  size_t len, at = fcs_field(f, &len);
  ok(len == 2, "the 4096-byte frame records its size in 2 bytes at %zu (RFC 8878)", at);
  unsigned char *lie = alloc(size);
  memcpy(lie, f, size);
  unsigned fcs = (unsigned)lie[at] | (unsigned)lie[at + 1] << 8;
  lie[at] = (unsigned char)(fcs - 1), lie[at + 1] = (unsigned char)((fcs - 1) >> 8);
  ok(refused(lie, size, n - 1, why) && mentions(why, "corrupt"),
     "a frame claiming %zu bytes that holds %zu: refused, nothing written past %zu: %s", n - 1, n, n - 1, why);
  lie[at] = (unsigned char)(fcs + 1), lie[at + 1] = (unsigned char)((fcs + 1) >> 8);
  ok(refused(lie, size, n + 1, why) && mentions(why, "corrupt"),
     "a frame claiming %zu bytes that holds %zu: refused: %s", n + 1, n, why);
  free(lie);

  /* Frames zstd makes but luisa does not: no checksum, no content size. */
  size_t cap = codec_bound(n);
  unsigned char *other = alloc(cap);
  size_t osize = ZSTD_compress(other, cap, gs, n, 3);
  ok(!ZSTD_isError(osize) && refused(other, osize, n, why) && mentions(why, "no checksum"),
     "a frame without checksum: refused: %s", why);
  ZSTD_CCtx *z = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(z, ZSTD_c_contentSizeFlag, 0);
  ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 1);
  osize = ZSTD_compress2(z, other, cap, gs, n);
  snprintf(says, sizeof says, "expected %zu bytes", n);
  ok(!ZSTD_isError(osize) && refused(other, osize, n, why) && mentions(why, "does not record its content size", says),
     "a frame without content size: refused: %s", why);
  ZSTD_freeCCtx(z);
  free(other);

  /* Not zstd at all. */
  const char text[] = "luisa: this is not a zstd frame, only text";
  ok(refused((const unsigned char *)text, sizeof text, n, why) && mentions(why, "not a zstd frame", "0x"),
     "text: refused as not a zstd frame: %s", why);
  unsigned char skip[16] = { 0x50, 0x2A, 0x4D, 0x18, 8, 0, 0, 0 };   /* a skippable frame */
  ok(refused(skip, sizeof skip, 0, why) && mentions(why, "not a zstd frame"), "a skippable frame: refused");
  ok(refused(f, 3, n, why) && mentions(why, "3 bytes cannot be a zstd frame"), "3 bytes: refused: %s", why);
  ok(refused(f, 0, 0, why) && mentions(why, "0 bytes"), "0 bytes: refused even when 0 are expected");

  /* Bad arguments. */
  unsigned char out[8];
  int st = codec_decompress(codec, out, sizeof out, NULL, 10, why, sizeof why);
  ok(st == LUISA_ERR_ARG && mentions(why, "NULL source"), "codec_decompress: NULL source refused: %s", why);
  st = codec_decompress(codec, NULL, n, f, size, why, sizeof why);
  ok(st == LUISA_ERR_ARG && mentions(why, "NULL destination"), "codec_decompress: NULL destination refused");
  st = codec_compress(codec, NULL, 100, out, sizeof out, &len, why, sizeof why);
  ok(st == LUISA_ERR_ARG && len == 0 && mentions(why, "NULL destination"), "codec_compress: NULL destination refused");
  st = codec_compress(codec, out, sizeof out, NULL, 4, &len, why, sizeof why);
  ok(st == LUISA_ERR_ARG && mentions(why, "NULL source"), "codec_compress: NULL source with 4 bytes refused");
  want.decompress.refused += 2;
  want.compress.refused += 2;

  /* A destination too small: refused, nothing written past it. */
  unsigned char small[16 + GUARD];
  memset(small, CANARY, sizeof small);
  st = codec_compress(codec, small, 16, random, n, &len, why, sizeof why);
  int whole = 1;
  for (size_t i = 16; i < sizeof small; i++)
    whole &= small[i] == CANARY;
  snprintf(says, sizeof says, "%zu bytes do not fit in 16 once compressed (codec_bound gives %zu)", n, codec_bound(n));
  ok(st == LUISA_ERR_ARG && whole && mentions(why, says), "compressing into 16 bytes: refused, nothing past: %s", why);
  want.compress.refused++;
  free(random);
  free(f);
  free(gs);
}

static void stats(void)
{
  lu_codec_stats s;
  codec_stats(codec, &s);
  ok(s.compress.frames == want.compress.frames && s.compress.raw == want.compress.raw &&
     s.compress.packed == want.compress.packed && s.compress.refused == want.compress.refused,
     "compress counters: %llu frames, %llu raw and %llu packed bytes, %llu refused, as summed here",
     (unsigned long long)s.compress.frames, (unsigned long long)s.compress.raw,
     (unsigned long long)s.compress.packed, (unsigned long long)s.compress.refused);
  if (s.compress.frames != want.compress.frames || s.compress.raw != want.compress.raw ||
      s.compress.packed != want.compress.packed || s.compress.refused != want.compress.refused)
    tap_print("#   expected %llu, %llu, %llu, %llu\n", (unsigned long long)want.compress.frames,
              (unsigned long long)want.compress.raw, (unsigned long long)want.compress.packed,
              (unsigned long long)want.compress.refused);
  ok(s.decompress.frames == want.decompress.frames && s.decompress.raw == want.decompress.raw &&
     s.decompress.packed == want.decompress.packed && s.decompress.refused == want.decompress.refused,
     "decompress counters: %llu frames, %llu raw and %llu packed bytes, %llu refused, as summed here",
     (unsigned long long)s.decompress.frames, (unsigned long long)s.decompress.raw,
     (unsigned long long)s.decompress.packed, (unsigned long long)s.decompress.refused);
  if (s.decompress.frames != want.decompress.frames || s.decompress.raw != want.decompress.raw ||
      s.decompress.packed != want.decompress.packed || s.decompress.refused != want.decompress.refused)
    tap_print("#   expected %llu, %llu, %llu, %llu\n", (unsigned long long)want.decompress.frames,
              (unsigned long long)want.decompress.raw, (unsigned long long)want.decompress.packed,
              (unsigned long long)want.decompress.refused);
  ok(s.compress.seconds > 0 && s.compress.seconds < 600 && s.decompress.seconds > 0 && s.decompress.seconds < 600,
     "seconds compressing (%.6f) and decompressing (%.6f) are counted", s.compress.seconds, s.decompress.seconds);

  /* Steps of the same chunks: the contexts do not grow any more. */
  double *gs = gray_scott(64, 10);
  size_t n = 2 * 64 * 64 * sizeof *gs, size = 0, held[4];
  unsigned char *f = alloc(codec_bound(n)), *back = alloc(n);
  char why[WHY];
  for (int step = 0; step < 4; step++) {
    codec_compress(codec, f, codec_bound(n), gs, n, &size, why, sizeof why);
    codec_decompress(codec, back, n, f, size, why, sizeof why);
    held[step] = codec_memory(codec);
  }
  ok(held[0] > sizeof(void *) && held[1] == held[0] && held[3] == held[0],
     "codec_memory stays at %zu bytes over repeated steps", held[0]);
  lu_codec_stats t;
  codec_stats(codec, &t);
  ok(t.compress.frames == s.compress.frames + 4 && t.compress.packed == s.compress.packed + 4 * size &&
     t.decompress.raw == s.decompress.raw + 4 * n, "4 more steps counted: 4 frames of %zu bytes each way", size);
  free(f);
  free(back);
  free(gs);
}

int main(void)
{
  char why[WHY];
  if (codec_open(3, &codec, why, sizeof why) != LUISA_OK) {
    ok(0, "codec_open(3): %s", why);
    return tap_done();
  }
  lu_codec_stats s;
  codec_stats(codec, &s);
  ok(!s.compress.frames && !s.compress.raw && !s.compress.packed && !s.compress.refused && !s.compress.seconds &&
     !s.decompress.frames && !s.decompress.refused && !s.decompress.seconds, "a new codec counts nothing");
  levels();
  bounds();
  trips();
  bad_frames();
  stats();
  codec_close(codec);
  return tap_done();
}
