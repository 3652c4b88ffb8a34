/* api.c: every bad input of the C API on one rank (exact status, a sentence
 * naming the culprit), then an exact analysis step: the refusals changed nothing. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "luisa.h"
#include "tap.h"

/* tap.h's is_status puts tap_print, a do-while statement, inside an
 * expression, so it does not compile: this one keeps its meaning. */
#undef is_status
#define is_status(got, want, lz, ...) check_status((got), (want), (lz), __FILE__, __LINE__, __VA_ARGS__)
static void own_handler(int sig) { (void)sig; }

static int check_status(int got, int want, const luisa *lz, const char *file, int line, const char *fmt, ...)
  __attribute__((format(printf, 6, 7)));
static int check_status(int got, int want, const luisa *lz, const char *file, int line, const char *fmt, ...)
{
  char what[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (tap_ok(got == want, file, line, "%s", what))
    return 1;
  tap_print("#   got status %d, expected %d: %s\n", got, want, luisa_error(lz));
  return 0;
}

#define SHAPE(...) ((const int64_t[]){ __VA_ARGS__ })
#define BIG ((int64_t)1 << 31)
#define P2(k) ((int64_t)1 << (k))

/* A refused call: the status, then (only if the status was right, so a stale
 * sentence cannot pass) the fragments of its luisa_error. */
#define refused(ctx, call, want, what, ...) do { \
    int st_ = (call); \
    is_status(st_, want, ctx, "%s: %s", what, #want); \
    ok(st_ == (want) && error_mentions(ctx, __VA_ARGS__), "%s: luisa_error names it", what); \
  } while (0)

/* luisa_init refuses before any context exists, so its reason is only on
 * stderr: capture file descriptor 2 around the call. */
static FILE *captured;
static int saved_stderr = -1;

static void capture_stderr(void)
{
  fflush(stderr);
  captured = tmpfile();
  saved_stderr = dup(2);
  if (captured && saved_stderr >= 0)
    dup2(fileno(captured), 2);
}

static const char *captured_text(void)
{
  static char text[4096];
  fflush(stderr);
  text[0] = '\0';
  if (saved_stderr >= 0) {
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
  }
  if (captured) {
    rewind(captured);
    size_t n = fread(text, 1, sizeof text - 1, captured);
    text[n] = '\0';
    fclose(captured);
    captured = NULL;
  }
  return text;
}

/* Global values: integers small enough that every sum is exact in double. */
static double value_a(int64_t i, int64_t j, int64_t step) { return (double)(1 + 7 * i + j + 100 * step); }
static double value_b(int64_t i, int64_t j) { return (double)((3 * i + 5 * j) % 11 - 5); }

enum { NI = 5, NJ = 7 };

/* A's chunk 0 (rows 0-1) sits in a Fortran-order buffer with uneven ghosts:
 * axis 0 alloc 5 start 1, axis 1 alloc 10 start 2. The ghosts hold NaN, so
 * reading one spoils the sum. */
enum { A0_ALLOC0 = 5, A0_ALLOC1 = 10, A0_START0 = 1, A0_START1 = 2 };
static double a0[A0_ALLOC0 * A0_ALLOC1], a1[3 * NJ], b0[2 * NJ], b1[3 * NJ];

static void fill(int64_t step)
{
  for (int k = 0; k < A0_ALLOC0 * A0_ALLOC1; k++)
    a0[k] = NAN;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < NJ; j++) {
      a0[(i + A0_START0) + A0_ALLOC0 * (j + A0_START1)] = value_a(i, j, step);
      b0[i * NJ + j] = value_b(i, j);
    }
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < NJ; j++) {
      a1[i * NJ + j] = value_a(i + 2, j, step);
      b1[i * NJ + j] = value_b(i + 2, j);
    }
}

/* Every buffer's bytes, ghosts included, to show a step wrote none of them. */
static void snapshot(void *to)
{
  char *p = to;
  memcpy(p, a0, sizeof a0), p += sizeof a0;
  memcpy(p, a1, sizeof a1), p += sizeof a1;
  memcpy(p, b0, sizeof b0), p += sizeof b0;
  memcpy(p, b1, sizeof b1);
}

static int unchanged(const void *before)
{
  static char now[sizeof a0 + sizeof a1 + sizeof b0 + sizeof b1];
  snapshot(now);
  return memcmp(now, before, sizeof now) == 0;
}

static void expected(int64_t step, double *sum, double *dot)
{
  *sum = *dot = 0;
  for (int i = 0; i < NI; i++)
    for (int j = 0; j < NJ; j++) {
      *sum += value_a(i, j, step);
      *dot += value_a(i, j, step) * value_b(i, j);
    }
}

/* Lines "step sum dot" the script wrote, at most 8. */
static int read_results(const char *path, long long *steps, double *sums, double *dots)
{
  FILE *f = fopen(path, "r");
  int n = 0;
  while (f && n < 8 && fscanf(f, "%lld %lf %lf", &steps[n], &sums[n], &dots[n]) == 3)
    n++;
  if (f)
    fclose(f);
  return n;
}

