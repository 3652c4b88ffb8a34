/* kernel.c: benchmark 1, kernel throughput: ((T - 1) * 2):abs():sum() over
 * 64 MiB of float64 per rank, engine against a plain C loop + MPI_Reduce
 * and against the limit: the same sum in 8 vectorised accumulators
 * (limit.c, -O3 -march=native), and a plain read of the data.
 * usage: kernel SCRIPT [--header]   (prints one row of the table) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "limit.h"

enum { ROWS = 1024, COLS = 8192, REPS = 31 };   /* 8 Mi doubles = 64 MiB per rank */

/* The hand-written equivalent, built with the project's flags (-O2).
 * noinline: the compiler must not merge repetitions. */
__attribute__((noinline)) static double c_kernel(const double *t, int64_t n)
{
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += fabs((t[i] - 1) * 2);
  return s;
}

int main(int argc, char **argv)
{
  bench_init(&argc, &argv);
  if (argc < 2) {
    fprintf(stderr, "usage: kernel SCRIPT [--header]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  if (argc > 2 && !strcmp(argv[2], "--header") && bench_rank == 0)
    printf("ranks  MiB/rank  engine GB/s  C -O2 GB/s  limit GB/s  read GB/s  engine/C  engine/limit (target >= 0.85)\n");
  const int64_t n = (int64_t)ROWS * COLS;
  double *t = malloc((size_t)n * sizeof *t);
  if (!t)
    MPI_Abort(MPI_COMM_WORLD, 2);
  bench_fill(t, n, (uint64_t)bench_rank);   /* also faults every page in */

  luisa *lz = bench_open(argv[1]);
  int64_t shape[2] = { (int64_t)bench_size * ROWS, COLS };
  int64_t offset[2] = { (int64_t)bench_rank * ROWS, 0 }, block[2] = { ROWS, COLS };
  luisa_array(lz, "T", LUISA_F64, 2, shape);
  luisa_chunk(lz, "T", offset, block, NULL);

  int64_t step = 0;
  double c_total = 0, local;
  for (int w = 0; w < 3; w++) {   /* warm-up: the first step compiles the plan */
    luisa_publish(lz, "T", 0, t);
    bench_step(lz, ++step);
    local = c_kernel(t, n);
    MPI_Reduce(&local, &c_total, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  }

  /* Alternate the two so that the machine's drift hits both alike. */
  double te[REPS], tc[REPS], tl[REPS], tr[REPS], limit_total = 0, read = 0;
  for (int r = 0; r < REPS; r++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t1 = bench_now();
    local = bench_limit_kernel(t, n);
    MPI_Reduce(&local, &limit_total, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    tl[r] = bench_slowest(bench_now() - t1);

    MPI_Barrier(MPI_COMM_WORLD);
    t1 = bench_now();
    read += bench_limit_read(t, n);
    tr[r] = bench_slowest(bench_now() - t1);

    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = bench_now();
    local = c_kernel(t, n);
    MPI_Reduce(&local, &c_total, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    tc[r] = bench_slowest(bench_now() - t0);

    MPI_Barrier(MPI_COMM_WORLD);
    t0 = bench_now();
    luisa_publish(lz, "T", 0, t);
    bench_step(lz, ++step);
    te[r] = bench_slowest(bench_now() - t0);
  }
  bench_check("kernel sum", bench_out[0], c_total);
  bench_check("kernel step delivered", bench_out[1], (double)step);
  bench_check("kernel limit's sum", limit_total, c_total);
  if (!(read > 0))
    bench_check("kernel read loop saw the data", read, 1);

  double e = bench_min(te, REPS), c = bench_min(tc, REPS), l = bench_min(tl, REPS), rd = bench_min(tr, REPS);
  double bytes = (double)bench_size * (double)n * sizeof *t;
  if (bench_rank == 0)
    printf("%5d  %8.0f  %11.2f  %10.2f  %10.2f  %9.2f  %8.3f  %12.3f\n", bench_size, (double)n * sizeof *t / 1048576.0,
           bytes / e / 1e9, bytes / c / 1e9, bytes / l / 1e9, bytes / rd / 1e9, c / e, l / e);
  luisa_finalize(lz);
  free(t);
  return bench_finish();
}
