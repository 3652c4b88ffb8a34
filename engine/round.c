/* round.c: one step of analysis: planned transfers started, the local
 * work that needs none, the rest once they are in, one all-reduce from
 * which every rank reads the same results and failures, callbacks on the
 * root, and the root's word on what they did; then what triggers fired. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "script.h"
#include "agree.h"
#include "deadline.h"
#include "error.h"
#include "exchange.h"
#include "fetch.h"
#include "host.h"
#include "log.h"
#include "plan.h"
#include "steer.h"
#include "transport.h"
#include "round.h"

enum { FAILED_HERE = 0, FAILED_CALLBACK = 1, FAILED_STOPPED = 2 };

typedef struct lu_phase {
  luisa *lz;
  const char *fn;
  int64_t step;
  const int *ids;
  int n;
} lu_phase;

static int phase_in_state(lua_State *L)
{
  lu_phase *ph = lua_touserdata(L, 1);
  lu_script *s = ph->lz->script;
  lua_getfield(L, LUA_REGISTRYINDEX, "luisa.plan");
  lua_getfield(L, -1, ph->fn);
  lua_pushnumber(L, (lua_Number)ph->step);
  lua_createtable(L, ph->n, 0);
  for (int k = 0; k < ph->n; k++) {
    lua_pushinteger(L, ph->ids[k] + 1);
    lua_rawseti(L, -2, k + 1);
  }
  lua_pushinteger(L, ph->lz->rank);
  lua_call(L, 3, 1);
  if (lua_istable(L, -1))
    for (int k = 0; k < ph->n; k++) {
      lua_rawgeti(L, -1, ph->ids[k] + 1);
      if (lua_isstring(L, -1))
        plan_fail(&s->c.callbacks[ph->ids[k]], lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  return 0;
}

/* Calls plan[fn](step, due list, rank) and records the failures it returns
 * on the callbacks; those stopped by the time budget are marked. */
static void run_phase(luisa *lz, const char *fn, int64_t step, const int *ids, int n)
{
  lu_script *s = lz->script;
  char msg[LU_ERR_MAX];
  lu_phase ph = { lz, fn, step, ids, n };
  if (host_run(s->host, phase_in_state, &ph, msg, sizeof msg))
    for (int k = 0; k < n; k++)
      plan_fail(&s->c.callbacks[ids[k]], msg);
  int stopped[32], nstopped = host_take_stopped(s->host, stopped, 32);
  for (int k = 0; k < nstopped; k++)
    for (int j = 0; j < n; j++)
      if (stopped[k] == ids[j] || stopped[k] == -2) {
        lu_callback *cb = &s->c.callbacks[ids[j]];
        cb->stopped = 1;
        if (!cb->failure)
          plan_fail(cb, "stopped: it ran past its time budget (opts.step_budget_s, LUISA_STEP_BUDGET)");
      }
}

typedef struct lu_fired {
  luisa *lz;
  int *fired, n;
} lu_fired;

static int fired_in_state(lua_State *L)
{
  lu_fired *f = lua_touserdata(L, 1);
  lu_script *s = f->lz->script;
  lua_getfield(L, LUA_REGISTRYINDEX, "luisa.plan");
  lua_getfield(L, -1, "take_fired");
  lua_call(L, 0, 1);
  for (int k = 1; k <= (int)lua_objlen(L, -1) && f->n < s->c.ncallbacks; k++) {
    lua_rawgeti(L, -1, k);
    int id = (int)host_whole(L, -1, "a fired callback", 1, s->c.ncallbacks) - 1;
    lua_pop(L, 1);
    if (id >= 0 && id < s->c.ncallbacks && s->c.callbacks[id].enabled)
      f->fired[f->n++] = id;
  }
  return 0;
}

/* On the root after callbacks ran: the callbacks a trigger fired, as
 * 0-based ids into fired[]; returns how many. */
static int take_fired(luisa *lz, int *fired)
{
  char msg[LU_ERR_MAX];
  lu_fired f = { lz, fired, 0 };
  if (host_run(lz->script->host, fired_in_state, &f, msg, sizeof msg)) {
    log_write(lz, LUISA_LOG_ERROR, "triggers: %s", msg);
    return 0;
  }
  return f.n;
}

/* The root found reductions that do not match: the ranks are not at the
 * same step of the same plan. Every rank returns LUISA_ERR_STEP, and the
 * context halts analytics (luisa_step). Collective. */