static void check_results(const char *path, int nsteps, const long long *want_steps, const char *what)
{
  long long steps[8];
  double sums[8], dots[8];
  int n = read_results(path, steps, sums, dots), good = n == nsteps;
  for (int k = 0; k < n; k++) {
    double sum, dot;
    expected(k < nsteps ? want_steps[k] : 0, &sum, &dot);
    if (k >= nsteps || steps[k] != want_steps[k] || sums[k] != sum || dots[k] != dot) {
      tap_print("#   line %d: step %lld sum %.17g dot %.17g; expected step %lld sum %.17g dot %.17g\n", k + 1,
                steps[k], sums[k], dots[k], k < nsteps ? want_steps[k] : -1, sum, dot);
      good = 0;
    }
  }
  if (n != nsteps)
    tap_print("#   the script wrote %d lines, expected %d\n", n, nsteps);
  ok(good, "%s", what);
}

static void status_strings(void)
{
  /* The numbers are stable API: spelled out here, not taken from the header. */
  static const struct { int code, num; const char *text; } known[] = {
#define KNOWN(name, num, text) { LUISA_##name, num, text },
    LUISA_STATUS_LIST(KNOWN)
#undef KNOWN
  };
  static const int stable[] = { 0, 1, 2, 3, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26 };
  int n = (int)(sizeof known / sizeof known[0]);
  ok(n == (int)(sizeof stable / sizeof stable[0]), "LUISA_STATUS_LIST has %d codes", n);
  for (int k = 0; k < n; k++) {
    const char *s = luisa_status_string(known[k].code);
    ok(known[k].code == stable[k] && s && strcmp(s, known[k].text) == 0,
       "luisa_status_string(%d) is \"%s\"", stable[k], known[k].text);
  }
  ok(LUISA_ERR_FIRST == 16 && LUISA_ERR_ARG >= LUISA_ERR_FIRST && LUISA_WARN_SCRIPT < LUISA_ERR_FIRST,
     "LUISA_ERR_FIRST is 16, between the warnings and the errors");
  const int unknown[] = { -1, 4, 15, 27, 1000 };
  for (size_t u = 0; u < sizeof unknown / sizeof unknown[0]; u++) {
    const char *s = luisa_status_string(unknown[u]);
    int distinct = s && *s;
    for (int k = 0; distinct && k < n; k++)
      distinct = strcmp(s, known[k].text) != 0;
    ok(distinct && strstr(s, "unknown"), "luisa_status_string(%d) says it is unknown: \"%s\"", unknown[u],
       s ? s : "(null)");
  }
}

static void null_context(void)
{
  const char *e = luisa_error(NULL);
  ok(e && *e && luisa_error(NULL) && strcmp(luisa_error(NULL), e) == 0,
     "luisa_error(NULL) is a fixed non-empty text: \"%s\"", e ? e : "(null)");
  is_status(luisa_array(NULL, "A", LUISA_F64, 1, SHAPE(4)), LUISA_ERR_ARG, NULL, "luisa_array(NULL, ...): LUISA_ERR_ARG");
  is_status(luisa_chunk(NULL, "A", SHAPE(0), SHAPE(4), NULL), LUISA_ERR_ARG, NULL, "luisa_chunk(NULL, ...): LUISA_ERR_ARG");
  double d = 0;
  is_status(luisa_publish(NULL, "A", 0, &d), LUISA_ERR_ARG, NULL, "luisa_publish(NULL, ...): LUISA_ERR_ARG");
  is_status(luisa_step(NULL, 1), LUISA_ERR_ARG, NULL, "luisa_step(NULL, ...): LUISA_ERR_ARG");
  luisa_finalize(NULL);
  ok(1, "luisa_finalize(NULL) returns");
}

