/* threads.c: thread mode (LUISA_MODE_THREAD) end to end. Runs one case of
 * t/050-threads.t; each case runs its modes one after the other, a context
 * each: inline, then the thread mode with max_lag 0, 1 and 2 (2 set by
 * LUISA_MODE and LUISA_MAX_LAG over options that say inline, lag 1).
 *   lag       after luisa_step(k) the analysis is at most max_lag steps
 *             behind, exactly max_lag when it is the slower one (it sleeps
 *             50 ms a step); what the last max_lag steps write is there
 *             after luisa_finalize only;
 *   steer     luisa.set, luisa.period and luisa.stop decided at step t land
 *             when luisa_step(t + max_lag) returns, on every rank, though
 *             the simulation is the slower one (it sleeps 20 ms a step);
 *   same      inline and thread mode (max_lag 2 by the options) write the
 *             same results, byte for byte;
 *   handover  a handed-over buffer comes back once, from luisa_step(t +
 *             max_lag) or luisa_finalize, as it was given;
 *   errors    a script error at step t is told by luisa_step(t + max_lag)
 *             on every rank, one at the last step by luisa_finalize;
 *   refuse    a cpuset that does not parse is refused at luisa_init;
 *   lags      ranks asking for different max_lag are all refused;
 *   single    MPI started with MPI_Init (MPI_THREAD_SINGLE): thread mode
 *             is refused, inline runs;
 *   mixed     MPMD, rank 0 started with MPI_Init, rank 1 with
 *             MPI_THREAD_MULTIPLE: both refuse.
 * Expected values are computed here from the data, not by the engine.
 * usage: LUISA_TEST_OUT=PATH threads CASE FIRST [single]
 *   (FIRST: number of its first TAP line; single: start MPI with MPI_Init)
 * Prints TAP on rank 0. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "luisa.h"
#include "tap.h"

enum { N = 12, STEPS = 6, MAX_STEPS = 12, TEXT = 1 << 16 };

static int rank, size;
static int64_t lo, hi;            /* this rank's block [lo, hi) of every array */
static char tag[64];
static const char *out_path;

/* How a context runs. env: thread mode and max_lag from LUISA_MODE and
 * LUISA_MAX_LAG, over options that say inline and max_lag 1. */
typedef struct mode {
  const char *name;
  luisa_mode mode;
  int lag;   /* the steps luisa_step reports late: 0 inline */
  int env;
} mode;

static const mode modes[] = {
  { "inline", LUISA_MODE_INLINE, 0, 0 },
  { "thread, max_lag 0", LUISA_MODE_THREAD, 0, 0 },
  { "thread, max_lag 1", LUISA_MODE_THREAD, 1, 0 },
  { "thread, LUISA_MAX_LAG=2", LUISA_MODE_THREAD, 2, 1 },
};
enum { NMODES = sizeof modes / sizeof modes[0] };

/* The same value on every rank? (NaN never is.) */
static int everywhere(double v)
{
  double min, max;
  MPI_Allreduce(&v, &min, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&v, &max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return min == max;
}

/* One assertion that holds on every rank; else the first failing rank's
 * text is shown. */
static int every_rank(int says, const char *text, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int every_rank(int says, const char *text, const char *fmt, ...)
{
  char what[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  int bad = says ? size : rank;
  MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (ok(bad == size, "%s", what))
    return 1;
  static char shown[TEXT];
  int len = (int)strnlen(text ? text : "", TEXT - 1);
  MPI_Bcast(&len, 1, MPI_INT, bad, MPI_COMM_WORLD);
  if (rank == bad)
    memcpy(shown, text, (size_t)len);
  MPI_Bcast(shown, len, MPI_CHAR, bad, MPI_COMM_WORLD);
  shown[len] = '\0';
  tap_print("#   not so on rank %d:\n", bad);
  tap_note("", shown);
  return 0;
}

static void nap_ms(long ms)
{
  struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&t, &t) != 0)
    ;
}

/* A file's whole text (NUL-terminated), or NULL. */
static char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *text = malloc(TEXT);
  size_t n = text ? fread(text, 1, TEXT - 1, f) : 0;
  fclose(f);
  if (text)
    text[n] = '\0';
  return text;
}

static int lines_of(const char *text)
{
  int n = 0;
  for (const char *p = text; p && *p; p++)
    n += *p == '\n';
  return n;
}

/* Where this mode's script writes: $LUISA_TEST_OUT.CASE.MODE. */
static void out_file(char *path, size_t cap, const char *what, int m)
{
  snprintf(path, cap, "%s.%s.%d", out_path, what, m);
}

/* A context for mode m running script, its output going to file (the
 * scripts read $LUISA_TEST_OUT when they load, in luisa_init). */
static luisa *open_mode(const mode *m, const char *script, const char *file, int trusted, luisa_log_level level,
                        int *status)
{
  luisa_options o = luisa_options_default();
  o.script = script;
  o.log_level = level;
  o.trusted = trusted;
  o.mode = m->env ? LUISA_MODE_INLINE : m->mode;
  o.max_lag = m->env ? 1 : m->lag;
  if (m->env) {
    setenv("LUISA_MODE", "thread", 1);
    char lag[16];
    snprintf(lag, sizeof lag, "%d", m->lag);
    setenv("LUISA_MAX_LAG", lag, 1);
  }
  setenv("LUISA_TEST_OUT", file, 1);
  remove(file);
  MPI_Barrier(MPI_COMM_WORLD);   /* removed before rank 0's script opens it */
  luisa *lz = NULL;
  *status = luisa_init(MPI_COMM_WORLD, &o, &lz);
  unsetenv("LUISA_MODE");
  unsetenv("LUISA_MAX_LAG");
  return lz;
}