static int out_of_step(luisa *lz, int64_t step)
{
  lu_script *s = lz->script;
  char msg[LU_ERR_MAX];
  for (int k = 0; k < s->c.ncallbacks; k++) {
    free(s->c.callbacks[k].failure);
    s->c.callbacks[k].failure = NULL;
    s->c.callbacks[k].stopped = 0;
  }
  FORWARD_IF_ERROR(agree_steps(lz, step, msg, sizeof msg));
  error_set(lz, LUISA_ERR_STEP, "luisa_step(%lld): %s", (long long)step, msg);
  if (lz->rank == 0)
    log_write(lz, LUISA_LOG_ERROR, "%s", error_buffer(lz));
  return LUISA_ERR_STEP;
}

/* What an assignment wrote, kept past the plan (a reload or recompile at
 * the step's end frees it) for an executor that copies it elsewhere. */
static void note_writes(luisa *lz, const lu_callback *cb)
{
  if (lz->nwritten > INT_MAX - cb->nwrites)
    return;
  int need = lz->nwritten + cb->nwrites;
  if (need > lz->written_cap) {
    lu_write *grown = realloc(lz->written, (size_t)need * sizeof *grown);
    if (!grown) {
      log_write(lz, LUISA_LOG_ERROR, "out of memory noting what an assignment wrote: in thread mode it is not "
                "carried into the simulation's memory at this step");
      return;
    }
    lz->written = grown;
    lz->written_cap = need;
  }
  memcpy(lz->written + lz->nwritten, cb->writes, (size_t)cb->nwrites * sizeof *cb->writes);
  lz->nwritten = need;
}

/* The root's word after its callbacks: [nraised, nfired, nchanges, the
 * callbacks that raised, those triggers fired]. The failures the
 * reduction shows are read off it on every rank and are not in it. */
enum { WORD_RAISED, WORD_FIRED, WORD_CHANGES, WORD_HEAD };

static int word_length(const lu_script *s)
{
  return WORD_HEAD + 2 * s->c.ncallbacks;
}

/* Whether the root's callbacks may steer (luisa.set, stop, period, move)
 * or fetch: the script's sources, the same bundle on every rank, name one
 * of those as a word. Then every rank waits for the root's word at once,
 * so that changes land at the step the mode fixes, and serves fetches
 * meanwhile. Called otherwise, they are refused (engine/core.c). */
static int is_word_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int names_steering(lu_script *s)
{
  static const char *const names[] = { "set", "stop", "period", "move", "fetch" };
  if (s->steers)
    return s->steers == 2;
  s->steers = 1;
  for (int k = 0; k < s->bundle.n; k++) {
    const char *text = s->bundle.src[k].text;
    size_t len = s->bundle.src[k].len;
    for (size_t i = 0; i < len; i++) {
      if (!is_word_char(text[i]) || (i > 0 && is_word_char(text[i - 1])))
        continue;
      size_t end = i;
      while (end < len && is_word_char(text[end]))
        end++;
      for (size_t n = 0; n < sizeof names / sizeof *names; n++)
        if (strlen(names[n]) == end - i && !memcmp(text + i, names[n], end - i))
          return s->steers = 2, 1;
      i = end;
    }
  }
  return 0;
}

/* Tell the first failure of a round on every rank, log each on its owner,
 * and disable those the root disables (all but a failure here). */
static int report(luisa *lz, int64_t step, const int *v, int nfailed)
{
  lu_script *s = lz->script;
  for (int f = 0; f < nfailed; f++) {
    lu_callback *cb = &s->c.callbacks[v[3 * f]];
    int how = v[3 * f + 1], owner = v[3 * f + 2];
    char msg[LU_ERR_MAX] = "", why[96] = "";
    if (how != FAILED_HERE)
      cb->enabled = 0;
    if (how == FAILED_CALLBACK)
      snprintf(why, sizeof why, "callback disabled: ");
    else if (how == FAILED_STOPPED)
      snprintf(why, sizeof why, "callback %d disabled on every rank, it was stopped on rank %d: ", v[3 * f] + 1,
               owner);
    if (f == 0) {   /* the first failure is told on every rank */
      snprintf(msg, sizeof msg, "%s", cb->failure ? cb->failure : "");
      FORWARD_IF_ERROR(transport_share(lz, owner, msg, sizeof msg));
      if (!lz->err_told) {
        lz->err_told = 1;
        error_set(lz, LUISA_WARN_SCRIPT, "luisa_step(%lld): %s%s", (long long)step, why, msg);
      }
    }
    if (lz->rank == owner)
      log_write(lz, LUISA_LOG_WARN, "step %lld: %s%s", (long long)step, why, cb->failure ? cb->failure : "");
    free(cb->failure);
    cb->failure = NULL;
  }
  return LUISA_OK;
}

