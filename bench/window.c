/* window.c: benchmark 5, memory held by a window of 3 versions of an NxN
 * float64 chunk per rank over many steps: rank 0's store figures, flat or not.
 * usage: window SCRIPT N STEPS */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "bench.h"

/* Resident set of this process in MiB, from /proc (0 if unreadable). */
static double rss_mib(void)
{
  long pages[2] = { 0, 0 };
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages[0], &pages[1]) != 2)
      pages[1] = 0;
    fclose(f);
  }
  return (double)pages[1] * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

/* A seed per (step, rank), scrambled: bench_fill's LCG states from seeds in
 * arithmetic progression are linear in the seed, so W0 - 2 W1 + W2 would
 * cancel to a constant. splitmix64's finalizer breaks that. */
static uint64_t seed_of(int64_t step)
{
  uint64_t z = (uint64_t)(step * bench_size + bench_rank) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* max |a - 2b + c| over the ranks: what the script's window computes. */
static double reference(const double *a, const double *b, const double *c, int64_t n)
{
  double m = 0, g = 0;
  for (int64_t i = 0; i < n; i++)
    m = fmax(m, fabs(a[i] - 2 * b[i] + c[i]));
  MPI_Reduce(&m, &g, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  return g;
}

static int reported(int64_t s, int64_t steps)
{
  return s == 1 || s == 2 || s == 3 || s == 10 || s == 100 || s == 500 || s == steps;
}

int main(int argc, char **argv)
{
  bench_init(&argc, &argv);
  if (argc < 4) {
    fprintf(stderr, "usage: window SCRIPT N STEPS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const int64_t N = atoll(argv[2]), steps = atoll(argv[3]), n = N * N;
  /* The simulation's own last three states, to check the engine's answer. */
  double *ring[3];
  for (int b = 0; b < 3; b++)
    if (!(ring[b] = malloc((size_t)n * sizeof *ring[b])))
      MPI_Abort(MPI_COMM_WORLD, 2);

  luisa *lz = bench_open(argv[1]);
  int64_t shape[2] = { (int64_t)bench_size * N, N };
  int64_t offset[2] = { (int64_t)bench_rank * N, 0 }, block[2] = { N, N };
  luisa_array(lz, "T", LUISA_F64, 2, shape);
  luisa_chunk(lz, "T", offset, block, NULL);

  if (bench_rank == 0)
    printf("%5s  %13s  %10s  %21s  %14s  %12s\n", "step", "store objects", "bytes_held",
           "(W0-2W1+W2) abs max", "rank 0 RSS MiB", "Lua heap KiB");
  double steady_obj = -1, steady_bytes = -1;
  int64_t changed = 0;   /* steps after the 3rd whose figures differ from the 3rd's */
  for (int64_t s = 1; s <= steps; s++) {
    double *t = ring[s % 3];
    bench_fill(t, n, seed_of(s));   /* new data every step */
    luisa_publish(lz, "T", 0, t);
    bench_step(lz, s);
    double objects = bench_out[1], bytes = bench_out[2];
    if (s == 3)
      steady_obj = objects, steady_bytes = bytes;
    else if (s > 3 && (objects != steady_obj || bytes != steady_bytes))
      changed++;
    if (!reported(s, steps))
      continue;
    if (s >= 3)   /* collective: every rank reaches the same reported steps */
      bench_check("window (W0-2W1+W2):abs():max()", bench_out[0],
                  reference(t, ring[(s - 1) % 3], ring[(s - 2) % 3], n));
    else if (bench_rank == 0 && !isnan(bench_out[0]))
      bench_check("window result pending before step 3 (NaN)", bench_out[0], NAN);
    bench_check("window step delivered", bench_out[3], (double)s);
    if (bench_rank == 0) {
      char result[32];
      snprintf(result, sizeof result, isnan(bench_out[0]) ? "pending" : "%.6f", bench_out[0]);
      printf("%5lld  %13.0f  %10.0f  %21s  %14.1f  %12.0f\n", (long long)s, objects, bytes, result,
             rss_mib(), bench_out[4]);
    }
  }
  if (bench_rank == 0) {
    double version = (double)n * sizeof(double);
    int flat = changed == 0 && steady_obj == 2 && steady_bytes == 2 * version;
    printf("flat after step 3: %s (steps 4 to %lld: %lld with other figures than step 3's; "
           "expected 2 objects = 2 earlier versions x %.0f bytes)\n", flat ? "yes" : "NO",
           (long long)steps, (long long)changed, version);
    if (!flat) {   /* a leak, or versions kept beyond the window: as wrong as a wrong answer */
      printf("\n!!!!! WARNING: the store's figures are not flat after step 3\n\n");
      bench_wrong++;
    }
  }
  fflush(stdout);
  luisa_finalize(lz);
  for (int b = 0; b < 3; b++)
    free(ring[b]);
  return bench_finish();
}