/* Declares a 1-D array of N doubles, this rank's block as one chunk. */
static void declare(luisa *lz, const char *name)
{
  int64_t shape[1] = { N }, off[1] = { lo }, n[1] = { hi - lo };
  luisa_array(lz, name, LUISA_F64, 1, shape);
  luisa_chunk(lz, name, off, n, NULL);
}

/* ---- lag: the analysis sleeps 50 ms a step, the simulation not at all ---- */

static double a_at(int64_t i, int step) { return (double)i + 0.5 * step; }   /* sums exact in any order */

static void lag_mode(int mi)
{
  const mode *m = &modes[mi];
  int L = m->lag;
  char file[4096];
  out_file(file, sizeof file, "lag", mi);
  int st;
  luisa *lz = open_mode(m, "t/data/threads/slow.lua", file, 1, LUISA_LOG_ERROR, &st);
  int statuses = st == LUISA_OK && lz, bounded = 1, full = 1, early_waits = 1;
  int64_t behind[STEPS + 1] = { 0 };
  double a[N];
  luisa_progress p = { 0, 0, 0, 0 };
  if (lz) {
    declare(lz, "A");
    for (int k = 1; k <= STEPS; k++) {
      for (int64_t i = lo; i < hi; i++)
        a[i - lo] = a_at(i, k);
      luisa_publish(lz, "A", 0, a);
      statuses &= luisa_step(lz, k) == LUISA_OK;
      statuses &= luisa_get_progress(lz, &p) == LUISA_OK;
      behind[k] = p.steps - p.analysed;
      bounded &= p.steps == k && p.analysed >= 0 && behind[k] <= L;
      if (k > L)
        full &= behind[k] == L;
      else
        early_waits &= p.waits == 0;
    }
  }
  char *before = rank == 0 ? slurp(file) : NULL;
  int pending = lines_of(before);
  luisa_finalize(lz);
  char *after = rank == 0 ? slurp(file) : NULL;
  int drained = after != NULL;
  const char *line = after;
  for (int k = 1; k <= STEPS && drained; k++) {
    long long step, count;
    double sum, want = 0;
    for (int64_t i = 0; i < N; i++)
      want += a_at(i, k);
    drained = sscanf(line, "%lld %lf %lld", &step, &sum, &count) == 3 && step == k && sum == want && count == N;
    line = strchr(line, '\n');
    drained = drained && line++;
  }
  drained = drained && *line == '\0';
  char text[256];
  snprintf(text, sizeof text, "steps - analysed after each luisa_step: %lld %lld %lld %lld %lld %lld; waits %lld, "
           "%.3f s", (long long)behind[1], (long long)behind[2], (long long)behind[3], (long long)behind[4],
           (long long)behind[5], (long long)behind[6], (long long)p.waits, p.waited_s);
  every_rank(statuses, text, "%s: %s: luisa_init, every luisa_step and luisa_get_progress return LUISA_OK", tag,
             m->name);
  every_rank(bounded, text, "%s: %s: after every luisa_step(k), progress.steps == k and 0 <= steps - analysed <= %d",
             tag, m->name, L);
  if (L == 0)
    every_rank(full, text, "%s: %s: analysed == steps after every luisa_step", tag, m->name);
  else
    every_rank(full, text, "%s: %s: from luisa_step(%d) on, steps - analysed == %d exactly: the analysis, 50 ms a "
               "step, is the slower", tag, m->name, L + 1, L);
  if (m->mode == LUISA_MODE_INLINE)
    every_rank(p.waits == 0 && p.waited_s == 0, text, "%s: %s: waits and waited_s are 0", tag, m->name);
  else if (L == 0)
    every_rank(p.waits == STEPS && p.waited_s > 0, text, "%s: %s: every luisa_step waits for its own step (waits "
               "%d, waited_s > 0)", tag, m->name, STEPS);
  else
    every_rank(early_waits && p.waits >= 1 && p.waits <= STEPS - L && p.waited_s > 0, text, "%s: %s: the first %d "
               "calls never wait; then 1 to %d calls wait, waited_s > 0", tag, m->name, L, STEPS - L);
  if (!ok(pending == STEPS - L, "%s: %s: before luisa_finalize rank 0's output holds steps 1 to %d: %s", tag,
          m->name, STEPS - L, L ? "the last ones are pending" : "none is pending"))
    tap_note("it holds: ", before ? before : "(no file)");
  if (!ok(drained, "%s: %s: after luisa_finalize it holds every step 1 to %d, with exact sums and counts%s", tag,
          m->name, STEPS, L ? ": luisa_finalize drained the pending steps" : ""))
    tap_note("it holds: ", after ? after : "(no file)");
  free(before);
  free(after);
}

static void lag(void)
{
  for (int mi = 0; mi < NMODES; mi++)
    lag_mode(mi);
}

/* ---- steer: set at step 3, period at step 2, stop at step 7; the simulation
 * sleeps 20 ms a step, so each analysis is done long before its changes are
 * due: they must still wait for luisa_step(t + max_lag) ---- */

enum { T_PERIOD = 2, T_SET = 3, T_STOP = 7, NEW_PERIOD = 5 };

