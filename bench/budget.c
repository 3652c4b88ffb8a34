/* budget.c: benchmark 6, what the time budget and the sandbox cost per
 * step. With a budget, script functions run interpreted (LuaJIT's hooks
 * never fire in compiled code) and each callback arms a watchdog; the
 * sandbox hands luisa.map bounds-checked arrays. The configuration comes
 * from the environment (LUISA_STEP_BUDGET, LUISA_TRUSTED), as for any run.
 * usage: budget SCRIPT N LABEL [--header]   (N float64 per rank) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

enum { BATCHES = 21, STEPS = 20 };

int main(int argc, char **argv)
{
  bench_init(&argc, &argv);
  if (argc < 4) {
    fprintf(stderr, "usage: budget SCRIPT N LABEL [--header]\n");
    return 2;
  }
  int64_t n = atoll(argv[2]);
  if (argc > 4 && !strcmp(argv[4], "--header") && bench_rank == 0)
    printf("   %-34s %10s %12s\n", "configuration", "N", "step (us)");
  double *t = malloc((size_t)n * sizeof *t), result = 0;
  bench_fill(t, n, 7);
  double want = 0;
  for (int64_t i = 0; i < n; i++)
    want += t[i];
  double total;
  MPI_Allreduce(&want, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  luisa *lz = bench_open(argv[1]);
  int64_t shape[1] = { n * bench_size }, off[1] = { n * bench_rank }, count[1] = { n };
  luisa_array(lz, "T", LUISA_F64, 1, shape);
  luisa_chunk(lz, "T", off, count, NULL);
  luisa_param_f64(lz, "result", &result, -1e300, 1e300, "what the script computed");
  double best[BATCHES];
  int64_t step = 0;
  for (int b = 0; b < BATCHES; b++) {
    double t0 = bench_now();
    for (int k = 0; k < STEPS; k++) {
      luisa_publish(lz, "T", 0, t);
      bench_step(lz, step++);
    }
    best[b] = bench_slowest((bench_now() - t0) / STEPS);
  }
  bench_check(argv[3], result, total);
  if (bench_rank == 0)
    printf("   %-34s %10lld %12.1f\n", argv[3], (long long)n, 1e6 * bench_min(best, BATCHES));
  luisa_finalize(lz);
  free(t);
  return bench_finish();
}