/* Act on the root's word about the callbacks of s->word_step, on every
 * rank: disable those that raised, keep what triggers fired, queue the
 * changes to apply after the after-th step. */
static int take_word(luisa *lz, int64_t after, int *fired, int *nfired, int *nfail)
{
  lu_script *s = lz->script;
  int *w = s->c.control, *raised = w + WORD_HEAD, *v = w + word_length(s);
  int n = w[WORD_RAISED];
  for (int k = 0; k < n; k++)
    v[3 * k] = raised[k], v[3 * k + 1] = FAILED_CALLBACK, v[3 * k + 2] = 0;
  if (fired) {
    memcpy(fired, raised + n, (size_t)w[WORD_FIRED] * sizeof *fired);
    *nfired = w[WORD_FIRED];
  }
  *nfail += n;
  if (w[WORD_CHANGES] > 0)   /* the callbacks' changes, kept on every rank for their step */
    FORWARD_IF_ERROR(steer_receive(lz, s->word_step, w[WORD_CHANGES], after));
  return report(lz, s->word_step, v, n);
}

/* Wait for a root's word still on its way and act on it (changes after
 * the after-th step). Collective; nothing to do if none is. */
int round_settle(luisa *lz, int64_t after, int *nfail)
{
  lu_script *s = lz->script;
  int ignored = 0;
  if (!s || !s->word_pending)
    return LUISA_OK;
  s->word_pending = 0;
  FORWARD_IF_ERROR(deadline_wait(lz, 1, &s->word, LU_PHASE_VERDICT, "the root's word after its callbacks"));
  return take_word(lz, after, NULL, NULL, nfail ? nfail : &ignored);
}

/* One round of analytics over the callbacks ids[0..n): planned transfers,
 * local kernels, one all-reduce, from which every rank reads the same
 * failures and whether the ranks are in step; callbacks on the root. The
 * root's word on what they did (raised, fired, changes) goes to all by a
 * broadcast: waited for now when the round has a trigger's check (what it
 * fires runs in this step) or the script may steer or fetch (see
 * names_steering); else
 * left on its way and taken at the next step (round_settle), so a step
 * costs one collective. Callbacks fired by triggers land in
 * fired[0..*nfired). Collective. */
