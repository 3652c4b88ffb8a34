/* diverge.c: ranks that disagree are told, never hang, never mix numbers.
 * Runs one case of t/029-diverge.t: a plan that depends on the rank, a
 * simulation that passes different steps, skips a call, sets the script on
 * some ranks only, or finalizes early; every rank checks its statuses and
 * luisa_error, rank 0 the log and the scripts' results.
 * usage: diverge CASE FIRST   (FIRST: number of its first TAP line) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luisa.h"
#include "tap.h"

enum { ROWS = 8, COLS = 6, NSTEPS = 5, TEXT = 1 << 16 };

static int rank, size;
static char tag[64];
static const char *out_path;
static int64_t off, rows;                 /* this rank's row block of A */
static double data[ROWS * COLS], copy[ROWS * COLS];
static int broken;                         /* a call refused or data changed */

/* Multiples of 1/4: every sum is exact in any order. */
static double value(int64_t g, int64_t step)
{
  return (double)g + 0.25 * (double)step;
}

/* Over rows lo..hi-1 of A: 's' sum, 'x' max. */
static double reference(char kind, int64_t lo, int64_t hi, int64_t step)
{
  double r = kind == 's' ? 0 : value(lo * COLS, step);
  for (int64_t g = lo * COLS; g < hi * COLS; g++)
    r = kind == 's' ? r + value(g, step) : value(g, step) > r ? value(g, step) : r;
  return r;
}

static const char *status_name(int s)
{
  switch (s) {
  case LUISA_OK: return "LUISA_OK";
  case LUISA_WARN_SCRIPT: return "LUISA_WARN_SCRIPT";
  case LUISA_ERR_ARG: return "LUISA_ERR_ARG";
  case LUISA_ERR_STEP: return "LUISA_ERR_STEP";
  case LUISA_ERR_TIMEOUT: return "LUISA_ERR_TIMEOUT";
  default: return "another status";
  }
}

/* One assertion: every rank got `want`. */
static void expect_status(luisa *lz, int got, int want, const char *what)
{
  int lo = got, hi = got;
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (!ok(lo == want && hi == want, "%s: %s returns %s on every rank", tag, what, status_name(want))) {
    tap_print("#   statuses from %d to %d across ranks, expected %d\n", lo, hi, want);
    if (lz)
      tap_note("rank 0 says: ", luisa_error(lz));
  }
}

/* One assertion: `says` holds on every rank; else the first rank's text. */
static void every_rank(int says, const char *text, const char *what)
{
  int bad = says ? size : rank;
  MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (ok(bad == size, "%s: %s on every rank", tag, what)) {
    tap_note("rank 0's: ", text);
    return;
  }
  static char shown[TEXT];
  int len = (int)strnlen(text, TEXT - 1);
  MPI_Bcast(&len, 1, MPI_INT, bad, MPI_COMM_WORLD);
  memcpy(shown, text, rank == bad ? (size_t)len : 0);
  MPI_Bcast(shown, len, MPI_CHAR, bad, MPI_COMM_WORLD);
  shown[len] = '\0';
  tap_print("#   not so on rank %d:\n", bad);
  tap_note("", shown);
}

/* Whether text holds every fragment (a NULL-terminated list). */
#define has_all(text, ...) contains(text, (const char *[]){ __VA_ARGS__, NULL })
static int contains(const char *text, const char **frags)
{
  for (; *frags; frags++)
    if (!strstr(text, *frags))
      return 0;
  return 1;
}

/* Every rank's stderr goes to $LUISA_TEST_OUT.log.RANK (see main). */
static void read_logs(char *text, size_t cap)
{
  size_t n = 0;
  text[0] = '\0';
  for (int r = 0; r < size; r++) {
    char path[4096];
    snprintf(path, sizeof path, "%s.log.%d", out_path, r);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    n += fread(text + n, 1, cap - 1 - n, f);
    text[n] = '\0';
    fclose(f);
  }
}