static void init_refusals(void)
{
  luisa_options d = luisa_options_default();
  ok(d.script == NULL && d.mode == LUISA_MODE_INLINE && d.log_level == LUISA_LOG_WARN,
     "luisa_options_default: no script, inline mode, warnings");

  /* A sentinel in *out shows the refusal set it to NULL. */
  luisa *sentinel = (luisa *)&d, *out;
  capture_stderr();
  int st = luisa_init(MPI_COMM_WORLD, &d, NULL);
  const char *text = captured_text();
  is_status(st, LUISA_ERR_ARG, NULL, "luisa_init with out NULL: LUISA_ERR_ARG");
  ok(tap_mentions(text, (const char *[]){ "luisa_init", "out is NULL", NULL }), "luisa_init with out NULL: stderr says why");

  struct {
    const char *what;
    MPI_Comm comm;
    luisa_mode mode;
    luisa_log_level level;
    int signal;
    const char *frags[3];
  } bad[] = {
    { "comm MPI_COMM_NULL", MPI_COMM_NULL, LUISA_MODE_INLINE, LUISA_LOG_WARN, SIGUSR1, { "comm", "MPI_COMM_NULL", NULL } },
    { "mode 7", MPI_COMM_WORLD, (luisa_mode)7, LUISA_LOG_WARN, SIGUSR1, { "opts->mode", "LUISA_MODE_INLINE", NULL } },
    { "log_level 4", MPI_COMM_WORLD, LUISA_MODE_INLINE, (luisa_log_level)4, SIGUSR1,
      { "opts->log_level", "LUISA_LOG_DEBUG", NULL } },
    { "log_level -1", MPI_COMM_WORLD, LUISA_MODE_INLINE, (luisa_log_level)-1, SIGUSR1,
      { "opts->log_level", "LUISA_LOG_ERROR", NULL } },
    { "reload_signal -1", MPI_COMM_WORLD, LUISA_MODE_INLINE, LUISA_LOG_WARN, -1,
      { "opts->reload_signal is -1", "0 for none", NULL } },
    { "reload_signal 99", MPI_COMM_WORLD, LUISA_MODE_INLINE, LUISA_LOG_WARN, 99,
      { "opts->reload_signal is 99", "a signal number", NULL } },
  };
  /* LUISA_MODE would replace opts->mode (the suite also runs in thread mode). */
  char *env_mode = getenv("LUISA_MODE") ? strdup(getenv("LUISA_MODE")) : NULL;
  unsetenv("LUISA_MODE");
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    luisa_options o = luisa_options_default();
    o.mode = bad[k].mode;
    o.log_level = bad[k].level;
    o.reload_signal = bad[k].signal;
    out = sentinel;
    capture_stderr();
    st = luisa_init(bad[k].comm, &o, &out);
    text = captured_text();
    is_status(st, LUISA_ERR_ARG, NULL, "luisa_init with %s: LUISA_ERR_ARG", bad[k].what);
    ok(out == NULL, "luisa_init with %s: *out is NULL", bad[k].what);
    ok(tap_mentions(text, bad[k].frags), "luisa_init with %s: stderr says why", bad[k].what);
    if (out && out != sentinel)
      luisa_finalize(out);
  }
  if (env_mode)
    setenv("LUISA_MODE", env_mode, 1);
  free(env_mode);

  /* The reload signal: taken when free, left alone when the simulation
   * handles it, the previous disposition back at finalize. */
  ok(luisa_options_default().reload_signal == SIGUSR1, "luisa_options_default: reload_signal is SIGUSR1");
  struct sigaction mine, seen;
  memset(&mine, 0, sizeof mine);
  mine.sa_handler = own_handler;
  sigemptyset(&mine.sa_mask);
  sigaction(SIGUSR2, &mine, NULL);
  luisa_options so = luisa_options_default();
  so.script = "t/data/signals.lua";
  so.reload_signal = SIGUSR2;
  capture_stderr();
  st = luisa_init(MPI_COMM_WORLD, &so, &out);
  text = captured_text();
  sigaction(SIGUSR2, NULL, &seen);
  int kept = st == LUISA_OK && seen.sa_handler == own_handler;
  luisa_finalize(out);
  sigaction(SIGUSR2, NULL, &seen);
  ok(kept && seen.sa_handler == own_handler && tap_mentions(text, (const char *[]){ "already has a handler", NULL }),
     "reload_signal: a signal the simulation handles stays its own, and the log says so");
  signal(SIGUSR2, SIG_DFL);
  st = luisa_init(MPI_COMM_WORLD, &so, &out);
  sigaction(SIGUSR2, NULL, &seen);
  int taken = st == LUISA_OK && seen.sa_handler != SIG_DFL;
  luisa_finalize(out);
  sigaction(SIGUSR2, NULL, &seen);
  ok(taken && seen.sa_handler == SIG_DFL, "reload_signal: a free signal is taken, and given back at finalize");

  /* NULL options: defaults, no script; limits that are still valid. */
  out = sentinel;
  capture_stderr();
  st = luisa_init(MPI_COMM_WORLD, NULL, &out);
  text = captured_text();
  is_status(st, LUISA_OK, NULL, "luisa_init with opts NULL: LUISA_OK");
  if (st != LUISA_OK || !out || out == sentinel) {
    ok(0, "luisa_init with opts NULL gave a context");
    return;
  }
  luisa *lz = out;
  ok(*text == '\0' && strcmp(luisa_error(lz), "") == 0, "luisa_init with opts NULL: silent, luisa_error is \"\"");
  char name63[64];
  memset(name63, 'x', 63);
  name63[0] = 'N';
  name63[63] = '\0';
  is_status(luisa_array(lz, name63, LUISA_I32, 1, SHAPE(3)), LUISA_OK, lz, "luisa_array: a 63-character name is valid");
  is_status(luisa_chunk(lz, name63, SHAPE(0), SHAPE(3), NULL), LUISA_OK, lz, "luisa_chunk on the 63-character name");
  is_status(luisa_array(lz, "Big", LUISA_F32, 2, SHAPE(BIG, BIG)), LUISA_OK, lz,
            "luisa_array: exactly 2^62 elements is valid");
  /* Chunks are buffers of at most 2^63-1 bytes: 2^62 f32 elements take four. */
  for (int64_t k = 0; k < 4; k++)
    is_status(luisa_chunk(lz, "Big", SHAPE(k * BIG / 4, 0), SHAPE(BIG / 4, BIG), NULL), LUISA_OK, lz,
              "luisa_chunk: f32 chunk %lld of 2^60 elements (2^62 bytes)", (long long)k);
  is_status(luisa_array(lz, "Edge", LUISA_I64, 1, SHAPE(P2(60) - 1)), LUISA_OK, lz, "luisa_array: i64 [2^60 - 1]");
  is_status(luisa_chunk(lz, "Edge", SHAPE(0), SHAPE(P2(60) - 1), NULL), LUISA_OK, lz,
            "luisa_chunk: an i64 chunk of 2^60 - 1 elements, 2^63 - 8 bytes, at the limit");
  is_status(luisa_array(lz, "Pad", LUISA_F64, 1, SHAPE(3)), LUISA_OK, lz, "luisa_array: f64 [3]");
  luisa_layout far = { .order = LUISA_ORDER_C, .alloc_shape = { P2(60) - 1 }, .start = { P2(60) - 4 } };
  is_status(luisa_chunk(lz, "Pad", SHAPE(0), SHAPE(3), &far), LUISA_OK, lz,
            "luisa_chunk: start 2^60 - 4 + extent 3 ends exactly at alloc_shape 2^60 - 1 (2^63 - 8 bytes)");
  is_status(luisa_array(lz, "_4d", LUISA_I64, 4, SHAPE(2, 1, 3, 2)), LUISA_OK, lz, "luisa_array: 4 dimensions, name starting with _");
  is_status(luisa_chunk(lz, "_4d", SHAPE(0, 0, 0, 0), SHAPE(2, 1, 3, 2), NULL), LUISA_OK, lz, "luisa_chunk on the 4-d array");
  is_status(luisa_step(lz, -3), LUISA_OK, lz, "luisa_step on the limits context (no script, first step -3)");
  ok(strcmp(luisa_error(lz), "") == 0, "no failure recorded on the limits context: \"%s\"", luisa_error(lz));
  luisa_finalize(lz);
}

