/* bench.h: what the benchmark programs share: clocks, minima over
 * repetitions, the loud result check and the outbox the scripts write to. */
#ifndef BENCH_H
#define BENCH_H

#include <stdint.h>
#include <mpi.h>
#include "luisa.h"

/* The script's callback (rank 0) stores its results here through the FFI;
 * the programs are linked with -rdynamic so LuaJIT's ffi.C finds it. */
extern double bench_out[8];

extern int bench_rank, bench_size;
extern int bench_wrong;          /* results that differed from C: the exit status */

void bench_init(int *argc, char ***argv);
int bench_finish(void);          /* MPI_Finalize; returns the exit status */

double bench_now(void);          /* seconds, monotonic */
double bench_min(const double *v, int n);      /* what we report: on a shared machine noise only adds */
double bench_median(const double *v, int n);   /* with the minimum, it tells how noisy a figure is */
double bench_slowest(double t);  /* max over the ranks of MPI_COMM_WORLD */

/* Deterministic values in [-1, 3), different on every rank, except v[0]
 * = 3.5: the maximum comes first, so the engine's max never changes after
 * the first element and LuaJIT records the kernel on its common path
 * (docs/benchmarks.md, "data-dependent kernels"). */
void bench_fill(double *v, int64_t n, uint64_t seed);

/* A smooth field rising along both axes, (row0 + i + j) / 1024 over a
 * rows x cols block starting at global row row0: the maximum changes on
 * every element of the first row, as in a field with a gradient. */
void bench_fill_ramp(double *v, int64_t rows, int64_t cols, int64_t row0);

/* Context on MPI_COMM_WORLD running `script`; exits loudly if it fails. */
luisa *bench_open(const char *script);
/* The same with other options (mode, max_lag, ...); trusted is set. */
luisa *bench_open_with(luisa_options opts);

/* The hand-written local loop of benchmarks 2 and 3: adds the block's
 * elements to *sum in order and raises *max (NaN skipped). Tuned: two max
 * accumulators, because gcc -O2 turns `if (x > m) m = x` into a chain of
 * maxsd whose latency would halve the speed of the plain loop. */
void bench_sum_max(const double *t, int64_t n, double *sum, double *max);
/* The MPI user operation over (sum, max) pairs of doubles, for the
 * hand-written single reduction of benchmarks 2 and 3. */
void bench_sum_max_combine(void *in, void *inout, int *len, MPI_Datatype *type);
/* The plain loop, for reference (benchmark 2 prints it too). */
void bench_sum_max_plain(const double *t, int64_t n, double *sum, double *max);

/* luisa_step that must succeed: a failed callback would make us time
 * nothing, so any other status is a loud warning and counts as wrong. */
void bench_step(luisa *lz, int64_t step);

/* On rank 0: 0 if engine and c agree to 1e-9 relative, else a loud
 * warning naming `what` and 1 (also added to bench_wrong). */
int bench_check(const char *what, double engine, double c);

/* W1 by hand (w1part.c), benchmarks 4 and 10. A rank's part: sum and max of
 * T; count, mean and M2 of its differences row - row above. */
typedef struct { double sum, max, n, mean, m2; } bench_w1_part;
extern MPI_Op bench_w1_op;            /* combines parts (bench_w1_begin makes it) */
extern MPI_Datatype bench_w1_type;    /* one part: MPI counts parts, not doubles */
void bench_w1_begin(void);
void bench_w1_end(void);
/* The part of rows x cols C-order doubles; halo: the row above row 0 (NULL
 * on the first rank). One fused pass, as the engine makes, or two (sum and
 * max, then the differences); sums in order, differences as d - k, k the
 * first one, so the sum of squares does not cancel. */
bench_w1_part bench_w1_local(const double *t, const double *halo, int64_t rows, int64_t cols, int fused);

#endif
