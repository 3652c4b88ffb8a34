/* round.c: one step of analysis: planned transfers, local kernels,
 * reductions to the root, callbacks on the root, and the root's verdict to
 * every rank, so all return the same status; then what triggers fired. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "script.h"
#include "agree.h"
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

/* One round of analytics over the callbacks ids[0..n): planned transfers,
 * local kernels, reductions to the root, callbacks on the root, then the
 * root's verdict to all, so every rank returns the same status and disables
 * the same callbacks. Callbacks fired by triggers land in fired[0..*nfired).
 * Collective. */
static int run_round(luisa *lz, int64_t step, int64_t after, int *ids, int n, int *fired, int *nfired, int *nfail)
{
  lu_script *s = lz->script;
  for (int k = 0; k < n; k++) {
    lu_callback *cb = &s->c.callbacks[ids[k]];
    char msg[LU_ERR_MAX];
    int complete;
    s->c.due[k] = cb->reduction;
    if (cb->exchange) {
      FORWARD_IF_ERROR(exchange_run(lz, cb->exchange, &complete, msg, sizeof msg));
      if (!complete)
        plan_fail(cb, msg);
    }
  }
  run_phase(lz, "run_local", step, ids, n);
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

  /* control = [nfail, nfired, nchanges, mismatch, (callback, how, rank) x nfail, fired ids] */
  int *c = s->c.control, *v = c + 4, *ok = c + 4 + 3 * n;
  c[3] = 0;
  for (int k = 0; k < n && lz->rank == 0; k++) {   /* ranks out of step: combine nothing */
    const double *slots = transport_reduction_result(s->c.due[k]);
    c[3] |= slots[LU_SLOT_DIGEST] != -slots[LU_SLOT_DIGEST + 1];
  }
  if (lz->rank == 0 && c[3])
    c[0] = c[1] = c[2] = 0;
  else if (lz->rank == 0) {
    int nok = 0;
    c[0] = 0;
    for (int k = 0; k < n; k++) {
      double failed_on = transport_reduction_result(s->c.due[k])[0];
      if (failed_on < HUGE_VAL) {
        int stopped = failed_on < lz->size;
        v[3 * c[0]] = ids[k], v[3 * c[0] + 1] = stopped ? FAILED_STOPPED : FAILED_HERE;
        v[3 * c[0] + 2] = (int)failed_on - (stopped ? 0 : lz->size);
        c[0]++;
      } else {
        ok[nok++] = ids[k];
      }
    }
    s->delivering = 1;
    run_phase(lz, "deliver", step, ok, nok);
    s->delivering = 0;
    for (int k = 0; k < nok; k++)
      if (s->c.callbacks[ok[k]].failure) {
        v[3 * c[0]] = ok[k], v[3 * c[0] + 1] = FAILED_CALLBACK, v[3 * c[0] + 2] = 0;
        c[0]++;
      }
    c[1] = take_fired(lz, ok);
    c[2] = steer_pending(lz);
  }
  FORWARD_IF_ERROR(fetch_serve_bcast(lz, c, 4 + 3 * n + s->c.ncallbacks));
  if (c[3])
    return out_of_step(lz, step);
  *nfail = c[0];
  *nfired = c[1];
  memcpy(fired, ok, (size_t)c[1] * sizeof *fired);
  int nwrite = 0;   /* assignments write now, where no rank failed */
  for (int k = 0; k < n; k++) {
    int failed = 0;
    for (int f = 0; f < c[0]; f++)
      failed |= v[3 * f] == ids[k];
    if (!failed && s->c.callbacks[ids[k]].assigns)
      s->c.due_ids[nwrite++] = ids[k];
  }
  if (nwrite)
    run_phase(lz, "commit", step, s->c.due_ids, nwrite);
  for (int k = 0; k < nwrite; k++)
    note_writes(lz, &s->c.callbacks[s->c.due_ids[k]]);
  if (c[2] > 0)   /* the callbacks' changes, kept on every rank for their step */
    FORWARD_IF_ERROR(steer_receive(lz, step, c[2], after));

  for (int f = 0; f < c[0]; f++) {
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
  }
  for (int k = 0; k < s->c.ncallbacks; k++) {
    free(s->c.callbacks[k].failure);
    s->c.callbacks[k].failure = NULL;
    s->c.callbacks[k].stopped = 0;
  }
  return LUISA_OK;
}

int round_step(luisa *lz, int64_t step, int64_t call, int lag)
{
  lu_script *s = lz->script;
  int *ids = s->c.round_ids, *fired = ids + s->c.ncallbacks;
  int ndue = 0, nfired = 0, nfail = 0, failures = 0, status = LUISA_OK;
  lz->nwritten = 0;
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
    status = plan_recompile(lz, step);
    FORWARD_IF_ERROR(status);
    failures += status != LUISA_OK;
  }
  if (failures)
    lz->script_failures++;
  return failures ? LUISA_WARN_SCRIPT : LUISA_OK;
}
