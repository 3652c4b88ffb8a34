/* exec_thread.c: the thread executor. Each rank analyses on a thread of
 * its own, pinned beside the simulation (pin.c), with the context's own
 * communicator. luisa_step copies the published chunks into pooled buffers
 * (handed-over ones are taken as they are), hands the step over and returns
 * unless the analysis is more than max_lag steps behind. What an analysis decides (its
 * status, steering, a reload) reaches the simulation a fixed number of
 * calls later on every rank, so runs do not depend on timing. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "context.h"
#include "analysis.h"
#include "array.h"
#include "error.h"
#include "exec.h"
#include "log.h"
#include "pin.h"
#include "reload.h"
#include "schedule.h"
#include "slot.h"
#include "steer.h"

typedef struct lu_threaded {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;         /* to the analysis: a step was handed over, or quit */
  pthread_cond_t done_cv;      /* to the simulation: a step was analysed */
  int lag, nslots;
  lu_slot *slots;              /* call k in slots[k % nslots] */
  lu_value *values;            /* per slot, the parameters as its step saw them */
  int64_t submitted, done, reported;   /* calls handed over, analysed, reported */
  int quit, started;
  lu_schedule schedule;        /* taken after each analysed step */
  lu_schedule taking;          /* the next one, filled outside the lock */
  int64_t waits;
  double waited_s;
  lu_pin *pin;
  char placement[512];
} lu_threaded;

static double now_s(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static lu_slot *slot_of(lu_threaded *t, int64_t call)
{
  return &t->slots[call % t->nslots];
}

/* The plan's schedule holds until the first change of it is made. */
static int64_t schedule_until(luisa *lz)
{
  int64_t until = steer_plan_pending(lz);
  return lz->reload_at && lz->reload_at < until ? lz->reload_at : until;
}

static void *analyse(void *arg)
{
  luisa *lz = arg;
  lu_threaded *t = lz->exec_state;
  char why[256];
  error_analysis_thread();
  if (pin_self(t->pin, why, sizeof why) != 0)
    log_write(lz, LUISA_LOG_WARN, "the analytics thread runs unpinned: %s", why);
  pthread_mutex_lock(&t->lock);
  for (;;) {
    while (t->done == t->submitted && !t->quit)
      pthread_cond_wait(&t->wake, &t->lock);
    if (t->done == t->submitted)
      break;
    int64_t call = t->done + 1;
    lu_slot *s = slot_of(t, call);
    int at = (int)(call % t->nslots);
    pthread_mutex_unlock(&t->lock);
    slot_show(lz, s);
    atomic_store(&lz->reload_granted, s->reload);
    steer_observe(lz, t->values ? t->values + (size_t)at * (size_t)lz->nparams : NULL);   /* NULL: in place */
    s->status = analysis_step(lz, s->step, call, t->lag);
    array_forget_published(lz);
    if (slot_note_writes(s, lz->written, lz->nwritten) != LUISA_OK)
      log_write(lz, LUISA_LOG_ERROR, "step %lld: out of memory keeping what its assignments wrote: they do not "
                "reach the simulation", (long long)s->step);
    snprintf(s->err, LU_ERR_MAX, "%s", s->status == LUISA_OK ? "" : error_buffer(lz));
    schedule_take(lz, &t->taking, schedule_until(lz));
    pthread_mutex_lock(&t->lock);
    lu_schedule taken = t->schedule;
    t->schedule = t->taking;
    t->taking = taken;   /* its buffers are reused by the next take */
    t->done = call;
    pthread_cond_broadcast(&t->done_cv);
  }
  pthread_mutex_unlock(&t->lock);
  return NULL;
}

static void free_threaded(luisa *lz, lu_threaded *t)
{
  if (!t)
    return;
  for (int k = 0; t->slots && k < t->nslots; k++)
    slot_free(lz, &t->slots[k]);
  free(t->slots);
  free(t->values);
  schedule_free(&t->schedule);
  schedule_free(&t->taking);
  pin_free(t->pin);
  free(t);
}

static lu_threaded *new_threaded(luisa *lz)
{
  lu_threaded *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->lag = lz->opts.max_lag;
  t->nslots = t->lag + 2;   /* one being published, lag + 1 handed over */
  t->slots = calloc((size_t)t->nslots, sizeof *t->slots);
  int ok = t->slots != NULL;
  for (int k = 0; ok && k < t->nslots; k++)
    ok = (t->slots[k].err = calloc(1, LU_ERR_MAX)) != NULL;
  if (!ok) {
    free_threaded(lz, t);
    return NULL;
  }
  return t;
}

/* Collective: every rank starts its thread, or none keeps one. */
static int thread_open(luisa *lz)
{
  char why[512] = "", placement[512] = "";   /* apart: a refusal empties placement */
  lu_pin *pin = NULL;
  int status = pin_plan(lz->comm, lz->opts.cpuset, &pin, placement, sizeof placement, why, sizeof why);
  if (status != LUISA_OK)   /* agreed on every rank */
    return error_set(lz, status, "luisa_init: %s", why);
  lu_threaded *t = new_threaded(lz);
  int ok = t != NULL, all = 0;
  int rc = MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, lz->comm);
  if (rc != MPI_SUCCESS || !all) {
    free_threaded(lz, t);
    pin_free(pin);
    return error_set(lz, rc != MPI_SUCCESS ? LUISA_ERR_MPI : LUISA_ERR_NOMEM, "luisa_init: %s for the thread mode",
                     rc != MPI_SUCCESS ? "MPI_Allreduce failed" : "out of memory on some rank");
  }
  t->pin = pin;
  snprintf(t->placement, sizeof t->placement, "%s", placement);
  pthread_mutex_init(&t->lock, NULL);
  pthread_cond_init(&t->wake, NULL);
  pthread_cond_init(&t->done_cv, NULL);
  lz->exec_state = t;
  status = analysis_open(lz);   /* the script loads here, on this thread, before the analysis starts */
  if (status >= LUISA_ERR_FIRST)
    return status;
  t->started = pthread_create(&t->thread, NULL, analyse, lz) == 0;
  rc = MPI_Allreduce(&t->started, &all, 1, MPI_INT, MPI_MIN, lz->comm);
  if (rc != MPI_SUCCESS || !all)
    return error_set(lz, rc != MPI_SUCCESS ? LUISA_ERR_MPI : LUISA_ERR_MODE, "luisa_init: the analytics thread "
                     "could not be started on %s", rc != MPI_SUCCESS ? "every rank (MPI_Allreduce failed)" :
                     t->started ? "another rank" : "this rank");
  char list[256];
  int pinned = pin_pinned(t->pin, list, sizeof list);
  log_write(lz, !pinned && lz->rank == 0 ? LUISA_LOG_WARN : LUISA_LOG_INFO, "thread mode (max_lag %d): %s",
            t->lag, t->placement);   /* an unpinned thread is said once, by rank 0 */
  return status;
}