/* Buffers past 2^63-1 bytes and layouts one past their end are refused;
 * the collective check counts elements near 2^62 exactly. */
static void huge_chunks(void)
{
  luisa *lz = NULL;
  if (luisa_init(MPI_COMM_WORLD, NULL, &lz) != LUISA_OK) {
    ok(0, "luisa_init for the huge chunks");
    return;
  }
  int64_t n = P2(62) - 2;
  is_status(luisa_array(lz, "H", LUISA_I32, 1, SHAPE(n)), LUISA_OK, lz, "luisa_array: i32 [2^62 - 2]");
  refused(lz, luisa_chunk(lz, "H", SHAPE(0), SHAPE(n), NULL), LUISA_ERR_ARG,
          "luisa_chunk: an i32 chunk of 2^62 - 2 elements (2^64 - 8 bytes)", "luisa_chunk(\"H\")",
          "alloc_shape [4611686018427387902]", "4611686018427387902 elements of 4 bytes",
          "more than 9223372036854775807 bytes");
  refused(lz, luisa_chunk(lz, "H", SHAPE(0), SHAPE(P2(61)), NULL), LUISA_ERR_ARG,
          "luisa_chunk: an i32 chunk of 2^61 elements (2^63 bytes, one past the limit)", "luisa_chunk(\"H\")",
          "2305843009213693952 elements of 4 bytes", "more than 9223372036854775807 bytes");
  luisa_layout far = { .order = LUISA_ORDER_C, .alloc_shape = { P2(60) - 1 }, .start = { P2(60) - 3 } };
  refused(lz, luisa_chunk(lz, "H", SHAPE(0), SHAPE(3), &far), LUISA_ERR_ARG,
          "luisa_chunk: start 2^60 - 3 + extent 3 is one past alloc_shape 2^60 - 1", "luisa_chunk(\"H\")",
          "axis 0", "start 1152921504606846973 + chunk extent 3", "alloc_shape 1152921504606846975");
  is_status(luisa_chunk(lz, "H", SHAPE(0), SHAPE(P2(61) - 1), NULL), LUISA_OK, lz,
            "luisa_chunk: an i32 chunk of 2^61 - 1 elements, 2^63 - 4 bytes, at the limit");
  is_status(luisa_chunk(lz, "H", SHAPE(P2(61)), SHAPE(n - P2(61)), NULL), LUISA_OK, lz,
            "luisa_chunk: 2^61 - 2 elements from 2^61, leaving element 2^61 - 1 out");
  refused(lz, luisa_step(lz, 1), LUISA_ERR_CHUNK, "the collective check of 2^62 - 2 elements with a hole",
          "\"H\"", "hold 4611686018427387901 of 4611686018427387902 elements",
          "no chunk holds element [2305843009213693951]");
  luisa_finalize(lz);
}