static void steer_mode(int mi)
{
  const mode *m = &modes[mi];
  int L = m->lag;
  char file[4096];
  out_file(file, sizeof file, "steer", mi);
  int st;
  luisa *lz = open_mode(m, "t/data/threads/steer.lua", file, 0, LUISA_LOG_ERROR, &st);
  double x = 1, xs[MAX_STEPS + 1];
  int64_t n = 0;
  int sts[MAX_STEPS + 1], last = 0, made = st == LUISA_OK && lz;
  double a[N];
  if (lz) {
    declare(lz, "A");
    made &= luisa_param_f64(lz, "x", &x, 0, 10, "steered by the script") == LUISA_OK &&
            luisa_param_i64(lz, "n", &n, 0, 1000, "changed by the simulation") == LUISA_OK;
    for (int k = 1; k <= MAX_STEPS; k++) {
      nap_ms(20);   /* the simulation is the slower: a change must still wait for its call */
      n = 100 + k;  /* the simulation's own change: each analysis sees its step's */
      for (int64_t i = lo; i < hi; i++)
        a[i - lo] = a_at(i, k);
      luisa_publish(lz, "A", 0, a);
      sts[k] = luisa_step(lz, k);
      xs[k] = x;
      last = k;
      if (sts[k] != LUISA_OK)
        break;
    }
  }
  int stopped = made && last == T_STOP + L && sts[last] == LUISA_STOP, landed = made;
  for (int k = 1; k < last; k++)
    stopped &= sts[k] == LUISA_OK;
  for (int k = 1; k <= last; k++)   /* the expected value on each rank: the same on all */
    landed &= xs[k] == (k < T_SET + L ? 1.0 : 2.5);
  int same_last = everywhere(last);   /* collective: before any short cut */
  luisa_finalize(lz);
  char text[512];
  snprintf(text, sizeof text, "init %d, stopped at step %d (status %d); x after each luisa_step: %g %g %g %g %g %g",
           st, last, last ? sts[last] : -1, xs[1], xs[2], xs[3], xs[4], xs[5], xs[6]);
  every_rank(stopped && same_last, text, "%s: %s: luisa_step returns LUISA_OK up to step %d, LUISA_STOP at "
             "step %d (stop decided at step %d)", tag, m->name, T_STOP + L - 1, T_STOP + L, T_STOP);
  every_rank(landed, text, "%s: %s: x set to 2.5 at step %d is 1 after luisa_step(%d), 2.5 from luisa_step(%d) on",
             tag, m->name, T_SET, T_SET + L - 1, T_SET + L);
  /* Rank 0's record of what each analysis saw and ran. */
  char *got = rank == 0 ? slurp(file) : NULL;
  int seen_ok = got != NULL, period_ok = got != NULL, nseen = 0, nb = 0;
  int b_at[MAX_STEPS + 1] = { 0 };
  for (const char *line = got; line && *line;) {
    long long step, pn;
    double v;
    char what[8];
    if (sscanf(line, "%lld %7s", &step, what) != 2 || step < 1 || step > last) {
      seen_ok = period_ok = 0;
      break;
    }
    if (!strcmp(what, "seen") && sscanf(line, "%*d %*s %lf %lld", &v, &pn) == 2)
      seen_ok &= step == ++nseen && v == (step <= T_SET + L ? 1.0 : 2.5) && pn == 100 + step;
    else if (!strcmp(what, "B") && sscanf(line, "%*d %*s %lf", &v) == 1)
      period_ok &= !b_at[step] && (b_at[step] = 1) && v == a_at(N - 1, (int)step) && ++nb;
    else
      seen_ok = period_ok = 0;
    line = strchr(line, '\n');
    line = line ? line + 1 : NULL;
  }
  for (int s = 1; s <= last; s++)   /* every step until the change lands, then the new period's */
    period_ok &= b_at[s] == (s <= T_PERIOD + L || s % NEW_PERIOD == 0);
  if (rank == 0) {
    if (!ok(seen_ok && nseen == last, "%s: %s: the analysis of step s saw x = 1 up to step %d, 2.5 after, and "
            "n = 100 + s: the values of its own luisa_step", tag, m->name, T_SET + L))
      tap_note("rank 0's output: ", got ? got : "(no file)");
    if (!ok(period_ok, "%s: %s: luisa.period(B, %d) at step %d: B ran at steps 1 to %d, then at step %d only, "
            "with exact maxima", tag, m->name, NEW_PERIOD, T_PERIOD, T_PERIOD + L, NEW_PERIOD))
      tap_note("rank 0's output: ", got ? got : "(no file)");
    if (L)
      ok(seen_ok && nseen == T_STOP + L, "%s: %s: the steps handed over after the stop was decided (%d to %d) were "
         "analysed, by luisa_finalize: %d steps seen", tag, m->name, T_STOP + 1, T_STOP + L, nseen);
    else
      ok(seen_ok && nseen == T_STOP, "%s: %s: no step was handed over after the stop: %d steps seen", tag, m->name,
         nseen);
  }
  free(got);
}

static void steer(void)
{
  for (int mi = 0; mi < NMODES; mi++)
    steer_mode(mi);
}

/* ---- same: inline and thread mode write the same bytes ---- */

enum { ALL_NAN_STEP = 4 };
static const char *const fields = "RFCQ";

static double field_at(char f, int64_t i, int step)
{
  switch (f) {
  case 'R': return (double)i + 0.5 * step;                /* rising in space and time */
  case 'F': return 100 - 2.0 * (double)i - 0.25 * step;   /* falling */
  case 'C': return 7.5;                                    /* constant */
  default:                                                 /* rising, one element NaN; every one at step 4 */
    return step == ALL_NAN_STEP || i == 5 ? NAN : (double)i * 3 - step;
  }
}

/* The reference statistic kind of field f at step, over its N values: a
 * plain loop; mean and std (population) in two passes. min and max skip
 * NaN, NaN when every value is. */
static double reference(char f, const char *kind, int step)
{
  double sum = 0, min = NAN, max = NAN, m2 = 0;
  for (int64_t i = 0; i < N; i++) {
    double v = field_at(f, i, step);
    sum += v;
    if (v == v && !(v >= min))
      min = v;
    if (v == v && !(v <= max))
      max = v;
  }
  double mean = sum / N;
  for (int64_t i = 0; i < N; i++)
    m2 += (field_at(f, i, step) - mean) * (field_at(f, i, step) - mean);
  return !strcmp(kind, "sum") ? sum : !strcmp(kind, "min") ? min : !strcmp(kind, "max") ? max :
         !strcmp(kind, "mean") ? mean : sqrt(m2 / N);
}

