/* w1.c: benchmark 4, the workload W1: global mean, max and std of the
 * axis-0 difference of NxN float64 row slabs, engine against hand-written MPI.
 * usage: w1 SCRIPT N... [--header]   (one table row per N) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"

enum { BATCHES = 61, NBUF = 3 };

/* The halo: my last row goes to the next rank, the previous rank's last row
 * comes here (the engine's owner-computes puts diff row i with row i + 1). */
static const double *exchange_halo(const double *t, double *halo, int64_t N)
{
  int up = bench_rank > 0 ? bench_rank - 1 : MPI_PROC_NULL;
  int down = bench_rank + 1 < bench_size ? bench_rank + 1 : MPI_PROC_NULL;
  MPI_Sendrecv(t + (N - 1) * N, (int)N, MPI_DOUBLE, down, 7, halo, (int)N, MPI_DOUBLE, up, 7,
               MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return bench_rank > 0 ? halo : NULL;
}

/* Hand-written step, result on rank 0 (all = 0) or on every rank. */
static bench_w1_part hand(const double *t, double *halo, int64_t N, int all, int fused)
{
  bench_w1_part p = bench_w1_local(t, exchange_halo(t, halo, N), N, N, fused), g;
  if (all)
    MPI_Allreduce(&p, &g, 1, bench_w1_type, bench_w1_op, MPI_COMM_WORLD);
  else
    MPI_Reduce(&p, &g, 1, bench_w1_type, bench_w1_op, 0, MPI_COMM_WORLD);
  return g;
}

/* An independent two-pass reference for the checks: the global mean of the
 * differences first, then the sum of squared deviations from it. */
static double reference_dstd(const double *t, double *halo, int64_t N)
{
  const double *h = exchange_halo(t, halo, N);
  double acc[2] = { 0, 0 }, mean = 0, m2 = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (int64_t i = h ? 0 : 1; i < N; i++) {
      const double *row = t + i * N, *up = i ? row - N : h;
      for (int64_t j = 0; j < N; j++) {
        double d = row[j] - up[j];
        if (pass == 0)
          acc[0] += d, acc[1] += 1;
        else
          m2 += (d - mean) * (d - mean);
      }
    }
    if (pass == 0) {
      MPI_Allreduce(MPI_IN_PLACE, acc, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      mean = acc[0] / acc[1];
    }
  }
  MPI_Allreduce(MPI_IN_PLACE, &m2, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return sqrt(m2 / acc[1]);
}

typedef enum { ENGINE, HAND_REDUCE, HAND_ALL, HAND_TWO_PASS } variant;

typedef struct bench_case {
  luisa *lz;
  double *buf[NBUF], *halo;
  int64_t N, step;
  int64_t calls[4];         /* per variant: which buffer comes next */
  bench_w1_part reduce, all, two; /* the hand-written variants' last results */
} bench_case;

/* Each step reads the next of NBUF buffers of different data: no step's
 * input equals the one before, as in a simulation. */
static const double *next_buffer(bench_case *bc, variant v)
{
  return bc->buf[bc->calls[v]++ % NBUF];
}

/* Seconds per step over k steps of v, on the slowest rank. */
static double time_steps(bench_case *bc, variant v, int k)
{
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = bench_now();
  for (int s = 0; s < k; s++) {
    const double *t = next_buffer(bc, v);
    switch (v) {
    case ENGINE:
      luisa_publish(bc->lz, "T", 0, t);
      bench_step(bc->lz, ++bc->step);
      break;
    case HAND_REDUCE: bc->reduce = hand(t, bc->halo, bc->N, 0, 1); break;
    case HAND_ALL: bc->all = hand(t, bc->halo, bc->N, 1, 1); break;
    case HAND_TWO_PASS: bc->two = hand(t, bc->halo, bc->N, 0, 0); break;
    }
  }
  return bench_slowest(bench_now() - t0) / k;
}

static void run(const char *script, int64_t N)
{
  const int64_t n = N * N;
  bench_case bc = { .N = N };
  bc.halo = malloc((size_t)N * sizeof *bc.halo);
  for (int b = 0; b < NBUF; b++) {
    bc.buf[b] = malloc((size_t)n * sizeof *bc.buf[b]);
    if (!bc.buf[b])
      MPI_Abort(MPI_COMM_WORLD, 2);
    bench_fill(bc.buf[b], n, (uint64_t)(bench_rank * NBUF + b));
    if (n > 1)   /* the maximum still first, but a new one every step */
      bc.buf[b][0] = 3.5 + 0.25 * b + 0.01 * bench_rank;
    else         /* one element per rank: unrelated values, else diff's std is 0 plus rounding */
      bc.buf[b][0] = 2 * sin(bench_rank * NBUF + b + 1.0);
  }
  if (!bc.halo)
    MPI_Abort(MPI_COMM_WORLD, 2);

  bc.lz = bench_open(script);
  int64_t shape[2] = { (int64_t)bench_size * N, N };
  int64_t offset[2] = { (int64_t)bench_rank * N, 0 }, block[2] = { N, N };   /* row slabs */
  luisa_array(bc.lz, "T", LUISA_F64, 2, shape);
  luisa_chunk(bc.lz, "T", offset, block, NULL);

  /* About 1 ms of local work per batch (see overhead.c). */
  int k = (int)(500000 / n);
  k = k < 1 ? 1 : k > 1000 ? 1000 : k;
  for (variant v = ENGINE; v <= HAND_TWO_PASS; v++)   /* warm-up; the first step compiles the plan */
    time_steps(&bc, v, 3);
  double te[BATCHES], tr[BATCHES], ta[BATCHES], t2[BATCHES];
  for (int b = 0; b < BATCHES; b++) {   /* interleaved: drift hits all alike */
    te[b] = time_steps(&bc, ENGINE, k);
    tr[b] = time_steps(&bc, HAND_REDUCE, k);
    ta[b] = time_steps(&bc, HAND_ALL, k);
    t2[b] = time_steps(&bc, HAND_TWO_PASS, k);
  }

  /* The checks: one more step of each on the same buffer, untimed. */
  for (variant v = ENGINE; v <= HAND_TWO_PASS; v++)
    bc.calls[v] = 0;
  for (variant v = ENGINE; v <= HAND_TWO_PASS; v++)
    time_steps(&bc, v, 1);
  double count = (double)n * bench_size, dcount = (double)(bench_size * N - 1) * (double)N;
  double dstd = reference_dstd(bc.buf[0], bc.halo, N);
  char what[64];
  snprintf(what, sizeof what, "W1 %lldx%lld mean", (long long)N, (long long)N);
  bench_check(what, bench_out[0], bc.reduce.sum / count);
  bench_check(what, bc.all.sum / count, bc.reduce.sum / count);
  bench_check(what, bc.two.sum / count, bc.reduce.sum / count);
  snprintf(what, sizeof what, "W1 %lldx%lld max", (long long)N, (long long)N);
  bench_check(what, bench_out[1], bc.reduce.max);
  bench_check(what, bc.all.max, bc.reduce.max);
  bench_check(what, bc.two.max, bc.reduce.max);
  if (n > 1)
    bench_check(what, bc.reduce.max, 3.5 + 0.01 * (bench_size - 1));   /* buffer 0's */
  snprintf(what, sizeof what, "W1 %lldx%lld diff(0) std", (long long)N, (long long)N);
  bench_check(what, bench_out[2], sqrt(bc.reduce.m2 / bc.reduce.n));
  bench_check(what, sqrt(bc.all.m2 / bc.all.n), sqrt(bc.reduce.m2 / bc.reduce.n));
  bench_check(what, sqrt(bc.two.m2 / bc.two.n), sqrt(bc.reduce.m2 / bc.reduce.n));
  bench_check(what, sqrt(bc.reduce.m2 / bc.reduce.n), dstd);   /* hand-written against two passes */
  bench_check("W1 diff(0) count", bc.reduce.n, dcount);
  bench_check("W1 step delivered", bench_out[3], (double)bc.step);

  double e = bench_min(te, BATCHES) * 1e6, cr = bench_min(tr, BATCHES) * 1e6;
  double ca = bench_min(ta, BATCHES) * 1e6, best = fmin(cr, ca);   /* the fused ones */
  double c2 = bench_min(t2, BATCHES) * 1e6;
  char size[32];
  snprintf(size, sizeof size, "%lldx%lld", (long long)N, (long long)N);
  if (bench_rank == 0)
    printf("%-9s  %4d%s  %9.1f  %9.1f  %9.1f  %11.1f  %11.3f  %9.1f  %9.3f  %9.1f\n", size,
           bench_size, bench_size > sysconf(_SC_NPROCESSORS_ONLN) ? "*" : " ", e, cr, ca, e - best,
           e / best, c2, e / c2, (bench_median(te, BATCHES) - bench_min(te, BATCHES)) * 1e6);
  fflush(stdout);
  luisa_finalize(bc.lz);
  for (int b = 0; b < NBUF; b++)
    free(bc.buf[b]);
  free(bc.halo);
}

int main(int argc, char **argv)
{
  bench_init(&argc, &argv);
  bench_w1_begin();
  if (argc > 1 && !strcmp(argv[argc - 1], "--header")) {
    argc--;
    if (bench_rank == 0)
      printf("%-9s  %5s  %9s  %9s  %9s  %11s  %11s  %9s  %9s  %9s\n"
             "%-9s  %5s  %9s  %9s  %9s  %11s  %11s  %9s  %9s  %9s\n",
             "size/rank", "ranks", "engine", "hand 1", "hand 1", "engine-hand", "engine/hand", "hand 2",
             "engine/", "engine", "", "", "us/step", "pass Red", "pass Allr", "(fastest) us", "(fastest)",
             "pass Red", "hand 2", "spread us");
  }
  if (argc < 3) {
    fprintf(stderr, "usage: w1 SCRIPT N... [--header]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  for (int i = 2; i < argc; i++)
    run(argv[1], atoll(argv[i]));
  bench_w1_end();
  return bench_finish();
}
