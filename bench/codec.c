/* codec.c: benchmark 8, what zstd does to simulation data: Gray-Scott's U
 * and V after the pattern formed, and synthetic float64 fields, compressed
 * as the engine's ranks mode does (engine/codec.c), against memcpy.
 * usage: codec N STEPS [--header]   (1 rank; NxN cells run STEPS steps) */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "bench.h"

enum { REPS = 5, SYNTH = 2 * 1024 * 1024 };   /* SYNTH doubles: 16 MiB */

/* Pearson's "spots" regime, as slowdown.c: dx = dt = 1. */
#define DU   0.2097
#define DV   0.105
#define FEED 0.0545
#define KILL 0.062

/* Periodic ghosts of an (n+2)^2 field; the 5-point stencil skips corners. */
static void ghosts(double *a, int n)
{
  const ptrdiff_t w = n + 2;
  memcpy(a + 1, a + n * w + 1, (size_t)n * sizeof *a);
  memcpy(a + (n + 1) * w + 1, a + w + 1, (size_t)n * sizeof *a);
  for (int i = 1; i <= n; i++) {
    a[i * w] = a[i * w + n];
    a[i * w + n + 1] = a[i * w + 1];
  }
}

/* slowdown.c's initial state and explicit Euler steps; U and V's interiors
 * packed into u and v (n*n each, C order), as the engine sends a chunk. */
static void gray_scott(int n, int steps, double *u, double *v)
{
  const ptrdiff_t w = n + 2;
  const size_t cells = (size_t)w * (size_t)w;
  double *f[4];
  for (int k = 0; k < 4; k++)
    if (!(f[k] = calloc(cells, sizeof *f[k])))
      MPI_Abort(MPI_COMM_WORLD, 2);
  const int h = n / 16 > 0 ? n / 16 : 1;
  uint64_t x = 12345;
  for (int i = 1; i <= n; i++)
    for (int j = 1; j <= n; j++) {
      double *a = f[0] + i * w + j, *b = f[1] + i * w + j;
      *a = 1.0, *b = 0.0;
      if (i - 1 >= n / 2 - h && i - 1 < n / 2 + h && j - 1 >= n / 2 - h && j - 1 < n / 2 + h) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        *a = 0.50 + 0.02 * ((double)(x >> 11) * 0x1p-53 - 0.5);
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        *b = 0.25 + 0.02 * ((double)(x >> 11) * 0x1p-53 - 0.5);
      }
    }
  for (int t = 0; t < steps; t++) {
    ghosts(f[0], n);
    ghosts(f[1], n);
    const double *restrict uc = f[0], *restrict vc = f[1];
    double *restrict un = f[2], *restrict vn = f[3];
    for (int i = 1; i <= n; i++)
      for (ptrdiff_t c = i * w + 1; c <= i * w + n; c++) {
        const double lu = uc[c - w] + uc[c + w] + uc[c - 1] + uc[c + 1] - 4.0 * uc[c];
        const double lv = vc[c - w] + vc[c + w] + vc[c - 1] + vc[c + 1] - 4.0 * vc[c];
        const double uvv = uc[c] * vc[c] * vc[c];
        un[c] = uc[c] + DU * lu - uvv + FEED * (1.0 - uc[c]);
        vn[c] = vc[c] + DV * lv + uvv - (FEED + KILL) * vc[c];
      }
    double *t0 = f[0], *t1 = f[1];
    f[0] = f[2], f[1] = f[3], f[2] = t0, f[3] = t1;
  }
  for (int i = 0; i < n; i++) {
    memcpy(u + (size_t)i * n, f[0] + (i + 1) * w + 1, (size_t)n * sizeof *u);
    memcpy(v + (size_t)i * n, f[1] + (i + 1) * w + 1, (size_t)n * sizeof *v);
  }
  for (int k = 0; k < 4; k++)
    free(f[k]);
}

/* Random doubles (bench_fill) with about one element in 64 a NaN. */
static void fill_nan(double *v, int64_t n)
{
  bench_fill(v, n, 7);
  uint64_t x = 99;
  for (int64_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    if ((x >> 58) == 0)
      v[i] = NAN;
  }
}

/* The engine's compressor: level, content size and checksum in the frame. */
static ZSTD_CCtx *cctx_at(int level)
{
  ZSTD_CCtx *c = ZSTD_createCCtx();
  if (!c || ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1))) {
    fprintf(stdout, "\n!!!!! BENCHMARK BROKEN: zstd refused level %d\n\n", level);
    fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  return c;
}

/* Scratch of the largest buffer's size, touched once before any timing. */
typedef struct scratch {
  void *frame, *back;
  size_t cap;
} scratch;

static double time_memcpy(scratch *s, const void *src, size_t n)
{
  double best = INFINITY;
  for (int r = 0; r < 4 * REPS; r++) {   /* cheap: more samples for a steadier floor */
    double t0 = bench_now();
    memcpy(s->back, src, n);
    best = fmin(best, bench_now() - t0);
  }
  return best;
}