static void same(void)
{
  char files[2][4096];
  int made = 1;
  const int run[2] = { 0, 3 };   /* inline; thread with max_lag 2 */
  for (int r = 0; r < 2; r++) {
    const mode *m = &modes[run[r]];
    mode opts = *m;
    opts.env = 0;   /* max_lag 2 from the options here */
    out_file(files[r], sizeof files[r], "same", run[r]);
    int st;
    luisa *lz = open_mode(&opts, "t/data/threads/stats.lua", files[r], 0, LUISA_LOG_ERROR, &st);
    made &= st == LUISA_OK && lz;
    double data[4][N];
    if (lz) {
      for (int f = 0; f < 4; f++) {
        char name[2] = { fields[f], 0 };
        declare(lz, name);
      }
      for (int k = 1; k <= STEPS; k++) {
        for (int f = 0; f < 4; f++) {
          char name[2] = { fields[f], 0 };
          for (int64_t i = lo; i < hi; i++)
            data[f][i - lo] = field_at(fields[f], i, k);
          luisa_publish(lz, name, 0, data[f]);
        }
        made &= luisa_step(lz, k) == LUISA_OK;
      }
    }
    luisa_finalize(lz);
  }
  every_rank(made, "a call did not return LUISA_OK", "%s: inline, then thread with max_lag 2: luisa_init and every "
             "luisa_step return LUISA_OK", tag);
  if (rank != 0)
    return;
  char *inl = slurp(files[0]), *thr = slurp(files[1]);
  int nlines = STEPS * 4 * 5;
  if (!ok(inl && thr && !strcmp(inl, thr) && lines_of(inl) == nlines, "%s: the thread mode's output is the "
          "inline one byte for byte (%d lines)", tag, nlines)) {
    tap_note("inline: ", inl ? inl : "(no file)");
    tap_note("thread: ", thr ? thr : "(no file)");
  }
  /* The values, against the references. */
  int exact = inl != NULL, close = inl != NULL, nan_ok = inl != NULL, seen = 0;
  char first_bad[256] = "";
  for (const char *line = inl; line && *line;) {
    long long step;
    char name[16], kind[16];
    double v;
    if (sscanf(line, "%lld %15s %lf", &step, name, &v) != 3 || strlen(name) < 3 || name[1] != '_' ||
        !strchr(fields, name[0]) || step < 1 || step > STEPS) {
      exact = 0;
      break;
    }
    snprintf(kind, sizeof kind, "%s", name + 2);
    double want = reference(name[0], kind, (int)step);
    int good;
    if (name[0] == 'Q')   /* NaN and what skips it */
      good = want != want ? v != v : v == want, nan_ok &= good;
    else if (!strcmp(kind, "mean") || !strcmp(kind, "std"))
      good = name[0] == 'C' ? v == (!strcmp(kind, "mean") ? 7.5 : 0) : fabs(v - want) <= 1e-13 * fabs(want),
      close &= good;
    else
      good = v == want, exact &= good;
    if (!good && !*first_bad)
      snprintf(first_bad, sizeof first_bad, "step %lld %s: %.17g, expected %.17g", step, name, v, want);
    seen++;
    line = strchr(line, '\n');
    line = line ? line + 1 : NULL;
  }
  if (!ok(exact && seen == nlines, "%s: sum, min and max of the rising, falling and constant fields are exact at "
          "every step", tag))
    tap_print("#   %s (%d lines read)\n", first_bad, seen);
  if (!ok(close && seen == nlines, "%s: their mean and std agree with a two-pass reference to 1e-13; the constant "
          "field's are exactly 7.5 and 0", tag))
    tap_print("#   %s\n", first_bad);
  if (!ok(nan_ok && seen == nlines, "%s: with NaN, sum, mean and std are NaN; min and max skip it, and are NaN at "
          "step %d, where every value is", tag, ALL_NAN_STEP))
    tap_print("#   %s\n", first_bad);
  free(inl);
  free(thr);
}

/* ---- handover: buffers given and given back ---- */

enum { IN_NONE = 0, IN_PUBLISH = -1, IN_FINALIZE = -2, MAX_PUBS = 32, POOL_MAX = 8 };

static pthread_t main_thread;
static int in_call;   /* k inside luisa_step(k), else one of IN_* */

typedef struct buffer {
  double v[N];
  int busy;
} buffer;

typedef struct handed {
  int buf, call, decoy;
  int releases, released_in, thread_ok, data_ok, intact;
} handed;

static buffer pool[POOL_MAX];
static int pool_size, pool_dry;
static handed pubs[MAX_PUBS];
static int npubs;
static int64_t h_lo, h_mid, h_hi;   /* chunk 0 [h_lo, h_mid) is handed over, chunk 1 [h_mid, h_hi) copied */

static double h_at(int64_t i, int call, int decoy) { return decoy ? -1000 : (double)(i * i) + call; }

static void give_back(void *data, void *user)
{
  handed *h = user;
  buffer *b = &pool[h->buf];
  h->releases++;
  h->released_in = in_call;
  h->thread_ok = pthread_equal(pthread_self(), main_thread);
  h->data_ok = data == b->v;
  h->intact = 1;
  for (int64_t i = h_lo; i < h_mid; i++)
    h->intact &= b->v[i - h_lo] == h_at(i, h->call, h->decoy);
  for (int i = 0; i < N; i++)   /* overwritten once ours again: an analysis reading it now would see this */
    b->v[i] = 1e9;
  b->busy = 0;
}

static int prefer = -1;   /* a buffer hand() takes first when it is free */

