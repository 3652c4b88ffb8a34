/* safety.c: a hostile or careless script never stops, hangs or corrupts the
 * simulation. Runs one case of t/027-safety.t: the statuses of init and of
 * every step on every rank, the messages (file:line), the healthy
 * callback's exact sums, and the published data unchanged.
 * usage: safety CASE FIRST DIR   (DIR holds the scripts; every case prints
 * CHECKS lines of TAP on rank 0, numbered from FIRST) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "luisa.h"
#include "tap.h"

enum { STEPS = 5, N = 16, CHECKS = 7, TEXT = 1 << 14 };

typedef struct scase {
  const char *name, *script;
  const char *budget, *lua_bytes, *trusted;   /* environment for luisa_init; NULL: default */
  int init_status;
  int status[STEPS];                 /* expected luisa_step status at each step */
  const char *frags[4];              /* in luisa_error at the first failing call */
  int healthy;                       /* steps the healthy callback reports: bit per step */
  double seconds;                    /* the whole run must take less */
} scase;

#define W LUISA_WARN_SCRIPT
static const scase cases[] = {
  { "spin_callback", "spin_callback.lua", "0.3", NULL, NULL, LUISA_OK, { 0, 0, W, 0, 0 },
    { "spin_callback.lua:5", "time budget of 0.3 s", "callback disabled" }, 0x1f, 20 },
  { "spin_trusted", "pcall_spin.lua", "0.3", NULL, "1", LUISA_OK, { 0, 0, W, 0, 0 },
    { "pcall_spin.lua:5", "time budget", "callback disabled" }, 0x1f, 20 },
  { "spin_load", "spin_load.lua", "0.3", NULL, NULL, W, { 0, 0, 0, 0, 0 },
    { "spin_load.lua:4", "time budget of 0.3 s", "did not load" }, 0, 20 },
  { "spin_map", "spin_map.lua", "0.3", NULL, NULL, LUISA_OK, { 0, W, 0, 0, 0 },
    { "spin_map.lua:8", "time budget of 0.3 s", "disabled on every rank, it was stopped on rank" }, 0x1f, 20 },
  { "pcall_spin", "pcall_spin.lua", "0.3", NULL, NULL, LUISA_OK, { 0, 0, W, 0, 0 },
    { "pcall_spin.lua:5", "time budget", "callback disabled" }, 0x1f, 20 },
  { "tostring_loop", "tostring_loop.lua", "0.3", NULL, NULL, LUISA_OK, { 0, 0, W, 0, 0 },
    { "tostring_loop.lua:4", "__tostring failed", "callback disabled" }, 0x1f, 20 },
  { "error_table", "error_table.lua", NULL, NULL, NULL, LUISA_OK, { 0, 0, W, 0, 0 },
    { "raised a table value, not an error message", "error_table.lua:3" }, 0x1f, 20 },
  { "memory_bomb", "memory_bomb.lua", NULL, "64M", NULL, LUISA_OK, { 0, 0, W, 0, 0 },
    { "memory_bomb.lua:7", "near its cap of 64 MiB", "opts.lua_bytes" }, 0x1f, 30 },
  { "memory_big", "memory_big.lua", NULL, "64M", NULL, LUISA_OK, { 0, 0, W, 0, 0 },
    { "memory_big.lua:5", "cap of 64 MiB", "1024 MiB more were refused" }, 0x1f, 20 },
  { "memory_load", "memory_load.lua", NULL, "64M", NULL, W, { 0, 0, 0, 0, 0 },
    { "memory_load.lua:4", "cap of 64 MiB", "did not load" }, 0, 30 },
  { "bytecode_script", "bytecode.lua", NULL, NULL, NULL, W, { 0, 0, 0, 0, 0 },
    { "bytecode.lua", "bytecode is refused", "source text only" }, 0, 20 },
  { "bytecode_trusted", "bytecode.lua", NULL, NULL, "1", W, { 0, 0, 0, 0, 0 },
    { "bytecode.lua", "bytecode is refused" }, 0, 20 },
  { "bytecode_module", "mod_bc.lua", NULL, NULL, NULL, W, { 0, 0, 0, 0, 0 },
    { "bc_module.lua", "bytecode is refused", "mod_bc.lua:3" }, 0, 20 },
  { "map_bounds", "map_bounds.lua", NULL, NULL, NULL, LUISA_OK, { 0, W, W, 0, 0 },
    { "map_bounds.lua:8", "luisa.map data[16]", "is outside 0 to 15" }, 0x1f, 20 },
  { "escapes", "escapes.lua", NULL, NULL, NULL, LUISA_OK, { 0, 0, 0, 0, 0 }, { NULL }, 0, 20 },
};

