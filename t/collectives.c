/* collectives.c: what a step costs in MPI collectives, counted by
 * interposing on MPI (these definitions take the place of Open MPI's for
 * libluisa, and call PMPI). A script that neither steers nor fetches makes
 * one all-reduce per step for all its callbacks and fields, and the other
 * ranks do not wait for the root's callbacks; one that steers waits at
 * once. Prints TAP on rank 0.
 * usage: collectives plain|steers|sneaks|overlap SCRIPT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "luisa.h"
#include "tap.h"

enum { KINDS = 8, N = 16, STEPS = 8, SLOW_STEP = 5 };
static const char *const kind_names[KINDS] = { "MPI_Iallreduce", "MPI_Allreduce", "MPI_Ireduce", "MPI_Reduce",
                                               "MPI_Ibcast",     "MPI_Bcast",     "MPI_Allgather", "MPI_Barrier" };
static long counts[KINDS];   /* on communicators other than MPI_COMM_WORLD: the engine's */

static void count(int kind, MPI_Comm comm)
{
  int same;
  PMPI_Comm_compare(comm, MPI_COMM_WORLD, &same);
  if (same != MPI_IDENT)
    counts[kind]++;
}

int MPI_Iallreduce(const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, MPI_Comm c, MPI_Request *q)
{
  count(0, c);
  return PMPI_Iallreduce(s, r, n, t, op, c, q);
}
int MPI_Allreduce(const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, MPI_Comm c)
{
  count(1, c);
  return PMPI_Allreduce(s, r, n, t, op, c);
}
int MPI_Ireduce(const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, int root, MPI_Comm c, MPI_Request *q)
{
  count(2, c);
  return PMPI_Ireduce(s, r, n, t, op, root, c, q);
}
int MPI_Reduce(const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, int root, MPI_Comm c)
{
  count(3, c);
  return PMPI_Reduce(s, r, n, t, op, root, c);
}
int MPI_Ibcast(void *b, int n, MPI_Datatype t, int root, MPI_Comm c, MPI_Request *q)
{
  count(4, c);
  return PMPI_Ibcast(b, n, t, root, c, q);
}
int MPI_Bcast(void *b, int n, MPI_Datatype t, int root, MPI_Comm c)
{
  count(5, c);
  return PMPI_Bcast(b, n, t, root, c);
}
int MPI_Allgather(const void *s, int sn, MPI_Datatype st, void *r, int rn, MPI_Datatype rt, MPI_Comm c)
{
  count(6, c);
  return PMPI_Allgather(s, sn, st, r, rn, rt, c);
}
int MPI_Barrier(MPI_Comm c)
{
  count(7, c);
  return PMPI_Barrier(c);
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int all_true(int c)
{
  int all;
  PMPI_Allreduce(&c, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return all;
}

static double slowest(double v)
{
  double most;
  PMPI_Allreduce(&v, &most, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return most;
}

/* The slowest non-root rank's time in luisa_step(step) (0 on one rank). */
static double others(double v, int rank)
{
  return slowest(rank == 0 ? 0 : v);
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  if (argc != 3) {
    fprintf(stderr, "usage: collectives plain|steers|sneaks|overlap SCRIPT\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const char *mode = argv[1];
  luisa *lz;
  luisa_options o = luisa_options_default();
  o.script = argv[2];
  int status = luisa_init(MPI_COMM_WORLD, &o, &lz);
  double dt = 0.5;
  luisa_param_f64(lz, "dt", &dt, 0, 1, NULL);
  /* overlap: rank 0 holds the last slab, so that it is the one receiving a halo row */
  int slab = !strcmp(mode, "overlap") ? size - 1 - rank : rank;
  int64_t shape[2] = { N, N }, lo = N * slab / size, hi = N * (slab + 1) / size;
  int64_t off[2] = { lo, 0 }, len[2] = { hi - lo, N };
  double *a = malloc(sizeof *a * N * N);
  for (int i = 0; i < N * N; i++)
    a[i] = (double)(i % 7) - 3.0 * (i % 3);
  luisa_array(lz, "T", LUISA_F64, 2, shape);
  if (hi > lo)
    luisa_chunk(lz, "T", off, len, NULL);
  int statuses[STEPS + 1];
  long per_step[STEPS + 1][KINDS];
  double took[STEPS + 1];
  for (int step = 1; step <= STEPS; step++) {
    if (hi > lo)
      luisa_publish(lz, "T", 0, a + lo * N);
    long before[KINDS];
    memcpy(before, counts, sizeof before);
    double start = now();
    statuses[step] = luisa_step(lz, step);
    took[step] = now() - start;
    for (int k = 0; k < KINDS; k++)
      per_step[step][k] = counts[k] - before[k];
  }
  ok(all_true(status == LUISA_OK), "%d ranks, %s: luisa_init", size, mode);

  /* From step 3 on (the first steps compile and check declarations). */
  int right = 1;
  char seen[256] = "";
  for (int step = 3; step <= STEPS; step++)
    for (int k = 0; k < KINDS; k++) {
      long want = k == 0 ? 2 : k == 4 ? 1 : 0;   /* the reductions and the reload watch; the root's word */
      if (step == SLOW_STEP + 1 && !strcmp(mode, "sneaks") && k == 5)
        want = 2;   /* the failure's message is told to every rank: its length, then its text */
      if (per_step[step][k] != want && right) {
        right = 0;
        snprintf(seen, sizeof seen, "rank %d step %d: %ld calls to %s, expected %ld", rank, step, per_step[step][k],
                 kind_names[k], want);
      }
    }
  int all = all_true(right);
  ok(all, "%d ranks, %s: each step makes one MPI_Iallreduce for all its callbacks%s, one for the reload watch, "
     "and one MPI_Ibcast of the root's word, nothing else", size, mode,
     strcmp(mode, "overlap") ? " (three, a gather among them)" : "");
  if (!right)
    fprintf(stderr, "# %s\n", seen);

  /* The root's callback spins 0.3 s at step SLOW_STEP. */
  double waited = others(took[SLOW_STEP], rank), next = others(took[SLOW_STEP + 1], rank);
  if (!strcmp(mode, "steers")) {
    ok(size == 1 || waited > 0.25, "%d ranks, steers: the others wait for the root's slow callback in luisa_step(%d) "
       "(slowest %.3f s): its changes land at the next step", size, SLOW_STEP, waited);
  } else if (strcmp(mode, "overlap")) {
    ok(size == 1 || (waited < 0.15 && next > 0.15), "%d ranks, %s: the others return from luisa_step(%d) without "
       "waiting for the root's slow callback (slowest %.3f s) and take its word in luisa_step(%d) (%.3f s)", size,
       mode, SLOW_STEP, waited, SLOW_STEP + 1, next);
  }
  if (!strcmp(mode, "overlap")) {   /* its script spins nowhere */
    /* Rank 0's rows [lo, N): T:diff(0) at row i + 1 is T[i + 1] - T[i]
     * (luisa.passes puts it there): its first row reads the row below,
     * from the next rank down; the others read its own chunk. */
    int right_lines = 1, lines = 0;
    char note[256] = "";
    if (rank == 0) {
      FILE *f = fopen(getenv("LUISA_TEST_OUT"), "r");
      long long step, overlapped, waited;
      double sum;
      while (f && fscanf(f, "%lld %lf %lld %lld", &step, &sum, &overlapped, &waited) == 4) {
        double want = 0;
        for (int i = 0; i + 1 < N; i++)
          for (int j = 0; j < N; j++)
            want += a[(i + 1) * N + j] - a[i * N + j];
        long long inner = size > 1 ? step * (hi - lo - 1) * N : 0, rim = size > 1 ? step * N : 0;
        if ((sum != want || overlapped != inner || waited != rim) && right_lines) {
          right_lines = 0;
          snprintf(note, sizeof note, "step %lld: sum %.17g overlapped %lld waited %lld, expected %.17g, %lld, %lld",
                   step, sum, overlapped, waited, want, inner, rim);
        }
        lines++;
      }
      if (f)
        fclose(f);
    }
    ok(all_true(right_lines && (rank != 0 || lines == STEPS)), "%d ranks, overlap: %s, and the sum is exact at every "
       "step%s%s", size, size > 1 ? "rank 0 computes all its rows of differences but the first while its halo row "
       "is on its way, the first after" : "no transfer: nothing counted", note[0] ? ": " : "", note);
    int fine = 1;
    for (int step = 1; step <= STEPS; step++)
      fine &= statuses[step] == LUISA_OK;
    ok(all_true(fine), "%d ranks, overlap: every step returns LUISA_OK", size);
  } else if (!strcmp(mode, "sneaks")) {
    /* luisa.set by another name at step SLOW_STEP: refused; every rank hears at the next step. */
    int told = statuses[SLOW_STEP] == LUISA_OK && statuses[SLOW_STEP + 1] == LUISA_WARN_SCRIPT;
    const char *why = luisa_error(lz);
    told &= strstr(why, "luisa.set: the other ranks went on without waiting for this callback") != NULL &&
            strstr(why, "sneaks.lua:") != NULL;
    for (int step = 1; step <= STEPS; step++)
      told &= step == SLOW_STEP + 1 || statuses[step] == LUISA_OK;
    if (!all_true(told && dt == 0.5))
      fprintf(stderr, "# rank %d: statuses at %d, %d: %d, %d; dt %g; %s\n", rank, SLOW_STEP, SLOW_STEP + 1,
              statuses[SLOW_STEP], statuses[SLOW_STEP + 1], dt, why);
    ok(all_true(told && dt == 0.5), "%d ranks, sneaks: luisa.set under another name is refused, told on every "
       "rank by luisa_step(%d) naming the line, dt untouched", size, SLOW_STEP + 1);
  } else {
    int fine = 1;
    for (int step = 1; step <= STEPS; step++)
      fine &= statuses[step] == LUISA_OK;
    ok(all_true(fine), "%d ranks, %s: every step returns LUISA_OK", size, mode);
  }
  luisa_finalize(lz);
  free(a);
  MPI_Finalize();
  return tap_failed != 0;
}