/* Borrowed until luisa_step, which copies it (or analyses in place). */
static int thread_publish(luisa *lz, int a, int chunk, const void *data, luisa_release_fn *release, void *user)
{
  lu_threaded *t = lz->exec_state;
  return slot_put(lz, t->slots, t->nslots, slot_of(t, lz->steps + 1), a, chunk, data, release, user);
}

/* Backpressure: copies past opts.store_bytes wait for the analysis to
 * catch up, then take the room of the copies it is done with (those whose
 * writes still go back stay); if they still do not fit, the step is
 * analysed in place. */
static int room_for_copies(luisa *lz, lu_threaded *t, lu_slot *s)
{
  if (!lz->memory.limit || memory_fits(&lz->memory, slot_copy_bytes(lz, s)))
    return 1;
  double start = now_s();
  pthread_mutex_lock(&t->lock);
  while (t->done < t->submitted)
    pthread_cond_wait(&t->done_cv, &t->lock);
  pthread_mutex_unlock(&t->lock);
  for (int k = 0; k < t->nslots; k++) {   /* the analysis is idle until the next submit */
    lu_slot *o = &t->slots[k];
    if (o != s && !(o->call > t->reported && o->nwrites))
      slot_unpool(lz, o);
  }
  memory_waited(&lz->memory, now_s() - start);
  return memory_fits(&lz->memory, slot_copy_bytes(lz, s));
}

