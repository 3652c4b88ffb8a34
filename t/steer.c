/* steer.c: steerable parameters end to end: a change lands at the next step
 * on every rank, refused values leave parameters alone, stop ends every rank
 * at the same step. usage: steer run | api | mismatch | i64. Prints TAP on rank 0. */
#include <math.h>
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

/* The same int64 on every rank? */
static int everywhere_i64(int64_t v)
{
  int64_t lo, hi;
  MPI_Allreduce(&v, &lo, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&v, &hi, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  return lo == hi;
}

/* i64 values compared as integers at the edges of their bounds, f64 ones
 * with NaN and infinities: t/data/steer_i64.lua sets one value per step,
 * step t on line t + 6. Expected texts and values are written out here,
 * not computed with the engine's own arithmetic. */
static void i64(void)
{
  double a[N], f = 0.5, g = HUGE_VAL;
  int64_t big = 5, low = -5, odd = 0, top = 0;
  const int64_t two53 = (int64_t)1 << 53;
  luisa *lz = start("t/data/steer_i64.lua", a);
  ok(luisa_param_i64(lz, "big", &big, 0, INT64_MAX, NULL) == LUISA_OK &&
     luisa_param_i64(lz, "low", &low, INT64_MIN, 0, NULL) == LUISA_OK &&
     luisa_param_i64(lz, "odd", &odd, -(two53 + 3), two53 + 3, NULL) == LUISA_OK &&
     luisa_param_i64(lz, "top", &top, 0, (int64_t)1 << 62, NULL) == LUISA_OK &&
     luisa_param_f64(lz, "f", &f, 0, 1, NULL) == LUISA_OK &&
     luisa_param_f64(lz, "g", &g, -HUGE_VAL, HUGE_VAL, NULL) == LUISA_OK,
     "i64 [0, INT64_MAX], [INT64_MIN, 0], [-(2^53 + 3), 2^53 + 3], [0, 2^62], f64 [0, 1] and [-inf, inf] register");
  static const struct {
    const char *what, *frag;   /* frag NULL: accepted, the parameter then holds want */
    int64_t want;
  } cases[] = {
    { "big = 2^63", "luisa.set(\"big\"): 9.2233720368547758e+18 is refused: expected a whole number in "
      "[0, 9223372036854775807]", 0 },
    { "big = 2^63 - 1024", NULL, INT64_C(9223372036854774784) },
    { "big = NaN", "luisa.set(\"big\"): nan is refused: expected a whole number", 0 },
    { "big = inf", "luisa.set(\"big\"): inf is refused", 0 },
    { "big = 1.5", "luisa.set(\"big\"): 1.5 is refused", 0 },
    { "big = -1", "luisa.set(\"big\"): -1 is refused: expected a whole number in [0, 9223372036854775807]", 0 },
    { "low = -2^63", NULL, INT64_MIN },
    { "low = -2^63 - 2048", "luisa.set(\"low\"): -9.2233720368547779e+18 is refused: expected a whole number in "
      "[-9223372036854775808, 0]", 0 },
    { "low = -inf", "luisa.set(\"low\"): -inf is refused", 0 },
    { "odd = 2^53 + 4", "luisa.set(\"odd\"): 9007199254740996 is refused: expected a whole number in "
      "[-9007199254740995, 9007199254740995]", 0 },
    { "odd = -(2^53 + 4)", "luisa.set(\"odd\"): -9007199254740996 is refused", 0 },
    { "odd = 2^53 + 2", NULL, INT64_C(9007199254740994) },
    { "top = 2^62", NULL, INT64_C(4611686018427387904) },
    { "top = 2^62 + 1024", "luisa.set(\"top\"): 4.6116860184273889e+18 is refused: expected a whole number in "
      "[0, 4611686018427387904]", 0 },
    { "f = NaN", "luisa.set(\"f\"): nan is outside [0, 1]", 0 },
    { "f = inf", "luisa.set(\"f\"): inf is outside [0, 1]", 0 },
    { "g = -inf", NULL, 0 },
    { "g = NaN", "luisa.set(\"g\"): nan is outside [-inf, inf]", 0 },
    { "scripts read i64 bounds and values as rounded doubles (bounds.big[2] == 2^63)", NULL, 0 },
  };
  int64_t kept_big = big, kept_low = low, kept_odd = odd, kept_top = top;
  double kept_f = f, kept_g = g;
  for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
    int step = k + 1;
    char line[64];
    snprintf(line, sizeof line, "t/data/steer_i64.lua:%d:", step + 6);
    if (N * (rank + 1) / size > N * rank / size)
      luisa_publish(lz, "A", 0, a);
    int st = luisa_step(lz, step), good;
    if (cases[k].frag) {
      good = st == LUISA_WARN_SCRIPT && strstr(luisa_error(lz), line) && strstr(luisa_error(lz), cases[k].frag);
    } else {
      good = st == LUISA_OK;
      if (step == 2) kept_big = cases[k].want;
      if (step == 7) kept_low = cases[k].want;
      if (step == 12) kept_odd = cases[k].want;
      if (step == 13) kept_top = cases[k].want;
      if (step == 17) kept_g = -HUGE_VAL;
    }
    good = good && big == kept_big && low == kept_low && odd == kept_odd && top == kept_top && f == kept_f &&
           g == kept_g && everywhere_i64(big) && everywhere_i64(low) && everywhere_i64(odd) && everywhere(g);
    ok(all_true(good), "step %d: %s: %s%s", step, cases[k].what, cases[k].frag ? "refused naming line " : "accepted",
       cases[k].frag ? line : ", the same on every rank");
    if (!all_true(good))
      tap_print("#   status %d, big %lld low %lld odd %lld top %lld f %g g %g: %s\n", st, (long long)big,
                (long long)low, (long long)odd, (long long)top, f, g, luisa_error(lz));
  }
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
  is_status(luisa_param_f64(lz, "x", &dt, NAN, 1, NULL), LUISA_ERR_ARG, lz, "an f64 with min NaN is refused");
  ok(strstr(luisa_error(lz), "min nan") && strstr(luisa_error(lz), "not NaN"), "... saying so: %s", luisa_error(lz));
  is_status(luisa_param_f64(lz, "x", &dt, 0, NAN, NULL), LUISA_ERR_ARG, lz, "an f64 with max NaN is refused");
  double nan_now = NAN, inf_now = HUGE_VAL;
  is_status(luisa_param_f64(lz, "x", &nan_now, 0, 1, NULL), LUISA_ERR_ARG, lz, "an f64 whose current value is NaN is refused");
  is_status(luisa_param_f64(lz, "x", &inf_now, 0, 1, NULL), LUISA_ERR_ARG, lz,
            "an f64 whose current value is inf is refused in [0, 1]");
  is_status(luisa_param_f64(lz, "x", &inf_now, 0, HUGE_VAL, NULL), LUISA_OK, lz, "... and accepted in [0, inf]");
  int64_t lowest = INT64_MIN;
  is_status(luisa_param_i64(lz, "lowest", &lowest, INT64_MIN, INT64_MAX, NULL), LUISA_OK, lz,
            "an i64 at INT64_MIN in [INT64_MIN, INT64_MAX] registers");
  is_status(luisa_param_i64(lz, "y", &lowest, INT64_MAX, INT64_MIN, NULL), LUISA_ERR_ARG, lz,
            "an i64 with min INT64_MAX > max INT64_MIN is refused");
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
  tap_mpi_init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  const char *what = argc > 1 ? argv[1] : "run";
  if (!strcmp(what, "api"))
    api();
  else if (!strcmp(what, "i64"))
    i64();
  else if (!strcmp(what, "mismatch"))
    mismatch();
  else
    run();
  int failed = tap_failed;
  MPI_Finalize();
  return failed != 0;
}