static handed *hand(int call, int decoy)
{
  int b = 0;
  while (b < pool_size && pool[b].busy)
    b++;
  if (prefer >= 0 && prefer < pool_size && !pool[prefer].busy)
    b = prefer;
  if (b == pool_size || npubs == MAX_PUBS) {
    pool_dry = 1;
    return NULL;
  }
  pool[b].busy = 1;
  for (int64_t i = h_lo; i < h_mid; i++)
    pool[b].v[i - h_lo] = h_at(i, call, decoy);
  handed *h = &pubs[npubs++];
  memset(h, 0, sizeof *h);
  h->buf = b, h->call = call, h->decoy = decoy;
  return h;
}

static void handover_mode(int mi)
{
  const mode *m = &modes[mi];
  int L = m->lag;
  char file[4096];
  out_file(file, sizeof file, "handover", mi);
  int st;
  luisa *lz = open_mode(m, "t/data/threads/handover.lua", file, 0, LUISA_LOG_ERROR, &st);
  pool_size = L + 2;   /* L held, the step's own, the decoy of step 2: a late release runs it dry */
  pool_dry = 0;
  npubs = 0;
  memset(pool, 0, sizeof pool);
  h_lo = lo, h_hi = hi, h_mid = lo + (hi - lo) / 2;
  double copied[N];
  int made = st == LUISA_OK && lz, refused = 1, replaced = 1, timely = 1, again = 0;
  handed bogus = { 0 };
  char text[1024] = "";
  if (lz) {
    int64_t shape[1] = { N }, off0[1] = { h_lo }, n0[1] = { h_mid - h_lo }, off1[1] = { h_mid },
            n1[1] = { h_hi - h_mid };
    luisa_array(lz, "H", LUISA_F64, 1, shape);
    made &= luisa_chunk(lz, "H", off0, n0, NULL) == LUISA_OK && luisa_chunk(lz, "H", off1, n1, NULL) == LUISA_OK;
    for (int k = 1; k <= STEPS; k++) {
      if (k == 1) {   /* refused: nothing handed over, release never called */
        double spare[N];
        in_call = IN_PUBLISH;
        refused &= luisa_publish_handover(lz, "H", 2, spare, give_back, &bogus) == LUISA_ERR_ARG &&
                   luisa_publish_handover(lz, "H", 0, spare, NULL, &bogus) == LUISA_ERR_ARG &&
                   luisa_publish_handover(lz, "H", 0, NULL, give_back, &bogus) == LUISA_ERR_ARG &&
                   luisa_publish_handover(lz, "nope", 0, spare, give_back, &bogus) == LUISA_ERR_NAME &&
                   luisa_publish_handover(lz, NULL, 0, spare, give_back, &bogus) == LUISA_ERR_ARG;
        in_call = IN_NONE;
      }
      if (k == 2) {   /* a decoy, replaced in the same step by the real one */
        handed *d = hand(k, 1);
        in_call = IN_PUBLISH;
        if (d)
          replaced &= luisa_publish_handover(lz, "H", 0, pool[d->buf].v, give_back, d) == LUISA_OK &&
                      d->releases == 0;
        in_call = IN_NONE;
      }
      if (k == 3 && L > 0 && npubs >= 1) {   /* step 2's buffer, still the engine's, handed over again */
        const handed *prev = &pubs[npubs - 1];
        in_call = IN_PUBLISH;
        int st3 = luisa_publish_handover(lz, "H", 0, pool[prev->buf].v, give_back, &bogus);
        in_call = IN_NONE;
        again = st3 == LUISA_ERR_ARG && strstr(luisa_error(lz), "still the engine's, handed over at step 2") &&
                prev->releases == 0;
        if (!again && !*text)
          snprintf(text, sizeof text, "step 2's buffer handed over again at step 3: %d, %s", st3, luisa_error(lz));
      }
      prefer = k == 3 && L == 0 && npubs >= 1 ? pubs[npubs - 1].buf : -1;
      handed *h = hand(k, 0);
      prefer = -1;
      in_call = IN_PUBLISH;
      int st_h = h ? luisa_publish_handover(lz, "H", 0, pool[h->buf].v, give_back, h) : LUISA_ERR_ARG;
      made &= st_h == LUISA_OK;
      in_call = IN_NONE;
      if (k == 3 && L == 0)   /* given back by luisa_step(2): the same buffer goes again */
        again = st_h == LUISA_OK && npubs >= 2 && h->buf == pubs[npubs - 2].buf && pubs[npubs - 2].releases == 1;
      if (k == 3 && L == 0 && !again && !*text)
        snprintf(text, sizeof text, "step 3: %d, buffer %d, step 2's %d released %d times: %s", st_h,
                 h ? h->buf : -1, npubs >= 2 ? pubs[npubs - 2].buf : -1, npubs >= 2 ? pubs[npubs - 2].releases : -1,
                 lz ? luisa_error(lz) : "");
      if (k == 2)
        replaced &= npubs >= 2 && pubs[npubs - 2].decoy && pubs[npubs - 2].releases == 1 &&
                    pubs[npubs - 2].released_in == IN_PUBLISH;
      for (int64_t i = h_mid; i < h_hi; i++)
        copied[i - h_mid] = h_at(i, k, 0);
      made &= luisa_publish(lz, "H", 1, copied) == LUISA_OK;
      in_call = k;
      made &= luisa_step(lz, k) == LUISA_OK;
      in_call = IN_NONE;
      for (int64_t i = h_mid; i < h_hi; i++)   /* the simulation may change it once luisa_step returns */
        copied[i - h_mid] = -1;
      for (int j = 0; j < npubs; j++) {
        const handed *p = &pubs[j];
        if (p->decoy)
          continue;
        int due = p->call + L <= k;
        timely &= p->releases == due && (!due || p->released_in == p->call + L);
        if (!(p->releases == due && (!due || p->released_in == p->call + L)) && !*text)
          snprintf(text, sizeof text, "after luisa_step(%d): the buffer of call %d released %d times, in %d", k,
                   p->call, p->releases, p->released_in);
      }
    }
  }
  in_call = IN_FINALIZE;
  luisa_finalize(lz);
  in_call = IN_NONE;
  int all_back = made && npubs == STEPS + 1, as_given = !pool_dry, threads_ok = 1;
  for (int j = 0; j < npubs; j++) {
    const handed *p = &pubs[j];
    int where = p->decoy ? IN_PUBLISH : p->call + L <= STEPS ? p->call + L : IN_FINALIZE;
    all_back &= p->releases == 1 && p->released_in == where;
    as_given &= p->data_ok && p->intact;
    threads_ok &= p->thread_ok;
    if (!(p->releases == 1 && p->released_in == where) && !*text)
      snprintf(text, sizeof text, "after luisa_finalize: the buffer of call %d released %d times, in %d", p->call,
               p->releases, p->released_in);
  }
  every_rank(made && refused && bogus.releases == 0, text, "%s: %s: refused hand-overs (chunk 2, NULL release, "
             "NULL data, unknown array, NULL name) give LUISA_ERR_ARG or LUISA_ERR_NAME and never call release",
             tag, m->name);
  every_rank(again && bogus.releases == 0, text, "%s: %s: %s", tag, m->name,
             L ? "step 2's buffer handed over again at step 3, still the engine's: LUISA_ERR_ARG naming step 2, "
                 "nothing released" : "the buffer luisa_step(2) gave back is handed over again at step 3");
  every_rank(replaced, text, "%s: %s: a buffer replaced by a second hand-over of its chunk in step 2 is released "
             "at once, inside that call", tag, m->name);
  every_rank(timely && threads_ok, text, "%s: %s: after every luisa_step(k) exactly the buffers of calls up to k - "
             "%d are back, once each, released inside luisa_step(their call + %d) on the simulation's thread", tag,
             m->name, L, L);
  every_rank(all_back, text, "%s: %s: after luisa_finalize all %d are back exactly once, %s", tag, m->name,
             STEPS, L ? "the last ones released inside luisa_finalize" : "none by luisa_finalize");
  every_rank(as_given, text, "%s: %s: each comes back as it was handed over (the engine never writes into it), "
             "the pool of %d never running dry", tag, m->name, L + 2);
  if (rank == 0) {   /* released buffers are overwritten, then handed over again */
    char *got = slurp(file);
    int sums = got != NULL;
    const char *line = got;
    for (int k = 1; k <= STEPS && sums; k++) {
      long long step;
      double s, mx, want = 0, want_max = -HUGE_VAL;
      for (int64_t i = 0; i < N; i++) {
        want += h_at(i, k, 0);
        want_max = h_at(i, k, 0) > want_max ? h_at(i, k, 0) : want_max;
      }
      sums = sscanf(line, "%lld %lf %lf", &step, &s, &mx) == 3 && step == k && s == want && mx == want_max;
      line = strchr(line, '\n');
      sums = sums && line++;
    }
    if (!ok(sums && *line == '\0', "%s: %s: each step's analysis read that step's values (exact sums and maxima), "
            "though buffers given back are overwritten and handed over again", tag, m->name))
      tap_note("rank 0's output: ", got ? got : "(no file)");
    free(got);
  }
}

