/* chunks.c: benchmark 3, plan scaling: the same 4096x256 float64 per rank
 * split into 1 to 4096 chunks; step time, per-chunk cost and compile time.
 * usage: chunks SCRIPT [--header]   (one table row per chunk count) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

enum { ROWS = 4096, COLS = 256, ROUNDS = 5, BATCHES = 15, STEPS = 3 };
static const int counts[] = { 1, 16, 256, 4096 };
enum { NCOUNTS = sizeof counts / sizeof counts[0], SAMPLES = ROUNDS * BATCHES };

typedef struct { double sum, max; } partial;


/* One chunk count: its context and what was measured on it. */
typedef struct config {
  int nc;
  int64_t rows;
  luisa *lz;
  int64_t step;
  partial ref;
  double got[3];   /* its script's last results (every context writes bench_out) */
  double first[ROUNDS], steps[SAMPLES], pub[SAMPLES], c_steps[SAMPLES];
} config;

/* The hand-written equivalent over the same chunks: a loop per chunk, one
 * MPI_Reduce. It shows what chunking costs plain C (nothing, nearly). */
static partial hand(double *t, const config *cf, MPI_Op op)
{
  partial p = { 0, -HUGE_VAL }, g;
  for (int c = 0; c < cf->nc; c++)
    bench_sum_max(t + c * cf->rows * COLS, cf->rows * COLS, &p.sum, &p.max);
  MPI_Reduce(&p, &g, 2, MPI_DOUBLE, op, 0, MPI_COMM_WORLD);
  return g;
}

static void publish_all(config *cf, double *t)
{
  for (int c = 0; c < cf->nc; c++)
    luisa_publish(cf->lz, "T", c, t + c * cf->rows * COLS);
}

/* A new context: declares the chunks, times its first step (which checks
 * the declarations and compiles the plan) into first[round]. */
static void open_config(config *cf, const char *script, double *t, int round)
{
  cf->lz = bench_open(script);
  cf->step = 0;
  int64_t shape[2] = { (int64_t)bench_size * ROWS, COLS }, block[2] = { cf->rows, COLS };
  luisa_array(cf->lz, "T", LUISA_F64, 2, shape);
  for (int c = 0; c < cf->nc; c++) {
    int64_t offset[2] = { (int64_t)bench_rank * ROWS + c * cf->rows, 0 };
    luisa_chunk(cf->lz, "T", offset, block, NULL);
  }
  publish_all(cf, t);
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = bench_now();
  bench_step(cf->lz, ++cf->step);
  cf->first[round] = bench_slowest(bench_now() - t0);
}

/* STEPS engine steps (publish timed apart from luisa_step), then as many
 * hand-written ones; stored as sample `at` unless at < 0 (warm-up). */
static void batch(config *cf, double *t, MPI_Op op, int at)
{
  double ts = 0, tp = 0;
  MPI_Barrier(MPI_COMM_WORLD);
  for (int s = 0; s < STEPS; s++) {
    double a = bench_now();
    publish_all(cf, t);
    double m = bench_now();
    bench_step(cf->lz, ++cf->step);
    double z = bench_now();
    tp += m - a;
    ts += z - m;
  }
  memcpy(cf->got, bench_out, sizeof cf->got);
  MPI_Barrier(MPI_COMM_WORLD);
  double t1 = bench_now();
  for (int s = 0; s < STEPS; s++)
    cf->ref = hand(t, cf, op);
  double tc = bench_now() - t1;
  ts = bench_slowest(ts), tp = bench_slowest(tp), tc = bench_slowest(tc);
  if (at >= 0) {
    cf->steps[at] = ts / STEPS;
    cf->pub[at] = tp / STEPS;
    cf->c_steps[at] = tc / STEPS;
  }
}

static void check_and_close(config *cf)
{
  char what[64];
  snprintf(what, sizeof what, "%d chunks sum", cf->nc);
  bench_check(what, cf->got[0], cf->ref.sum);
  snprintf(what, sizeof what, "%d chunks max", cf->nc);
  bench_check(what, cf->got[1], cf->ref.max);
  bench_check("chunks step delivered", cf->got[2], (double)cf->step);
  luisa_finalize(cf->lz);
}