/* One assertion: the logs hold `lines` lines with `head` and every fragment. */
#define expect_log(what, head, lines, ...) log_has(what, head, lines, (const char *[]){ __VA_ARGS__, NULL })
static void log_has(const char *what, const char *head, int lines, const char **frags)
{
  static char text[TEXT];
  fflush(stderr);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0)
    read_logs(text, sizeof text);
  int n = tap_log_lines(text, head);
  int all = contains(text, frags);
  if (!ok(rank != 0 || (n == lines && all), "%s: the log %s", tag, what)) {
    tap_print("#   %d lines starting \"%s\", expected %d\n", n, head, lines);
    tap_note("the log: ", text);
  }
}

/* Results the scripts wrote on rank 0: "step key value" lines. */
static struct {
  long long step;
  char key[32];
  double v;
} results[256];
static int nresults;

/* One assertion: `key` reported at exactly the steps of `mask` (bit s for
 * step s), each exact against reference(kind, lo, hi). */
static void expect_results(const char *key, char kind, int64_t lo, int64_t hi, unsigned mask)
{
  char diag[2048] = "";
  size_t d = 0;
  for (int s = 0; s <= NSTEPS && rank == 0; s++) {
    int seen = 0;
    double want = reference(kind, lo, hi, s);
    for (int i = 0; i < nresults; i++)
      if (results[i].step == s && !strcmp(results[i].key, key)) {
        seen++;
        if (results[i].v != want && d < sizeof diag)
          d += (size_t)snprintf(diag + d, sizeof diag - d, "#   step %d: %s = %.17g, expected %.17g\n", s, key,
                                results[i].v, want);
      }
    if (seen != (int)(mask >> s & 1) && d < sizeof diag)
      d += (size_t)snprintf(diag + d, sizeof diag - d, "#   step %d: %s reported %d times, expected %d\n", s, key,
                            seen, (int)(mask >> s & 1));
  }
  if (!ok(!diag[0], "%s: %s %s (steps 0x%x)", tag, key, mask ? "is exact where expected" : "is never reported",
          mask))
    tap_print("%s", diag);
}

/* luisa_init on `script` (NULL: none) and the declaration of A. One assertion. */
static luisa *start(const char *script, int want)
{
  luisa_options o = luisa_options_default();
  o.script = script;
  luisa *lz = NULL;
  int st = luisa_init(MPI_COMM_WORLD, &o, &lz);
  expect_status(lz, lz || st != LUISA_OK ? st : -1, want, "luisa_init");
  if (!lz)
    return NULL;
  int64_t shape[2] = { ROWS, COLS }, o2[2] = { off, 0 }, s2[2] = { rows, COLS };
  broken += luisa_array(lz, "A", LUISA_F64, 2, shape) != LUISA_OK;
  broken += luisa_chunk(lz, "A", o2, s2, NULL) != LUISA_OK;
  return lz;
}

/* Publish A as at iteration `it` and call luisa_step(step); the engine must
 * leave the data alone. Returns the status. */
static int step_at(luisa *lz, int64_t it, int64_t step)
{
  for (int64_t i = 0; i < rows * COLS; i++)
    data[i] = copy[i] = value(off * COLS + i, it);
  broken += luisa_publish(lz, "A", 0, data) != LUISA_OK;
  int st = luisa_step(lz, step);
  broken += memcmp(data, copy, sizeof data) != 0;
  return st;
}

/* One assertion per step. */
static void step(luisa *lz, int64_t s, int want)
{
  char what[64];
  snprintf(what, sizeof what, "luisa_step(%lld)", (long long)s);
  expect_status(lz, step_at(lz, s, s), want, what);
}

static void load_results(void)
{
  nresults = 0;
  FILE *f = rank == 0 ? fopen(out_path, "r") : NULL;
  while (f && nresults < 256 &&
         fscanf(f, "%lld %31s %lf", &results[nresults].step, results[nresults].key, &results[nresults].v) == 3)
    nresults++;
  if (f)
    fclose(f);
}

