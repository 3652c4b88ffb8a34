/* wants.c: luisa_wants follows the plan: periods, the chunks a slice reads,
 * windows; publishing only what is wanted keeps every result exact.
 * Prints TAP on rank 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luisa.h"
#include "tap.h"

enum { N = 12, BLOCK = 3, STEPS = 12 };   /* 4 blocks of 3, block k on rank k % size */

static int all_true(int c)
{
  int all;
  MPI_Allreduce(&c, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return all;
}

/* A period changed by a script at step 8: B, read by that callback, is
 * wanted every 4 steps, then every 2; the callback runs exactly then. */
static int period_change(int rank, int size)
{
  luisa *lz;
  luisa_options o = luisa_options_default();
  o.script = "t/data/period_change.lua";
  luisa_init(MPI_COMM_WORLD, &o, &lz);
  int64_t shape[1] = { N }, lo = N * rank / size, hi = N * (rank + 1) / size;
  int64_t off[1] = { lo }, len[1] = { hi - lo };
  double a[N];
  for (int i = 0; i < N; i++)
    a[i] = i;
  luisa_array(lz, "A", LUISA_F64, 1, shape);
  luisa_array(lz, "B", LUISA_F64, 1, shape);
  if (hi > lo) {
    luisa_chunk(lz, "A", off, len, NULL);
    luisa_chunk(lz, "B", off, len, NULL);
  }
  int right = 1, statuses = 1;
  for (int step = 1; step <= 14; step++) {
    int wanted = 1, expect = step <= 8 ? step % 4 == 0 : step % 2 == 0;
    if (hi > lo && step > 1) {
      luisa_wants(lz, "B", -1, step, &wanted);
      right &= wanted == expect;
    }
    if (hi > lo) {
      luisa_publish(lz, "A", 0, a);
      if (wanted)
        luisa_publish(lz, "B", 0, a);
    }
    statuses &= luisa_step(lz, step) == LUISA_OK;
  }
  ok(all_true(right), "after luisa.period(slow, 2) at step 8, B is wanted every 2 steps instead of 4");
  ok(all_true(statuses), "publishing B only then, every step returns LUISA_OK");
  luisa_finalize(lz);
  if (rank == 0) {
    FILE *f = fopen(getenv("LUISA_TEST_OUT"), "r");
    char line[64], got[256] = "";
    while (f && fgets(line, sizeof line, f))
      strncat(got, line, sizeof got - strlen(got) - 1);
    if (f)
      fclose(f);
    ok(!strcmp(got, "4 ran\n8 ran\n10 ran\n12 ran\n14 ran\n"), "the callback ran at steps 4, 8, then 10, 12, 14");
  }
  return tap_done();
}

/* A region moved by the script at the end of step 4 (A[0:3] to A[6:11]):
 * from step 5 on every rank wants the chunks of the new region only, the
 * plan is compiled once more, and the sums follow; a move out of bounds at
 * step 7 is refused with file:line and changes nothing. */
static int region_move(int rank, int size)
{
  luisa *lz;
  luisa_options o = luisa_options_default();
  o.script = "t/data/region.lua";
  luisa_init(MPI_COMM_WORLD, &o, &lz);
  int64_t shape[1] = { N };
  double a[N / BLOCK][BLOCK];
  int blocks[N / BLOCK], nblocks = 0;
  luisa_array(lz, "A", LUISA_F64, 1, shape);
  for (int k = rank; k < N / BLOCK; k += size) {
    int64_t off[1] = { k * BLOCK }, len[1] = { BLOCK };
    luisa_chunk(lz, "A", off, len, NULL);
    blocks[nblocks++] = k;
  }
  int right = 1, statuses = 1;
  for (int step = 1; step <= 9; step++) {
    for (int c = 0; c < nblocks; c++) {
      int k = blocks[c], wanted = 1, expect = step <= 4 ? k == 0 : k == 2 || k == 3;
      luisa_wants(lz, "A", c, step, &wanted);
      if (step > 1)
        right &= wanted == expect;
      for (int i = 0; i < BLOCK; i++)
        a[c][i] = k * BLOCK + i + 100.0 * step;
      if (wanted)
        luisa_publish(lz, "A", c, a[c]);
    }
    statuses &= luisa_step(lz, step) == LUISA_OK;
  }
  ok(all_true(right), "luisa_wants: A[0:3] is wanted through step 4, A[6:11]'s chunks from step 5, on every rank");
  ok(all_true(statuses), "publishing only those, every step returns LUISA_OK");
  luisa_finalize(lz);
  if (rank == 0) {
    FILE *f = fopen(getenv("LUISA_TEST_OUT"), "r");
    char line[512];
    int good = 0, plans = 1, refused = 0;
    for (int step = 1; step <= 9 && f && fgets(line, sizeof line, f); step++) {
      double s, want = 0;
      int n, p, lo = step <= 4 ? 0 : 6, hi = step <= 4 ? 3 : 11;
      for (int i = lo; i < hi; i++)
        want += i + 100.0 * step;
      if (sscanf(line, "%*d %lf %d %d", &s, &n, &p) == 3 && s == want && n == hi - lo)
        good++;
      plans &= p == (step <= 4 ? 1 : 2);
      if (step == 7 && fgets(line, sizeof line, f))
        refused = strstr(line, "refused true") && strstr(line, "region.lua:12:") && strstr(line, "out of bounds");
    }
    if (f)
      fclose(f);
    ok(good == 9, "the region's sum and count follow the move from step 5 (%d of 9 steps exact)", good);
    ok(plans, "the plan was compiled once more, for the move, and not at any other step");
    ok(refused, "a move out of bounds is refused with file:line, and the region stays");
  }
  return tap_done();
}

int main(int argc, char **argv)
{
  tap_mpi_init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  if (argc > 1 && (!strcmp(argv[1], "period") || !strcmp(argv[1], "region"))) {
    int failed = !strcmp(argv[1], "period") ? period_change(rank, size) : region_move(rank, size);
    MPI_Finalize();
    return failed;
  }
  luisa *lz;
  luisa_options o = luisa_options_default();
  o.script = "t/data/wants.lua";
  luisa_init(MPI_COMM_WORLD, &o, &lz);
  const char *names[3] = { "A", "B", "C" };
  int64_t shape[1] = { N }, len[1] = { BLOCK };
  int first[N / BLOCK], nmine = 0;
  for (int k = 0; k < 3; k++)
    luisa_array(lz, names[k], LUISA_F64, 1, shape);
  for (int b = 0; b < N / BLOCK; b++)
    if (b % size == rank) {
      int64_t off[1] = { b * BLOCK };
      first[nmine++] = b * BLOCK;
      for (int k = 0; k < 3; k++)
        luisa_chunk(lz, names[k], off, len, NULL);
    }
  double data[3][N / BLOCK][BLOCK];
  int wanted, before = 1;
  for (int c = 0; c < nmine; c++)
    for (int k = 0; k < 3; k++) {
      luisa_wants(lz, names[k], c, 1, &wanted);
      before &= wanted;
    }
  ok(all_true(before), "before the first step every chunk is wanted");
  int right = 1, status_ok = 1;
  for (int step = 1; step <= STEPS; step++) {
    for (int c = 0; c < nmine; c++)
      for (int k = 0; k < 3; k++) {
        for (int i = 0; i < BLOCK; i++)
          data[k][c][i] = (k + 1) * 100 + step * 10 + first[c] + i;
        if (step > 1) {   /* the plan exists from the first step on */
          int expect = k == 0 ? step % 3 == 0 && first[c] < 6 : k == 1 ? step % 2 == 0 : 1;
          luisa_wants(lz, names[k], c, step, &wanted);
          if (wanted != expect) {
            right = 0;
            printf("# rank %d step %d %s chunk %d: wanted %d, expected %d\n", rank, step, names[k], c, wanted, expect);
          }
        } else {
          wanted = 1;
        }
        if (wanted)   /* only what is wanted */
          luisa_publish(lz, names[k], c, data[k][c]);
      }
    int st = luisa_step(lz, step);
    if (st != LUISA_OK) {
      status_ok = 0;
      printf("# rank %d step %d: %d %s\n", rank, step, st, luisa_error(lz));
    }
  }
  ok(all_true(right), "A's chunks in [0, 6) are wanted every 3 steps, the others never; B every 2 steps; "
     "C (in a window) every step");
  ok(all_true(status_ok), "publishing only the wanted chunks, every step returns LUISA_OK");
  is_status(luisa_wants(lz, "nope", 0, 1, &wanted), LUISA_ERR_NAME, lz, "an unknown array is refused");
  ok(wanted == 1, "and reads as wanted");
  is_status(luisa_wants(lz, "A", nmine, 1, &wanted), LUISA_ERR_ARG, lz, "a chunk that does not exist is refused");
  luisa_finalize(lz);
  if (rank == 0) {   /* the results of what was published: exact */
    FILE *f = fopen(getenv("LUISA_TEST_OUT"), "r");
    long long step;
    char what[8], value[64];
    int good = f != NULL, lines = 0;
    while (f && fscanf(f, "%lld %7s %63s", &step, what, value) == 3) {
      lines++;
      double want = 0;
      if (!strcmp(what, "s")) {
        for (int g = 0; g < 6; g++)
          want += 100 + step * 10 + g;
      } else if (!strcmp(what, "m")) {
        want = 200 + step * 10 + N - 1;
      } else {
        want = step == 5 || step == 10 ? 10 : 0;   /* C rises by 10 a step */
      }
      good &= atof(value) == want;
      if (atof(value) != want)
        printf("# step %lld %s = %s, expected %g\n", step, what, value, want);
    }
    if (f)
      fclose(f);
    ok(good && lines == 4 + 6 + 2, "the sums, maxima and changes reported are exact (%d lines)", lines);
  }
  tap_done();
  MPI_Finalize();
  return 0;
}