static void handover(void)
{
  main_thread = pthread_self();
  for (int mi = 0; mi < NMODES; mi++)
    handover_mode(mi);
}

/* ---- errors: told max_lag calls later, on every rank ---- */

enum { RAISE_AT = 2, FAIL_AT = 4 };

/* Runs error.lua in mode m for STEPS steps; statuses and sentences into
 * sts and errs. Returns the context's init status. stderr of luisa_finalize
 * into fin (cap bytes) when fin is given. */
static int run_errors(const mode *m, int raise_at, int fail_at, int sts[], char errs[][1024], char *fin, size_t cap,
                      const char *file)
{
  char r[16], f[16];
  snprintf(r, sizeof r, "%d", raise_at);
  snprintf(f, sizeof f, "%d", fail_at);
  setenv("LUISA_TEST_RAISE", r, 1);
  setenv("LUISA_TEST_FAIL", f, 1);
  for (int k = 0; k <= STEPS; k++)
    sts[k] = -1, errs[k][0] = '\0';
  int st;
  luisa *lz = open_mode(m, "t/data/threads/error.lua", file, 0, fin ? LUISA_LOG_WARN : LUISA_LOG_ERROR, &st);
  double a[N], e[N];
  if (lz) {
    declare(lz, "A");
    declare(lz, "E");
    for (int k = 1; k <= STEPS; k++) {
      for (int64_t i = lo; i < hi; i++)
        a[i - lo] = a_at(i, k), e[i - lo] = k;
      luisa_publish(lz, "A", 0, a);
      luisa_publish(lz, "E", 0, e);
      sts[k] = luisa_step(lz, k);
      snprintf(errs[k], 1024, "%s", luisa_error(lz));
    }
  }
  if (fin) {   /* what luisa_finalize logs */
    fflush(stderr);
    FILE *t = tmpfile();
    int saved = dup(2);
    dup2(fileno(t), 2);
    luisa_finalize(lz);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(t);
    size_t n = fread(fin, 1, cap - 1, t);
    fin[n] = '\0';
    fclose(t);
  } else {
    luisa_finalize(lz);
  }
  unsetenv("LUISA_TEST_RAISE");
  unsetenv("LUISA_TEST_FAIL");
  return lz ? st : -1;
}