static int rank, size;

static double now(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int same_everywhere(int v)
{
  int lo, hi;
  MPI_Allreduce(&v, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&v, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return lo == hi;
}

static int all(int c)
{
  int r;
  MPI_Allreduce(&c, &r, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return r;
}

static int mentions(const char *text, const char *const *frags)
{
  for (; *frags; frags++)
    if (!strstr(text, *frags)) {
      tap_print("#   \"%s\" missing from: %s\n", *frags, text);
      return 0;
    }
  return 1;
}

static void set(const char *var, const char *value)
{
  if (value)
    setenv(var, value, 1);
  else
    unsetenv(var);
}

/* The healthy callback's lines: "step sum heapKiB"; bit k set if step k was
 * reported with its exact sum. *heap: the last heap figure. */
static int reported(const char *dir, int *heap)
{
  char path[4200], line[256];
  snprintf(path, sizeof path, "%s/out", dir);
  FILE *f = fopen(path, "r");
  int mask = 0;
  *heap = -1;
  if (!f)
    return 0;
  long long n = (long long)N * size;
  while (fgets(line, sizeof line, f)) {
    long long step;
    double sum;
    int kib;
    if (sscanf(line, "%lld %lf %d", &step, &sum, &kib) == 3 && step >= 0 && step < STEPS) {
      /* sum over g < n of (g + step) */
      double want = (double)(n * (n - 1) / 2 + n * step);
      if (sum == want)
        mask |= 1 << step;
      else
        tap_print("#   step %lld: sum %.17g, expected %.17g\n", step, sum, want);
      *heap = kib;
    }
  }
  fclose(f);
  return mask;
}

/* escapes.lua's report: every line refused with the script's file:line,
 * but the ones that must be allowed. */
static int escapes_ok(const char *dir)
{
  static const char *const allowed[] = { "load text", "io.open write inside", "io.open read", "math and string" };
  char path[4200], line[1024];
  snprintf(path, sizeof path, "%s/escapes", dir);
  FILE *f = fopen(path, "r");
  int good = f != NULL, lines = 0;
  while (f && fgets(line, sizeof line, f)) {
    lines++;
    int must_allow = 0;
    for (size_t k = 0; k < sizeof allowed / sizeof *allowed; k++)
      must_allow |= strncmp(line, allowed[k], strlen(allowed[k])) == 0 && line[strlen(allowed[k])] == ':';
    int was_allowed = strstr(line, ": allowed") != NULL;
    int names_line = strstr(line, "escapes.lua:") != NULL;
    if (must_allow != was_allowed || (!was_allowed && !names_line)) {
      tap_print("#   escape wrong: %s", line);
      good = 0;
    }
  }
  if (f)
    fclose(f);
  snprintf(path, sizeof path, "%s/sub/inside.txt", dir);
  FILE *in = fopen(path, "r");
  good = good && in && lines == 29;
  if (in)
    fclose(in);
  FILE *outside = fopen("/tmp/luisa-escape-test", "r");
  if (outside) {
    fclose(outside);
    good = 0;
    tap_print("#   a file was written outside the output directory\n");
  }
  return good;
}

int main(int argc, char **argv)
{
  tap_mpi_init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  const scase *c = NULL;
  for (size_t k = 0; argc == 4 && k < sizeof cases / sizeof *cases; k++)
    if (!strcmp(cases[k].name, argv[1]))
      c = &cases[k];
  if (!c) {
    tap_print("not ok - usage: safety CASE FIRST DIR\n");
    MPI_Finalize();
    return 1;
  }
  tap_count = atoi(argv[2]) - 1;
  const char *dir = argv[3];
  char tag[96], script[4200];
  snprintf(tag, sizeof tag, "%s, %d rank%s", c->name, size, size > 1 ? "s" : "");
  snprintf(script, sizeof script, "%s/%s", dir, c->script);
  set("LUISA_STEP_BUDGET", c->budget);
  set("LUISA_LUA_BYTES", c->lua_bytes);
  set("LUISA_TRUSTED", c->trusted);
  setenv("LUISA_OUTPUT_DIR", dir, 1);

  double t0 = now();
  luisa_options o = luisa_options_default();
  o.script = script;
  o.log_level = LUISA_LOG_ERROR;
  o.reload_signal = 0;
  luisa *lz = NULL;
  int st = luisa_init(MPI_COMM_WORLD, &o, &lz);
  char first_error[TEXT] = "";
  if (st != LUISA_OK)
    snprintf(first_error, sizeof first_error, "%s", luisa_error(lz));
  if (!ok(lz && all(st == c->init_status) && same_everywhere(st), "%s: luisa_init returns %d on every rank", tag,
          c->init_status))
    tap_print("#   got %d: %s\n", st, luisa_error(lz));

  int64_t shape[1] = { (int64_t)N * size }, off[1] = { (int64_t)N * rank }, n[1] = { N };
  double data[N], copy[N];
  int declared = lz && luisa_array(lz, "A", LUISA_F64, 1, shape) == LUISA_OK &&
                 luisa_chunk(lz, "A", off, n, NULL) == LUISA_OK;
  int statuses_ok = declared, untouched = 1, lag = tap_lag();
  for (int64_t step = 0; step < STEPS && lz; step++) {
    for (int i = 0; i < N; i++)
      copy[i] = data[i] = (double)(off[0] + i + step);
    luisa_publish(lz, "A", 0, data);
    st = luisa_step(lz, step);
    int expected = step >= lag ? c->status[step - lag] : LUISA_OK;
    if (st != expected || !same_everywhere(st)) {
      statuses_ok = 0;
      tap_print("#   step %lld returned %d, expected %d: %s\n", (long long)step, st, expected, luisa_error(lz));
    }
    if (st != LUISA_OK && !first_error[0])
      snprintf(first_error, sizeof first_error, "%s", luisa_error(lz));
    untouched &= memcmp(data, copy, sizeof data) == 0;
  }
  ok(all(statuses_ok), "%s: every step returns the expected status on every rank", tag);
  ok(!c->frags[0] || all(mentions(first_error, c->frags)), "%s: the error names the file:line and the cause",
     tag);
  luisa_finalize(lz);
  double took = now() - t0;
  ok(all(untouched), "%s: the published data are unchanged", tag);
  int heap = -1, got = rank == 0 ? reported(dir, &heap) : 0;
  MPI_Bcast(&got, 1, MPI_INT, 0, MPI_COMM_WORLD);
  ok(got == c->healthy, "%s: the healthy callback reported the exact sum at the expected steps (0x%x, "
     "expected 0x%x)", tag, got, c->healthy);
  int freed = rank != 0 || heap < 16 * 1024;   /* KiB: what a bomb took was given back */
  ok(all(freed), "%s: the Lua heap is back under 16 MiB after the failure (%d KiB)", tag, rank == 0 ? heap : 0);
  int good = rank != 0 || strcmp(c->name, "escapes") != 0 || escapes_ok(dir);
  ok(all(good) && took < c->seconds, "%s: %s in %.1f s (limit %.0f s)", tag,
     strcmp(c->name, "escapes") ? "the run ended" : "every escape was refused with file:line, no file written "
     "outside", took, c->seconds);
  MPI_Finalize();
  return 0;
}