int main(int argc, char **argv)
{
  tap_mpi_init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &tap_rank);

  status_strings();
  null_context();
  init_refusals();
  huge_chunks();

  /* The analysis script, written here so the test is self-contained. */
  char dir[] = "/tmp/luisa-api-XXXXXX", script[256], result[256];
  if (!mkdtemp(dir)) {
    ok(0, "mkdtemp");
    MPI_Finalize();
    return tap_done();
  }
  snprintf(script, sizeof script, "%s/sums.lua", dir);
  snprintf(result, sizeof result, "%s/sums.out", dir);
  FILE *f = fopen(script, "w");
  if (f) {
    fprintf(f, "-- written by t/api.c: sum of A and of A*B, one line per step\n"
               "local luisa = require \"luisa\"\n"
               "local A, B = luisa.array \"A\", luisa.array \"B\"\n"
               "local out = assert(io.open([[%s]], \"w\"))\n"
               "luisa.every(1, { sum = A:sum(), dot = (A * B):sum() }, function(step, r)\n"
               "  out:write(string.format(\"%%d %%.17g %%.17g\\n\", step, r.sum, r.dot))\n"
               "  out:flush()\n"
               "end)\n", result);
    fclose(f);
  }
  luisa_options opts = luisa_options_default();
  opts.script = script;
  opts.output_dir = dir;   /* where the sandboxed script may write */
  luisa *lz = NULL;
  int st = luisa_init(MPI_COMM_WORLD, &opts, &lz);
  is_status(st, LUISA_OK, lz, "luisa_init with the sums script");
  if (!lz) {
    remove(script);
    rmdir(dir);
    MPI_Finalize();
    return tap_done();
  }
  ok(strcmp(luisa_error(lz), "") == 0, "a fresh context has luisa_error \"\"");

  /* luisa_array: the refusals use the name A where they can, so one wrongly
   * accepted would make the real declaration of A fail. */
  char name64[65];
  memset(name64, 'y', 64);
  name64[64] = '\0';
  refused(lz, luisa_array(lz, NULL, LUISA_F64, 2, SHAPE(NI, NJ)), LUISA_ERR_ARG, "luisa_array name NULL",
          "name", "(null)", "1 to 63 characters");
  refused(lz, luisa_array(lz, "", LUISA_F64, 2, SHAPE(NI, NJ)), LUISA_ERR_ARG, "luisa_array name \"\"",
          "name \"\"", "1 to 63 characters");
  refused(lz, luisa_array(lz, "9A", LUISA_F64, 2, SHAPE(NI, NJ)), LUISA_ERR_ARG, "luisa_array name \"9A\"",
          "\"9A\"", "not starting with a digit");
  refused(lz, luisa_array(lz, "A-B", LUISA_F64, 2, SHAPE(NI, NJ)), LUISA_ERR_ARG, "luisa_array name \"A-B\"",
          "\"A-B\"", "[A-Za-z0-9_]");
  refused(lz, luisa_array(lz, "A B", LUISA_F64, 2, SHAPE(NI, NJ)), LUISA_ERR_ARG, "luisa_array name \"A B\"",
          "\"A B\"", "[A-Za-z0-9_]");
  refused(lz, luisa_array(lz, name64, LUISA_F64, 2, SHAPE(NI, NJ)), LUISA_ERR_ARG, "luisa_array 64-character name",
          name64, "1 to 63 characters");
  refused(lz, luisa_array(lz, "A", (luisa_dtype)0, 2, SHAPE(NI, NJ)), LUISA_ERR_ARG, "luisa_array dtype 0",
          "luisa_array(\"A\")", "dtype 0", "LUISA_F64");
  refused(lz, luisa_array(lz, "A", (luisa_dtype)5, 2, SHAPE(NI, NJ)), LUISA_ERR_ARG, "luisa_array dtype 5",
          "luisa_array(\"A\")", "dtype 5", "LUISA_I32");
  refused(lz, luisa_array(lz, "A", LUISA_F64, 0, SHAPE(NI, NJ)), LUISA_ERR_ARG, "luisa_array ndim 0",
          "luisa_array(\"A\")", "ndim is 0", "1 to 4");
  refused(lz, luisa_array(lz, "A", LUISA_F64, 5, SHAPE(NI, NJ, 1, 1, 1)), LUISA_ERR_ARG, "luisa_array ndim 5",
          "luisa_array(\"A\")", "ndim is 5", "1 to 4");
  refused(lz, luisa_array(lz, "A", LUISA_F64, 2, NULL), LUISA_ERR_ARG, "luisa_array shape NULL",
          "luisa_array(\"A\")", "shape is NULL");
  refused(lz, luisa_array(lz, "A", LUISA_F64, 2, SHAPE(NI, 0)), LUISA_ERR_ARG, "luisa_array shape [5, 0]",
          "luisa_array(\"A\")", "shape[1] is 0", ">= 1");
  refused(lz, luisa_array(lz, "A", LUISA_F64, 2, SHAPE(-3, NJ)), LUISA_ERR_ARG, "luisa_array shape [-3, 7]",
          "luisa_array(\"A\")", "shape[0] is -3", ">= 1");
  refused(lz, luisa_array(lz, "A", LUISA_F64, 2, SHAPE(BIG, BIG + 1)), LUISA_ERR_ARG,
          "luisa_array shape [2^31, 2^31+1]", "luisa_array(\"A\")", "2^62");
  refused(lz, luisa_array(lz, "A", LUISA_F64, 3, SHAPE(BIG, BIG, 2)), LUISA_ERR_ARG,
          "luisa_array shape [2^31, 2^31, 2]", "luisa_array(\"A\")", "2^62");
  /* Volumes that wrap to 0 or go negative in int64 arithmetic. */
  refused(lz, luisa_array(lz, "A", LUISA_F64, 2, SHAPE(P2(32), P2(32))), LUISA_ERR_ARG,
          "luisa_array shape [2^32, 2^32] (2^64 wraps to 0)", "luisa_array(\"A\")",
          "global shape [4294967296, 4294967296]", "more than 2^62 elements");
  refused(lz, luisa_array(lz, "A", LUISA_F64, 4, SHAPE(P2(16), P2(16), P2(16), P2(16))), LUISA_ERR_ARG,
          "luisa_array shape [2^16, 2^16, 2^16, 2^16]", "luisa_array(\"A\")", "[65536, 65536, 65536, 65536]",
          "2^62");
  refused(lz, luisa_array(lz, "A", LUISA_F64, 2, SHAPE(INT64_MAX, INT64_MAX)), LUISA_ERR_ARG,
          "luisa_array shape [INT64_MAX, INT64_MAX]", "luisa_array(\"A\")",
          "[9223372036854775807, 9223372036854775807]", "2^62");
  refused(lz, luisa_array(lz, "A", LUISA_F64, 1, SHAPE(P2(62) + 1)), LUISA_ERR_ARG,
          "luisa_array shape [2^62 + 1]", "luisa_array(\"A\")", "[4611686018427387905]", "2^62");
  refused(lz, luisa_array(lz, "A", LUISA_F64, 2, SHAPE(INT64_MIN, NJ)), LUISA_ERR_ARG, "luisa_array shape [INT64_MIN, 7]",
          "luisa_array(\"A\")", "shape[0] is -9223372036854775808", ">= 1");

  is_status(luisa_array(lz, "A", LUISA_F64, 2, SHAPE(NI, NJ)), LUISA_OK, lz, "luisa_array A [5, 7] after the refusals");
  is_status(luisa_array(lz, "B", LUISA_F64, 2, SHAPE(NI, NJ)), LUISA_OK, lz, "luisa_array B [5, 7]");
  refused(lz, luisa_array(lz, "A", LUISA_F64, 2, SHAPE(9, 9)), LUISA_ERR_NAME, "luisa_array A again",
          "\"A\"", "already declared");

  /* luisa_chunk refusals on A, before its real chunks: one wrongly accepted
   * would shift the chunk indices and break the tiling at the first step. */
  luisa_layout lay = { .order = LUISA_ORDER_F, .alloc_shape = { A0_ALLOC0, A0_ALLOC1 }, .start = { A0_START0, A0_START1 } };
  refused(lz, luisa_chunk(lz, "Z", SHAPE(0, 0), SHAPE(2, NJ), NULL), LUISA_ERR_NAME, "luisa_chunk unknown array",
          "\"Z\"", "no array");
  refused(lz, luisa_chunk(lz, NULL, SHAPE(0, 0), SHAPE(2, NJ), NULL), LUISA_ERR_ARG, "luisa_chunk name NULL",
          "name is NULL");
  refused(lz, luisa_chunk(lz, "A", NULL, SHAPE(2, NJ), NULL), LUISA_ERR_ARG, "luisa_chunk offset NULL",
          "luisa_chunk(\"A\")", "offset is NULL");
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), NULL, NULL), LUISA_ERR_ARG, "luisa_chunk shape NULL",
          "luisa_chunk(\"A\")", "shape is NULL");
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, -1), SHAPE(2, 1), NULL), LUISA_ERR_ARG, "luisa_chunk offset [0, -1]",
          "luisa_chunk(\"A\")", "offset [0, -1]", "axis 1", "global shape [5, 7]");
  refused(lz, luisa_chunk(lz, "A", SHAPE(-2, 0), SHAPE(2, 1), NULL), LUISA_ERR_ARG, "luisa_chunk offset [-2, 0]",
          "luisa_chunk(\"A\")", "offset [-2, 0]", "axis 0");
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, 0), NULL), LUISA_ERR_ARG, "luisa_chunk shape [2, 0]",
          "luisa_chunk(\"A\")", "shape [2, 0]", "empty", "axis 1");
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(-2, 3), NULL), LUISA_ERR_ARG, "luisa_chunk shape [-2, 3]",
          "luisa_chunk(\"A\")", "shape [-2, 3]", "empty", "axis 0");
  refused(lz, luisa_chunk(lz, "A", SHAPE(4, 0), SHAPE(2, NJ), NULL), LUISA_ERR_ARG, "luisa_chunk past axis 0",
          "luisa_chunk(\"A\")", "offset [4, 0]", "shape [2, 7]", "outside the array on axis 0", "global shape [5, 7]");
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 3), SHAPE(2, 5), NULL), LUISA_ERR_ARG, "luisa_chunk past axis 1",
          "luisa_chunk(\"A\")", "offset [0, 3]", "shape [2, 5]", "outside the array on axis 1");
  refused(lz, luisa_chunk(lz, "A", SHAPE(5, 0), SHAPE(1, 1), NULL), LUISA_ERR_ARG, "luisa_chunk at offset [5, 0]",
          "luisa_chunk(\"A\")", "offset [5, 0]", "outside the array on axis 0");
  refused(lz, luisa_chunk(lz, "A", SHAPE(1, 0), SHAPE(INT64_MAX, NJ), NULL), LUISA_ERR_ARG,
          "luisa_chunk extent INT64_MAX (no overflow)", "luisa_chunk(\"A\")", "outside the array on axis 0");
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 1), SHAPE(2, INT64_MAX), NULL), LUISA_ERR_ARG,
          "luisa_chunk extent INT64_MAX on axis 1", "luisa_chunk(\"A\")", "shape [2, 9223372036854775807]",
          "outside the array on axis 1");
  refused(lz, luisa_chunk(lz, "A", SHAPE(INT64_MAX, 0), SHAPE(1, 1), NULL), LUISA_ERR_ARG,
          "luisa_chunk offset INT64_MAX", "luisa_chunk(\"A\")", "offset [9223372036854775807, 0]",
          "outside the array on axis 0");
  refused(lz, luisa_chunk(lz, "A", SHAPE(INT64_MAX - 1, 0), SHAPE(2, NJ), NULL), LUISA_ERR_ARG,
          "luisa_chunk offset INT64_MAX - 1 + extent 2 (overflows int64)", "luisa_chunk(\"A\")",
          "offset [9223372036854775806, 0]", "outside the array on axis 0");
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, INT64_MIN), SHAPE(2, NJ), NULL), LUISA_ERR_ARG,
          "luisa_chunk offset INT64_MIN", "luisa_chunk(\"A\")", "offset [0, -9223372036854775808]", "axis 1");
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(INT64_MIN, NJ), NULL), LUISA_ERR_ARG,
          "luisa_chunk shape INT64_MIN", "luisa_chunk(\"A\")", "empty", "axis 0");
  luisa_layout bad = lay;
  bad.order = (luisa_order)2;
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG, "luisa_chunk layout order 2",
          "luisa_chunk(\"A\")", "order is 2", "LUISA_ORDER_C", "LUISA_ORDER_F");
  bad.order = (luisa_order)-1;
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG, "luisa_chunk layout order -1",
          "luisa_chunk(\"A\")", "order is -1");
  bad = lay;
  bad.alloc_shape[1] = 8;   /* start 2 + extent 7 > 8 */
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG, "luisa_chunk start+shape > alloc on axis 1",
          "luisa_chunk(\"A\")", "axis 1", "start 2", "extent 7", "alloc_shape 8");
  bad = lay;
  bad.alloc_shape[0] = 2;   /* start 1 + extent 2 > 2 */
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG, "luisa_chunk start+shape > alloc on axis 0",
          "luisa_chunk(\"A\")", "axis 0", "start 1", "alloc_shape 2");
  bad = lay;
  bad.alloc_shape[0] = 0;   /* 0 means the chunk's extent: no room for start 1 */
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG, "luisa_chunk alloc_shape 0 with start 1",
          "luisa_chunk(\"A\")", "axis 0", "start 1", "alloc_shape 2");
  bad = lay;
  bad.start[0] = -1;
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG, "luisa_chunk negative start",
          "luisa_chunk(\"A\")", "axis 0", "start -1");
  bad = lay;
  bad.alloc_shape[1] = -10;
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG, "luisa_chunk negative alloc_shape",
          "luisa_chunk(\"A\")", "axis 1", "alloc_shape -10");
  bad = lay;
  bad.alloc_shape[0] = BIG;
  bad.alloc_shape[1] = BIG + 1;
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG, "luisa_chunk alloc_shape over 2^62",
          "luisa_chunk(\"A\")", "alloc_shape", "2^62");
  /* start + extent past INT64_MAX wraps negative: it must not pass for a fit.
   * Accepted, kernels would read and luisa.assign write far outside a0. */
  bad = lay;
  bad.start[0] = INT64_MAX - 1;
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG,
          "luisa_chunk layout start INT64_MAX - 1 + extent 2 (overflows int64)", "luisa_chunk(\"A\")", "axis 0",
          "start 9223372036854775806 + chunk extent 2 does not fit in alloc_shape 5");
  bad.start[0] = INT64_MAX;
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG,
          "luisa_chunk layout start INT64_MAX", "luisa_chunk(\"A\")", "axis 0", "start 9223372036854775807",
          "alloc_shape 5");
  bad.start[0] = INT64_MAX - 1;
  bad.alloc_shape[0] = INT64_MAX;
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG,
          "luisa_chunk layout start INT64_MAX - 1 in alloc_shape INT64_MAX", "luisa_chunk(\"A\")", "axis 0",
          "start 9223372036854775806 + chunk extent 2", "alloc_shape 9223372036854775807");
  bad = lay;
  bad.start[1] = INT64_MAX - NJ;   /* start + extent is INT64_MAX exactly */
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG,
          "luisa_chunk layout start + extent == INT64_MAX on axis 1", "luisa_chunk(\"A\")", "axis 1",
          "start 9223372036854775800 + chunk extent 7", "alloc_shape 10");
  bad = lay;
  bad.start[0] = INT64_MAX - 2;   /* fits, but the buffer cannot exist */
  bad.alloc_shape[0] = INT64_MAX;
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG,
          "luisa_chunk alloc_shape [INT64_MAX, 10]", "luisa_chunk(\"A\")",
          "alloc_shape [9223372036854775807, 10] has more than 2^62 elements");
  bad = lay;
  bad.alloc_shape[0] = bad.alloc_shape[1] = P2(32);
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG,
          "luisa_chunk alloc_shape [2^32, 2^32] (2^64 wraps to 0)", "luisa_chunk(\"A\")",
          "alloc_shape [4294967296, 4294967296] has more than 2^62 elements");
  bad.alloc_shape[0] = bad.alloc_shape[1] = BIG;
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG,
          "luisa_chunk alloc_shape [2^31, 2^31] of f64: 2^62 elements, 2^65 bytes", "luisa_chunk(\"A\")",
          "alloc_shape [2147483648, 2147483648]", "4611686018427387904 elements of 8 bytes",
          "more than 9223372036854775807 bytes");
  bad.alloc_shape[0] = bad.alloc_shape[1] = P2(30);
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG,
          "luisa_chunk alloc_shape [2^30, 2^30] of f64: 2^63 bytes, one past the limit", "luisa_chunk(\"A\")",
          "1152921504606846976 elements of 8 bytes", "more than 9223372036854775807 bytes");
  bad = lay;
  bad.start[1] = INT64_MIN;
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG, "luisa_chunk layout start INT64_MIN",
          "luisa_chunk(\"A\")", "axis 1", "start -9223372036854775808 is negative");
  bad = lay;
  bad.alloc_shape[0] = INT64_MIN;
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &bad), LUISA_ERR_ARG,
          "luisa_chunk layout alloc_shape INT64_MIN", "luisa_chunk(\"A\")", "axis 0",
          "alloc_shape -9223372036854775808");

  /* The real chunks: A's chunk 0 in the ghosted Fortran buffer, chunk 1
   * contiguous; B the same boxes in C order (explicit layout, alloc 0). */
  luisa_layout c_exact = { .order = LUISA_ORDER_C };
  is_status(luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(2, NJ), &lay), LUISA_OK, lz, "luisa_chunk A 0: Fortran order, ghosts");
  is_status(luisa_chunk(lz, "A", SHAPE(2, 0), SHAPE(3, NJ), NULL), LUISA_OK, lz, "luisa_chunk A 1: NULL layout");
  is_status(luisa_chunk(lz, "B", SHAPE(0, 0), SHAPE(2, NJ), NULL), LUISA_OK, lz, "luisa_chunk B 0");
  is_status(luisa_chunk(lz, "B", SHAPE(2, 0), SHAPE(3, NJ), &c_exact), LUISA_OK, lz, "luisa_chunk B 1: alloc_shape 0");

  /* luisa_publish: refusals after the real publishes must not undo them. */
  fill(1);
  int pub = luisa_publish(lz, "A", 0, a0) | luisa_publish(lz, "A", 1, a1) |
            luisa_publish(lz, "B", 0, b0) | luisa_publish(lz, "B", 1, b1);
  is_status(pub, LUISA_OK, lz, "luisa_publish of A and B for step 1");
  refused(lz, luisa_publish(lz, "Z", 0, a1), LUISA_ERR_NAME, "luisa_publish unknown array", "\"Z\"", "no array");
  refused(lz, luisa_publish(lz, NULL, 0, a1), LUISA_ERR_ARG, "luisa_publish name NULL", "name is NULL");
  refused(lz, luisa_publish(lz, "A", -1, a1), LUISA_ERR_ARG, "luisa_publish chunk -1",
          "luisa_publish(\"A\")", "chunk -1", "rank 0", "0 to 1");
  refused(lz, luisa_publish(lz, "A", 2, a1), LUISA_ERR_ARG, "luisa_publish chunk 2 of 2",
          "luisa_publish(\"A\")", "chunk 2", "0 to 1");
  refused(lz, luisa_publish(lz, "A", 0, NULL), LUISA_ERR_ARG, "luisa_publish data NULL",
          "\"A\"", "chunk 0", "data is NULL");

  static char before[sizeof a0 + sizeof a1 + sizeof b0 + sizeof b1];
  snapshot(before);
  is_status(luisa_step(lz, 1), LUISA_OK, lz, "luisa_step 1 after every refusal");
  check_results(result, 1, (const long long[]){ 1 }, "step 1: A:sum() and (A*B):sum() exact, no ghost read");
  ok(unchanged(before), "step 1 left every byte of the simulation's buffers, ghosts included, as published");

  /* After the first step, declarations are closed. */
  refused(lz, luisa_array(lz, "C", LUISA_F64, 1, SHAPE(4)), LUISA_ERR_ORDER, "luisa_array after the first step",
          "luisa_array(\"C\")", "before the first luisa_step");
  refused(lz, luisa_chunk(lz, "C", SHAPE(0), SHAPE(4), NULL), LUISA_ERR_NAME, "the refused array C was not declared",
          "\"C\"", "no array");
  refused(lz, luisa_chunk(lz, "A", SHAPE(0, 0), SHAPE(1, 1), NULL), LUISA_ERR_ORDER, "luisa_chunk after the first step",
          "luisa_chunk(\"A\")", "before the first luisa_step");

  /* Step numbers must increase; a refused step runs nothing. */
  fill(2);
  pub = luisa_publish(lz, "A", 0, a0) | luisa_publish(lz, "A", 1, a1) |
        luisa_publish(lz, "B", 0, b0) | luisa_publish(lz, "B", 1, b1);
  is_status(pub, LUISA_OK, lz, "luisa_publish for step 2");
  refused(lz, luisa_step(lz, 1), LUISA_ERR_STEP, "luisa_step 1 again", "step 1", "step numbers must increase");
  refused(lz, luisa_step(lz, 0), LUISA_ERR_STEP, "luisa_step 0 after 1", "step 0", "step 1");
  refused(lz, luisa_step(lz, INT64_MIN), LUISA_ERR_STEP, "luisa_step INT64_MIN after 1", "step 1");
  check_results(result, 1, (const long long[]){ 1 }, "the refused steps ran no analytics");
  /* No publish here: a refused call changes nothing, so step 2's data is
   * still published. */
  snapshot(before);
  is_status(luisa_step(lz, 2), LUISA_OK, lz, "luisa_step 2 after the refused steps");
  check_results(result, 2, (const long long[]){ 1, 2 }, "step 2: exact sums of the step 2 data");
  ok(unchanged(before), "step 2 left the simulation's buffers as published");
  refused(lz, luisa_step(lz, 2), LUISA_ERR_STEP, "luisa_step 2 again", "step 2", "does not follow step 2");

  luisa_finalize(lz);
  remove(script);
  remove(result);
  rmdir(dir);
  MPI_Finalize();
  return tap_done();
}
