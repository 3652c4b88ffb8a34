/* overhead.c: benchmark 2, the engine's fixed cost per step: global mean and
 * max of an NxN float64 block per rank, engine against hand-written MPI.
 * usage: overhead SCRIPT DATA N... [--header]   (one table row per N)
 *   DATA random: noise with the maximum first; ramp: a smooth rising field. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"

enum { BATCHES = 41 };

typedef struct { double sum, max; } partial;

static MPI_Op sum_max;   /* (sum, max) pairs, see bench_sum_max_combine() */

static partial local_stats(const double *t, int64_t n)
{
  partial p = { 0, -HUGE_VAL };
  bench_sum_max(t, n, &p.sum, &p.max);
  return p;
}

/* Hand-written, variant 1: two reductions with built-in operations. */
static partial hand_two(const double *t, int64_t n)
{
  partial p = local_stats(t, n), g;
  MPI_Reduce(&p.sum, &g.sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  MPI_Reduce(&p.max, &g.max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  return g;
}

/* Variant 2: one reduction of both with a user operation, as the engine does. */

static partial hand_one(const double *t, int64_t n)
{
  partial p = local_stats(t, n), g;
  MPI_Reduce(&p, &g, 2, MPI_DOUBLE, sum_max, 0, MPI_COMM_WORLD);
  return g;
}

/* Variant 3: every rank gets the results, as the engine's ranks all learn
 * the step's status: what a hand-written code that steers would pay. */
static partial hand_all(const double *t, int64_t n)
{
  partial p = local_stats(t, n), g;
  MPI_Allreduce(&p, &g, 2, MPI_DOUBLE, sum_max, MPI_COMM_WORLD);
  return g;
}

/* Variant 4, for reference: the plain loop and two reductions. */
static partial hand_plain(const double *t, int64_t n)
{
  partial p = { 0, -HUGE_VAL }, g;
  bench_sum_max_plain(t, n, &p.sum, &p.max);
  MPI_Reduce(&p.sum, &g.sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  MPI_Reduce(&p.max, &g.max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  return g;
}

/* What one timed step runs: the engine, or a hand-written variant. */
typedef enum { ENGINE, HAND_TWO, HAND_ONE, HAND_ALL, HAND_PLAIN } variant;

typedef struct bench_case {
  luisa *lz;
  const double *t;
  int64_t n, step;
  partial two, one, all, plain;   /* each variant's last results */
} bench_case;

/* Seconds per step over k steps of v, on the slowest rank. */
static double time_steps(bench_case *bc, variant v, int k)
{
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = bench_now();
  for (int s = 0; s < k; s++)
    switch (v) {
    case ENGINE:
      luisa_publish(bc->lz, "T", 0, bc->t);
      bench_step(bc->lz, ++bc->step);
      break;
    case HAND_TWO: bc->two = hand_two(bc->t, bc->n); break;
    case HAND_ONE: bc->one = hand_one(bc->t, bc->n); break;
    case HAND_ALL: bc->all = hand_all(bc->t, bc->n); break;
    case HAND_PLAIN: bc->plain = hand_plain(bc->t, bc->n); break;
    }
  return bench_slowest(bench_now() - t0) / k;
}

static void run(const char *script, const char *data, int64_t N)
{
  const int64_t n = N * N;
  double *t = malloc((size_t)n * sizeof *t);
  if (!t)
    MPI_Abort(MPI_COMM_WORLD, 2);
  if (!strcmp(data, "ramp"))
    bench_fill_ramp(t, N, N, (int64_t)bench_rank * N);
  else
    bench_fill(t, n, (uint64_t)bench_rank);

  luisa *lz = bench_open(script);
  int64_t shape[2] = { (int64_t)bench_size * N, N };
  int64_t offset[2] = { (int64_t)bench_rank * N, 0 }, block[2] = { N, N };
  luisa_array(lz, "T", LUISA_F64, 2, shape);
  luisa_chunk(lz, "T", offset, block, NULL);

  /* About 1 ms of work per batch, whatever the size: many short batches
   * give the minimum a chance to miss the neighbours' noise. */
  int k = (int)(500000 / n);
  k = k < 1 ? 1 : k > 1000 ? 1000 : k;
  bench_case bc = { lz, t, n, 0, { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 } };
  for (variant v = ENGINE; v <= HAND_PLAIN; v++)   /* warm-up; the first step compiles the plan */
    time_steps(&bc, v, 3);
  double te[BATCHES], t2[BATCHES], t1[BATCHES], ta[BATCHES], tp[BATCHES];
  for (int b = 0; b < BATCHES; b++) {   /* interleaved: drift hits all alike */
    te[b] = time_steps(&bc, ENGINE, k);
    t2[b] = time_steps(&bc, HAND_TWO, k);
    t1[b] = time_steps(&bc, HAND_ONE, k);
    ta[b] = time_steps(&bc, HAND_ALL, k);
    tp[b] = time_steps(&bc, HAND_PLAIN, k);
  }
  char what[64];
  double count = (double)n * bench_size;
  snprintf(what, sizeof what, "%lldx%lld mean", (long long)N, (long long)N);
  bench_check(what, bench_out[0], bc.two.sum / count);
  bench_check(what, bc.one.sum / count, bc.two.sum / count);
  bench_check(what, bc.plain.sum / count, bc.two.sum / count);
  bench_check(what, bc.all.sum / count, bc.two.sum / count);
  snprintf(what, sizeof what, "%lldx%lld max", (long long)N, (long long)N);
  bench_check(what, bench_out[1], bc.two.max);
  bench_check(what, bc.one.max, bc.two.max);
  bench_check(what, bc.plain.max, bc.two.max);
  bench_check(what, bc.all.max, bc.two.max);
  bench_check("overhead step delivered", bench_out[2], (double)bc.step);

  double e = bench_min(te, BATCHES) * 1e6, c2 = bench_min(t2, BATCHES) * 1e6;
  double c1 = bench_min(t1, BATCHES) * 1e6, cp = bench_min(tp, BATCHES) * 1e6;
  double ca = bench_min(ta, BATCHES) * 1e6;
  double best = fmin(fmin(c1, c2), cp);   /* the fastest that reduces to the root */
  char size[32];
  snprintf(size, sizeof size, "%lldx%lld", (long long)N, (long long)N);
  if (bench_rank == 0)
    printf("%-9s  %-6s %3d%s  %9.1f  %9.1f  %9.1f  %9.1f  %9.1f  %11.1f  %11.3f\n", size, data,
           bench_size, bench_size > sysconf(_SC_NPROCESSORS_ONLN) ? "*" : " ", e, c2, c1, cp, ca,
           e - best, e / best);
  fflush(stdout);
  luisa_finalize(lz);
  free(t);
}

int main(int argc, char **argv)
{
  bench_init(&argc, &argv);
  MPI_Op_create(bench_sum_max_combine, 1, &sum_max);
  if (argc < 4) {
    fprintf(stderr, "usage: overhead SCRIPT DATA N... [--header]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  if (!strcmp(argv[argc - 1], "--header")) {
    argc--;
    if (bench_rank == 0)
      printf("%-9s  %-6s %4s  %9s  %9s  %9s  %9s  %9s  %11s  %11s\n"
             "%-9s  %-6s %4s  %9s  %9s  %9s  %9s  %9s  %11s  %11s\n",
             "size/rank", "data", "rank", "engine", "tuned C", "tuned C", "plain C", "tuned C", "engine-hand",
             "engine/hand", "", "", "", "us/step", "2 Reduce", "1 Red+op", "2 Reduce", "Allreduce",
             "(fastest) us", "(fastest)");
  }
  for (int i = 3; i < argc; i++)
    run(argv[1], argv[2], atoll(argv[i]));
  MPI_Op_free(&sum_max);
  return bench_finish();
}