static int thread_step(luisa *lz, int64_t step)
{
  lu_threaded *t = lz->exec_state;
  int64_t call = lz->steps;
  int at = (int)(call % t->nslots);
  lu_slot *s = slot_of(t, call);
  s->step = step;
  s->call = call;
  s->reload = reload_take_local(lz);
  if (lz->nparams && !t->values)   /* parameters are registered before the first step */
    t->values = calloc((size_t)t->nslots * (size_t)lz->nparams, sizeof *t->values);
  if (t->values)
    steer_capture(lz, t->values + (size_t)at * (size_t)lz->nparams);
  /* max_lag 0: this call waits for its own step, which reads the
   * simulation's memory in place, as inline. So does a step whose copy
   * cannot be made: failing here alone would leave the other ranks'
   * analyses waiting for this one's. */
  /* Under a budget the first call is analysed in place: copies wait until
   * the plan says what its windows and transfers hold. */
  int sync = t->lag == 0 || (lz->memory.limit && call == 1) || !room_for_copies(lz, t, s);
  if (!sync && ((lz->nparams && !t->values) || slot_copy(lz, s) != LUISA_OK)) {
    sync = 1;
    log_write(lz, LUISA_LOG_WARN, "step %lld: out of memory for the step's copies: analysed in place, luisa_step "
              "waits", (long long)step);
  }
  pthread_mutex_lock(&t->lock);
  t->submitted = call;
  pthread_cond_signal(&t->wake);
  int64_t need = sync ? call : call - t->lag;
  if (t->done < need) {
    double start = now_s();
    while (t->done < need)
      pthread_cond_wait(&t->done_cv, &t->lock);
    t->waits++;
    t->waited_s += now_s() - start;
  }
  int status = LUISA_OK;
  int64_t report = call - t->lag;
  if (report >= 1) {
    const lu_slot *r = slot_of(t, report);
    status = r->status;
    if (status != LUISA_OK)
      snprintf(lz->err, sizeof lz->err, "%s", r->err);
    t->reported = report;
  }
  pthread_mutex_unlock(&t->lock);
  if (report >= 1) {   /* its assignments land in what this call published */
    int skipped = slot_write_back(lz, slot_of(t, report), s);
    if (skipped && lz->rank == 0)
      log_write(lz, LUISA_LOG_WARN, "step %lld: %d boxes the assignments of step %lld wrote were dropped: their "
                "chunks were not published (by luisa_publish) at this step", (long long)step, skipped,
                (long long)slot_of(t, report)->step);
    slot_release(slot_of(t, report));
  }
  if (steer_apply_due(lz, call) == LUISA_STOP && status < LUISA_ERR_FIRST)
    status = LUISA_STOP;
  return status;
}

static int thread_wants(const luisa *lz, int a, int chunk, int64_t step)
{
  lu_threaded *t = lz->exec_state;
  pthread_mutex_lock(&t->lock);
  int wanted = schedule_wants(&t->schedule, a, chunk, step, lz->steps + 1);
  pthread_mutex_unlock(&t->lock);
  return wanted;
}

static void thread_progress(luisa *lz, luisa_progress *out)
{
  lu_threaded *t = lz->exec_state;
  out->steps = lz->steps;
  pthread_mutex_lock(&t->lock);
  out->analysed = t->done;
  out->waits = t->waits;
  out->waited_s = t->waited_s;
  pthread_mutex_unlock(&t->lock);
}

/* Drains the steps handed over, joins the thread; what was not reported is
 * logged. Then the analysis closes on this thread. */
static void thread_close(luisa *lz)
{
  lu_threaded *t = lz->exec_state;
  if (t && t->started) {
    pthread_mutex_lock(&t->lock);
    t->quit = 1;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    for (int64_t k = t->reported + 1; k <= t->done; k++) {
      lu_slot *s = slot_of(t, k);
      if (s->status != LUISA_OK && lz->rank == 0)
        log_write(lz, LUISA_LOG_WARN, "step %lld, analysed after the simulation's last luisa_step: %s",
                  (long long)s->step, s->err);
      slot_release(s);
    }
    slot_release(slot_of(t, t->done + 1));   /* published for a step never taken */
    if (lz->rank == 0)
      log_write(lz, LUISA_LOG_INFO, "summary: thread mode, max_lag %d: luisa_step waited for the analytics in %lld "
                "of %lld calls, %.3f s in all", t->lag, (long long)t->waits, (long long)lz->steps, t->waited_s);
  }
  analysis_close(lz);
  if (t) {
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->wake);
    pthread_cond_destroy(&t->done_cv);
  }
  free_threaded(lz, t);
  lz->exec_state = NULL;
}

const lu_executor exec_thread = {
  "thread", thread_open, thread_publish, thread_step, thread_wants, thread_progress, thread_close,
};
