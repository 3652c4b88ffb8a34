/* patterns.c: benchmark 10, data must not change the speed: sum, min, max,
 * argmax, a 64-bin histogram and W1 of a 1024x1024 float64 row slab per
 * rank on six data patterns, engine against hand-written C + MPI.
 * usage: patterns SCRIPT [--header]   (one table row per reduction and pattern) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"

enum { ROWS = 1024, COLS = 1024, REPS = 21, BINS = 64, SAW = 1000, NPAT = 6 };
static const double LO = -1, HI = 3;   /* every pattern lies in [LO, HI] but random's 3.5 */

double bench_hist[BINS];   /* the script's histogram (ffi.C, as bench_out) */

typedef enum { SUM, MIN, MAX, ARGMAX, HIST, W1, NRED } reduction;
static const char *const red_env[NRED] = { "sum", "min", "max", "argmax", "histogram", "w1" };
static const char *const red_label[NRED] = { "T:sum()", "T:min()", "T:max()", "T:argmax()",
                                             "T:histogram(64)", "W1" };
static const char *const pat_name[NPAT] = { "random", "rising", "falling", "constant", "sawtooth",
                                            "random, 1/64 NaN" };

/* What the hand-written code computed: v (sum, min, max, argmax's linear
 * index, W1's mean), W1's max and std, a histogram's counts. */
typedef struct { double v, max, dstd, hist[BINS]; } result;

/* Pattern p over this rank's rows; g is the global linear (C-order) index. */
static void fill(double *t, int p)
{
  const int64_t n = (int64_t)ROWS * COLS, g0 = (int64_t)bench_rank * n;
  const double total = (double)n * bench_size;
  if (p == 0 || p == 5)
    bench_fill(t, n, (uint64_t)bench_rank);   /* the maximum, 3.5, first */
  for (int64_t k = 0; k < n; k++) {
    double g = (double)(g0 + k);
    switch (p) {
    case 1: t[k] = LO + (HI - LO) * g / total; break;   /* rising: i * ncols + j, scaled */
    case 2: t[k] = HI - (HI - LO) * g / total; break;   /* falling */
    case 3: t[k] = 1; break;                            /* constant */
    case 4: t[k] = LO + (HI - LO) * (double)((g0 + k) % SAW) / SAW; break;
    case 5: if (k % 64 == 63) t[k] = NAN; break;
    default: break;
    }
  }
}

/* The hand-written loops. Two accumulators for min and max (see
 * bench_sum_max); `x < m` and `x > m` skip NaN as the engine does. */
__attribute__((noinline)) static double c_sum(const double *t, int64_t n)
{
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += t[i];
  return s;
}

__attribute__((noinline)) static double c_min(const double *t, int64_t n)
{
  double m0 = HUGE_VAL, m1 = HUGE_VAL;
  for (int64_t i = 0; i + 1 < n; i += 2) {
    if (t[i] < m0)
      m0 = t[i];
    if (t[i + 1] < m1)
      m1 = t[i + 1];
  }
  if (n % 2 && t[n - 1] < m0)
    m0 = t[n - 1];
  return fmin(m0, m1);
}

__attribute__((noinline)) static double c_max(const double *t, int64_t n)
{
  double m0 = -HUGE_VAL, m1 = -HUGE_VAL;
  for (int64_t i = 0; i + 1 < n; i += 2) {
    if (t[i] > m0)
      m0 = t[i];
    if (t[i + 1] > m1)
      m1 = t[i + 1];
  }
  if (n % 2 && t[n - 1] > m0)
    m0 = t[n - 1];
  return fmax(m0, m1);
}

/* The lowest index of the greatest number (strict >: ties keep the first). */
__attribute__((noinline)) static int64_t c_argmax(const double *t, int64_t n, double *max)
{
  double m = -HUGE_VAL;
  int64_t at = 0;
  for (int64_t i = 0; i < n; i++)
    if (t[i] > m)
      m = t[i], at = i;
  *max = m;
  return at;
}

