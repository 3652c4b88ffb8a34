/* reload.c: when to reload the script. Rank 0 watches the script and the
 * modules it loaded (a stat per file and step; contents are hashed only when
 * a stat changed); any rank may ask through luisa_reload() or a signal. The
 * requests meet in a nonblocking all-reduce posted at one step and completed
 * at the next, so watching never makes the ranks wait for each other and
 * every rank reloads at the same step. The reloading is script.c's. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "context.h"
#include "bundle.h"
#include "deadline.h"
#include "error.h"
#include "log.h"
#include "reload.h"

typedef struct lu_watched {
  char *path;
  struct stat st;               /* as last seen; st_nlink 0: missing */
} lu_watched;

struct lu_reload {
  lu_watched *files;
  int nfiles;
  uint64_t seen;                /* hash of the watched files as last read */
  uint64_t version;             /* hash of the sources running (0: none) */
  int signal;                   /* the one we handle, 0 if none */
  int signals_seen;
  MPI_Request request;
  int send, recv;
  int count, failed;
  char *history;                /* rank 0: "step S version V ok|failed; ..." */
  size_t history_len;
};

/* A signal only counts; the step boundary acts on it. Shared by every
 * context of the process: each compares with what it saw last. */
static volatile sig_atomic_t signals_received;
#define SIGNALS 65                     /* 1 .. SIGRTMAX on Linux */
static struct sigaction saved_action[SIGNALS];
static int handlers_installed[SIGNALS];

static void on_signal(int sig)
{
  (void)sig;
  signals_received++;
}

/* Install the handler unless the simulation has its own for that signal. */
static int install_signal(luisa *lz, int sig)
{
  if (sig <= 0 || sig >= SIGNALS)
    return 0;
  if (handlers_installed[sig]) {
    handlers_installed[sig]++;
    return sig;
  }
  struct sigaction old, act;
  if (sigaction(sig, NULL, &old) != 0)
    return 0;
  if ((old.sa_flags & SA_SIGINFO) || (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)) {
    if (lz->rank == 0)
      log_write(lz, LUISA_LOG_WARN, "signal %d already has a handler: reload by signal is off "
                "(choose another with luisa_options.reload_signal)", sig);
    return 0;
  }
  memset(&act, 0, sizeof act);
  act.sa_handler = on_signal;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  if (sigaction(sig, &act, NULL) != 0)
    return 0;
  saved_action[sig] = old;
  handlers_installed[sig] = 1;
  return sig;
}

int reload_open(luisa *lz)
{
  lu_reload *r = lz->reload = calloc(1, sizeof *lz->reload);
  RETURN_IF(!r, lz, LUISA_ERR_NOMEM, "luisa_init: out of memory");
  r->request = MPI_REQUEST_NULL;
  r->signal = install_signal(lz, lz->opts.reload_signal);
  r->signals_seen = signals_received;
  return LUISA_OK;
}

void reload_close(luisa *lz)
{
  lu_reload *r = lz->reload;
  if (!r)
    return;
  /* The last step's requests, posted by every rank that got there; under a
   * deadline a rank gone before is waited for no longer than it. */
  if (r->request != MPI_REQUEST_NULL && lz->halted != LU_HALT_CUT)
    deadline_wait(lz, 1, &r->request, LU_PHASE_FINALIZE, "reload requests");
  if (r->signal && --handlers_installed[r->signal] == 0)
    sigaction(r->signal, &saved_action[r->signal], NULL);
  for (int i = 0; i < r->nfiles; i++)
    free(r->files[i].path);
  free(r->files);
  free(r->history);
  if (r->request != MPI_REQUEST_NULL)   /* it may still write into r->recv */
    deadline_keep(r);
  else
    free(r);
  lz->reload = NULL;
}

int luisa_reload(luisa *lz)
{
  if (!lz)
    return LUISA_ERR_ARG;
  RETURN_IF(lz->halted, lz, LUISA_ERR_ORDER, "luisa_reload: analytics are off for the rest of the run (the ranks "
            "fell out of step, or this one timed out): a reload cannot restart them");
  RETURN_IF(!lz->script_path, lz, LUISA_ERR_ORDER,
            "luisa_reload: there is no script to reload: luisa_init was given no opts->script");
  atomic_store(&lz->reload_asked, 1);   /* read by the analysis, on its thread in thread mode */
  return LUISA_OK;
}

static uint64_t hash_files(const lu_reload *r)
{
  uint64_t h = LU_FNV_START;
  char msg[256];
  for (int i = 0; i < r->nfiles; i++) {
    char *text;
    size_t len;
    if (!bundle_read_file(r->files[i].path, &text, &len, msg, sizeof msg))
      continue;   /* a missing file hashes as empty */
    h = bundle_fnv(bundle_fnv(h, text, len), "\xff", 1);   /* a byte no text ends with, between files */
    free(text);
  }
  return h;
}