static void errors(void)
{
  static char errs[STEPS + 1][1024];
  for (int mi = 0; mi < NMODES; mi++) {
    const mode *m = &modes[mi];
    int L = m->lag, sts[STEPS + 1];
    char file[4096];
    out_file(file, sizeof file, "errors", mi);
    int st = run_errors(m, RAISE_AT, FAIL_AT, sts, errs, NULL, 0, file);
    /* The script never steers: every rank hears of the raise one step later. */
    int r = RAISE_AT + 1 + L, f = FAIL_AT + L;
    every_rank(st == LUISA_OK && sts[r] == LUISA_WARN_SCRIPT && strstr(errs[r], "luisa_step(2): callback disabled: "
               "luisa.every callback (registered at t/data/threads/error.lua:11) failed: "
               "t/data/threads/error.lua:13: raised at step 2"), errs[r], "%s: %s: luisa_step(%d) returns "
               "LUISA_WARN_SCRIPT, saying luisa_step(2): callback disabled, registered at error.lua:11, "
               "t/data/threads/error.lua:13: raised at step 2", tag, m->name, r);
    every_rank(st == LUISA_OK && sts[f] == LUISA_WARN_SCRIPT && strstr(errs[f], "luisa_step(4): "
               "t/data/threads/error.lua:17: local work fails at step 4"), errs[f], "%s: %s: luisa_step(%d) returns "
               "LUISA_WARN_SCRIPT, saying luisa_step(4): t/data/threads/error.lua:17: local work fails at step 4 "
               "(the last rank's)", tag, m->name, f);
    int others = st == LUISA_OK;
    char statuses[64] = "";
    for (int k = 1; k <= STEPS; k++) {
      others &= k == r || k == f || sts[k] == LUISA_OK;
      snprintf(statuses + strlen(statuses), sizeof statuses - strlen(statuses), " %d", sts[k]);
    }
    every_rank(others, statuses, "%s: %s: every other luisa_step returns LUISA_OK", tag, m->name);
    if (rank == 0) {   /* the simulation went on, and so did the analysis */
      char *got = slurp(file);
      int raised[STEPS + 1] = { 0 }, kept[STEPS + 1] = { 0 }, good = got != NULL;
      for (const char *line = got; line && *line;) {
        long long step;
        char what[8];
        double s, want_s = 0;
        good &= sscanf(line, "%lld %7s %lf", &step, what, &s) == 3 && step >= 1 && step <= STEPS;
        if (!good)
          break;
        for (int64_t i = 0; i < N; i++)
          want_s += a_at(i, (int)step);
        good &= s == want_s;
        if (!strcmp(what, "raise"))
          raised[step]++;
        else
          kept[step]++;
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
      }
      for (int k = 1; k <= STEPS; k++)
        good &= raised[k] == (k <= RAISE_AT) && kept[k] == (k != FAIL_AT);
      if (!ok(good, "%s: %s: the analysis went on: the raising callback ran at steps 1 and 2 only (disabled), the "
              "other at every step but 4, with exact sums", tag, m->name))
        tap_note("rank 0's output: ", got ? got : "(no file)");
      free(got);
    }
  }
  /* An error at the last step, with max_lag 2: no luisa_step tells it. */
  static char fin[TEXT];
  int sts[STEPS + 1];
  char file[4096];
  out_file(file, sizeof file, "errors", 9);
  int st = run_errors(&modes[3], STEPS, 0, sts, errs, fin, sizeof fin, file);
  int quiet = st == LUISA_OK;
  for (int k = 1; k <= STEPS; k++)
    quiet &= sts[k] == LUISA_OK;
  every_rank(quiet, errs[STEPS], "%s: raised at the last step with LUISA_MAX_LAG=2: every luisa_step returns "
             "LUISA_OK", tag);
  /* The root's word on step 6 is taken by luisa_finalize, which logs it. */
  if (rank == 0 && !ok(strstr(fin, "luisa[0] warning: step 6: callback disabled: luisa.every callback (registered at "
                              "t/data/threads/error.lua:11) failed: t/data/threads/error.lua:13: raised at step 6"),
                       "%s: luisa_finalize logs it on rank 0: step 6, callback disabled, naming "
                       "t/data/threads/error.lua:13:", tag))
    tap_note("luisa_finalize's stderr: ", fin);
}

/* ---- refusals at luisa_init, told on stderr ---- */

/* luisa_init's status and stderr; whether it made a context. */
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
  if (lz && *status < LUISA_ERR_FIRST) {   /* a step, so that a context made is seen working */
    double h[N] = { 0 };
    declare(lz, "H");
    luisa_publish(lz, "H", 0, h);
    *status = luisa_step(lz, 1) == LUISA_OK ? *status : -1;
  }
  luisa_finalize(lz);
  return lz != NULL;
}

static luisa_options thread_options(void)
{
  luisa_options o = luisa_options_default();
  o.script = "t/data/threads/handover.lua";   /* init_says declares H */
  o.mode = LUISA_MODE_THREAD;
  o.log_level = LUISA_LOG_ERROR;
  return o;
}

/* luisa_init's whole stderr for a cpuset "banana", on every rank. */
static const char *const banana = "luisa_init: cpuset \"banana\" is not \"auto\" nor a list of processing units "
  "such as \"1\", \"2-3\" or \"1,5\" (at character 1)\n";

static void refuse(void)
{
  static char text[TEXT];
  int st;
  luisa_options o = thread_options();
  o.cpuset = "banana";
  int made = init_says(&o, &st, text, sizeof text);
  every_rank(!made && st == LUISA_ERR_ARG && !strcmp(text, banana), text, "%s: opts.cpuset \"banana\" in thread "
             "mode: luisa_init refuses with LUISA_ERR_ARG, no context, saying: %.*s", tag, (int)strlen(banana) - 1,
             banana);
  o = thread_options();
  setenv("LUISA_CPUSET", "banana", 1);
  made = init_says(&o, &st, text, sizeof text);
  unsetenv("LUISA_CPUSET");
  every_rank(!made && st == LUISA_ERR_ARG && !strcmp(text, banana), text, "%s: LUISA_CPUSET=banana over "
             "opts.cpuset NULL: the same", tag);
}

