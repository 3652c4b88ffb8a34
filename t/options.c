/* options.c: luisa_options and their LUISA_* overrides from the
 * environment. usage: options defaults | env | split
 *   defaults: the fields' defaults, and bad fields refused naming them;
 *   env:      every variable that does not parse is refused naming it, and
 *             one that parses wins over the field;
 *   split:    run on 2 ranks with a bad variable on rank 1 only: every rank
 *             refuses, none hangs. Prints TAP on rank 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "luisa.h"
#include "tap.h"

static int rank;

/* luisa_init's refusals come before a context exists: on stderr. */
static int init_says(const luisa_options *o, int *status, char *text, size_t cap)
{
  fflush(stderr);
  FILE *f = tmpfile();
  int saved = dup(2);
  dup2(fileno(f), 2);
  luisa *lz = NULL;
  *status = luisa_init(MPI_COMM_WORLD, o, &lz);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(f);
  size_t n = fread(text, 1, cap - 1, f);
  text[n] = '\0';
  fclose(f);
  luisa_finalize(lz);
  return lz != NULL;
}

static void refused(const luisa_options *o, const char *what, const char *fragment)
{
  char text[1024];
  int st, made = init_says(o, &st, text, sizeof text);
  if (!ok(!made && st == LUISA_ERR_ARG && strstr(text, fragment), "%s: luisa_init refuses with "
          "LUISA_ERR_ARG naming %s", what, fragment))
    tap_print("#   status %d, stderr: %s\n", st, text);
}

static void defaults(void)
{
  luisa_options d = luisa_options_default();
  ok(d.lua_bytes == (int64_t)1 << 30 && d.step_budget_s == 60 && d.trusted == 0 && d.output_dir == NULL &&
     d.timeout_s == 0 && d.mode == LUISA_MODE_INLINE && d.max_lag == 1 && d.cpuset == NULL && d.analytics_ranks == 0 && d.compress_level == 0 &&
     d.store_bytes == 0 && d.spill_dir == NULL,
     "luisa_options_default: 1 GiB Lua heap, 60 s budget, sandboxed, luisa-out, no timeout, inline, "
     "max_lag 1, cpuset auto, no memory budget, no spill");
  luisa_options o = d;
  o.lua_bytes = 1 << 20;
  refused(&o, "lua_bytes 1 MiB", "opts->lua_bytes is 1048576");
  o = d, o.lua_bytes = -5;
  refused(&o, "lua_bytes -5", "opts->lua_bytes is -5");
  o = d, o.step_budget_s = -1;
  refused(&o, "step_budget_s -1", "opts->step_budget_s is -1");
  o = d, o.step_budget_s = 0.0 / 0.0;
  refused(&o, "step_budget_s NaN", "opts->step_budget_s is");
  o = d, o.timeout_s = 1e300;
  refused(&o, "timeout_s 1e300", "opts->timeout_s is 1e+300");
  o = d, o.trusted = 2;
  refused(&o, "trusted 2", "opts->trusted is 2");
  o = d, o.output_dir = "";
  refused(&o, "output_dir \"\"", "opts->output_dir is empty");
  o = d, o.mode = (luisa_mode)7;
  refused(&o, "mode 7", "opts->mode is 7: expected LUISA_MODE_INLINE (0), LUISA_MODE_THREAD (1) or LUISA_MODE_RANKS (2)");
  o = d, o.analytics_ranks = 2000000;
  refused(&o, "analytics_ranks 2000000", "opts->analytics_ranks is 2000000: expected 1 to 1048576 ranks in all");
  o = d, o.compress_level = 99;
  refused(&o, "compress_level 99", "opts->compress_level (or LUISA_COMPRESS) is 99: compression level 99 is out of range");
  o = d, o.max_lag = -1;
  refused(&o, "max_lag -1", "opts->max_lag is -1: expected 0 to 1024 steps");
  o = d, o.max_lag = 1025;
  refused(&o, "max_lag 1025", "opts->max_lag is 1025");
  o = d, o.cpuset = "";
  refused(&o, "cpuset \"\"", "opts->cpuset is empty");
  o = d, o.store_bytes = -1;
  refused(&o, "store_bytes -1", "opts->store_bytes is -1: expected 0 (no budget) to 1 EiB");
  o = d, o.spill_dir = "";
  refused(&o, "spill_dir \"\"", "opts->spill_dir is empty");
  o = d, o.lua_bytes = 0, o.step_budget_s = 0;
  char text[1024];
  int st, made = init_says(&o, &st, text, sizeof text);
  ok(made && st == LUISA_OK, "lua_bytes 0 (the default) and step_budget_s 0 (no budget) are accepted");
}