/* End of a case: data and declarations, then the results. One assertion. */
static void finish(void)
{
  MPI_Allreduce(MPI_IN_PLACE, &broken, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  ok(!broken, "%s: every declaration and publish accepted, the simulation's data untouched", tag);
  load_results();
}

/* " on rank 1" or " on ranks 1, 2, 3": the ranks other than 0. */
static const char *others(void)
{
  static char text[64];
  snprintf(text, sizeof text, size == 2 ? " on rank 1" : " on ranks 1, 2, 3");
  return text;
}

/* Cases. Line numbers are those of the fixtures in t/data/diverge/. */

/* Callback 1 depends on the rank: disabled on every rank at the first
 * step, callback 2 exact throughout. 11 assertions. */
static void plan_case(const char *script, int line)
{
  char where[128], differs[256];
  snprintf(where, sizeof where, "callback 1 (registered at %s:%d) differs%s from rank 0's", script, line, others());
  snprintf(differs, sizeof differs, "luisa_step(1): %s, so it is disabled on every rank: ", where);
  luisa *lz = start(script, LUISA_OK);
  step(lz, 1, LUISA_WARN_SCRIPT);
  const char *e = luisa_error(lz);
  every_rank(has_all(e, differs, "a script must build the same analysis on every rank (rank-dependent periods, "
                     "statistics or shapes are refused)"), e, "luisa_error names the callback, its line and the ranks");
  for (int s = 2; s <= NSTEPS; s++)
    step(lz, s, LUISA_OK);
  luisa_finalize(lz);
  finish();
  expect_results("div", 's', 0, ROWS, 0);
  expect_results("maxA", 'x', 0, ROWS, 0x3e);
  expect_log("tells the divergence once, on rank 0", "luisa[", 1, "luisa[0] ", where);
}

static void case_period(void) { plan_case("t/data/diverge/period.lua", 8); }
static void case_stats(void) { plan_case("t/data/diverge/stats.lua", 10); }
static void case_scaled(void) { plan_case("t/data/diverge/scaled.lua", 9); }
static void case_slice(void) { plan_case("t/data/diverge/slice.lua", 9); }

/* The region moves at step 2 into a plan that differs on rank 0: refused,
 * the old plan (rows 0-3) goes on. 10 assertions. */
static void case_region(void)
{
  const char *script = "t/data/diverge/region.lua";
  char where[256];
  snprintf(where, sizeof where, "callback 1 (registered at %s:9) differs%s from rank 0's", script, others());
  luisa *lz = start(script, LUISA_OK);
  step(lz, 1, LUISA_OK);
  step(lz, 2, LUISA_WARN_SCRIPT);
  const char *e = luisa_error(lz);
  every_rank(has_all(e, "luisa_step(2): the plan for the moved region does not compile: ", where,
                     ": a script must build the same analysis on every rank"), e,
             "luisa_error says the moved region's plan differs, naming the callback and the ranks");
  for (int s = 3; s <= NSTEPS; s++)
    step(lz, s, LUISA_OK);
  luisa_finalize(lz);
  finish();
  expect_results("sumR", 's', 0, 4, 0x3e);
  expect_log("tells it once, on rank 0", "luisa[", 1, "luisa[0] ", "the old one goes on", where);
}

/* Rank 1 passes step + 1: found at the first step, nothing combined,
 * analytics off. 11 assertions. */
static void case_steps(void)
{
  luisa *lz = start("t/data/diverge/sum.lua", LUISA_OK);
  for (int64_t it = 1; it <= NSTEPS; it++) {
    char what[64];
    snprintf(what, sizeof what, "luisa_step at iteration %lld", (long long)it);
    expect_status(lz, step_at(lz, it, it + (rank == 1)), it == 1 ? LUISA_ERR_STEP : LUISA_OK, what);
    if (it == 1) {
      const char *e = luisa_error(lz);
      char groups[128];
      snprintf(groups, sizeof groups, size == 2 ? "(rank 0 at 1; rank 1 at 2)" : "(ranks 0, 2, 3 at 1; rank 1 at 2)");
      every_rank(has_all(e, "ranks passed different step numbers to luisa_step: from 1 to 2 ", groups,
                         "analytics are off on every rank"), e, "luisa_error gives the steps and the ranks");
    }
  }
  int wanted = 1;
  luisa_wants(lz, "A", -1, NSTEPS + 1, &wanted);
  every_rank(!wanted, wanted ? "A is wanted" : "A is not wanted", "luisa_wants says A is not wanted any more");
  luisa_finalize(lz);
  finish();
  expect_results("sumA", 's', 0, ROWS, 0);
  expect_log("tells it once, on rank 0", "luisa[", 1, "luisa[0] ", "from 1 to 2");
}

/* The last rank skips luisa_step(3): its call at 4 meets the others' at 3.
 * 10 assertions. */
static void case_skip(void)
{
  luisa *lz = start("t/data/diverge/sum.lua", LUISA_OK);
  int last = rank == size - 1, call = 0;
  for (int64_t s = 1; s <= NSTEPS; s++) {
    if (last && s == 3)
      continue;
    char what[64];
    snprintf(what, sizeof what, "call %d (step %s)", call + 1, call < 2 ? (s == 1 ? "1" : "2")
             : call == 2 ? "3, the last rank's 4" : call == 3 ? "4, the last rank's 5" : "5");
    expect_status(lz, step_at(lz, s, s), call == 2 ? LUISA_ERR_STEP : LUISA_OK, what);
    if (call == 2) {
      const char *e = luisa_error(lz);
      char groups[128];
      snprintf(groups, sizeof groups, size == 2 ? "(rank 0 at 3; rank 1 at 4)" : "(ranks 0-2 at 3; rank 3 at 4)");
      every_rank(has_all(e, "ranks passed different step numbers to luisa_step: from 3 to 4 ", groups), e,
                 "luisa_error gives the steps and the ranks");
    }
    if (++call == 4 && last)   /* the others' fifth call */
      expect_status(lz, LUISA_OK, LUISA_OK, "call 5 (step 5)");
  }
  luisa_finalize(lz);
  finish();
  expect_results("sumA", 's', 0, ROWS, 0x06);
  expect_log("tells it once, on rank 0", "luisa[", 1, "luisa[0] ", "from 3 to 4");
}

/* opts.script NULL on rank 1: every rank refuses. 3 assertions. */
static void case_some_script(void)
{
  luisa *lz = start(rank == 1 ? NULL : "t/data/diverge/sum.lua", LUISA_ERR_ARG);
  every_rank(lz == NULL, lz ? "a context" : "no context", "luisa_init gives no context");
  char set[128];
  snprintf(set, sizeof set, "is set on %s but not on rank 1: set it on every rank or on none",
           size == 2 ? "rank 0" : "ranks 0, 2, 3");
  expect_log("says on every rank's stderr which ranks set it", "luisa_init: ", size,
             "luisa_init: opts->script (or LUISA_SCRIPT) ", set);
  luisa_finalize(lz);
}

/* Which ranks a timeout report says did not answer includes `r`. */
static int not_answered(const char *e, int r)
{
  const char *end = strstr(e, " did not answer");
  if (!end)
    return 0;
  const char *p = end;
  while (p > e && strncmp(p, "; rank", 6) && strncmp(p, "): rank", 7))
    p--;
  for (p = strstr(p, "rank"); p && p < end; p++) {
    char *next;
    long lo = strtol(p, &next, 10), hi = lo;
    if (next == p)
      continue;
    if (*next == '-')
      hi = strtol(next + 1, &next, 10);
    if (r >= lo && r <= hi)
      return 1;
    p = next - 1;
  }
  return 0;
}

/* With LUISA_TIMEOUT=2 (20 under valgrind, whose steps can take that long)
 * the last rank finalizes after step 3: the others' step 4 gives up in a
 * bounded time, naming it. 12 assertions. */
static void case_finalize_early(void)
{
  int slow = getenv("LUISA_VALGRIND") != NULL;
  double limit = slow ? 20 : 2, bound = slow ? 120 : 10;
  char waited[128], told[32];
  snprintf(waited, sizeof waited, "luisa_step(4): no progress in %g s waiting for the ", limit);
  snprintf(told, sizeof told, "no progress in %g s", limit);
  setenv("LUISA_TIMEOUT", slow ? "20" : "2", 1);
  luisa *lz = start("t/data/diverge/sum.lua", LUISA_OK);
  int last = rank == size - 1;
  for (int s = 1; s <= 3; s++)
    step(lz, s, LUISA_OK);
  if (last) {
    luisa_finalize(lz);
    lz = NULL;
  }
  double t0 = MPI_Wtime();
  int st = last ? LUISA_ERR_TIMEOUT : step_at(lz, 4, 4);
  double most = MPI_Wtime() - t0;
  expect_status(lz, st, LUISA_ERR_TIMEOUT, "luisa_step(4) on the ranks left");
  MPI_Allreduce(MPI_IN_PLACE, &most, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  ok(most >= limit && most < bound, "%s: it took %.1f s at most on a rank (%g s to %g s)", tag, most, limit, bound);
  const char *e = last ? "" : luisa_error(lz);
  every_rank(last || (has_all(e, waited, "(opts.timeout_s, "
                             "LUISA_TIMEOUT)", "; analytics are off on this rank") &&
                     (strstr(e, "the reductions") || strstr(e, "the root's verdict"))), e,
             "luisa_error says what it waited for, how long, and that analytics are off (but the last rank's)");
  every_rank(last || not_answered(e, size - 1), e, "luisa_error names the last rank as one that did not answer");
  expect_status(lz, last ? LUISA_OK : step_at(lz, 5, 5), LUISA_OK, "luisa_step(5) on the ranks left");
  if (!last)
    luisa_finalize(lz);
  finish();
  expect_results("sumA", 's', 0, ROWS, 0x0e);
  expect_log("has each waiting rank's report", "luisa[", size - 1, told);
}

/* A callback raises at step 0, the first step: luisa_error tells it. 10 assertions. */
static void case_step0(void)
{
  luisa *lz = start("t/data/diverge/step0.lua", LUISA_OK);
  /* The script never steers: every rank hears of the error at the next step. */
  step(lz, 0, LUISA_OK);
  step(lz, 1, LUISA_WARN_SCRIPT);
  const char *e = luisa_error(lz);
  every_rank(has_all(e, "luisa_step(0): callback disabled: ", "registered at t/data/diverge/step0.lua:8",
                     "t/data/diverge/step0.lua:9: fails at step 0"), e, "luisa_error tells the failure of step 0");
  for (int s = 2; s < NSTEPS; s++)
    step(lz, s, LUISA_OK);
  luisa_finalize(lz);
  finish();
  expect_results("div", 's', 0, ROWS, 0);
  expect_results("maxA", 'x', 0, ROWS, 0x1f);
}

static const struct {
  const char *name;
  void (*run)(void);
} cases[] = {
  { "period", case_period }, { "stats", case_stats }, { "scaled", case_scaled }, { "slice", case_slice },
  { "region", case_region }, { "steps", case_steps }, { "skip", case_skip }, { "some_script", case_some_script },
  { "finalize_early", case_finalize_early }, { "step0", case_step0 },
};

int main(int argc, char **argv)
{
  tap_mpi_init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  int found = -1;
  for (int i = 0; argc == 3 && i < (int)(sizeof cases / sizeof cases[0]); i++)
    if (!strcmp(argv[1], cases[i].name))
      found = i;
  out_path = getenv("LUISA_TEST_OUT");
  if (found < 0 || !out_path) {
    tap_print("not ok - usage: LUISA_TEST_OUT=PATH diverge CASE FIRST (CASE: a name in t/diverge.c)\n");
    MPI_Finalize();
    return 1;
  }
  tap_count = atoi(argv[2]) - 1;
  snprintf(tag, sizeof tag, "%s, %d rank%s", argv[1], size, size > 1 ? "s" : "");
  off = ROWS * rank / size;
  rows = ROWS * (rank + 1) / size - off;
  char path[4096];
  snprintf(path, sizeof path, "%s.log.%d", out_path, rank);
  if (!freopen(path, "w", stderr)) {
    tap_print("not ok - cannot redirect stderr to %s\n", path);
    MPI_Finalize();
    return 1;
  }
  cases[found].run();
  MPI_Finalize();
  return rank == 0 && tap_failed;
}
