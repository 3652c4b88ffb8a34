/* life.c: allocation failure injection, as SQLite does it: one whole
 * analysis life (init, declarations, steps, a reload, finalize) is run once
 * clean to count the engine's allocations, then again for each N with the
 * N-th allocation of the faulting rank refused. Every life must end with
 * documented statuses (collective ones equal on every rank), the
 * simulation's buffers untouched, parameters in bounds and equal across
 * ranks, and every engine block freed. Prints TAP on rank 0 (the numbers
 * are renumbered by t/035-faults.t, which restarts a run that died).
 * usage: faults DIR FIRST [DIED SYMPTOM]
 *   DIR: a scratch directory for the script; FIRST: first N to try;
 *   DIED: the N at which the previous run died of SYMPTOM (crash, hang).
 * LUISA_FAULT_RANK picks the faulting rank (default: the last one);
 * LUISA_FAULT_WATCHDOG the seconds after which a life counts as hung (5);
 * LUISA_FAULTS_ALL also runs, on several ranks, the crashes and hangs that
 * t/faults/known lists (else they are reported TODO without running). */
#define _GNU_SOURCE
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "luisa.h"
#include "tap.h"
#include "fault.h"
#include "site.h"

enum { ROWS = 8, COLS = 6, STEPS = 8, RELOAD_AT = 3, MAXCALLS = 128, WHAT = 96 };
#define KNOWN "t/faults/known"
#define BIT(s) (1u << (s))

static int rank, size, fault_rank;
static const char *dir;

typedef struct life {
  int ncalls, ncoll;
  int status[MAXCALLS];
  char what[MAXCALLS][WHAT];
  int coll[STEPS + 2];          /* the collective calls' statuses: init, then each step */
  int coll_call[STEPS + 2];     /* their index in status[] */
  double dt[STEPS + 1];
  int64_t n[STEPS + 1];
  int flag[STEPS + 1];
  char mode[STEPS + 1][16];
  int declared;                 /* every declaration call succeeded */
  long leaked, leaked_bytes;
  char bad[512];                /* the first problem seen; "" if none */
  char symptom[16];
} life;

