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

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
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
