/* reload.c: hot reload of the analysis script, one case of t/026-reload.t
 * per run. Rank 0 rewrites the script (or a module beside it) at known
 * steps, or a rank asks through luisa_reload() or the signal; every rank
 * checks its statuses and what luisa_wants says, and rank 0 checks the
 * scripts' results (one line per step in $LUISA_TEST_OUT) against values
 * computed here. Only rank 0 is given the real script path: the others'
 * directory does not exist, so they can only run what rank 0 sends.
 * usage: reload CASE FIRST DIR   (t/data/reload/ holds the script versions) */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luisa.h"
#include "tap.h"

enum { ROWS = 8, COLS = 6, MAXSTEPS = 130, LINE = 1024 };

static int rank, size;
static const char *dir, *cname;
static char tag[64];
static int64_t off, rows;             /* this rank's row block */
static double data[2][ROWS * COLS];   /* T and U */

static double value(int arr, int64_t g, int64_t step)
{
  return arr == 0 ? (double)g + 0.5 * (double)step : 2.0 * (double)g - (double)step;
}

static double global_sum(int arr, int64_t step)
{
  double s = 0;
  for (int64_t g = 0; g < ROWS * COLS; g++)
    s += value(arr, g, step);
  return s;
}

static void copy_file(const char *from, const char *to)
{
  char tmp[1100], buf[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", to);
  FILE *in = fopen(from, "rb"), *out = fopen(tmp, "wb");
  size_t n;
  if (!in || !out) {
    fprintf(stderr, "reload: cannot copy %s to %s\n", from, to);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    fwrite(buf, 1, n, out);
  fclose(in);
  fclose(out);
  rename(tmp, to);   /* atomic, as editors save */
}

/* Rank 0 puts t/data/reload/NAME in place as DIR/AS. */
static void install(const char *name, const char *as)
{
  char from[1024], to[1024];
  if (rank != 0)
    return;
  snprintf(from, sizeof from, "t/data/reload/%s", name);
  snprintf(to, sizeof to, "%s/%s", dir, as);
  copy_file(from, to);
}

/* What a case does before luisa_step(step). */
typedef struct action {
  int64_t step;
  const char *script;   /* installed as live.lua */
  const char *helper;   /* installed as reload_helper.lua */
  int call_on;          /* rank calling luisa_reload (-1 none; size-1 when -2) */
  int signal_on;        /* rank raising SIGUSR1 (same coding) */
} action;

typedef struct run {
  int status[MAXSTEPS + 1];
  int first_u;          /* first step at which U was wanted here */
  int t_after_u;        /* T wanted at a step after U was */
  char error[MAXSTEPS + 1][LINE];
} run;

static int who(int coded)
{
  return coded == -2 ? size - 1 : coded;
}

/* Runs steps 1..nsteps with the first script and the actions. */
static void simulate(const char *first, int nsteps, const action *acts, int nacts, run *r,
                     int every_step_reload)
{
  char path[1024];
  install(first, "live.lua");
  install("reload_helper.lua", "reload_helper.lua");
  snprintf(path, sizeof path, rank == 0 ? "%s/live.lua" : "%s/not-shared/live.lua", dir);
  MPI_Barrier(MPI_COMM_WORLD);
  luisa_options o = luisa_options_default();
  o.script = path;
  o.log_level = LUISA_LOG_INFO;
  o.trusted = 1;   /* the scripts keep an FFI array in luisa.state */
  luisa *lz;
  int s = luisa_init(MPI_COMM_WORLD, &o, &lz);
  if (s != LUISA_OK)
    fprintf(stderr, "reload[%d]: luisa_init: %s\n", rank, luisa_error(lz));
  int64_t shape[2] = { ROWS, COLS }, o2[2] = { off, 0 }, s2[2] = { rows, COLS };
  luisa_array(lz, "T", LUISA_F64, 2, shape);
  luisa_array(lz, "U", LUISA_F64, 2, shape);
  luisa_chunk(lz, "T", o2, s2, NULL);
  luisa_chunk(lz, "U", o2, s2, NULL);
  r->first_u = 0;
  r->t_after_u = 0;
  for (int64_t step = 1; step <= nsteps; step++) {
    for (int k = 0; k < nacts; k++)
      if (acts[k].step == step) {
        if (acts[k].script)
          install(acts[k].script, "live.lua");
        if (acts[k].helper)
          install(acts[k].helper, "reload_helper.lua");
        if (acts[k].call_on != -1 && who(acts[k].call_on) == rank && luisa_reload(lz) != LUISA_OK)
          fprintf(stderr, "reload[%d]: luisa_reload: %s\n", rank, luisa_error(lz));
        if (acts[k].signal_on != -1 && who(acts[k].signal_on) == rank)
          raise(SIGUSR1);
      }
    if (every_step_reload && rank == 0 && step > 1)
      luisa_reload(lz);
    for (int a = 0; a < 2; a++) {
      int wanted = 1;
      luisa_wants(lz, a ? "U" : "T", -1, step, &wanted);
      if (a == 1 && wanted && !r->first_u && step > 1)   /* before the first step, all is wanted */
        r->first_u = (int)step;
      if (a == 0 && wanted && r->first_u)
        r->t_after_u = 1;
      if (!wanted)
        continue;
      for (int64_t i = 0; i < rows * COLS; i++)
        data[a][i] = value(a, off * COLS + i, step);
      luisa_publish(lz, a ? "U" : "T", 0, data[a]);
    }
    r->status[step] = luisa_step(lz, step);
    snprintf(r->error[step], LINE, "%s", r->status[step] == LUISA_OK ? "" : luisa_error(lz));
    if (every_step_reload && (step == 20 || step == nsteps)) {
      /* the process's heap (malloc) and data segment, at a step when a reload just happened */
      struct mallinfo2 mi = mallinfo2();
      long vm = 0;
      char line[256];
      FILE *f = fopen("/proc/self/status", "r");
      while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmData:", 7))
          vm = atol(line + 7);
      if (f)
        fclose(f);
      static double heap0, vm0;
      double heap = (double)(mi.uordblks + mi.hblkhd), growth[2] = { heap - heap0, (double)vm * 1024 - vm0 }, max[2];
      if (step == 20) {
        heap0 = heap;
        vm0 = (double)vm * 1024;
      } else {
        MPI_Allreduce(growth, max, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
#if defined(__SANITIZE_ADDRESS__)
        const char *skip = "ASan keeps freed memory in quarantine";
#else
        const char *skip = getenv("LUISA_VALGRIND") ? "valgrind replaces malloc and checks leaks itself" : NULL;
#endif
        if (skip) {
          ok(1, "%s: # SKIP %s: heap growth not measured", tag, skip);
          ok(1, "%s: # SKIP %s: data segment growth not measured", tag, skip);
        } else {
          /* The Lua state (~400 KiB) lives in this heap and moves with its
           * collector's timing (checked within 20 % below); a reload leaking
           * a plan or a state would add more than this at every step. */
          ok(max[0] < 128 * 1024, "%s: the malloc heap grew %.0f bytes from step 20 to %d (< 128 KiB on every rank)",
             tag, max[0], nsteps);
          ok(max[1] < 4 * 1024 * 1024, "%s: the data segment grew %.0f bytes from step 20 to %d (< 4 MiB)", tag,
             max[1], nsteps);
        }
      }
    }
  }
  luisa_finalize(lz);
}

/* Statuses: `bad_step` (0: none) returned LUISA_WARN_SCRIPT on every rank,
 * every other step LUISA_OK. */
static void check_statuses(const run *r, int nsteps, int bad_step)
{
  int wrong = 0;
  for (int s = 1; s <= nsteps; s++)
    if (r->status[s] != (s == bad_step ? LUISA_WARN_SCRIPT : LUISA_OK)) {
      if (!wrong)
        fprintf(stderr, "reload[%d]: step %d returned %d: %s\n", rank, s, r->status[s], r->error[s]);
      wrong++;
    }
  int any;
  MPI_Allreduce(&wrong, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (bad_step)
    ok(!any, "%s: step %d returned LUISA_WARN_SCRIPT on every rank, every other step LUISA_OK", tag, bad_step);
  else
    ok(!any, "%s: every step returned LUISA_OK on every rank", tag);
}

/* One assertion that `says` holds on every rank, showing rank 0's error if not. */
static void every_rank_says(int says, const char *error, const char *what)
{
  int all;
  MPI_Allreduce(&says, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!ok(all, "%s: every rank's error: %s", tag, what))
    tap_print("#   rank 0's: %s\n", error);
}

/* The results file: line per step "step tag value loads n hist0 fgone". */
typedef struct result {
  char tag[8], value[32];
  int loads, n, hist, fgone;
  long objects, bytes;
  double luamem;
} result;

static int read_results(result *res, int nsteps)
{
  char path[1024], line[LINE];
  snprintf(path, sizeof path, "%s/out", dir);
  FILE *f = fopen(path, "r");
  int count = 0;
  memset(res, 0, (size_t)(nsteps + 1) * sizeof *res);
  while (f && fgets(line, sizeof line, f)) {
    int step;
    char t[8], fg[8] = "";
    result x;
    memset(&x, 0, sizeof x);
    if (sscanf(line, "%d %7s", &step, t) != 2 || step < 1 || step > nsteps)
      continue;
    if (t[0] == 'W')
      sscanf(line, "%*d %*s %31s %ld %ld %d %lf", x.value, &x.objects, &x.bytes, &x.loads, &x.luamem);
    else if (t[0] == 'N')
      sscanf(line, "%*d %*s %31s %ld %ld", x.value, &x.objects, &x.bytes);
    else
      sscanf(line, "%*d %*s %31s %d %d %d %7s", x.value, &x.loads, &x.n, &x.hist, fg);
    snprintf(x.tag, sizeof x.tag, "%s", t);
    x.fgone = !strcmp(fg, "true");
    if (!res[step].tag[0])
      count++;
    res[step] = x;
  }
  if (f)
    fclose(f);
  return count;
}

/* Runs a case whose steps must all return LUISA_OK; on rank 0, reads its
 * results and returns 1. */
static int run_plain(const char *first, int nsteps, const action *acts, int nacts, int every_step_reload,
                     result *res)
{
  static run r;
  simulate(first, nsteps, acts, nacts, &r, every_step_reload);
  check_statuses(&r, nsteps, 0);
  if (rank != 0)
    return 0;
  read_results(res, nsteps);
  return 1;
}

/* Steps from..to ran `want_tag` and gave the exact sum of array arr. */
static int sums_are(const result *res, int from, int to, const char *want_tag, int arr)
{
  for (int s = from; s <= to; s++) {
    char want[32];
    snprintf(want, sizeof want, "%.17g", global_sum(arr, s));
    if (strcmp(res[s].tag, want_tag) || strcmp(res[s].value, want)) {
      tap_print("#   step %d: got %s %s, expected %s %s\n", s, res[s].tag, res[s].value, want_tag, want);
      return 0;
    }
  }
  return 1;
}

/* Cases 1-2: A runs, then a change makes B run from step `from`. */
static void switch_case(const action *acts, int nacts, int from, const char *what)
{
  enum { N = 12 };
  run r;
  result res[N + 1];
  simulate("a.lua", N, acts, nacts, &r, 0);
  check_statuses(&r, N, 0);
  int lo, hi, t_late;
  MPI_Allreduce(&r.first_u, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&r.first_u, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(&r.t_after_u, &t_late, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  ok(lo == from && hi == from && !t_late, "%s: luisa_wants switched from T to U at step %d on every rank "
     "(first U: %d to %d)", tag, from, lo, hi);
  if (rank != 0)
    return;
  int lines = read_results(res, N);
  ok(lines == N, "%s: one result per step, none lost (%d of %d)", tag, lines, N);
  ok(sums_are(res, 1, from - 1, "A", 0), "%s: steps 1-%d ran the first version (sum of T, exact)", tag, from - 1);
  ok(sums_are(res, from, N, "B", 1), "%s: %s: steps %d-%d ran the new version (sum of U, exact)", tag, what, from,
     N);
  int carried = 1;
  for (int s = 1; s <= N; s++)
    carried &= res[s].n == s && res[s].hist == s && res[s].loads == (s < from ? 1 : 2) && res[s].fgone == (s >= from);
  ok(carried, "%s: luisa.state carried over: a count and an FFI array go on (n = step), loads 1 then 2, "
     "the function left out", tag);
}

/* Cases 3-6: a broken version written before step 3 is refused at the end
 * of step 4 on every rank; version B written before step 8 runs from 10. */
static void broken_case(const char *script, const char *const *mentions)
{
  enum { N = 12 };
  action acts[] = { { 3, script, NULL, -1, -1 }, { 8, "b.lua", NULL, -1, -1 } };
  run r;
  result res[N + 1];
  simulate("a.lua", N, acts, 2, &r, 0);
  check_statuses(&r, N, 4);
  int says = strstr(r.error[4], "was not reloaded, the previous version goes on") != NULL;
  for (const char *const *m = mentions; *m; m++)
    says &= strstr(r.error[4], *m) != NULL;
  every_rank_says(says, r.error[4], "the reload failed, where and why");
  if (rank != 0)
    return;
  int lines = read_results(res, N);
  ok(lines == N, "%s: one result per step, none lost (%d of %d)", tag, lines, N);
  ok(sums_are(res, 1, 9, "A", 0), "%s: the old version ran on through step 9", tag);
  ok(sums_are(res, 10, N, "B", 1) && res[10].loads == 2 && res[10].n == 10,
     "%s: the fixed version runs from step 10 with the state of the old", tag);
}

/* Case 7: windows survive a reload that keeps them, go with one that does not. */
static void window_case(void)
{
  enum { N = 12 };
  action acts[] = { { 5, "win.lua", NULL, -2, -1 }, { 9, "nowin.lua", NULL, -1, -1 } };
  result res[N + 1];
  if (!run_plain("win.lua", N, acts, 2, 0, res))
    return;
  int diffs = !strcmp(res[1].value, "nil") && !strcmp(res[1].tag, "W");
  for (int s = 2; s <= 10; s++)
    diffs &= !strcmp(res[s].tag, "W") && !strcmp(res[s].value, "24") && res[s].loads == (s < 7 ? 1 : 2);
  ok(diffs, "%s: T - T:prev(1) sums to 24 at steps 2-10, through the reload at the end of step 6 "
     "(the window survived)", tag);
  long version_bytes = rows * COLS * 8;
  int held = 1;
  for (int s = 2; s <= 10; s++)
    held &= res[s].objects == 1 && res[s].bytes >= version_bytes;
  for (int s = 11; s <= N; s++)
    held &= !strcmp(res[s].tag, "N") && res[s].objects == 0 && res[s].bytes == 0;
  ok(held, "%s: rank 0's store holds 1 version while windowed, nothing once the new version has no window", tag);
}

/* Cases 8-9: a request by luisa_reload or the signal on the last rank,
 * before step 4, reloads every rank at the end of step 5. */
static void request_case(int by_signal)
{
  enum { N = 9 };
  action acts[] = { { 4, NULL, NULL, by_signal ? -1 : -2, by_signal ? -2 : -1 } };
  result res[N + 1];
  if (!run_plain("a.lua", N, acts, 1, 0, res))
    return;
  int loads = 1;
  for (int s = 1; s <= N; s++)
    loads &= res[s].loads == (s < 6 ? 1 : 2) && res[s].n == s;
  ok(loads && sums_are(res, 1, N, "A", 0), "%s: %s on rank %d before step 4 reloads every rank at the end of "
     "step 5, state kept", tag, by_signal ? "SIGUSR1" : "luisa_reload()", size - 1);
}

/* Case 10: a reload at the end of every step leaks nothing. */
static void leak_case(void)
{
  enum { N = 120 };
  result res[N + 1];
  if (!run_plain("win.lua", N, NULL, 0, 1, res))
    return;
  int right = 1;
  for (int s = 2; s <= N; s++)
    right &= !strcmp(res[s].value, "24");
  /* asked before each step from 2 on, done at the end of the next: by step N's result, N - 3 */
  ok(right && res[N].loads == N - 2, "%s: %d reloads, every step's result right", tag, res[N].loads - 1);
  ok(res[20].objects == res[N].objects && res[20].bytes == res[N].bytes && res[N].objects == 1,
     "%s: the store holds as much after the last reload as at step 20 (%ld objects, %ld bytes)", tag,
     res[N].objects, res[N].bytes);
  double lua0 = res[20].luamem, lua1 = res[N].luamem;
  ok(lua1 < 1.2 * lua0 && lua1 > 0.8 * lua0, "%s: the Lua state's memory at step %d is %.0f bytes, at step 20 %.0f",
     tag, N, lua1, lua0);
}

/* Case 11: a module beside the script changes: rank 0 notices, sends it;
 * then it is saved broken: refused, the message names the module's line
 * and the require, without the engine's own frames. */
static void module_case(void)
{
  enum { N = 12 };
  action acts[] = { { 5, NULL, "reload_helper2.lua", -1, -1 }, { 9, NULL, "reload_helper_broken.lua", -1, -1 } };
  static run r;
  result res[N + 1];
  simulate("a.lua", N, acts, 2, &r, 0);
  check_statuses(&r, N, 10);
  int says = strstr(r.error[10], "reload_helper.lua:3: unexpected symbol") && strstr(r.error[10], "live.lua:6:")
             && !strstr(r.error[10], "[C]: at 0x");
  every_rank_says(says, r.error[10], "a module saved broken is refused, naming its file:line and the require's");
  if (rank != 0)
    return;
  read_results(res, N);
  int right = sums_are(res, 1, 6, "A", 0);
  for (int s = 7; s <= N; s++)
    right &= !strcmp(res[s].tag, "A2");
  ok(right, "%s: a changed module beside the script is reloaded at the end of step 6 on every rank", tag);
}

/* Case 12: a version that calls luisa.off() is taken: nothing is reported
 * until the next version, which finds luisa.state as the first left it. */
static void off_case(void)
{
  enum { N = 12 };
  action acts[] = { { 3, "off.lua", NULL, -1, -1 }, { 8, "b.lua", NULL, -1, -1 } };
  result res[N + 1];
  if (!run_plain("a.lua", N, acts, 2, 0, res))
    return;
  int quiet = 1;
  for (int s = 5; s <= 9; s++)
    quiet &= !res[s].tag[0];
  ok(sums_are(res, 1, 4, "A", 0) && quiet && sums_are(res, 10, N, "B", 1) && res[10].loads == 2,
     "%s: a version calling luisa.off() is taken at the end of step 4: nothing reported at steps 5-9, then the "
     "next version from step 10, with the first one's state", tag);
}

int main(int argc, char **argv)
{
  tap_mpi_init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  if (argc != 4 || !getenv("LUISA_TEST_OUT")) {
    tap_print("not ok - usage: LUISA_TEST_OUT=PATH reload CASE FIRST DIR\n");
    MPI_Finalize();
    return 1;
  }
  cname = argv[1];
  tap_count = atoi(argv[2]) - 1;
  dir = argv[3];
  snprintf(tag, sizeof tag, "%s, %d rank%s", cname, size, size > 1 ? "s" : "");
  off = rank == 0 ? 0 : ROWS * rank / size + 1;   /* uneven: 5 + 3 rows on 2 ranks, 3 + 2 + 2 + 1 on 4 */
  rows = (rank == size - 1 ? ROWS : ROWS * (rank + 1) / size + 1) - off;

  char on_last[32] = "";
  if (size > 1)
    snprintf(on_last, sizeof on_last, "on rank %d: ", size - 1);
  if (!strcmp(cname, "switch")) {
    action acts[] = { { 5, "b.lua", NULL, -1, -1 } };
    switch_case(acts, 1, 7, "the script rewritten before step 5");
  } else if (!strcmp(cname, "syntax")) {
    broken_case("syntax.lua", (const char *[]){ "live.lua:2:", "unexpected symbol", size > 1 ? "on every rank" : "",
                                                NULL });
  } else if (!strcmp(cname, "load_error")) {
    broken_case("load_error.lua", (const char *[]){ "live.lua:3: boom at load", NULL });
  } else if (!strcmp(cname, "rank_error")) {
    broken_case("rank_error.lua", (const char *[]){ on_last, "live.lua:2: only on the last rank", NULL });
  } else if (!strcmp(cname, "compile_error")) {
    broken_case("compile_error.lua", (const char *[]){ "live.lua:2:", "NOPE", NULL });
  } else if (!strcmp(cname, "diverge")) {
    broken_case("diverge.lua", (const char *[]){ "callback 1 (registered at ", "live.lua:7) differs on rank",
                                                 "from rank 0's: a script must build the same analysis on every rank",
                                                 NULL });
  } else if (!strcmp(cname, "empty")) {
    broken_case("empty.lua", (const char *[]){ "live.lua was not reloaded", "it registers no analysis",
                                               "call luisa.off() in it to turn analytics off on purpose", NULL });
  } else if (!strcmp(cname, "off")) {
    off_case();
  } else if (!strcmp(cname, "window")) {
    window_case();
  } else if (!strcmp(cname, "call")) {
    request_case(0);
  } else if (!strcmp(cname, "signal")) {
    request_case(1);
  } else if (!strcmp(cname, "leak")) {
    leak_case();
  } else if (!strcmp(cname, "module")) {
    module_case();
  } else {
    tap_print("not ok - unknown case %s\n", cname);
  }
  MPI_Finalize();
  return 0;
}
