/* plan.c: the compiled plan of a script: compiling it on every rank and
 * agreeing on the result, compiling it again when a region moves, what
 * it reads (luisa_wants) and when its callbacks are due. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "script.h"
#include "agree.h"
#include "array.h"
#include "bundle.h"
#include "error.h"
#include "exchange.h"
#include "host.h"
#include "log.h"
#include "store.h"
#include "transport.h"
#include "plan.h"

void plan_set_period(luisa *lz, int64_t step, int callback, int every)
{
  lu_callback *cb = &lz->script->c.callbacks[callback];
  if (lz->rank == 0)
    log_write(lz, LUISA_LOG_INFO, "step %lld: callback %d runs every %d steps (was %d)", (long long)step,
              callback + 1, every, cb->every);
  cb->every = every;
}

typedef struct lu_move {
  int region;
  const char *ranges;
  char shown[512];
} lu_move;

static int move_in_state(lua_State *L)
{
  lu_move *m = lua_touserdata(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "luisa.plan");
  lua_getfield(L, -1, "move_region");
  lua_pushinteger(L, m->region);
  lua_pushstring(L, m->ranges);
  lua_call(L, 2, 1);
  snprintf(m->shown, sizeof m->shown, "%s", lua_tostring(L, -1));
  return 0;
}

/* On every rank, as the root's callbacks asked: the region's new ranges;
 * the plan is compiled again at the end of the step. */
void plan_move_region(luisa *lz, int64_t step, int region, const char *ranges)
{
  lu_script *s = lz->script;
  char msg[LU_ERR_MAX];
  lu_move m = { region, ranges, "" };
  if (host_run(s->host, move_in_state, &m, msg, sizeof msg)) {   /* the root checked the ranges: an engine bug */
    log_write(lz, LUISA_LOG_ERROR, "step %lld: region %d not moved: %s", (long long)step, region, msg);
    return;
  }
  if (lz->rank == 0)
    log_write(lz, LUISA_LOG_INFO, "step %lld: region %d is now %s", (long long)step, region, m.shown);
  s->recompile = 1;
}

void plan_free(luisa *lz, lu_compiled *c)
{
  for (int i = 0; i < c->nreductions; i++) {
    transport_reduction_free(c->reductions[i]);
    exchange_free(c->exchanges[i]);
  }
  free(c->exchanges);
  for (int i = 0; i < c->ncallbacks; i++) {
    free(c->callbacks[i].failure);
    free(c->wheres ? c->wheres[i] : NULL);
    free(c->diverged ? c->diverged[i] : NULL);
    for (int a = 0; c->callbacks[i].reads && a < lz->narrays; a++)
      free(c->callbacks[i].reads[a]);
    free(c->callbacks[i].reads);
    free(c->callbacks[i].writes);
  }
  free(c->fingerprints);
  free(c->wheres);
  free(c->diverged);
  free(c->reductions);
  free(c->callbacks);
  free(c->due);
  free(c->due_ids);
  free(c->round_ids);
  free(c->control);
}