static void problem(life *L, const char *symptom, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(life *L, const char *symptom, const char *fmt, ...)
{
  if (L->bad[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(L->bad, sizeof L->bad, fmt, ap);
  va_end(ap);
  snprintf(L->symptom, sizeof L->symptom, "%s", symptom);
}

/* Records a call's status and checks it is one the call may return. */
static void called(life *L, luisa *lz, int status, unsigned allowed, int collective, const char *fmt, ...)
  __attribute__((format(printf, 6, 7)));
static void called(life *L, luisa *lz, int status, unsigned allowed, int collective, const char *fmt, ...)
{
  int i = L->ncalls < MAXCALLS ? L->ncalls++ : MAXCALLS - 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(L->what[i], WHAT, fmt, ap);
  va_end(ap);
  L->status[i] = status;
  if (collective && L->ncoll < STEPS + 2) {
    L->coll_call[L->ncoll] = i;
    L->coll[L->ncoll++] = status;
  }
  if (!lz)
    allowed = BIT(LUISA_ERR_ARG) | (collective && i == 0 ? allowed : 0);
  const char *e = luisa_error(lz);
  if (status < 0 || status > 31 || !(allowed & BIT(status)))
    problem(L, "status", "%s returned %d (%s): %s", L->what[i], status, luisa_status_string(status),
            e ? e : "(luisa_error gave NULL)");
  else if (!e)
    problem(L, "status", "luisa_error gave NULL after %s", L->what[i]);
}

static void write_script(const char *name)
{
  char from[1024], to[1024], tmp[1100], buf[4096];
  size_t n;
  snprintf(from, sizeof from, "t/data/faults/%s", name);
  snprintf(to, sizeof to, "%s/live.lua", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", to);
  FILE *in = fopen(from, "rb"), *out = fopen(tmp, "wb");
  if (!in || !out) {
    fprintf(stderr, "faults: cannot copy %s to %s\n", from, tmp);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    fwrite(buf, 1, n, out);
  fclose(in);
  fclose(out);
  rename(tmp, to);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ULL;
  return h;
}

/* The simulation's own memory: T in two row blocks, C order; U with one
 * ghost cell around it, Fortran order. Filled anew every step. */
static int64_t lo, rows;
static double T[ROWS * COLS], U[(ROWS + 2) * (COLS + 2)];

static uint64_t fill(int64_t step)
{
  for (int64_t i = 0; i < rows * COLS; i++)
    T[i] = (double)(lo * COLS + i) + 0.25 * (double)step;
  for (int64_t j = 0; j < COLS + 2; j++)
    for (int64_t i = 0; i < rows + 2; i++)
      U[j * (rows + 2) + i] = (i == 0 || j == 0 || i == rows + 1 || j == COLS + 1)
                                  ? -1e300 : (double)((lo + i - 1) * (j - 1)) - (double)step;
  return fnv(fnv(1469598103934665603ULL, T, sizeof T), U, sizeof U);
}

static void run_life(life *L, long fail_n)
{
  const unsigned OK = BIT(LUISA_OK), NOMEM = BIT(LUISA_ERR_NOMEM), WARN = BIT(LUISA_WARN_SCRIPT);
  memset(L, 0, sizeof *L);
  L->declared = 1;
  if (rank == 0)
    write_script("life.lua");
  MPI_Barrier(MPI_COMM_WORLD);
  long live0 = fault_live(), bytes0 = (long)fault_live_bytes();
  fault_reset();
  fault_fail_at(rank == fault_rank ? fail_n : 0);

  char path[1024];
  snprintf(path, sizeof path, "%s/live.lua", dir);
  luisa_options o = luisa_options_default();
  o.script = path;
  o.log_level = LUISA_LOG_ERROR;
  luisa *lz = NULL;
  int s = luisa_init(MPI_COMM_WORLD, &o, &lz);
  called(L, lz, s, OK | WARN | NOMEM | BIT(LUISA_ERR_LUA), 1, "luisa_init");
  if (!lz && s == LUISA_OK)
    problem(L, "status", "luisa_init returned LUISA_OK without a context");

  lo = ROWS * rank / size, rows = ROWS * (rank + 1) / size - lo;
  int64_t shape[2] = { ROWS, COLS }, half = rows / 2;
  int64_t off0[2] = { lo, 0 }, n0[2] = { half, COLS }, off1[2] = { lo + half, 0 }, n1[2] = { rows - half, COLS };
  luisa_layout ghost = { LUISA_ORDER_F, { rows + 2, COLS + 2 }, { 1, 1 } };
  int64_t whole[2] = { rows, COLS };
  int st[3];
  called(L, lz, st[0] = luisa_array(lz, "T", LUISA_F64, 2, shape), OK | NOMEM, 0, "luisa_array(T)");
  called(L, lz, st[1] = luisa_array(lz, "U", LUISA_F64, 2, shape), OK | NOMEM, 0, "luisa_array(U)");
  L->declared = st[0] == LUISA_OK && st[1] == LUISA_OK;
  /* a refused declaration makes the later ones that name it refused too */
  unsigned after = OK | NOMEM | (L->declared ? 0 : BIT(LUISA_ERR_NAME) | BIT(LUISA_ERR_ARG));
  called(L, lz, st[0] = luisa_chunk(lz, "T", off0, n0, NULL), after, 0, "luisa_chunk(T, 0)");
  called(L, lz, st[1] = luisa_chunk(lz, "T", off1, n1, NULL), after, 0, "luisa_chunk(T, 1)");
  called(L, lz, st[2] = luisa_chunk(lz, "U", off0, whole, &ghost), after, 0, "luisa_chunk(U, 0)");
  L->declared = L->declared && !st[0] && !st[1] && !st[2];

  double dt = 1e-3;
  int64_t n = 5;
  int flag = 0;
  char mode[16] = "fast";
  static const char *const modes[] = { "fast", "slow", "off", NULL };
  int ps[4] = { luisa_param_f64(lz, "dt", &dt, 1e-6, 1e-2, "time step"),
                luisa_param_i64(lz, "n", &n, 1, 100, NULL),
                luisa_param_bool(lz, "flag", &flag, "a switch"),
                luisa_param_string(lz, "mode", mode, sizeof mode, modes, "output mode") };
  for (int k = 0; k < 4; k++) {
    called(L, lz, ps[k], OK | NOMEM, 0, "luisa_param %d", k);
    L->declared = L->declared && ps[k] == LUISA_OK;
  }

  /* a refusal on any rank fails the first step on all */
  int declared_here = L->declared;
  MPI_Allreduce(MPI_IN_PLACE, &L->declared, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  /* thread mode keeps a table of each step's chunks, which may fail to grow */
  const char *env_mode = getenv("LUISA_MODE");
  unsigned published = OK | (env_mode && *env_mode == 't' ? NOMEM : 0) |
                       (declared_here ? 0 : BIT(LUISA_ERR_NAME) | BIT(LUISA_ERR_ARG));
  unsigned stepped = OK | WARN | NOMEM | (L->declared ? 0 : BIT(LUISA_ERR_NAME) | BIT(LUISA_ERR_CHUNK));
  for (int64_t step = 1; step <= STEPS; step++) {
    if (step == RELOAD_AT) {
      if (rank == 0)
        write_script("life2.lua");
      s = luisa_reload(lz);
      called(L, lz, s, OK | NOMEM | (L->status[0] == LUISA_OK ? 0 : BIT(LUISA_ERR_ORDER)), 0, "luisa_reload");
    }
    uint64_t sum = fill(step);
    int want[2] = { 1, 1 };
    for (int a = 0; a < 2; a++) {
      int w = -1;
      called(L, lz, luisa_wants(lz, a ? "U" : "T", -1, step, &w), published, 0, "luisa_wants(%c, %lld)",
             a ? 'U' : 'T', (long long)step);
      if (lz && w != 0 && w != 1)   /* a NULL context leaves it alone */
        problem(L, "status", "luisa_wants gave wanted = %d at step %lld", w, (long long)step);
      want[a] = w != 0;
    }
    if (want[0]) {
      called(L, lz, luisa_publish(lz, "T", 0, T), published, 0, "luisa_publish(T, 0)");
      called(L, lz, luisa_publish(lz, "T", 1, T + half * COLS), published, 0, "luisa_publish(T, 1)");
    }
    if (want[1])
      called(L, lz, luisa_publish(lz, "U", 0, U), published, 0, "luisa_publish(U, 0)");
    called(L, lz, luisa_step(lz, step), stepped, 1, "luisa_step(%lld)", (long long)step);
    if (fnv(fnv(1469598103934665603ULL, T, sizeof T), U, sizeof U) != sum)
      problem(L, "buffer", "the simulation's buffers changed during luisa_step(%lld)", (long long)step);
    L->dt[step] = dt, L->n[step] = n, L->flag[step] = flag;
    memcpy(L->mode[step], mode, sizeof mode);
    if (!(dt >= 1e-6 && dt <= 1e-2) || n < 1 || n > 100 || (flag != 0 && flag != 1) || !memchr(mode, 0, sizeof mode)
        || (strcmp(mode, "fast") && strcmp(mode, "slow") && strcmp(mode, "off")))
      problem(L, "param", "a parameter left its bounds at step %lld: dt %g n %lld flag %d", (long long)step, dt,
              (long long)n, flag);
  }
  luisa_finalize(lz);
  L->leaked = fault_live() - live0;
  L->leaked_bytes = (long)fault_live_bytes() - bytes0;
  if (L->leaked)
    problem(L, "leak", "%ld engine blocks (%ld bytes) still live after luisa_finalize", L->leaked, L->leaked_bytes);
}

/* Every rank must return the same status from each collective call and
 * hold the same parameters after each step. */
static void agree(life *L)
{
  int lo_s[STEPS + 2], hi_s[STEPS + 2], flag = 0;
  MPI_Allreduce(L->coll, lo_s, STEPS + 2, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(L->coll, hi_s, STEPS + 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  for (int i = 0; i < L->ncoll; i++)
    if (lo_s[i] != hi_s[i]) {
      problem(L, "disagree", "%s returned %d on some ranks, %d on others", L->what[L->coll_call[i]], lo_s[i],
              hi_s[i]);
      flag = 1;
      break;
    }
  uint64_t h = fnv(fnv(fnv(fnv(1469598103934665603ULL, L->dt, sizeof L->dt), L->n, sizeof L->n), L->flag,
                       sizeof L->flag), L->mode, sizeof L->mode);
  uint64_t hl, hh;
  MPI_Allreduce(&h, &hl, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&h, &hh, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  if (hl != hh && !flag)
    problem(L, "disagree", "the steered parameters differ across ranks after the life");
}

/* Where allocation n of the fault rank is made, told on every rank: from
 * the stack of the refusal just made, or (traced) from a clean life. */
typedef struct site {
  char where[1024], fn[256];
} site;

static void locate(life *L, long n, int traced, site *S)
{
  if (traced) {
    fault_trace_at(rank == fault_rank ? n : 0);
    run_life(L, 0);
    fault_trace_at(0);
  }
  if (rank == fault_rank) {
    void *frames[48];
    site_describe(frames, fault_stack(frames, 48), S->where, sizeof S->where, S->fn, sizeof S->fn);
  }
  MPI_Bcast(S, sizeof *S, MPI_CHAR, fault_rank, MPI_COMM_WORLD);
}

/* One not ok line; TODO when t/faults/known lists the site and symptom. */
static int report(const site *S, const char *symptom, const char *bad, long n)
{
  char why[512];
  int known = site_known(KNOWN, S->fn, symptom, why, sizeof why);
  tap_print("not ok - N=%ld, the allocation in %s: %s%s%s\n", n, S->where[0] ? S->where : "(unknown)", bad,
            known ? " # TODO engine defect: " : "", known ? why : "");
  return known;
}

/* The bookkeeping itself, through the wrappers the library exports: the
 * cases an allocator hook for Lua would bring (realloc(NULL, n),
 * realloc(p, 0), free(NULL), a shrink, a refused growth). */
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
static int bookkeeping(void)
{
  long live = fault_live();
  size_t bytes = fault_live_bytes();
  int good = 1;
  fault_reset();
  fault_fail_at(0);
  char *p = __wrap_realloc(NULL, 100);
  good = good && p && fault_live() == live + 1 && fault_live_bytes() == bytes + 100;
  p = __wrap_realloc(p, 10);   /* a shrink */
  good = good && p && fault_live_bytes() == bytes + 10;
  fault_fail_at(fault_count() + 1);
  good = good && !__wrap_realloc(p, 1000) && fault_injected() && fault_live_bytes() == bytes + 10;
  fault_fail_at(fault_count() + 1);
  char *q = __wrap_realloc(p, 5);   /* shrinks are never refused */
  good = good && q && !fault_injected();
  fault_fail_at(0);
  good = good && !__wrap_realloc(q, 0) && fault_live() == live && fault_live_bytes() == bytes;
  __wrap_free(NULL);
  char *r = malloc(8);   /* libc's own, freed through the wrapper */
  long foreign = fault_foreign_frees();
  __wrap_free(r);
  good = good && fault_live() == live && fault_foreign_frees() == foreign + 1;
  fault_reset();
  return good;
}

/* The symptom file tells t/035-faults.t how the run died. */
static char symptom_path[1100];
static void tell(const char *what)
{
  int fd = open(symptom_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    if (write(fd, what, strlen(what)) < 0)
      _exit(3);
    close(fd);
  }
}

static void died(int sig)
{
  void *frames[64];
  tell("crash");
  backtrace_symbols_fd(frames, backtrace(frames, 64), 2);   /* not async-signal-safe; good enough here */
  signal(sig, SIG_DFL);
  raise(sig);
}

static void hung(int sig)
{
  (void)sig;
  tell("hang");
  _exit(4);
}

/* Where the run is: read by t/035-faults.t when the run dies. */
static void progress(long n)
{
  if (rank != fault_rank)
    return;
  char p[1100];
  snprintf(p, sizeof p, "%s/progress", dir);
  FILE *f = fopen(p, "w");
  if (f) {
    fprintf(f, "%ld\n", n);
    fclose(f);
  }
}

int main(int argc, char **argv)
{
  tap_mpi_init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  if (argc < 3) {
    fprintf(stderr, "usage: faults DIR FIRST [DIED SYMPTOM]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  dir = argv[1];
  long first = atol(argv[2]), died_at = argc > 4 ? atol(argv[3]) : 0;
  int every = getenv("LUISA_FAULTS_ALL") != NULL;
  const char *fr = getenv("LUISA_FAULT_RANK"), *wd = getenv("LUISA_FAULT_WATCHDOG");
  unsigned watchdog = wd ? (unsigned)atoi(wd) : 5;   /* seconds; a life takes milliseconds */
  fault_rank = fr ? atoi(fr) : size - 1;
  void *warm[4];
  backtrace(warm, 4);   /* loads the unwinder now, not inside a refused malloc */
  snprintf(symptom_path, sizeof symptom_path, "%s/symptom", dir);
  signal(SIGALRM, hung);
  signal(SIGABRT, died);
  signal(SIGSEGV, died);
  signal(SIGBUS, died);
  signal(SIGFPE, died);
  signal(SIGILL, died);
  char on[32];
  snprintf(on, sizeof on, size == 1 ? "1 rank" : "%d ranks, rank %d failing", size, fault_rank);

  if (first <= 1)
    ok(bookkeeping(), "%s: the wrappers count realloc(NULL, n), realloc(p, 0), free(NULL), shrinks and refusals", on);
  life *L = malloc(sizeof *L);
  run_life(L, 0);
  agree(L);
  long total = 0, mine = fault_count();
  MPI_Bcast(&mine, 1, MPI_LONG, fault_rank, MPI_COMM_WORLD);
  total = mine;
  int clean = !L->bad[0];
  for (int i = 0; i < L->ncalls; i++)
    clean = clean && (L->status[i] == LUISA_OK);
  if (first <= 1) {
    ok(clean, "%s: a clean life: every call succeeds, nothing leaks (%ld engine allocations)", on, total);
    if (!clean)
      tap_print("#   %s\n", L->bad[0] ? L->bad : "a call did not return LUISA_OK");
  }
  long failures = 0, known = 0, injected = 0, skipped = 0;
  site S;
  if (died_at > 0) {   /* name the site: the same allocation, traced in a clean life */
    char bad[64];
    snprintf(bad, sizeof bad, "the run died (%s)", argv[4]);
    locate(L, died_at, 1, &S);
    report(&S, argv[4], bad, died_at);
  }
  long from = first > 1 ? first : 1;
  for (long n = from; clean && n <= total; n++) {
    char why[512];
    if (!every && size > 1) {   /* a known crash or hang of ranks that disagree is not run again: make faults does */
      locate(L, n, 1, &S);
      const char *sym = site_known(KNOWN, S.fn, "hang", why, sizeof why) ? "hang"
                        : site_known(KNOWN, S.fn, "crash", why, sizeof why) ? "crash" : NULL;
      if (sym) {
        tap_print("not ok - N=%ld, the allocation in %s: not run, a known %s # TODO engine defect: %s\n", n,
                  S.where, sym, why);
        skipped++;
        continue;
      }
    }
    progress(n);
    alarm(watchdog);   /* a hang ends the run; t/035-faults.t then goes on after n */
    run_life(L, n);
    alarm(0);
    agree(L);
    int inj = rank == fault_rank && fault_injected(), any;
    MPI_Allreduce(&inj, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    injected += any;
    int bad = L->bad[0] != 0, fault_bad = bad;
    MPI_Bcast(&fault_bad, 1, MPI_INT, fault_rank, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!bad)
      continue;
    failures++;
    /* the fault rank's description, or a healthy rank's if only that one saw it */
    int teller = fault_bad ? fault_rank : 0;
    char what[600], sym[16];
    snprintf(what, sizeof what, "%s", L->bad);
    snprintf(sym, sizeof sym, "%s", L->symptom);
    MPI_Bcast(what, sizeof what, MPI_CHAR, teller, MPI_COMM_WORLD);
    MPI_Bcast(sym, sizeof sym, MPI_CHAR, teller, MPI_COMM_WORLD);
    locate(L, n, 0, &S);
    known += report(&S, sym, what, n);
  }
  if (clean && from <= total)
    tap_print("%sok - %s: allocations %ld..%ld refused one at a time: %ld lives ended well, %ld did not "
              "(%ld of them known engine defects), %ld known crashes or hangs not run\n",
              failures > known ? "not " : "", on, from, total, injected - failures, failures, known, skipped);
  tap_print("done\n");
  free(L);
  MPI_Finalize();
  return 0;
}
