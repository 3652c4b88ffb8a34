/* steer.c: steerable parameters end to end: a change lands at the next step
 * on every rank, refused values leave parameters alone, stop ends every rank
 * at the same step. usage: steer run | api | mismatch. Prints TAP on rank 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luisa.h"
#include "tap.h"

enum { N = 12, STEPS = 12 };

static int rank, size;

/* Every rank's value of v, the same everywhere? */
static int everywhere(double v)
{
  double lo, hi;
  MPI_Allreduce(&v, &lo, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&v, &hi, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return lo == hi;
}

static int all_true(int c)
{
  int all;
  MPI_Allreduce(&c, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return all;
}

static luisa *start(const char *script, double *a)
{
  luisa *lz;
  luisa_options o = luisa_options_default();
  o.script = script;
  o.log_level = LUISA_LOG_ERROR;
  luisa_init(MPI_COMM_WORLD, &o, &lz);
  int64_t shape[1] = { N }, lo = N * rank / size, hi = N * (rank + 1) / size;
  int64_t off[1] = { lo }, n[1] = { hi - lo };
  luisa_array(lz, "A", LUISA_F64, 1, shape);
  if (hi > lo)
    luisa_chunk(lz, "A", off, n, NULL);
  for (int64_t i = lo; i < hi; i++)
    a[i - lo] = (double)i;
  return lz;
}

static void run(void)
{
  double a[N], dt = 1e-3;
  int64_t n = 5;
  int flag = 0;
  char mode[16] = "fast";
  static const char *const modes[] = { "fast", "slow", "off", NULL };
  luisa *lz = start("t/data/steer.lua", a);
  ok(luisa_param_f64(lz, "dt", &dt, 1e-6, 1e-2, "time step") == LUISA_OK &&
     luisa_param_i64(lz, "n", &n, 1, 100, NULL) == LUISA_OK &&
     luisa_param_bool(lz, "flag", &flag, "a switch") == LUISA_OK &&
     luisa_param_string(lz, "mode", mode, sizeof mode, modes, "output mode") == LUISA_OK,
     "four parameters register");
  int st[STEPS + 1] = { 0 }, last = 0;
  double dts[STEPS + 1];
  int64_t ns[STEPS + 1];
  int flags[STEPS + 1];
  char mode_at[STEPS + 1][16];
  for (int step = 1; step <= STEPS; step++) {
    if (step == 7)
      n = 9;   /* the simulation changes its own variable: scripts see it */
    if (N * (rank + 1) / size > N * rank / size)
      luisa_publish(lz, "A", 0, a);
    st[step] = luisa_step(lz, step);
    dts[step] = dt, ns[step] = n, flags[step] = flag;
    snprintf(mode_at[step], sizeof mode_at[step], "%s", mode);
    last = step;
    if (step == 5 || step == 6 || step == 7) {
      const char *frag = step == 5 ? "t/data/steer.lua:15:" : step == 6 ? "t/data/steer.lua:18:" : "t/data/steer.lua:26:";
      const char *why = step == 5 ? "outside" : step == 6 ? "whole number" : "expected one of";
      ok(all_true(st[step] == LUISA_WARN_SCRIPT && strstr(luisa_error(lz), frag) && strstr(luisa_error(lz), why)),
         "step %d: a refused luisa.set gives LUISA_WARN_SCRIPT on every rank naming %s and why", step, frag);
      if (!strstr(luisa_error(lz), frag))
        tap_print("#   %s\n", luisa_error(lz));
    }
    if (st[step] == LUISA_STOP)
      break;
  }
  ok(all_true(dts[2] == 1e-3 && dts[3] == 1e-3 / 2) && everywhere(dts[3]),
     "dt halved at step 3 is 5e-4 on every rank when luisa_step(3) returns, 1e-3 after step 2");
  ok(all_true(ns[3] == 5 && ns[4] == 7 && flags[3] == 0 && flags[4] == 1 && !strcmp(mode_at[3], "fast") &&
              !strcmp(mode_at[4], "slow")), "n, flag and mode set at step 4 land when luisa_step(4) returns");
  ok(all_true(dts[5] == 1e-3 / 2 && dts[6] == 1e-3 / 2), "dt refused at step 5 keeps its value");
  ok(all_true(ns[6] == 7 && !strcmp(mode_at[7], "slow") && ns[7] == 9),
     "n refused at step 6 and mode refused at step 7 keep their values; the simulation's own n = 9 stands");
  ok(all_true(last == 8 && st[8] == LUISA_STOP) && everywhere(last),
     "luisa.stop at step 8 returns LUISA_STOP on every rank at step 8 (last step %d)", last);
  ok(all_true(st[1] == LUISA_OK && st[2] == LUISA_OK && st[3] == LUISA_OK && st[4] == LUISA_OK),
     "steps with changes return LUISA_OK");
  if (rank == 0)   /* the parameter history, for comparing two runs */
    for (int s = 1; s <= last; s++)
      fprintf(stderr, "history %d dt %.17g n %lld flag %d mode %s\n", s, dts[s], (long long)ns[s], flags[s],
              mode_at[s]);
  luisa_finalize(lz);
}

static void api(void)
{
  double a[N], dt = 1e-3, bad = 5;
  int64_t n = 5;
  int flag = 2;
  char mode[8] = "x";
  static const char *const modes[] = { "fast", "slow", NULL };
  luisa *lz = start(NULL, a);
  is_status(luisa_param_f64(lz, "dt", &bad, 0, 1, NULL), LUISA_ERR_ARG, lz, "a current value outside the bounds is refused");
  ok(strstr(luisa_error(lz), "\"dt\"") && strstr(luisa_error(lz), "outside"), "... naming the parameter: %s", luisa_error(lz));
  is_status(luisa_param_f64(lz, "dt", &dt, 1, 0, NULL), LUISA_ERR_ARG, lz, "min > max is refused");
  is_status(luisa_param_f64(lz, "dt", NULL, 0, 1, NULL), LUISA_ERR_ARG, lz, "a NULL variable is refused");
  is_status(luisa_param_f64(lz, "9dt", &dt, 0, 1, NULL), LUISA_ERR_ARG, lz, "a bad name is refused");
  is_status(luisa_param_f64(lz, "dt", &dt, 0, 1, NULL), LUISA_OK, lz, "a good one registers");
  is_status(luisa_param_f64(lz, "dt", &dt, 0, 1, NULL), LUISA_ERR_NAME, lz, "a second \"dt\" is refused");
  is_status(luisa_param_i64(lz, "n", &n, 6, 9, NULL), LUISA_ERR_ARG, lz, "an i64 outside its bounds is refused");
  is_status(luisa_param_bool(lz, "flag", &flag, NULL), LUISA_ERR_ARG, lz, "a bool that is not 0 or 1 is refused");
  is_status(luisa_param_string(lz, "mode", mode, sizeof mode, modes, NULL), LUISA_ERR_ARG, lz,
            "a string not in its allowed set is refused");
  is_status(luisa_step(lz, 1), LUISA_OK, lz, "the run goes on");
  is_status(luisa_param_i64(lz, "late", &n, 0, 9, NULL), LUISA_ERR_ORDER, lz, "a parameter after the first step is refused");
  luisa_finalize(lz);
}

static void mismatch(void)
{
  double a[N], dt = 0.5;
  luisa *lz = start(NULL, a);
  luisa_param_f64(lz, "dt", &dt, 0, rank == size - 1 ? 2 : 1, NULL);
  int st = luisa_step(lz, 1);
  ok(all_true(st == LUISA_ERR_NAME && strstr(luisa_error(lz), "rank ") && strstr(luisa_error(lz), "parameters")),
     "bounds that differ on one rank give LUISA_ERR_NAME on every rank: %s", luisa_error(lz));
  ok(all_true(luisa_step(lz, 2) == LUISA_OK), "and the run goes on");
  luisa_finalize(lz);
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  const char *what = argc > 1 ? argv[1] : "run";
  if (!strcmp(what, "api"))
    api();
  else if (!strcmp(what, "mismatch"))
    mismatch();
  else
    run();
  int failed = tap_failed;
  MPI_Finalize();
  return failed != 0;
}