static void env(void)
{
  static const struct { const char *var, *value, *fragment; } bad[] = {
    { "LUISA_STEP_BUDGET", "soon", "LUISA_STEP_BUDGET is \"soon\": expected a number" },
    { "LUISA_STEP_BUDGET", "-3", "opts->step_budget_s is -3" },
    { "LUISA_LUA_BYTES", "12X", "LUISA_LUA_BYTES is \"12X\": expected a number of bytes" },
    { "LUISA_LUA_BYTES", "1K", "opts->lua_bytes is 1024" },
    { "LUISA_LUA_BYTES", "1e30", "opts->lua_bytes is -1" },
    { "LUISA_TIMEOUT", "inf", "LUISA_TIMEOUT is \"inf\": expected a number" },
    { "LUISA_TRUSTED", "yes", "LUISA_TRUSTED is \"yes\": expected 0 or 1" },
    { "LUISA_LOG_LEVEL", "loud", "LUISA_LOG_LEVEL is \"loud\": expected error, warning, info or debug" },
    { "LUISA_MODE", "transit", "LUISA_MODE is \"transit\": expected inline, thread or ranks" },
    { "LUISA_ANALYTICS_RANKS", "0", "LUISA_ANALYTICS_RANKS is \"0\": expected a number of ranks, 1 to 1048576" },
    { "LUISA_ANALYTICS_RANKS", "2/nodes", "LUISA_ANALYTICS_RANKS is \"2/nodes\"" },
    { "LUISA_ANALYTICS_RANKS", "99999999999", "LUISA_ANALYTICS_RANKS is \"99999999999\"" },
    { "LUISA_COMPRESS", "fast", "LUISA_COMPRESS is \"fast\": expected a number" },
    { "LUISA_COMPRESS", "1e9", "opts->compress_level (or LUISA_COMPRESS) is 1000" },
    { "LUISA_MAX_LAG", "soon", "LUISA_MAX_LAG is \"soon\": expected a number" },
    { "LUISA_MAX_LAG", "2.5", "opts->max_lag is -1" },
    { "LUISA_MAX_LAG", "-1", "opts->max_lag is -1" },
    { "LUISA_RELOAD_SIGNAL", "99", "opts->reload_signal is -1" },
    { "LUISA_STORE_BYTES", "lots", "LUISA_STORE_BYTES is \"lots\": expected a number of bytes" },
    { "LUISA_STORE_BYTES", "-1K", "opts->store_bytes is -1" },
  };
  luisa_options d = luisa_options_default();
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    char what[128];
    setenv(bad[k].var, bad[k].value, 1);
    snprintf(what, sizeof what, "%s=%s", bad[k].var, bad[k].value);
    refused(&d, what, bad[k].fragment);
    unsetenv(bad[k].var);
  }
  /* A good value wins over the field: a 64 MiB budget of bytes is accepted,
   * a script path from the environment is used (it does not exist: the
   * load fails naming it). */
  setenv("LUISA_LUA_BYTES", "64M", 1);
  setenv("LUISA_SCRIPT", "/nonexistent/from-env.lua", 1);
  luisa *lz = NULL;
  int st = luisa_init(MPI_COMM_WORLD, &d, &lz);
  if (!ok(st == LUISA_WARN_SCRIPT && strstr(luisa_error(lz), "/nonexistent/from-env.lua"),
          "LUISA_SCRIPT names the script when opts->script is NULL; LUISA_LUA_BYTES=64M is accepted"))
    tap_print("#   status %d: %s\n", st, luisa_error(lz));
  luisa_finalize(lz);
  unsetenv("LUISA_SCRIPT");
  unsetenv("LUISA_LUA_BYTES");
}

/* LUISA_MODE=thread on rank 1 only: the ranks would run different
 * executors; every rank refuses. */
static void modes(void)
{
  luisa_options d = luisa_options_default();
  char text[1024];
  int st, made = init_says(&d, &st, text, sizeof text), mine, all;
  mine = !made && st == LUISA_ERR_ARG && strstr(text, "the ranks ask for different modes") != NULL;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  if (!ok(all, "LUISA_MODE=thread on rank 1 only: every rank refuses, saying the ranks ask for different modes"))
    tap_print("#   rank %d: status %d, stderr: %s\n", rank, st, text);
}

static void split(void)
{
  luisa_options d = luisa_options_default();
  char text[1024];
  int st, made = init_says(&d, &st, text, sizeof text), all_refused, lo;
  int mine = !made && st == LUISA_ERR_ARG;
  MPI_Allreduce(&mine, &all_refused, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  ok(all_refused, "a bad LUISA_TRUSTED on rank 1 only: every rank refuses, none waits for another");
  int says = rank == 1 ? strstr(text, "LUISA_TRUSTED") != NULL : strstr(text, "another rank refused") != NULL;
  MPI_Allreduce(&says, &lo, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  ok(lo, "rank 1 names the variable, the others say another rank refused");
}

int main(int argc, char **argv)
{
  tap_mpi_init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  tap_rank = rank;
  const char *what = argc > 2 ? argv[1] : "";
  tap_count = argc > 2 ? atoi(argv[2]) - 1 : 0;
  if (!strcmp(what, "defaults"))
    defaults();
  else if (!strcmp(what, "env"))
    env();
  else if (!strcmp(what, "split"))
    split();
  else if (!strcmp(what, "modes"))
    modes();
  else
    ok(0, "usage: options defaults | env | split | modes");
  MPI_Finalize();
  return tap_failed != 0;
}