static int run_round(luisa *lz, int64_t step, int64_t after, int *ids, int n, int *fired, int *nfired, int *nfail)
{
  lu_script *s = lz->script;
  int wait = names_steering(s);
  for (int k = 0; k < n; k++) {
    lu_callback *cb = &s->c.callbacks[ids[k]];
    char msg[LU_ERR_MAX];
    int complete;
    s->c.due[k] = cb->reduction;
    wait |= cb->fires;
    if (cb->exchange) {
      FORWARD_IF_ERROR(exchange_start(lz, cb->exchange, &complete, msg, sizeof msg));
      if (!complete)
        plan_fail(cb, msg);
    }
  }
  /* What reads no received piece runs while the transfers are under way. */
  run_phase(lz, "run_inner", step, ids, n);
  int nrim = 0;
  for (int k = 0; k < n; k++) {
    lu_callback *cb = &s->c.callbacks[ids[k]];
    if (cb->exchange)
      FORWARD_IF_ERROR(exchange_finish(lz, cb->exchange));
    if (!cb->failure)
      s->c.due_ids[nrim++] = ids[k];
  }
  run_phase(lz, "run_rim", step, s->c.due_ids, nrim);
  /* The failure slot: the lowest failing rank, a stopped one (which
   * disables the callback) before any other; then what this rank reduces. */
  for (int k = 0; k < n; k++) {
    lu_callback *cb = &s->c.callbacks[ids[k]];
    double *slots = transport_reduction_input(s->c.due[k]), digest = agree_digest(s->c.digest, ids[k], step);
    slots[LU_SLOT_FAILED] = !cb->failure ? HUGE_VAL : cb->stopped ? lz->rank : lz->size + lz->rank;
    slots[LU_SLOT_DIGEST] = digest;
    slots[LU_SLOT_DIGEST + 1] = -digest;
  }
  FORWARD_IF_ERROR(transport_reduce(lz, s->c.due, n));

  int mismatch = 0;   /* ranks out of step: combine nothing */
  for (int k = 0; k < n; k++) {
    const double *slots = transport_reduction_result(s->c.due[k]);
    mismatch |= slots[LU_SLOT_DIGEST] != -slots[LU_SLOT_DIGEST + 1];
  }
  if (mismatch)
    return out_of_step(lz, step);
  int *w = s->c.control, *raised = w + WORD_HEAD, *v = w + word_length(s), *ok = s->c.due_ids;
  int nfailed = 0, nok = 0;
  for (int k = 0; k < n; k++) {
    double failed_on = transport_reduction_result(s->c.due[k])[LU_SLOT_FAILED];
    if (failed_on < HUGE_VAL) {
      int stopped = failed_on < lz->size;
      v[3 * nfailed] = ids[k], v[3 * nfailed + 1] = stopped ? FAILED_STOPPED : FAILED_HERE;
      v[3 * nfailed + 2] = (int)failed_on - (stopped ? 0 : lz->size);
      nfailed++;
    } else {
      ok[nok++] = ids[k];
    }
  }
  w[WORD_RAISED] = w[WORD_FIRED] = w[WORD_CHANGES] = 0;
  if (lz->rank == 0) {
    s->delivering = wait ? 1 : 2;
    run_phase(lz, "deliver", step, ok, nok);
    s->delivering = 0;
    for (int k = 0; k < nok; k++)
      if (s->c.callbacks[ok[k]].failure)
        raised[w[WORD_RAISED]++] = ok[k];
    w[WORD_FIRED] = take_fired(lz, raised + w[WORD_RAISED]);
    w[WORD_CHANGES] = steer_pending(lz);
  }
  s->word_step = step;
  if (wait) {
    FORWARD_IF_ERROR(fetch_serve_bcast(lz, w, word_length(s)));
  } else {
    RETURN_IF(MPI_Ibcast(w, word_length(s), MPI_INT, 0, lz->comm, &s->word) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
              "luisa_step: MPI_Ibcast of the root's word failed");
    s->word_pending = 1;
  }

  int nwrite = 0;   /* assignments write now, where no rank failed */
  for (int k = 0; k < nok; k++)
    if (s->c.callbacks[ok[k]].assigns)
      ok[nwrite++] = ok[k];
  if (nwrite)
    run_phase(lz, "commit", step, ok, nwrite);
  for (int k = 0; k < nwrite; k++)
    note_writes(lz, &s->c.callbacks[ok[k]]);
  *nfail = nfailed;
  FORWARD_IF_ERROR(report(lz, step, v, nfailed));
  for (int k = 0; k < s->c.ncallbacks; k++) {   /* what raised on the root is told with its word */
    lu_callback *cb = &s->c.callbacks[k];
    int kept = 0;
    for (int r = 0; lz->rank == 0 && r < w[WORD_RAISED]; r++)   /* elsewhere an Ibcast may be writing w */
      kept |= raised[r] == k;
    if (!kept) {
      free(cb->failure);
      cb->failure = NULL;
    }
    cb->stopped = 0;
  }
  *nfired = 0;
  if (wait)
    return take_word(lz, after, fired, nfired, nfail);
  return LUISA_OK;
}

int round_step(luisa *lz, int64_t step, int64_t call, int lag)
{
  lu_script *s = lz->script;
  int *ids = s->c.round_ids, *fired = ids + s->c.ncallbacks;
  int ndue = 0, nfired = 0, nfail = 0, failures = 0, status = LUISA_OK;
  lz->nwritten = 0;
  FORWARD_IF_ERROR(round_settle(lz, call + lag, &failures));   /* the previous step's word */
  for (int i = 0; i < s->c.ncallbacks; i++)
    if (lu_due_by_period(&s->c.callbacks[i], step))
      ids[ndue++] = i;
  if (ndue > 0) {
    lz->analysed_steps++;
    status = run_round(lz, step, call + lag, ids, ndue, fired, &nfired, &nfail);
    failures += nfail;
    if (status == LUISA_OK && nfired > 0) {   /* what they fire cannot fire again this step */
      memcpy(ids, fired, (size_t)nfired * sizeof *ids);
      status = run_round(lz, step, call + lag, ids, nfired, fired, &nfired, &nfail);
      failures += nfail;
    }
  }
  if (status != LUISA_OK)
    return status;
  lu_change change;
  while (steer_take_plan(lz, call, &change))
    if (change.kind == CHANGE_PERIOD)
      plan_set_period(lz, change.decided, change.target, (int)change.i);
    else
      plan_move_region(lz, change.decided, change.target, change.s);
  if (s->recompile) {
    s->recompile = 0;
    FORWARD_IF_ERROR(round_settle(lz, call + lag, &failures));   /* its callbacks' ids are this plan's */
    status = plan_recompile(lz, step);
    FORWARD_IF_ERROR(status);
    failures += status != LUISA_OK;
  }
  if (failures)
    lz->script_failures++;
  return failures ? LUISA_WARN_SCRIPT : LUISA_OK;
}