static void lags(void)
{
  static char text[TEXT];
  int st;
  luisa_options o = thread_options();
  setenv("LUISA_MODE", "thread", 1);
  setenv("LUISA_MAX_LAG", rank == 0 ? "1" : "2", 1);
  o.mode = LUISA_MODE_INLINE;
  int made = init_says(&o, &st, text, sizeof text);
  unsetenv("LUISA_MODE");
  unsetenv("LUISA_MAX_LAG");
  every_rank(!made && st == LUISA_ERR_ARG && strstr(text, "the ranks ask for different lags") &&
             strstr(text, "from 1 to 2"), text, "%s: LUISA_MAX_LAG=1 on rank 0, 2 on the others: every rank "
             "refuses with LUISA_ERR_ARG, saying the ranks ask for different lags, from 1 to 2", tag);
  o = thread_options();
  o.max_lag = rank == size - 1 ? 3 : 0;
  made = init_says(&o, &st, text, sizeof text);
  every_rank(!made && st == LUISA_ERR_ARG && strstr(text, "the ranks ask for different lags") &&
             strstr(text, "from 0 to 3"), text, "%s: opts.max_lag 3 on the last rank, 0 on the others: the same, "
             "from 0 to 3", tag);
  o.max_lag = 3;
  made = init_says(&o, &st, text, sizeof text);
  every_rank(made && st == LUISA_OK, text, "%s: opts.max_lag 3 on every rank: luisa_init and a step return "
             "LUISA_OK", tag);
  o.mode = LUISA_MODE_INLINE;   /* inline has no lag: nothing to disagree on */
  o.max_lag = rank == size - 1 ? 3 : 0;
  made = init_says(&o, &st, text, sizeof text);
  every_rank(made && st == LUISA_OK, text, "%s: inline, opts.max_lag 3 on the last rank, 0 on the others: "
             "luisa_init and a step return LUISA_OK", tag);
}

static const char *const needs_multiple = "the thread mode (opts->mode or LUISA_MODE) needs MPI_THREAD_MULTIPLE, "
  "and MPI ";

static void single(void)
{
  static char text[TEXT];
  int level = -1, st;
  MPI_Query_thread(&level);
  every_rank(level < MPI_THREAD_MULTIPLE, "MPI_Init gave MPI_THREAD_MULTIPLE", "%s: MPI_Init gives a thread level "
             "below MPI_THREAD_MULTIPLE (%d)", tag, level);
  luisa_options o = thread_options();
  int made = init_says(&o, &st, text, sizeof text);
  every_rank(!made && st == LUISA_ERR_MODE && strstr(text, needs_multiple) && strstr(text, "MPI_Init_thread") &&
             strstr(text, "provides MPI_THREAD_SINGLE") && !strstr(text, "on another rank"), text,
             "%s: opts.mode LUISA_MODE_THREAD: luisa_init refuses with LUISA_ERR_MODE, no context, naming "
             "MPI_THREAD_MULTIPLE, the level MPI gave and MPI_Init_thread", tag);
  o.mode = LUISA_MODE_INLINE;
  setenv("LUISA_MODE", "thread", 1);
  made = init_says(&o, &st, text, sizeof text);
  unsetenv("LUISA_MODE");
  every_rank(!made && st == LUISA_ERR_MODE && strstr(text, needs_multiple), text, "%s: LUISA_MODE=thread over "
             "opts.mode inline: the same", tag);
  made = init_says(&o, &st, text, sizeof text);
  every_rank(made && st == LUISA_OK, text, "%s: inline, the same program runs: luisa_init and a step return "
             "LUISA_OK", tag);
}

/* Rank 0 started with MPI_Init, the others with MPI_THREAD_MULTIPLE. */
static void mixed(void)
{
  static char text[TEXT];
  int st;
  luisa_options o = thread_options();
  int made = init_says(&o, &st, text, sizeof text);
  int told = rank == 0 ? !strstr(text, "on another rank") : strstr(text, "lower thread level on another rank") != NULL;
  every_rank(!made && st == LUISA_ERR_MODE && strstr(text, needs_multiple) && told, text, "%s: rank 0 started with "
             "MPI_Init: every rank refuses thread mode with LUISA_ERR_MODE, the others saying \"on another rank\"",
             tag);
}

static const struct {
  const char *name;
  void (*run)(void);
} cases[] = {
  { "lag", lag }, { "steer", steer }, { "same", same }, { "handover", handover }, { "errors", errors },
  { "refuse", refuse }, { "lags", lags }, { "single", single }, { "mixed", mixed },
};

int main(int argc, char **argv)
{
  if (argc > 3 && !strcmp(argv[3], "single")) {
    MPI_Init(&argc, &argv);
  } else {
    tap_mpi_init(&argc, &argv);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  /* The cases choose modes themselves: the caller's environment does not. */
  unsetenv("LUISA_MODE");
  unsetenv("LUISA_MAX_LAG");
  unsetenv("LUISA_CPUSET");
  unsetenv("LUISA_SCRIPT");
  int found = -1;
  for (int i = 0; argc >= 3 && i < (int)(sizeof cases / sizeof cases[0]); i++)
    if (!strcmp(argv[1], cases[i].name))
      found = i;
  out_path = getenv("LUISA_TEST_OUT");
  if (found < 0 || !out_path) {
    tap_print("not ok - usage: LUISA_TEST_OUT=PATH threads CASE FIRST [single] (CASE: a name in t/threads.c)\n");
    MPI_Finalize();
    return 1;
  }
  out_path = strdup(out_path);   /* the cases set LUISA_TEST_OUT for their scripts */
  tap_count = atoi(argv[2]) - 1;
  snprintf(tag, sizeof tag, "%s, %d rank%s", argv[1], size, size > 1 ? "s" : "");
  lo = N * rank / size;
  hi = N * (rank + 1) / size;
  cases[found].run();
  MPI_Finalize();
  return rank == 0 && tap_failed;
}
