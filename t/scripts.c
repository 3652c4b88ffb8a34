/* scripts.c: a bad analysis script never stops the simulation. Runs one case
 * of t/012-scripts.t and checks statuses, messages, the log, data and results.
 * usage: scripts CASE FIRST   (FIRST: number of its first TAP line; every case
 * prints a fixed number of lines on rank 0, listed in t/012-scripts.t) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "luisa.h"
#include "tap.h"

enum { NSTEPS = 5, NARRAYS = 3, MAXCHUNKS = 3 * 8, TEXT = 1 << 16 };

static int rank, size;
static char tag[64];               /* "case, N ranks": starts every TAP line */
static const char *out_path;       /* $LUISA_TEST_OUT: the scripts' results */
static int skip_step;              /* step at which the last rank skips a publish */

/* A and B are 8x6 in two row blocks per rank, C is 4x6 in one (another shape
 * for the mismatch case). Values are multiples of 1/4: every sum is exact in
 * any order, so results compare with ==. */
static const char *const names[NARRAYS] = { "A", "B", "C" };
static const int64_t shapes[NARRAYS][2] = { { 8, 6 }, { 8, 6 }, { 4, 6 } };

static double value(int arr, int64_t g, int64_t step)
{
  switch (arr) {
  case 0: return (double)g + 0.25 * (double)step;
  case 1: return 2.0 * (double)g - (double)step;
  default: return 0.5 * (double)g + (double)step;
  }
}

/* Reference result over the whole global array: 's' sum, 'x' max. */
static double reference(int arr, char kind, int64_t step)
{
  int64_t n = shapes[arr][0] * shapes[arr][1];
  double r = kind == 's' ? 0 : value(arr, 0, step);
  for (int64_t g = 0; g < n; g++) {
    double v = value(arr, g, step);
    r = kind == 's' ? r + v : v > r ? v : r;
  }
  return r;
}

typedef struct chunk {
  int arr, local;                  /* array, index among this rank's chunks of it */
  int64_t off[2], shp[2];
  double *data, *copy;             /* what was published, and what it must stay */
} chunk;

static chunk chunks[MAXCHUNKS];
static int nchunks, broken;         /* broken: a call refused or data changed */

static void complain(luisa *lz, const char *what)
{
  broken++;
  fprintf(stderr, "scripts[%d]: %s refused: %s\n", rank, what, luisa_error(lz));
}

static const char *status_name(int s)
{
  return s == LUISA_OK ? "LUISA_OK" : s == LUISA_WARN_SCRIPT ? "LUISA_WARN_SCRIPT" : "another status";
}