/* numpy's rule: HI in the last bin; outside and NaN not counted. */
__attribute__((noinline)) static void c_hist(const double *t, int64_t n, double *h)
{
  const double scale = BINS / (HI - LO);
  for (int64_t i = 0; i < n; i++) {
    double b = floor((t[i] - LO) * scale);
    if (t[i] == HI)
      b = BINS - 1;
    if (b >= 0 && b < BINS)
      h[(int)b] += 1;
  }
}


/* One hand-written step of reduction r, the result on rank 0. */
static void hand(reduction r, const double *t, double *halo, result *out)
{
  const int64_t n = (int64_t)ROWS * COLS;
  double v;
  switch (r) {
  case SUM:
    v = c_sum(t, n);
    MPI_Reduce(&v, &out->v, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    break;
  case MIN:
    v = c_min(t, n);
    MPI_Reduce(&v, &out->v, 1, MPI_DOUBLE, MPI_MIN, 0, MPI_COMM_WORLD);
    break;
  case MAX:
    v = c_max(t, n);
    MPI_Reduce(&v, &out->v, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    break;
  case ARGMAX: {   /* MPI_MAXLOC: the lower index on ties, as the engine */
    struct { double v; int at; } p, g;
    p.at = (int)(c_argmax(t, n, &p.v) + (int64_t)bench_rank * n);
    MPI_Reduce(&p, &g, 1, MPI_DOUBLE_INT, MPI_MAXLOC, 0, MPI_COMM_WORLD);
    out->v = g.at;
    break;
  }
  case HIST: {
    double h[BINS] = { 0 };
    c_hist(t, n, h);
    MPI_Reduce(h, out->hist, BINS, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    break;
  }
  default: {   /* W1: the halo row from the rank below, then one pass */
    int up = bench_rank > 0 ? bench_rank - 1 : MPI_PROC_NULL;
    int down = bench_rank + 1 < bench_size ? bench_rank + 1 : MPI_PROC_NULL;
    MPI_Sendrecv(t + (int64_t)(ROWS - 1) * COLS, COLS, MPI_DOUBLE, down, 7, halo, COLS, MPI_DOUBLE, up, 7,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    bench_w1_part p = bench_w1_local(t, bench_rank > 0 ? halo : NULL, ROWS, COLS, 1), g;
    MPI_Reduce(&p, &g, 1, bench_w1_type, bench_w1_op, 0, MPI_COMM_WORLD);
    out->v = g.sum / ((double)n * bench_size);
    out->max = g.max;
    out->dstd = sqrt(g.m2 / g.n);
    break;
  }
  }
}

/* bench_check, but NaN equals NaN (sum and mean propagate it) and values
 * below 1 in magnitude compare to 1e-9 absolute: a std of rounding noise
 * (rising data's differences are constant) is no wrong answer. */
static void check(const char *red, int p, const char *what, double engine, double c)
{
  if ((isnan(engine) && isnan(c)) || fabs(engine - c) <= 1e-9 * fmax(fabs(c), 1))
    return;
  char label[96];
  snprintf(label, sizeof label, "patterns %s on %s: %s", red, pat_name[p], what);
  bench_check(label, engine, c);   /* fails too, loudly: its test is stricter */
}

typedef struct { luisa *lz; int64_t step; } context;

static void engine_step(context *cx, const double *t)
{
  luisa_publish(cx->lz, "T", 0, t);
  bench_step(cx->lz, ++cx->step);
}

static void run(const char *script, reduction r, double *const data[NPAT], double *halo)
{
  /* One context per pattern, each its own LuaJIT state (its own traces),
   * as in a simulation whose data looks like that. */
  setenv("LUISA_BENCH_REDUCTION", red_env[r], 1);
  context cx[NPAT];
  result res[NPAT];
  int64_t shape[2] = { (int64_t)bench_size * ROWS, COLS };
  int64_t offset[2] = { (int64_t)bench_rank * ROWS, 0 }, block[2] = { ROWS, COLS };
  for (int p = 0; p < NPAT; p++) {
    cx[p].lz = bench_open(script);
    cx[p].step = 0;
    luisa_array(cx[p].lz, "T", LUISA_F64, 2, shape);
    luisa_chunk(cx[p].lz, "T", offset, block, NULL);
    for (int w = 0; w < 3; w++) {   /* warm-up: the first step compiles the plan */
      engine_step(&cx[p], data[p]);
      hand(r, data[p], halo, &res[p]);
    }
  }
  /* Interleaved, pattern after pattern: drift hits all alike. */
  double te[NPAT][REPS], tc[NPAT][REPS];
  for (int k = 0; k < REPS; k++)
    for (int p = 0; p < NPAT; p++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = bench_now();
      hand(r, data[p], halo, &res[p]);
      tc[p][k] = bench_slowest(bench_now() - t0);
      MPI_Barrier(MPI_COMM_WORLD);
      t0 = bench_now();
      engine_step(&cx[p], data[p]);
      te[p][k] = bench_slowest(bench_now() - t0);
    }

  /* The checks: one more step each, untimed (all write bench_out). */
  const char *red = red_label[r];
  for (int p = 0; p < NPAT; p++) {
    memset(bench_out, 0, sizeof bench_out);
    engine_step(&cx[p], data[p]);
    hand(r, data[p], halo, &res[p]);
    check(red, p, "step delivered", bench_out[1], (double)cx[p].step);
    if (r == ARGMAX)
      check(red, p, "linear index", bench_out[0] * COLS + bench_out[4], res[p].v);
    else if (r == HIST) {
      check(red, p, "bins", bench_out[0], BINS);
      for (int b = 0; b < BINS; b++)
        if (bench_hist[b] != res[p].hist[b]) {   /* the first wrong bin says it */
          char what[32];
          snprintf(what, sizeof what, "bin %d", b);
          check(red, p, what, bench_hist[b], res[p].hist[b]);
          break;
        }
    } else
      check(red, p, r == W1 ? "mean" : "value", bench_out[0], res[p].v);
    if (r == W1) {
      check(red, p, "max", bench_out[2], res[p].max);
      check(red, p, "diff(0) std", bench_out[3], res[p].dstd);
    }
  }

  double e0 = bench_min(te[0], REPS), c0 = bench_min(tc[0], REPS);
  for (int p = 0; p < NPAT; p++) {
    double e = bench_min(te[p], REPS), c = bench_min(tc[p], REPS);
    if (bench_rank == 0)
      printf("%-15s  %-16s  %4d%s  %9.1f  %9.1f  %8.2f  %13.2f  %8.2f\n", red, pat_name[p], bench_size,
             bench_size > sysconf(_SC_NPROCESSORS_ONLN) ? "*" : " ", e * 1e6, c * 1e6, e / c, e / e0, c / c0);
  }
  fflush(stdout);
  for (int p = 0; p < NPAT; p++)
    luisa_finalize(cx[p].lz);
}

int main(int argc, char **argv)
{
  bench_init(&argc, &argv);
  if (argc < 2) {
    fprintf(stderr, "usage: patterns SCRIPT [--header]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  if (argc > 2 && !strcmp(argv[2], "--header") && bench_rank == 0)
    printf("%-15s  %-16s  %5s  %9s  %9s  %8s  %13s  %8s\n%-15s  %-16s  %5s  %9s  %9s  %8s  %13s  %8s\n",
           "reduction", "pattern", "ranks", "engine", "C", "engine/C", "engine/random", "C/random",
           "", "", "", "us/step", "us/step", "", "(target <=1.1)", "");
  bench_w1_begin();
  const int64_t n = (int64_t)ROWS * COLS;
  double *data[NPAT], *halo = malloc(COLS * sizeof *halo);
  for (int p = 0; p < NPAT; p++) {
    data[p] = malloc((size_t)n * sizeof *data[p]);
    if (!data[p])
      MPI_Abort(MPI_COMM_WORLD, 2);
    fill(data[p], p);   /* also faults every page in */
  }
  if (!halo)
    MPI_Abort(MPI_COMM_WORLD, 2);
  for (reduction r = SUM; r < NRED; r++)
    run(argv[1], r, data, halo);
  for (int p = 0; p < NPAT; p++)
    free(data[p]);
  free(halo);
  bench_w1_end();
  return bench_finish();
}
