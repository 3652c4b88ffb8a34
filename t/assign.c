/* assign.c: luisa.assign writes exactly the expected values into the
 * simulation's buffers, inside the chunks only, at the steps it is due:
 * computed from step t's data, they land when luisa_step(t + lag) returns
 * (lag: LUISA_MAX_LAG in thread mode, 0 inline). usage: assign [bad].
 * Prints TAP on rank 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luisa.h"
#include "tap.h"

enum { NY = 9, NX = 7, G = 1, STEPS = 6 };   /* row slabs with a ghost layer */

static int all_true(int c)
{
  int all;
  MPI_Allreduce(&c, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return all;
}

static double v_at(int i, int j, int step) { return (i * NX + j) * 0.5 + step; }

/* Steps between an analysis and the call its decisions land at. */
static int lag(void)
{
  const char *mode = getenv("LUISA_MODE"), *l = getenv("LUISA_MAX_LAG");
  return mode && !strcmp(mode, "thread") ? (l ? atoi(l) : 1) : 0;
}

/* The model: U as the simulation holds it, and the assignments computed
 * but not landed yet, by the step whose luisa_step lands them. */
typedef struct { double u[NY * NX]; double due[STEPS + 1][NY * NX]; } model;

static void model_init(model *m)
{
  for (int i = 0; i < NY; i++)
    for (int j = 0; j < NX; j++)
      m->u[i * NX + j] = i - j;
}

/* luisa_step(step) on the model; the analysis of step read m->u before. */
static void model_step(model *m, int step, int lag)
{
  if (step % 2 == 0 && step + lag <= STEPS)
    for (int k = 0; k < NY * NX; k++)
      m->due[step + lag][k] = m->u[k] + (v_at(k / NX, k % NX, step) - m->u[k]) * 0.25;
  int from = step - lag;
  if (from >= 1 && from % 2 == 0)
    memcpy(m->u, m->due[step], sizeof m->u);
}

int main(int argc, char **argv)
{
  tap_mpi_init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  int bad = argc > 1 && !strcmp(argv[1], "bad");
  if (bad)
    setenv("LUISA_TEST_BAD", "1", 1);
  luisa *lz;
  luisa_options o = luisa_options_default();
  o.script = "t/data/assign.lua";
  o.log_level = LUISA_LOG_ERROR;
  luisa_init(MPI_COMM_WORLD, &o, &lz);
  int64_t shape[2] = { NY, NX };
  int y0 = NY * rank / size, y1 = NY * (rank + 1) / size, ny = y1 - y0;
  int64_t off[2] = { y0, 0 }, len[2] = { ny, NX };
  luisa_layout lay = { LUISA_ORDER_C, { ny + 2 * G, NX + 2 * G }, { G, G } };
  luisa_array(lz, "U", LUISA_F64, 2, shape);
  luisa_array(lz, "V", LUISA_F64, 2, shape);
  if (ny > 0) {
    luisa_chunk(lz, "U", off, len, &lay);
    luisa_chunk(lz, "V", off, len, &lay);
  }
  ok(all_true(luisa_field_writable(lz, "U") == LUISA_OK), "U is made writable");
  int w = (int)lay.alloc_shape[1];
  double *u = malloc(sizeof(double) * (size_t)((ny + 2 * G) * w + 1));
  double *v = malloc(sizeof(double) * (size_t)((ny + 2 * G) * w + 1));
  int L = lag();
  model *m = calloc(1, sizeof *m);   /* the global U, computed here */
  model_init(m);
  double *ref = m->u;
  for (int k = 0; k < (ny + 2 * G) * w; k++)
    u[k] = -777;   /* ghosts keep this */
  for (int i = 0; i < ny; i++)
    for (int j = 0; j < NX; j++)
      u[(i + G) * w + j + G] = ref[(y0 + i) * NX + j];
  int exact = 1, ghosts = 1, statuses = 1;
  for (int step = 1; step <= STEPS; step++) {
    for (int k = 0; k < (ny + 2 * G) * w; k++)
      v[k] = NAN;
    for (int i = 0; i < ny; i++)
      for (int j = 0; j < NX; j++)
        v[(i + G) * w + j + G] = v_at(y0 + i, j, step);
    if (ny > 0) {
      luisa_publish(lz, "U", 0, u);
      luisa_publish(lz, "V", 0, v);
    }
    int st = luisa_step(lz, step);
    statuses &= bad ? (step == 1 + L ? st == LUISA_WARN_SCRIPT : st == LUISA_OK) : st == LUISA_OK;
    if (bad && step == 1 + L) {
      const char *e = luisa_error(lz);
      ok(all_true(strstr(e, "t/data/assign.lua:10:") && strstr(e, "writable")),
         "assigning to an array not made writable fails at its line: %s", e);
    }
    model_step(m, step, L);   /* the assignment, independently */
    for (int i = 0; i < ny + 2 * G; i++)
      for (int j = 0; j < w; j++) {
        double got = u[i * w + j];
        int inside = i >= G && i < ny + G && j >= G && j < NX + G;
        if (!inside)
          ghosts &= got == -777;
        else if (got != ref[(y0 + i - G) * NX + j - G]) {
          if (exact)
            printf("# rank %d step %d U[%d][%d] = %.17g, expected %.17g\n", rank, step, y0 + i - G, j - G, got,
                   ref[(y0 + i - G) * NX + j - G]);
          exact = 0;
        }
      }
  }
  ok(all_true(exact), "U holds exactly U + (V - U) * 0.25 of steps 2, 4, 6 from luisa_step(step + %d) on, "
     "untouched otherwise", L);
  ok(all_true(ghosts), "ghost cells are never written");
  ok(all_true(statuses), bad ? "the bad assignments fail at step 1 only (told by luisa_step(1 + lag)), on every rank"
                             : "every step returns LUISA_OK");
  luisa_finalize(lz);
  if (rank == 0 && !bad) {   /* the statistic saw U before each step's assignment */
    FILE *f = fopen(getenv("LUISA_TEST_OUT"), "r");
    int good = f != NULL;
    long long step;
    double s;
    model_init(m);
    int next = 1;
    while (f && fscanf(f, "%lld %lf", &step, &s) == 2) {
      double want = 0;
      for (int k = 0; k < NY * NX; k++)
        want += m->u[k];
      good &= step == next++ && fabs(s - want) <= 1e-12 * fabs(want) + 1e-12;
      model_step(m, (int)step, L);
    }
    good &= next == STEPS + 1;
    if (f)
      fclose(f);
    ok(good, "the statistic of each step reads U as it was before that step's assignment");
  }
  free(u);
  free(v);
  free(m);
  tap_done();
  MPI_Finalize();
  return 0;
}