/* Rank 0 prints text as TAP comments, one per line (tracebacks span several). */
/* Block k of nb along the rows belongs to rank k % size. */
static void declare(luisa *lz)
{
  for (int a = 0; a < NARRAYS; a++) {
    if (luisa_array(lz, names[a], LUISA_F64, 2, shapes[a]) != LUISA_OK)
      complain(lz, "luisa_array");
    int64_t rows = shapes[a][0], nb = a == 2 ? size : 2 * size;
    if (nb > rows)
      nb = rows;
    for (int64_t k = rank; k < nb && nchunks < MAXCHUNKS; k += size) {
      chunk *c = &chunks[nchunks++];
      c->arr = a;
      c->local = (int)((k - rank) / size);
      c->off[0] = rows * k / nb;
      c->off[1] = 0;
      c->shp[0] = rows * (k + 1) / nb - c->off[0];
      c->shp[1] = shapes[a][1];
      size_t n = (size_t)(c->shp[0] * c->shp[1]);
      c->data = malloc(n * sizeof *c->data);
      c->copy = malloc(n * sizeof *c->copy);
      if (!c->data || !c->copy) {
        fprintf(stderr, "scripts[%d]: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 2);
      }
      if (luisa_chunk(lz, names[a], c->off, c->shp, NULL) != LUISA_OK)
        complain(lz, "luisa_chunk");
    }
  }
}

/* The unpublished case: chunk 1 of A on the last rank, skipped at skip_step. */
static int skipped(const chunk *c, int64_t step)
{
  return step == skip_step && c->arr == 0 && c->local == 1 && rank == size - 1;
}

static void publish(luisa *lz, int64_t step)
{
  for (int i = 0; i < nchunks; i++) {
    chunk *c = &chunks[i];
    for (int64_t r = 0; r < c->shp[0]; r++)
      for (int64_t j = 0; j < c->shp[1]; j++) {
        int64_t g = (c->off[0] + r) * shapes[c->arr][1] + c->off[1] + j;
        c->data[r * c->shp[1] + j] = value(c->arr, g, step);
      }
    memcpy(c->copy, c->data, (size_t)(c->shp[0] * c->shp[1]) * sizeof *c->data);
    if (!skipped(c, step) && luisa_publish(lz, names[c->arr], c->local, c->data) != LUISA_OK)
      complain(lz, "luisa_publish");
  }
}

/* Zero copy: the engine reads the simulation's buffers, it must never write. */
static void check_untouched(int64_t step)
{
  for (int i = 0; i < nchunks; i++)
    if (memcmp(chunks[i].data, chunks[i].copy,
               (size_t)(chunks[i].shp[0] * chunks[i].shp[1]) * sizeof *chunks[i].data)) {
      broken++;
      fprintf(stderr, "scripts[%d]: step %lld changed chunk %d of %s\n", rank, (long long)step,
              chunks[i].local, names[chunks[i].arr]);
    }
}

/* One assertion: every rank got `want` (statuses differing across ranks fail). */
static void expect_status(luisa *lz, int got, int want, const char *what)
{
  int lo = got, hi = got;
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (!ok(lo == want && hi == want, "%s: %s returns %s on every rank", tag, what, status_name(want))) {
    tap_print("#   statuses from %d to %d across ranks, expected %d\n", lo, hi, want);
    tap_note("rank 0 says: ", luisa_error(lz));
  }
}

/* One assertion: luisa_error holds every fragment on every rank; no
 * fragment at all means it must be "". Rank 0 shows the sentence. */
#define expect_error(lz, what, ...) error_has(lz, what, (const char *[]){ __VA_ARGS__, NULL })
static void error_has(luisa *lz, const char *what, const char **frags)
{
  const char *msg = luisa_error(lz);
  int missing = -1;
  if (!frags[0] && msg[0])
    missing = 0;
  for (int f = 0; frags[f] && missing < 0; f++)
    if (!strstr(msg, frags[f]))
      missing = f;
  int bad = missing >= 0 ? rank : size;
  MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (ok(bad == size, "%s: luisa_error %s on every rank", tag, what)) {
    tap_note("luisa_error: ", msg);
    return;
  }
  /* Show the first failing rank's sentence and what it lacks. */
  static char text[TEXT];
  int len = (int)strnlen(msg, TEXT - 1);
  MPI_Bcast(&missing, 1, MPI_INT, bad, MPI_COMM_WORLD);
  MPI_Bcast(&len, 1, MPI_INT, bad, MPI_COMM_WORLD);
  memcpy(text, msg, rank == bad ? (size_t)len : 0);
  MPI_Bcast(text, len, MPI_CHAR, bad, MPI_COMM_WORLD);
  text[len] = '\0';
  if (frags[0])
    tap_print("#   on rank %d, \"%s\" is missing from:\n", bad, frags[missing]);
  else
    tap_print("#   on rank %d, expected \"\" but got:\n", bad);
  tap_note("", text);
}

/* Every rank's stderr goes to $LUISA_TEST_OUT.log.RANK (see main). */
static void read_logs(char *text, size_t cap)
{
  size_t n = 0;
  text[0] = '\0';
  for (int r = 0; r < size && out_path; r++) {
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

/* One assertion: the ranks' logs together hold `lines` luisa lines (a failure
 * is told once, not by every rank) and every fragment. */
#define expect_log(what, lines, ...) log_has(what, lines, (const char *[]){ __VA_ARGS__, NULL })
static void log_has(const char *what, int lines, const char **frags)
{
  static char text[TEXT];
  fflush(stderr);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0)
    read_logs(text, sizeof text);
  int n = tap_log_lines(text, "luisa[");
  const char *missing = NULL;
  for (int f = 0; frags[f] && !missing; f++)
    if (!strstr(text, frags[f]))
      missing = frags[f];
  if (!ok(rank != 0 || (n == lines && !missing), "%s: the log %s", tag, what)) {
    if (n != lines)
      tap_print("#   %d luisa lines, expected %d\n", n, lines);
    if (missing)
      tap_print("#   \"%s\" is missing\n", missing);
    tap_note("the log: ", text);
  }
}

/* Results the script wrote on rank 0: "step key value" lines. */
typedef struct result {
  long long step;
  char key[32];
  double v;
} result;
static result results[256];
static int nresults;

static void load_results(void)
{
  nresults = 0;
  FILE *f = rank == 0 && out_path ? fopen(out_path, "r") : NULL;
  while (f && nresults < 256 &&
         fscanf(f, "%lld %31s %lf", &results[nresults].step, results[nresults].key, &results[nresults].v) == 3)
    nresults++;
  if (f)
    fclose(f);
}

/* One assertion: `key` was reported at exactly the steps in `mask` (bit s for
 * step s), each time with the exact reference value of arr:kind. */
static void expect_results(const char *key, int arr, char kind, unsigned mask)
{
  char steps[64] = "", diag[2048] = "";
  size_t n = 0, d = 0;
  for (int s = 1; s <= NSTEPS; s++)
    if (mask >> s & 1)
      n += (size_t)snprintf(steps + n, sizeof steps - n, "%s%d", n ? "," : "", s);
  for (int s = 1; s <= NSTEPS && rank == 0; s++) {
    int seen = 0;
    double want = reference(arr, kind, s);
    for (int i = 0; i < nresults; i++)
      if (results[i].step == s && !strcmp(results[i].key, key)) {
        seen++;
        if (results[i].v != want && d < sizeof diag)
          d += (size_t)snprintf(diag + d, sizeof diag - d, "#   step %d: %s = %.17g, expected %.17g\n", s,
                                key, results[i].v, want);
      }
    if (seen != (int)(mask >> s & 1) && d < sizeof diag)
      d += (size_t)snprintf(diag + d, sizeof diag - d, "#   step %d: %s reported %d times, expected %d\n", s,
                            key, seen, (int)(mask >> s & 1));
  }
  if (!ok(!diag[0], "%s: %s %s at steps {%s}", tag, key, mask ? "is exact" : "is never reported", steps))
    tap_print("%s", diag);
}

/* One assertion: analytics off, the script reported nothing. */
static void expect_no_results(void)
{
  if (!ok(nresults == 0, "%s: no result is ever reported (analytics off)", tag))
    tap_print("#   %d results, the first: step %lld %s\n", nresults, results[0].step, results[0].key);
}

/* luisa_init on `script` then the declarations. One assertion. */
static luisa *start(const char *script, int want)
{
  luisa_options o = luisa_options_default();
  o.script = script;
  luisa *lz = NULL;
  int st = luisa_init(MPI_COMM_WORLD, &o, &lz);
  expect_status(lz, lz ? st : -1, want, "luisa_init");   /* NULL context: -1 fails */
  declare(lz);
  return lz;
}

/* One simulation step: publish, luisa_step, check. One assertion. */
static void step(luisa *lz, int64_t s, int want)
{
  char what[64];
  publish(lz, s);
  int st = luisa_step(lz, s);
  check_untouched(s);
  snprintf(what, sizeof what, "luisa_step(%lld)", (long long)s);
  expect_status(lz, st, want, what);
}

/* Steps 1..NSTEPS all expecting LUISA_OK. NSTEPS assertions. */
static void quiet_steps(luisa *lz)
{
  for (int s = 1; s <= NSTEPS; s++)
    step(lz, s, LUISA_OK);
}

/* End of a case: data and declarations, results read. One assertion. */
static void finish_steps(void)
{
  MPI_Allreduce(MPI_IN_PLACE, &broken, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  ok(!broken, "%s: every declaration and publish accepted, data untouched by every step", tag);
  load_results();
}

/* Cases. Line numbers are those of the fixtures in t/data/. */

static void case_syntax(void)            /* 10 assertions */
{
  luisa *lz = start("t/data/syntax_error.lua", LUISA_WARN_SCRIPT);
  expect_error(lz, "names the file:line of the syntax error", "t/data/syntax_error.lua:6: ",
               "')' expected near 'function'");
  quiet_steps(lz);
  finish_steps();
  expect_no_results();
  expect_log("names the file:line, once, on rank 0", 1, "luisa[0] ", "t/data/syntax_error.lua:6: ')' expected");
  luisa_finalize(lz);
}

static void case_missing(void)           /* 10 assertions */
{
  luisa *lz = start("t/data/missing_script.lua", LUISA_WARN_SCRIPT);
  expect_error(lz, "names the missing file and why", "cannot open t/data/missing_script.lua: No such file or directory");
  quiet_steps(lz);
  finish_steps();
  expect_no_results();
  expect_log("names the missing file, once, on rank 0", 1, "luisa[0] ", "cannot open t/data/missing_script.lua");
  luisa_finalize(lz);
}

/* A directory as the script, and an empty path: the message says which and names the path. */
static void case_directory(void)         /* 10 assertions */
{
  luisa *lz = start("t/data", LUISA_WARN_SCRIPT);
  expect_error(lz, "says the script is a directory", "cannot read t/data: Is a directory");
  quiet_steps(lz);
  finish_steps();
  expect_no_results();
  expect_log("says it is a directory, once, on rank 0", 1, "luisa[0] ", "cannot read t/data: Is a directory");
  luisa_finalize(lz);
}

static void case_empty_path(void)        /* 10 assertions */
{
  luisa *lz = start("", LUISA_WARN_SCRIPT);
  expect_error(lz, "says the path is empty", "cannot open \"\": the path is empty");
  quiet_steps(lz);
  finish_steps();
  expect_no_results();
  expect_log("says the path is empty, once, on rank 0", 1, "luisa[0] ", "cannot open \"\": the path is empty");
  luisa_finalize(lz);
}

/* A FIFO as the script: refused at once, not read (a read would wait for a writer, and rank 0
 * with it, inside the collective luisa_init). */
static void case_fifo(void)              /* 10 assertions */
{
  char path[4096], want[4200];
  snprintf(path, sizeof path, "%s.fifo", out_path);
  snprintf(want, sizeof want, "cannot read %s: not a regular file", path);
  if (rank == 0 && mkfifo(path, 0600) != 0)
    fprintf(stderr, "scripts: mkfifo %s failed\n", path);
  MPI_Barrier(MPI_COMM_WORLD);
  luisa *lz = start(path, LUISA_WARN_SCRIPT);
  expect_error(lz, "says the script is not a regular file", want);
  quiet_steps(lz);
  finish_steps();
  expect_no_results();
  expect_log("says it is not a regular file, once, on rank 0", 1, "luisa[0] ", want);
  luisa_finalize(lz);
  if (rank == 0)
    unlink(path);
}

static void case_load_error(void)        /* 10 assertions */
{
  luisa *lz = start("t/data/load_error.lua", LUISA_WARN_SCRIPT);
  expect_error(lz, "has file:line, the error and a traceback", "t/data/load_error.lua:12: boom",
               "stack traceback:", "t/data/load_error.lua:12: in main chunk");
  quiet_steps(lz);
  finish_steps();
  expect_no_results();
  expect_log("has file:line and a traceback, once, on rank 0", 1, "luisa[0] ", "t/data/load_error.lua:12: boom",
             "stack traceback:");
  luisa_finalize(lz);
}

/* On one rank there is no rank 1: the script loads and its callback runs. */
static void case_rank_error(void)        /* 10 assertions */
{
  int fails = size > 1;
  luisa *lz = start("t/data/rank_error.lua", fails ? LUISA_WARN_SCRIPT : LUISA_OK);
  if (fails)
    expect_error(lz, "names rank 1 and the file:line", "on rank 1: t/data/rank_error.lua:12: cannot load here",
                 "stack traceback:");
  else
    expect_error(lz, "is empty (the script loaded)", NULL);
  quiet_steps(lz);
  finish_steps();
  if (fails) {
    expect_no_results();
    expect_log("names rank 1 and the file:line, once, on rank 0", 1, "luisa[0] ",
               "on rank 1: t/data/rank_error.lua:12: cannot load here");
  } else {
    expect_results("sumA", 0, 's', 0x3e);
    expect_log("holds no luisa line", 0, NULL);
  }
  luisa_finalize(lz);
}

static void case_unknown_array(void)     /* 13 assertions */
{
  luisa *lz = start("t/data/unknown_array.lua", LUISA_OK);
  expect_error(lz, "is empty after init", NULL);
  step(lz, 1, LUISA_WARN_SCRIPT);
  expect_error(lz, "names file:line of luisa.array, \"nosuch\" and the declared arrays",
               "t/data/unknown_array.lua:5: ", "\"nosuch\"", "(declared: A, B, C)");
  for (int s = 2; s <= NSTEPS; s++)
    step(lz, s, LUISA_OK);
  finish_steps();
  expect_results("nosuch", 0, 's', 0);
  expect_results("sumA", 0, 's', 0x3e);
  expect_results("maxB", 1, 'x', 0x3e);
  expect_log("names the file:line and \"nosuch\", once, on rank 0", 1, "luisa[0] ", "t/data/unknown_array.lua:5: ",
             "\"nosuch\"");
  luisa_finalize(lz);
}

static void case_shape_mismatch(void)    /* 12 assertions */
{
  luisa *lz = start("t/data/shape_mismatch.lua", LUISA_OK);
  expect_error(lz, "is empty after init", NULL);
  step(lz, 1, LUISA_WARN_SCRIPT);
  expect_error(lz, "names file:line of the '+' and both shapes", "t/data/shape_mismatch.lua:8: ",
               "shape mismatch", "[8, 6]", "[4, 6]");
  for (int s = 2; s <= NSTEPS; s++)
    step(lz, s, LUISA_OK);
  finish_steps();
  expect_results("AplusC", 0, 's', 0);
  expect_results("sumC", 2, 's', 0x3e);
  expect_log("names the file:line, once, on rank 0", 1, "luisa[0] ", "t/data/shape_mismatch.lua:8: shape mismatch");
  luisa_finalize(lz);
}

/* The bad luisa.every calls, each on line 9 of its fixture. */
static void bad_every(const char *script, const char *what, const char *got)   /* 10 assertions */
{
  char where[128];
  snprintf(where, sizeof where, "%s:9: luisa.every: ", script);
  luisa *lz = start(script, LUISA_WARN_SCRIPT);
  expect_error(lz, "names the file:line of the luisa.every call", where, what, got);
  quiet_steps(lz);
  finish_steps();
  expect_no_results();
  expect_log("names the file:line, once, on rank 0", 1, "luisa[0] ", where);
  luisa_finalize(lz);
}

/* The last fragment ends where the traceback starts: "got 0" is not "got 0.5". */
static void case_every_period(void)
{
  bad_every("t/data/every_period.lua", "the period must be a whole number", ", got 0\n");
}

static void case_every_huge_period(void)
{
  bad_every("t/data/every_huge_period.lua", "the period must be a whole number", ", got 4294967296\n");
}

static void case_every_stats(void)
{
  bad_every("t/data/every_stats.lua", "stats must be a table of reductions", ", got string\n");
}

static void case_every_lazy(void)
{
  bad_every("t/data/every_lazy.lua", "stats[\"s\"] is a lazy array, not a reduction", "reduce it, e.g. :mean()");
}

static void case_late_error(void)        /* 13 assertions */
{
  luisa *lz = start("t/data/late_error.lua", LUISA_OK);
  expect_error(lz, "is empty after init", NULL);
  step(lz, 1, LUISA_OK);
  step(lz, 2, LUISA_OK);
  /* The script never steers: the other ranks do not wait for the root's
   * callbacks, and every rank hears of the error at the next step. */
  step(lz, 3, LUISA_OK);
  step(lz, 4, LUISA_WARN_SCRIPT);
  expect_error(lz, "has the step, file:line, the error, a traceback, and says the callback is disabled",
               "luisa_step(3): callback disabled: ", "registered at t/data/late_error.lua:8", "t/data/late_error.lua:10: late",
               "stack traceback:");
  step(lz, 5, LUISA_OK);
  finish_steps();
  expect_results("lateA", 0, 's', 0x0e);       /* called at 1, 2, 3, never again */
  expect_results("maxB", 1, 'x', 0x3e);
  expect_results("sumC", 2, 's', 0x3e);
  expect_log("has file:line and the traceback, once, on rank 0", 1, "luisa[0] ", "t/data/late_error.lua:10: late",
             "stack traceback:");
  luisa_finalize(lz);
}

/* The last rank skips chunk 1 of A at step 2: only that step fails. Up to 4
 * ranks, where the last rank owns two chunks of A. */
static void case_unpublished(void)       /* 12 assertions */
{
  char on_rank[64], at[64];
  int64_t nb = 2 * size > 8 ? 8 : 2 * size;    /* A's row blocks, see declare */
  snprintf(on_rank, sizeof on_rank, "on rank %d", size - 1);
  snprintf(at, sizeof at, "(offset [%lld, 0]", (long long)(shapes[0][0] * (2 * size - 1) / nb));
  skip_step = 2;
  luisa *lz = start("t/data/unpublished.lua", LUISA_OK);
  expect_error(lz, "is empty after init", NULL);
  step(lz, 1, LUISA_OK);
  step(lz, 2, LUISA_WARN_SCRIPT);
  expect_error(lz, "names the array, the chunk, its rank and the luisa.every line", "luisa_step(2): ",
               "chunk 1 of array \"A\"", at, on_rank, "t/data/unpublished.lua:8");
  for (int s = 3; s <= NSTEPS; s++)
    step(lz, s, LUISA_OK);
  finish_steps();
  expect_results("sumA", 0, 's', 0x3a);        /* all but step 2: not disabled */
  expect_results("maxB", 1, 'x', 0x3e);
  expect_log("names the chunk and its rank, once", 1, "chunk 1 of array \"A\"", on_rank);
  luisa_finalize(lz);
}

static void case_period(void)            /* 11 assertions */
{
  luisa *lz = start("t/data/period.lua", LUISA_OK);
  expect_error(lz, "is empty after init", NULL);
  quiet_steps(lz);
  finish_steps();
  expect_results("sumA", 0, 's', 0x14);        /* every 2: steps 2 and 4 */
  expect_results("maxB", 1, 'x', 0x08);        /* every 3: step 3 */
  expect_log("holds no luisa line", 0, NULL);
  luisa_finalize(lz);
}

static const struct {
  const char *name;
  void (*run)(void);
} cases[] = {
  { "syntax", case_syntax }, { "missing", case_missing }, { "directory", case_directory },
  { "empty_path", case_empty_path }, { "fifo", case_fifo }, { "load_error", case_load_error },
  { "rank_error", case_rank_error }, { "unknown_array", case_unknown_array },
  { "shape_mismatch", case_shape_mismatch }, { "every_period", case_every_period },
  { "every_huge_period", case_every_huge_period }, { "every_stats", case_every_stats },
  { "every_lazy", case_every_lazy },
  { "late_error", case_late_error }, { "unpublished", case_unpublished }, { "period", case_period },
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
    tap_print("not ok - usage: LUISA_TEST_OUT=PATH scripts CASE FIRST (CASE: a name in t/scripts.c)\n");
    MPI_Finalize();
    return 1;
  }
  tap_count = atoi(argv[2]) - 1;
  snprintf(tag, sizeof tag, "%s, %d rank%s", argv[1], size, size > 1 ? "s" : "");
  /* The engine logs on stderr: keep each rank's to check it (expect_log). */
  char path[4096];
  snprintf(path, sizeof path, "%s.log.%d", out_path, rank);
  if (!freopen(path, "w", stderr)) {
    tap_print("not ok - cannot redirect stderr to %s\n", path);
    MPI_Finalize();
    return 1;
  }
  cases[found].run();
  for (int i = 0; i < nchunks; i++) {
    free(chunks[i].data);
    free(chunks[i].copy);
  }
  MPI_Finalize();
  return rank == 0 && tap_failed;
}