/* One row: buffer src of n bytes through one frame at each level. */
static void row(const char *what, const void *src, size_t n, scratch *s, const int *levels, int nlevels)
{
  const double mb = (double)n * 1e-6, copy = time_memcpy(s, src, n);
  ZSTD_DCtx *d = ZSTD_createDCtx();
  if (!d)
    MPI_Abort(MPI_COMM_WORLD, 2);
  for (int l = 0; l < nlevels; l++) {
    ZSTD_CCtx *c = cctx_at(levels[l]);
    double comp = INFINITY, decomp = INFINITY;
    size_t size = 0, got = 0;
    for (int r = 0; r < REPS; r++) {
      double t0 = bench_now();
      size = ZSTD_compress2(c, s->frame, s->cap, src, n);
      double t1 = bench_now();
      got = ZSTD_isError(size) ? size : ZSTD_decompressDCtx(d, s->back, n, s->frame, size);
      double t2 = bench_now();
      comp = fmin(comp, t1 - t0), decomp = fmin(decomp, t2 - t1);
    }
    if (ZSTD_isError(size) || ZSTD_isError(got) || got != n || memcmp(s->back, src, n)) {
      fprintf(stdout, "\n!!!!! WARNING: zstd level %d did not give %s back: %s\n\n", levels[l], what,
              ZSTD_isError(size) ? ZSTD_getErrorName(size) : ZSTD_isError(got) ? ZSTD_getErrorName(got) : "different bytes");
      bench_wrong++;
    }
    printf("%-32s  %6.1f  %5d  %8.2f  %13.0f  %15.0f  %11.0f\n", what, (double)n / (1024.0 * 1024.0), levels[l],
           (double)n / (double)size, mb / comp, mb / decomp, mb / copy);
    ZSTD_freeCCtx(c);
  }
  ZSTD_freeDCtx(d);
  fflush(stdout);
}

/* Percent of the n values of a for which keep(x) holds. */
static double percent(const double *a, size_t n, int (*keep)(double))
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    k += (size_t)keep(a[i]);
  return 100.0 * (double)k / (double)n;
}

static int spot(double x)
{
  return x > 0.1;
}

static int exactly_zero(double x)
{
  return x == 0.0;
}

static int exactly_one(double x)
{
  return x == 1.0;
}

int main(int argc, char **argv)
{
  bench_init(&argc, &argv);
  if (argc > 1 && !strcmp(argv[argc - 1], "--header")) {
    argc--;
    printf("%-32s  %6s  %5s  %8s  %13s  %15s  %11s\n", "data", "MiB", "level", "raw/zstd", "compress MB/s",
           "decompress MB/s", "memcpy MB/s");
  }
  int n = argc == 3 ? atoi(argv[1]) : 0, steps = argc == 3 ? atoi(argv[2]) : -1;
  if (n < 3 || n > 8192 || steps < 0 || bench_size != 1) {
    fprintf(stderr, "usage: codec N STEPS [--header]   (on 1 rank, N from 3 to 8192, STEPS >= 0)\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const size_t cells = (size_t)n * (size_t)n, big = cells > SYNTH ? cells : SYNTH;
  double *u = malloc(cells * sizeof *u), *v = malloc(cells * sizeof *v), *synth = malloc(SYNTH * sizeof *synth);
  scratch s = { malloc(ZSTD_compressBound(big * sizeof(double))), malloc(big * sizeof(double)),
                ZSTD_compressBound(big * sizeof(double)) };
  if (!u || !v || !synth || !s.frame || !s.back)
    MPI_Abort(MPI_COMM_WORLD, 2);
  memset(s.frame, 0, s.cap);
  memset(s.back, 0, big * sizeof(double));

  double t0 = bench_now();
  gray_scott(n, steps, u, v);
  double sim_s = bench_now() - t0;
  static const int levels[] = { 1, 3, 9 };
  const int nlevels = (int)(sizeof levels / sizeof *levels);
  char what[64];
  snprintf(what, sizeof what, "gray-scott U %dx%d, %d steps", n, n, steps);
  row(what, u, cells * sizeof *u, &s, levels, nlevels);
  snprintf(what, sizeof what, "gray-scott V %dx%d, %d steps", n, n, steps);
  row(what, v, cells * sizeof *v, &s, levels, nlevels);

  bench_fill(synth, SYNTH, 1);
  row("random [-1, 3)", synth, SYNTH * sizeof *synth, &s, levels, nlevels);
  for (size_t i = 0; i < SYNTH; i++)
    synth[i] = 1.0;
  row("constant 1.0", synth, SYNTH * sizeof *synth, &s, levels, nlevels);
  bench_fill_ramp(synth, SYNTH / 1024, 1024, 0);
  row("ramp (i + j) / 1024", synth, SYNTH * sizeof *synth, &s, levels, nlevels);
  fill_nan(synth, SYNTH);
  row("random, 1/64 NaN", synth, SYNTH * sizeof *synth, &s, levels, nlevels);
  printf("   the Gray-Scott run took %.1f s; V > 0.1 (the spots) on %.1f %% of the cells, V exactly 0 on %.1f %%, "
         "U exactly 1 on %.1f %%\n", sim_s, percent(v, cells, spot), percent(v, cells, exactly_zero),
         percent(u, cells, exactly_one));
  fflush(stdout);
  free(u);
  free(v);
  free(synth);
  free(s.frame);
  free(s.back);
  return bench_finish();
}