static int same_stat(const struct stat *a, const struct stat *b)
{
  return a->st_nlink == b->st_nlink && a->st_dev == b->st_dev && a->st_ino == b->st_ino
         && a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec
         && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void stat_file(lu_watched *w)
{
  if (stat(w->path, &w->st) != 0)
    memset(&w->st, 0, sizeof w->st);
}

/* After a load or an attempt, on every rank: the version now running; on
 * rank 0, watch the attempt's sources too (files watched before stay
 * watched: a failed attempt may have stopped before requiring them) and
 * remember what is on disk now. */
void reload_watch(luisa *lz, const lu_bundle *b, uint64_t running)
{
  lu_reload *r = lz->reload;
  r->version = running;
  if (lz->rank != 0)
    return;
  for (int i = 0; i < b->n; i++) {
    int known = 0;
    for (int k = 0; k < r->nfiles && !known; k++)
      known = !strcmp(r->files[k].path, b->src[i].path);
    lu_watched *grown = known ? NULL : realloc(r->files, (size_t)(r->nfiles + 1) * sizeof *grown);
    char *path = grown ? strdup(b->src[i].path) : NULL;
    if (grown)
      r->files = grown;
    if (path)
      r->files[r->nfiles++].path = path;
  }
  for (int k = 0; k < r->nfiles; k++)
    stat_file(&r->files[k]);
  r->seen = hash_files(r);
}

/* Rank 0: whether a watched file's contents changed since last looked at. */
static int files_changed(lu_reload *r)
{
  int touched = 0;
  for (int k = 0; k < r->nfiles; k++) {
    struct stat before = r->files[k].st;
    stat_file(&r->files[k]);
    touched |= !same_stat(&before, &r->files[k].st);
  }
  if (!touched)
    return 0;
  uint64_t now = hash_files(r);
  int changed = now != r->seen;
  r->seen = now;
  return changed;
}

/* At each step: whether the ranks asked, at the previous step, for a
 * reload now (*due); then this step's requests are posted. Collective. */
int reload_poll(luisa *lz, int *due)
{
  lu_reload *r = lz->reload;
  *due = 0;
  if (r->request != MPI_REQUEST_NULL) {
    FORWARD_IF_ERROR(deadline_wait(lz, 1, &r->request, LU_PHASE_RELOAD, "reload requests"));
    *due = r->recv;
  }
  return LUISA_OK;
}

int reload_take_local(luisa *lz)
{
  lu_reload *r = lz->reload;
  int signals = signals_received, asked = atomic_exchange(&lz->reload_asked, 0);
  if (r && r->signal && signals != r->signals_seen)
    asked = 1;
  if (r)
    r->signals_seen = signals;
  return asked;
}

int reload_post(luisa *lz)
{
  lu_reload *r = lz->reload;
  /* A request taken at luisa_step reaches every mode's analysis at the
   * same call, whatever the analysis' pace. */
  int granted = atomic_exchange(&lz->reload_granted, 0);
  if (granted < 0) {
    atomic_store(&lz->reload_granted, -1);
    granted = reload_take_local(lz);
  }
  r->send = granted || (lz->rank == 0 && files_changed(r));
  RETURN_IF(MPI_Iallreduce(&r->send, &r->recv, 1, MPI_INT, MPI_MAX, lz->comm, &r->request) != MPI_SUCCESS,
            lz, LUISA_ERR_MPI, "luisa_step: MPI_Iallreduce of reload requests failed");
  return LUISA_OK;
}

/* The outcome of a reload at `step`: logged, kept for the summary. */
void reload_record(luisa *lz, int64_t step, uint64_t version, const char *error)
{
  lu_reload *r = lz->reload;
  r->count++;
  r->failed += error != NULL;
  if (lz->rank != 0)
    return;
  char entry[64];
  int n = snprintf(entry, sizeof entry, "%sstep %lld %08llx %s", r->history_len ? ", " : "", (long long)step,
                   (unsigned long long)(version >> 32), error ? "failed" : "ok");
  char *grown = realloc(r->history, r->history_len + (size_t)n + 1);
  if (grown) {
    memcpy(grown + r->history_len, entry, (size_t)n + 1);
    r->history = grown;
    r->history_len += (size_t)n;
  }
  if (error && r->version)
    log_write(lz, LUISA_LOG_ERROR, "step %lld: script version %08llx not loaded, version %08llx goes on: %s",
              (long long)step, (unsigned long long)(version >> 32), (unsigned long long)(r->version >> 32), error);
  else if (error)
    log_write(lz, LUISA_LOG_ERROR, "step %lld: script version %08llx not loaded, analytics stay off: %s",
              (long long)step, (unsigned long long)(version >> 32), error);
  else
    log_write(lz, LUISA_LOG_WARN, "step %lld: script version %08llx loaded", (long long)step,
              (unsigned long long)(version >> 32));
}

uint64_t reload_version(const luisa *lz)
{
  return lz->reload ? lz->reload->version : 0;
}

void reload_summary(const luisa *lz)
{
  const lu_reload *r = lz->reload;
  if (!r || !r->count || lz->rank != 0)
    return;
  const char *h = r->history ? r->history : "", *cut = NULL;
  if (r->history_len > 3000)   /* a log line holds about 4 KiB: the latest reloads */
    cut = strchr(h + r->history_len - 3000, ',');
  if (cut)
    h = cut + 2;
  log_write(lz, LUISA_LOG_INFO, "summary: %d reload%s, %d failed (%s%s)", r->count, r->count > 1 ? "s" : "", r->failed,
            cut ? "... " : "", h);
}
