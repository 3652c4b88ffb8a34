/* common.c: helpers linked into every benchmark program (see bench.h):
 * clocks, minima and medians, rank-wide maxima, data, the loud checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench.h"

double bench_out[8];
int bench_rank, bench_size, bench_wrong;

void bench_init(int *argc, char ***argv)
{
  int provided;
  MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &bench_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &bench_size);
}

int bench_finish(void)
{
  MPI_Allreduce(MPI_IN_PLACE, &bench_wrong, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Finalize();
  return bench_wrong != 0;
}

double bench_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_double(const void *x, const void *y)
{
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

double bench_median(const double *v, int n)
{
  double *s = malloc((size_t)n * sizeof *s);
  if (!s)
    abort();
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, compare_double);
  double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  free(s);
  return m;
}

double bench_min(const double *v, int n)
{
  double m = v[0];
  for (int i = 1; i < n; i++)
    m = v[i] < m ? v[i] : m;
  return m;
}

double bench_slowest(double t)
{
  MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return t;
}

void bench_fill(double *v, int64_t n, uint64_t seed)
{
  uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (int64_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;   /* LCG: cheap, fixed */
    v[i] = (double)(x >> 11) * 0x1p-53 * 4.0 - 1.0;
  }
  if (n > 0)
    v[0] = 3.5;
}

void bench_fill_ramp(double *v, int64_t rows, int64_t cols, int64_t row0)
{
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++)
      v[i * cols + j] = (double)(row0 + i + j) / 1024.0;
}

void bench_sum_max(const double *t, int64_t n, double *sum, double *max)
{
  double s = *sum, m0 = *max, m1 = *max;   /* locals: kept in registers */
  int64_t i = 0;
  for (; i + 1 < n; i += 2) {
    s += t[i];
    s += t[i + 1];
    if (t[i] > m0)
      m0 = t[i];
    if (t[i + 1] > m1)
      m1 = t[i + 1];
  }
  for (; i < n; i++) {
    s += t[i];
    if (t[i] > m0)
      m0 = t[i];
  }
  *sum = s;
  *max = fmax(m0, m1);
}

void bench_sum_max_combine(void *in, void *inout, int *len, MPI_Datatype *type)
{
  (void)type;
  const double *a = in;
  double *b = inout;
  for (int i = 0; i < *len; i += 2) {
    b[i] += a[i];
    b[i + 1] = fmax(b[i + 1], a[i + 1]);
  }
}

void bench_sum_max_plain(const double *t, int64_t n, double *sum, double *max)
{
  double s = *sum, m = *max;
  for (int64_t i = 0; i < n; i++) {
    s += t[i];
    if (t[i] > m)
      m = t[i];
  }
  *sum = s;
  *max = m;
}

luisa *bench_open(const char *script)
{
  luisa_options opts = luisa_options_default();
  opts.script = script;
  return bench_open_with(opts);
}

luisa *bench_open_with(luisa_options opts)
{
  opts.trusted = 1;   /* the scripts hand their results back through ffi.C */
  luisa *lz = NULL;
  int st = luisa_init(MPI_COMM_WORLD, &opts, &lz);
  if (st != LUISA_OK) {
    if (bench_rank == 0)
      fprintf(stdout, "\n!!!!! BENCHMARK BROKEN: luisa_init(%s) returned %d: %s\n\n", opts.script, st,
              lz ? luisa_error(lz) : "");
    fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  return lz;
}

void bench_step(luisa *lz, int64_t step)
{
  static int told;   /* the first few failures say it all */
  int st = luisa_step(lz, step);
  if (st != LUISA_OK) {
    if (bench_rank == 0 && told++ < 3)
      fprintf(stdout, "\n!!!!! WARNING: luisa_step(%lld) returned %d (%s): %s\n"
              "!!!!! the figures below time a failed analysis\n\n", (long long)step, st,
              luisa_status_string(st), luisa_error(lz));
    fflush(stdout);
    bench_wrong++;
  }
}

int bench_check(const char *what, double engine, double c)
{
  if (bench_rank != 0 || fabs(engine - c) <= 1e-9 * fmax(fabs(c), 1e-300))
    return 0;
  fprintf(stdout, "\n!!!!! WARNING: WRONG ANSWER in %s: engine %.17g, C %.17g (relative %.3g)\n"
          "!!!!! its figures below are not a benchmark of a correct computation\n\n",
          what, engine, c, fabs(engine - c) / fmax(fabs(c), 1e-300));
  fflush(stdout);
  bench_wrong++;
  return 1;
}