static void push_int_list(lua_State *L, int n, const int64_t *v)
{
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushnumber(L, (lua_Number)v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* arrays[name] = { dtype, ndim, shape, chunks = {{offset, shape, stride, first}}, published,
 *                  boxes = {{owner, chunk, offset, shape}} (every rank's chunks) } */
static void push_arrays(luisa *lz, lua_State *L)
{
  lua_createtable(L, 0, lz->narrays);
  for (int i = 0; i < lz->narrays; i++) {
    lu_array *a = &lz->arrays[i];
    lua_createtable(L, 0, 6);
    lua_pushstring(L, array_dtype_name(a->dtype));
    lua_setfield(L, -2, "dtype");
    lua_pushinteger(L, a->ndim);
    lua_setfield(L, -2, "ndim");
    push_int_list(L, a->ndim, a->shape);
    lua_setfield(L, -2, "shape");
    lua_pushlightuserdata(L, (void *)a->published);
    lua_setfield(L, -2, "published");
    lua_createtable(L, a->nchunks, 0);
    for (int c = 0; c < a->nchunks; c++) {
      lu_chunk *ch = &a->chunks[c];
      lua_createtable(L, 0, 4);
      push_int_list(L, a->ndim, ch->offset);
      lua_setfield(L, -2, "offset");
      push_int_list(L, a->ndim, ch->shape);
      lua_setfield(L, -2, "shape");
      push_int_list(L, a->ndim, ch->stride);
      lua_setfield(L, -2, "stride");
      lua_pushnumber(L, (lua_Number)ch->first);
      lua_setfield(L, -2, "first");
      lua_rawseti(L, -2, c + 1);
    }
    lua_setfield(L, -2, "chunks");
    lua_createtable(L, a->nboxes, 0);
    for (int b = 0; b < a->nboxes; b++) {
      lu_box *box = &a->boxes[b];
      lua_createtable(L, 0, 4);
      lua_pushinteger(L, box->owner);
      lua_setfield(L, -2, "owner");
      lua_pushinteger(L, box->local);
      lua_setfield(L, -2, "chunk");
      push_int_list(L, a->ndim, box->offset);
      lua_setfield(L, -2, "offset");
      push_int_list(L, a->ndim, box->shape);
      lua_setfield(L, -2, "shape");
      lua_rawseti(L, -2, b + 1);
    }
    lua_setfield(L, -2, "boxes");
    lua_setfield(L, -2, a->name);
  }
}

void plan_fail(lu_callback *cb, const char *msg)
{
  free(cb->failure);
  cb->failure = strdup(msg);
}

/* cb->writes from the list {{chunk, lo = {...}, n = {...}}} on the stack:
 * what an assignment writes on this rank, in its chunks' coordinates. */
static int write_set(luisa *lz, lua_State *L, lu_callback *cb)
{
  int n = lua_istable(L, -1) && cb->target >= 0 ? (int)lua_objlen(L, -1) : 0;
  if (n == 0)
    return 1;
  if (!(cb->writes = calloc((size_t)n, sizeof *cb->writes)))
    return 0;
  const lu_array *a = &lz->arrays[cb->target];
  for (int k = 0; k < n; k++) {
    lu_write *w = &cb->writes[k];
    w->array = cb->target;
    lua_rawgeti(L, -1, k + 1);
    lua_getfield(L, -1, "chunk");
    w->chunk = (int)host_whole(L, -1, "an assignment's chunk", 0, a->nchunks - 1);
    lua_pop(L, 1);
    for (int d = 0; d < LUISA_MAX_DIMS; d++)
      w->lo[d] = 0, w->n[d] = 1;
    const lu_chunk *ch = &a->chunks[w->chunk];
    for (int side = 0; side < 2; side++) {
      lua_getfield(L, -1, side ? "n" : "lo");
      for (int d = 0; d < a->ndim; d++) {
        lua_rawgeti(L, -1, d + 1);
        int64_t v = host_whole(L, -1, "an assignment's box", side, ch->shape[d] - (side ? w->lo[d] : 1));
        lua_pop(L, 1);
        if (side)
          w->n[d] = v;
        else
          w->lo[d] = v;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    cb->nwrites++;
  }
  return 1;
}

/* cb->reads from the table {[array] = {[chunk + 1] = true}} on the stack. */
static int read_set(luisa *lz, lua_State *L, lu_callback *cb)
{
  cb->reads = calloc((size_t)(lz->narrays ? lz->narrays : 1), sizeof *cb->reads);
  if (!cb->reads)
    return 0;
  for (int a = 0; a < lz->narrays && lua_istable(L, -1); a++) {
    lua_getfield(L, -1, lz->arrays[a].name);
    if (lua_istable(L, -1)) {
      cb->reads[a] = calloc((size_t)(lz->arrays[a].nchunks ? lz->arrays[a].nchunks : 1), 1);
      if (!cb->reads[a]) {
        lua_pop(L, 1);
        return 0;
      }
      for (int c = 0; c < lz->arrays[a].nchunks; c++) {
        lua_rawgeti(L, -1, c + 1);
        cb->reads[a][c] = (unsigned char)lua_toboolean(L, -1);
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* Whether any callback is due at `step` by its period. */
int plan_due(const luisa *lz, int64_t step)
{
  const lu_script *s = lz->script;
  for (int i = 0; s && i < s->c.ncallbacks; i++)
    if (lu_due_by_period(&s->c.callbacks[i], step))
      return 1;
  return 0;
}

/* Whether the analytics due at `step` read chunk `chunk` (< 0: any) of
 * array `a` on this rank. Callbacks fired by triggers count as due when
 * anything is; an array in a window is read at every step. */
int plan_wants(const luisa *lz, int a, int chunk, int64_t step)
{
  const lu_script *s = lz->script;
  if (!s || !lz->declarations_ok)
    return !lz->stepped;   /* before the plan exists, everything may be needed */
  if (store_versions_kept(lz, &lz->arrays[a]))
    return 1;
  int any_due = plan_due(lz, step);
  for (int i = 0; i < s->c.ncallbacks; i++) {
    const lu_callback *cb = &s->c.callbacks[i];
    int due = cb->enabled && (cb->every > 0 ? step % cb->every == 0 : any_due);
    if (!due || !cb->reads || !cb->reads[a])
      continue;
    for (int c = 0; c < lz->arrays[a].nchunks; c++)
      if (cb->reads[a][c] && (chunk < 0 || chunk == c))
        return 1;
  }
  return 0;
}

static int compile_in_state(lua_State *L)
{
  luisa *lz = lua_touserdata(L, 1);
  lu_script *s = lz->script;
  lua_getfield(L, LUA_REGISTRYINDEX, "luisa.plan");
  lua_getfield(L, -1, "compile");
  push_arrays(lz, L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaded");
  lua_getfield(L, -1, "luisa.core");
  lua_replace(L, -3);
  lua_pop(L, 1);
  lua_call(L, 2, 1);
  int n = (int)lua_objlen(L, -1);
  s->c.callbacks = calloc((size_t)(n ? n : 1), sizeof *s->c.callbacks);
  s->c.due = calloc((size_t)(n ? n : 1), sizeof *s->c.due);
  s->c.due_ids = calloc((size_t)(n ? n : 1), sizeof *s->c.due_ids);
  s->c.round_ids = calloc((size_t)(2 * n + 1), sizeof *s->c.round_ids);   /* made once: steps allocate nothing */
  s->c.control = calloc((size_t)(4 + 5 * n), sizeof *s->c.control);
  s->c.fingerprints = calloc((size_t)(n ? n : 1), sizeof *s->c.fingerprints);
  s->c.wheres = calloc((size_t)(n ? n : 1), sizeof *s->c.wheres);
  s->c.diverged = calloc((size_t)(n ? n : 1), sizeof *s->c.diverged);
  if (!s->c.callbacks || !s->c.due || !s->c.due_ids || !s->c.round_ids || !s->c.control || !s->c.fingerprints ||
      !s->c.wheres || !s->c.diverged)
    return luaL_error(L, "out of memory compiling the plan");
  s->c.ncallbacks = n;
  lua_getfield(L, -1, "off");
  s->c.off = lua_toboolean(L, -1);
  lua_pop(L, 1);
  for (int i = 0; i < n; i++) {
    lu_callback *cb = &s->c.callbacks[i];
    lua_rawgeti(L, -1, i + 1);
    lua_getfield(L, -1, "where");
    if (lua_isstring(L, -1) && !(s->c.wheres[i] = strdup(lua_tostring(L, -1))))
      return luaL_error(L, "out of memory compiling the plan");
    lua_pop(L, 1);
    lua_getfield(L, -1, "fingerprint");
    s->c.fingerprints[i] = lua_isstring(L, -1) ? strtoull(lua_tostring(L, -1), NULL, 16) : 0;
    lua_pop(L, 1);
    lua_getfield(L, -1, "error");
    if (lua_isstring(L, -1)) {
      plan_fail(cb, lua_tostring(L, -1));
    } else {
      lua_getfield(L, -2, "every");
      lua_getfield(L, -3, "reduction");
      cb->every = (int)host_whole(L, -2, "a callback's period", 0, INT_MAX);
      int r = (int)host_whole(L, -1, "a callback's reduction", 0, s->c.nreductions - 1);
      cb->reduction = s->c.reductions[r];
      cb->exchange = s->c.exchanges[r];
      cb->enabled = 1;
      lua_pop(L, 2);
      lua_getfield(L, -2, "fires");
      cb->fires = lua_toboolean(L, -1);
      lua_pop(L, 1);
      lua_getfield(L, -2, "assigns");
      cb->assigns = lua_toboolean(L, -1);
      lu_array *target = lua_isstring(L, -1) ? array_find(lz, lua_tostring(L, -1)) : NULL;
      cb->target = target ? (int)(target - lz->arrays) : -1;
      lua_pop(L, 1);
      lua_getfield(L, -2, "writes");
      if (!write_set(lz, L, cb))
        return luaL_error(L, "out of memory compiling the plan");
      lua_pop(L, 1);
      lua_getfield(L, -2, "reads");
      if (!read_set(lz, L, cb))
        return luaL_error(L, "out of memory compiling the plan");
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  return 0;
}

/* Local compile: fills callbacks[] and their failures. */
static int compile_here(luisa *lz, char *msg, size_t cap)
{
  return host_run(lz->script->host, compile_in_state, lz, msg, cap);
}

/* Every rank planned its transfers alone: check that what each sends is
 * what its peer expects, so a disagreement (an engine bug) fails the
 * callback on every rank instead of hanging them. sizes: 3 * size scratch
 * numbers, allocated before the compile's agreement. Collective. */
static int check_transfers(luisa *lz, int64_t step, int64_t *sizes)
{
  lu_script *s = lz->script;
  int64_t *to = sizes, *from = to + lz->size, *got = from + lz->size;   /* 3 * size, the caller's */
  int status = LUISA_OK;
  for (int i = 0; i < s->c.ncallbacks && status < LUISA_ERR_FIRST; i++) {
    lu_callback *cb = &s->c.callbacks[i];
    if (!cb->enabled)
      continue;
    exchange_sizes(cb->exchange, lz->size, to, from);
    int bad = lz->size, first;
    if (MPI_Alltoall(to, 1, MPI_INT64_T, got, 1, MPI_INT64_T, lz->comm) != MPI_SUCCESS) {
      status = error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Alltoall checking transfers failed");
      break;
    }
    for (int r = 0; r < lz->size; r++)
      if (got[r] != from[r] && bad == lz->size)
        bad = r;
    if (MPI_Allreduce(&bad, &first, 1, MPI_INT, MPI_MIN, lz->comm) != MPI_SUCCESS) {
      status = error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Allreduce checking transfers failed");
      break;
    }
    if (first < lz->size) {
      cb->enabled = 0;
      status = error_set(lz, LUISA_WARN_SCRIPT, "luisa_step(%lld): analysis callback %d disabled: luisa "
                         "internal error: its ranks planned different transfers (rank %d's differ)",
                         (long long)step, i + 1, first);
      if (lz->rank == 0)
        log_write(lz, LUISA_LOG_ERROR, "%s", error_buffer(lz));
    }
  }
  return status;
}

/* compile_here, then this rank's plan checked against rank 0's: its count
 * of callbacks, luisa.off(), and, when every rank compiled, each callback's
 * fingerprint (agree.c). A callback that differs is marked diverged on
 * every rank, with the same sentence. Returns 1 if this rank failed as a
 * whole (msg says why), 2 if some rank ran out of memory comparing plans
 * (on every rank, msg says which), 0 if not, -1 if MPI failed. Collective. */
static int compile_counted(luisa *lz, char *msg, size_t cap)
{
  lu_script *s = lz->script;
  int failed = compile_here(lz, msg, cap);
  if (!failed && !memory_plan_fits(&lz->memory, msg, cap))   /* its windows and transfers are known now */
    failed = 1;
  if (!failed)
    failed = transport_reserve(lz, s->c.reductions, s->c.nreductions, msg, cap);
  int mine[2] = { failed ? -1 : s->c.ncallbacks, !failed && s->c.off }, root[2] = { mine[0], mine[1] };
  if (transport_bcast_ints(lz, root, 2) != LUISA_OK)
    return -1;
  if (!failed && mine[0] != root[0])
    failed = snprintf(msg, cap, "rank %d registers %d callbacks but rank 0 registers %d: "
                      "a script must register the same callbacks on every rank", lz->rank, mine[0], root[0]) > 0;
  else if (!failed && root[0] >= 0 && mine[1] != root[1])
    failed = snprintf(msg, cap, "rank %d %s luisa.off() but rank 0 %s: %s", lz->rank,
                      mine[1] ? "calls" : "does not call", root[1] ? "does" : "does not", AGREE_WHY) > 0;
  int ok = !failed, all;
  if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, lz->comm) != MPI_SUCCESS)
    return -1;
  if (!all)
    return failed;
  int agreed = agree_plan(lz, s->c.ncallbacks, s->c.fingerprints, s->c.wheres, s->c.diverged);
  if (agreed == LUISA_ERR_NOMEM) {   /* on every rank, error_buffer(lz) saying where */
    snprintf(msg, cap, "%s", error_buffer(lz));
    return 2;
  }
  if (agreed >= LUISA_ERR_FIRST)
    return -1;
  for (int i = 0; i < s->c.ncallbacks; i++)
    s->c.callbacks[i].diverged = s->c.diverged[i] != NULL;
  return 0;
}

/* The digest of the plan every rank now runs, carried by each reduction. */
void plan_seal(lu_script *s)
{
  uint64_t h = LU_FNV_START;
  for (int i = 0; i < s->c.ncallbacks; i++) {
    uint64_t f = s->c.callbacks[i].enabled ? s->c.fingerprints[i] : 0;
    h = bundle_fnv(h, &f, sizeof f);
  }
  s->c.digest = h;
}

/* Compile the plan on every rank at the first step. A callback that fails
 * to compile on any rank is disabled on all. Collective. */
int plan_compile(luisa *lz, int64_t step, int *unusable)
{
  char where[32];
  lu_script *s = lz->script;
  char msg[LU_ERR_MAX] = "";
  *unusable = 1;
  int failed = compile_counted(lz, msg, sizeof msg);
  if (failed < 0)
    return LUISA_ERR_MPI;
  if (failed == 2)   /* known on every rank */
    return error_set(lz, LUISA_ERR_NOMEM, "luisa_step(%lld): the analysis plan could not be compiled: %s",
                     (long long)step, msg);
  /* What the collectives below need, agreed on with the compile's result. */
  int n = failed ? 0 : s->c.ncallbacks, who;
  int *first = malloc((size_t)(n ? n : 1) * sizeof *first);
  int *mine = malloc((size_t)(n ? n : 1) * sizeof *mine);
  int64_t *sizes = malloc(3 * (size_t)lz->size * sizeof *sizes);
  int here = failed ? LUISA_WARN_SCRIPT : LUISA_OK;
  if (!failed && (!first || !mine || !sizes)) {
    here = LUISA_ERR_NOMEM;
    snprintf(msg, sizeof msg, "out of memory compiling the plan");
  }
  int agreed = transport_settle(lz, here, msg, sizeof msg, &who);
  if (agreed != LUISA_OK) {
    free(first);
    free(mine);
    free(sizes);
    if (agreed == LUISA_ERR_MPI)
      return agreed;
    log_write(lz, lz->rank == 0 ? LUISA_LOG_ERROR : LUISA_LOG_DEBUG, "plan not compiled: %s", msg);
    return error_set(lz, agreed, "luisa_step(%lld): the analysis plan could not be compiled%s: %s",
                     (long long)step, error_on_rank(where, sizeof where, lz, who), msg);
  }
  *unusable = 0;
  for (int i = 0; i < n; i++)
    mine[i] = s->c.callbacks[i].failure || s->c.callbacks[i].diverged ? lz->rank : lz->size;
  int status = LUISA_OK;
  if (MPI_Allreduce(mine, first, n, MPI_INT, MPI_MIN, lz->comm) != MPI_SUCCESS)
    status = error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Allreduce of compile results failed");
  for (int i = 0; i < n && status != LUISA_ERR_MPI; i++) {
    lu_callback *cb = &s->c.callbacks[i];
    if (first[i] == lz->size)
      continue;
    cb->enabled = 0;
    if (cb->diverged) {   /* the same sentence on every rank */
      if (lz->rank == 0)
        log_write(lz, LUISA_LOG_ERROR, "%s, it is disabled on every rank: %s", s->c.diverged[i], AGREE_WHY);
      if (status == LUISA_OK)
        status = error_set(lz, LUISA_WARN_SCRIPT, "luisa_step(%lld): %s, so it is disabled on every rank: %s",
                           (long long)step, s->c.diverged[i], AGREE_WHY);
      continue;
    }
    snprintf(msg, sizeof msg, "%s", cb->failure ? cb->failure : "");
    if (transport_share(lz, first[i], msg, sizeof msg) != LUISA_OK) {
      status = LUISA_ERR_MPI;
      break;
    }
    error_on_rank(where, sizeof where, lz, first[i]);
    if (lz->rank == 0)
      log_write(lz, LUISA_LOG_ERROR, "callback %d disabled, it does not compile%s: %s", i + 1, where, msg);
    if (status == LUISA_OK)
      status = error_set(lz, LUISA_WARN_SCRIPT, "luisa_step(%lld): analysis callback %d does not compile%s: %s",
                         (long long)step, i + 1, where, msg);
  }
  for (int i = 0; i < n; i++) {
    free(s->c.callbacks[i].failure);
    s->c.callbacks[i].failure = NULL;
  }
  free(first);
  free(mine);
  if (status < LUISA_ERR_FIRST) {
    int checked = check_transfers(lz, step, sizes);
    if (checked != LUISA_OK)
      status = checked;
  }
  free(sizes);
  plan_seal(s);
  return status;
}

/* The compile of a reload: any failure, of the whole plan or of one
 * callback on one rank, fails it. Returns as load_everywhere. Collective. */
int plan_compile_strict(luisa *lz, int64_t step, char *msg, size_t cap, char *who, size_t wcap)
{
  lu_script *s = lz->script;
  int failed = compile_counted(lz, msg, cap);
  if (failed < 0)
    return -2;
  failed = failed != 0;   /* out of memory comparing plans fails the reload too */
  int diverged = 0;
  for (int i = 0; !failed && i < s->c.ncallbacks; i++)   /* a divergence first: it is the same on every rank */
    if (s->c.diverged[i])
      failed = diverged = snprintf(msg, cap, "%s: %s", s->c.diverged[i], AGREE_WHY) > 0;
  for (int i = 0; !failed && i < s->c.ncallbacks; i++)
    if (s->c.callbacks[i].failure)
      failed = snprintf(msg, cap, "callback %d does not compile: %s", i + 1, s->c.callbacks[i].failure) > 0;
  int64_t *sizes = malloc(3 * (size_t)lz->size * sizeof *sizes);   /* agreed on with the compile */
  if (!failed && !sizes)
    failed = snprintf(msg, cap, "out of memory compiling the plan") > 0;
  int first = transport_agree(lz, failed, msg, cap);
  if (first >= 0 && transport_who(lz, failed, who, wcap) != LUISA_OK)
    first = -2;
  if (diverged)   /* the sentence names the ranks already */
    who[0] = '\0';
  if (first != -1) {
    free(sizes);
    return first;
  }
  int checked = check_transfers(lz, step, sizes);
  free(sizes);
  if (checked == LUISA_ERR_MPI)
    return -2;
  if (checked != LUISA_OK) {
    snprintf(msg, cap, "%s", error_buffer(lz));
    who[0] = '\0';
    return 0;
  }
  return -1;
}

/* plan.snapshot() kept in the registry, plan.restore(it), or forgotten. */
static int keep_plan(lua_State *L)
{
  const char *what = lua_touserdata(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "luisa.plan");
  if (!strcmp(what, "snapshot")) {
    lua_getfield(L, -1, "snapshot");
    lua_call(L, 0, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "luisa.plan.kept");
  } else if (!strcmp(what, "restore")) {
    lua_getfield(L, -1, "restore");
    lua_getfield(L, LUA_REGISTRYINDEX, "luisa.plan.kept");
    lua_call(L, 1, 0);
  }
  if (strcmp(what, "snapshot") != 0) {
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "luisa.plan.kept");
  }
  return 0;
}

/* Compile the plan again in the same Lua state (a region moved); the
 * callbacks keep their periods and whether they are enabled. All ranks
 * take the new plan, or all keep the old one. Collective. */
int plan_recompile(luisa *lz, int64_t step)
{
  lu_script *s = lz->script;
  lu_compiled old = s->c;
  char msg[LU_ERR_MAX], who[256] = "";
  memset(&s->c, 0, sizeof s->c);
  int first = host_run(s->host, keep_plan, "snapshot", msg, sizeof msg) ? 0 : -1;
  int agreed = transport_agree(lz, first == 0, msg, sizeof msg);
  if (agreed == -2)
    return LUISA_ERR_MPI;
  if (agreed == -1)
    first = plan_compile_strict(lz, step, msg, sizeof msg, who, sizeof who);
  else
    first = agreed;
  if (first == -1) {
    for (int i = 0; i < s->c.ncallbacks; i++) {
      s->c.callbacks[i].enabled &= old.callbacks[i].enabled;
      s->c.callbacks[i].every = old.callbacks[i].every;
    }
    plan_seal(s);
    plan_free(lz, &old);
    host_run(s->host, keep_plan, "drop", msg, sizeof msg);
    return LUISA_OK;
  }
  plan_free(lz, &s->c);
  char ignored[LU_ERR_MAX];
  if (host_run(s->host, keep_plan, "restore", ignored, sizeof ignored))   /* out of memory: the old plan stays whole */
    log_write(lz, LUISA_LOG_ERROR, "step %lld: the plan's Lua side was not put back: %s", (long long)step, ignored);
  s->c = old;
  if (first == -2)
    return LUISA_ERR_MPI;
  if (lz->rank == 0)
    log_write(lz, LUISA_LOG_ERROR, "step %lld: plan not compiled again for the moved region, the old one goes "
              "on%s: %s", (long long)step, who, msg);
  return error_set(lz, LUISA_WARN_SCRIPT, "luisa_step(%lld): the plan for the moved region does not compile%s: %s",
                   (long long)step, who, msg);
}
