/* memory.c: benchmark 9, the memory the engine holds under an analysis
 * slower than the simulation (bench/memory.lua: a window of 2 steps, 20 ms
 * a step), in thread mode at max_lag 4: without a budget the copies of
 * every step in flight pile up to max_lag + 2 pooled ones; with
 * opts.store_bytes the simulation waits and the peak stays at the budget;
 * with a spill directory as well, older versions go to disk. The loop is
 * timed against the same loop without luisa, in the same run.
 * usage: memory N STEPS SPILL_DIR [--header]   (NxN float64, 1 rank) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

/* Some work per step (a few ms): a 5-point smoothing of u into v. */
static void work(const double *u, double *v, int n)
{
  for (int r = 0; r < 8; r++)
    for (int i = 1; i < n - 1; i++)
      for (int j = 1; j < n - 1; j++)
        v[i * n + j] = 0.2 * (u[i * n + j] + u[(i - 1) * n + j] + u[(i + 1) * n + j] + u[i * n + j - 1] +
                              u[i * n + j + 1]);
}

static double loop(luisa *lz, double *u, double *v, int n, int steps)
{
  double t0 = bench_now();
  for (int s = 1; s <= steps; s++) {
    work(u, v, n);
    double *t = u;
    u = v, v = t;
    if (lz) {
      luisa_publish(lz, "T", 0, u);
      bench_step(lz, s);
    }
  }
  return bench_now() - t0;
}

/* What the script's last callback computes, sum(T - T:prev(2)) at the
 * last step, from the same start by C alone. */
static double expected_d(int n, int steps)
{
  const size_t cells = (size_t)n * n;
  double *u = calloc(cells, sizeof *u), *v = calloc(cells, sizeof *v), *past = calloc(cells, sizeof *past);
  bench_fill(u, (int64_t)cells, 3);
  for (int s = 1; s <= steps; s++) {
    if (s == steps - 1)   /* u holds step steps - 2 */
      memcpy(past, u, cells * sizeof *u);
    work(u, v, n);
    double *t = u;
    u = v, v = t;
  }
  double d = 0;
  for (size_t i = 0; i < cells; i++)
    d += u[i] - past[i];
  free(u), free(v), free(past);
  return d;
}

static void row(const char *what, int n, int steps, int64_t budget, const char *spill, double none)
{
  double *u = calloc((size_t)n * n, sizeof *u), *v = calloc((size_t)n * n, sizeof *v);
  bench_fill(u, (int64_t)n * n, 3);
  memset(bench_out, 0, sizeof bench_out);
  luisa_options o = luisa_options_default();
  o.script = "bench/memory.lua";
  o.mode = LUISA_MODE_THREAD;
  o.max_lag = 4;
  o.store_bytes = budget;
  o.spill_dir = spill;
  luisa *lz = bench_open_with(o);
  int64_t shape[2] = { n, n }, zero[2] = { 0, 0 };
  luisa_array(lz, "T", LUISA_F64, 2, shape);
  luisa_chunk(lz, "T", zero, shape, NULL);
  double t = loop(lz, u, v, n, steps);
  luisa_finalize(lz);   /* the last steps analysed: bench_out complete */
  double mib = 1.0 / (1 << 20);
  char limit[32] = "none";
  if (budget)
    snprintf(limit, sizeof limit, "%.2f", (double)budget * mib);
  printf("   %-28s %9s %10.2f %10.2f %8.0f %8.0f %8.0f %9.3f %6.2f\n", what, limit, bench_out[0] * mib,
         bench_out[1] * mib, bench_out[2], bench_out[3], bench_out[4], t, t / none);
  if (bench_out[4] != steps)
    printf("!!!!! WARNING: %.0f of %d steps analysed\n", bench_out[4], steps), bench_wrong++;
  bench_check(what, bench_out[5], expected_d(n, steps));
  free(u);
  free(v);
}

int main(int argc, char **argv)
{
  bench_init(&argc, &argv);
  if (argc < 4 || bench_size != 1) {
    fprintf(stderr, "usage: memory N STEPS SPILL_DIR [--header], on 1 rank\n");
    return 2;
  }
  int n = atoi(argv[1]), steps = atoi(argv[2]);
  const char *spill = argv[3];
  if (argc > 4 && !strcmp(argv[4], "--header"))
    printf("   %-28s %9s %10s %10s %8s %8s %8s %9s %6s\n", "configuration", "budget", "held MiB", "peak MiB",
           "waits", "spilled", "steps", "loop (s)", "/none");
  double *u = calloc((size_t)n * n, sizeof *u), *v = calloc((size_t)n * n, sizeof *v);
  bench_fill(u, (int64_t)n * n, 3);
  double none = loop(NULL, u, v, n, steps);
  printf("   %-28s %9s %10s %10s %8s %8s %8s %9.3f %6.2f\n", "no analytics", "-", "-", "-", "-", "-", "-", none, 1.0);
  free(u);
  free(v);
  int64_t field = (int64_t)n * n * 8, windows = 2 * field;
  row("thread, no budget", n, steps, 0, NULL, none);
  row("budget: windows + 2 copies", n, steps, windows + 2 * field, NULL, none);
  row("budget: windows + 1 copy", n, steps, windows + field, NULL, none);
  row("budget: windows alone", n, steps, windows, NULL, none);
  row("spill: 1 version + 1 copy", n, steps, field + (field + field / 128 + 1024) + field, spill, none);
  return bench_finish();
}