int main(int argc, char **argv)
{
  bench_init(&argc, &argv);
  if (argc < 2) {
    fprintf(stderr, "usage: chunks SCRIPT [--header]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  if (argc > 2 && !strcmp(argv[2], "--header") && bench_rank == 0)
    printf("chunks/rank  rows/chunk  engine step us  C step us  engine per-chunk ns  publish ns/chunk"
           "  first step ms  compile ms  compile us/added chunk\n");
  MPI_Op op;
  MPI_Op_create(bench_sum_max_combine, 1, &op);
  const int64_t n = (int64_t)ROWS * COLS;
  double *t = malloc((size_t)n * sizeof *t);
  config *cf = calloc(NCOUNTS, sizeof *cf);
  if (!t || !cf)
    MPI_Abort(MPI_COMM_WORLD, 2);
  bench_fill(t, n, (uint64_t)bench_rank);
  for (int k = 0; k < NCOUNTS; k++)
    cf[k].nc = counts[k], cf[k].rows = ROWS / counts[k];

  /* All chunk counts side by side, one context each, batches interleaved:
   * the machine's drift hits every row alike, and the rows are compared. */
  for (int r = 0; r < ROUNDS; r++) {
    for (int k = 0; k < NCOUNTS; k++)
      open_config(&cf[k], argv[1], t, r);
    for (int b = -1; b < BATCHES; b++)   /* batch -1 warms up */
      for (int k = 0; k < NCOUNTS; k++)
        batch(&cf[k], t, op, b < 0 ? -1 : r * BATCHES + b);
    for (int k = 0; k < NCOUNTS; k++)
      check_and_close(&cf[k]);
  }

  double step_us[NCOUNTS], spread_us[NCOUNTS], compile_ms[NCOUNTS];
  for (int k = 0; k < NCOUNTS; k++) {
    double e = bench_min(cf[k].steps, SAMPLES), c = bench_min(cf[k].c_steps, SAMPLES);
    double p = bench_min(cf[k].pub, SAMPLES), f = bench_min(cf[k].first, ROUNDS);
    step_us[k] = e * 1e6;
    spread_us[k] = (bench_median(cf[k].steps, SAMPLES) - e) * 1e6;   /* how noisy */
    compile_ms[k] = (f - e) * 1e3;   /* the first step minus one ordinary step */
    if (bench_rank != 0)
      continue;
    printf("%11d  %10lld  %14.1f  %9.1f", cf[k].nc, (long long)cf[k].rows, e * 1e6, c * 1e6);
    if (k == 0)
      printf("  %19s", "-");
    else   /* +- the spreads (median - min) of both rows, per chunk */
      printf("  %9.1f +- %6.0f", (step_us[k] - step_us[0]) * 1e3 / cf[k].nc,
             (spread_us[k] + spread_us[0]) * 1e3 / cf[k].nc);
    printf("  %16.1f  %13.2f  %10.2f", p * 1e9 / cf[k].nc, f * 1e3, compile_ms[k]);
    if (k == 0)   /* the marginal cost: constant if compiling is linear */
      printf("  %16s\n", "-");
    else
      printf("  %16.2f\n", (compile_ms[k] - compile_ms[k - 1]) * 1e3 / (cf[k].nc - cf[k - 1].nc));
  }
  if (bench_rank == 0) {   /* least-squares lines: the slopes are the per-chunk costs */
    double sx = 0, sy = 0, sz = 0, sxx = 0, sxy = 0, sxz = 0;
    for (int k = 0; k < NCOUNTS; k++) {
      double x = counts[k];
      sx += x, sy += step_us[k], sz += compile_ms[k];
      sxx += x * x, sxy += x * step_us[k], sxz += x * compile_ms[k];
    }
    double d = NCOUNTS * sxx - sx * sx;
    double bs = (NCOUNTS * sxy - sx * sy) / d, bc = (NCOUNTS * sxz - sx * sz) / d;
    printf("least-squares fit over the rows: step = %.1f us + %.1f ns per chunk; "
           "compile = %.2f ms + %.2f us per chunk\n", (sy - bs * sx) / NCOUNTS, bs * 1e3,
           (sz - bc * sx) / NCOUNTS, bc * 1e3);
  }
  free(cf);
  free(t);
  MPI_Op_free(&op);
  return bench_finish();
}
