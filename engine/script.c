/* script.c: the Lua side of a context: one LuaJIT state per rank running the
 * same script. Lua is entered only through host_run, never across MPI calls. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "context.h"
#include "host.h"

typedef struct lu_callback {
  int every;
  int enabled;
  lu_reduction *reduction;
  lu_exchange *exchange;       /* planned transfers before its kernels, or NULL */
  unsigned char **reads;       /* per array, per local chunk: read by this callback */
  int assigns;                 /* writes into a simulation array (luisa.assign) */
  char *failure;               /* this rank's message for the current step */
  int stopped;                 /* it ran past its time budget this step */
  int diverged;                /* its fingerprint differs between ranks: failure says where */
} lu_callback;

/* What compiling the plan makes: a recompile builds another beside it. */
typedef struct lu_compiled {
  int ncallbacks;
  lu_callback *callbacks;
  lu_reduction **reductions;   /* every one made, freed with the plan */
  lu_exchange **exchanges;     /* per reduction, or NULL */
  int nreductions, reductions_cap;
  lu_reduction **due;
  int *due_ids;                /* scratch list of callbacks */
  int *round_ids;              /* a step's due and fired callbacks, 2 x ncallbacks */
  int *control;                /* root's verdict per step, see script_step */
  uint64_t *fingerprints;      /* per callback, of what it computes; 0 if it did not compile */
  char **wheres;               /* per callback, file:line of its registration */
  char **diverged;             /* per callback, why it differs between ranks, or NULL */
  int off;                     /* the script called luisa.off() */
  uint64_t digest;             /* of the plan every rank agreed on, see seal_plan */
} lu_compiled;

struct lu_script {
  lu_host *host;
  lu_compiled c;
  int delivering;              /* callbacks are running: luisa.fetch may serve */
  lu_bundle bundle;            /* the sources this script was loaded from */
  int *depths;                 /* per array, the window this script asked for */
  int recompile;               /* a region moved: compile again at the end of the step */
};

enum { FAILED_HERE = 0, FAILED_CALLBACK = 1, FAILED_STOPPED = 2 };

/* " on rank N" when there is more than one rank to tell apart. */
static const char *on_rank(char *buf, size_t cap, const luisa *lz, int rank)
{
  if (lz->size == 1)
    buf[0] = '\0';
  else
    snprintf(buf, cap, " on rank %d", rank);
  return buf;
}

/* A whole number in [lo, hi] from the Lua value at idx, or an error naming
 * what: casting NaN, infinities or numbers past the type is undefined. */
static int64_t number_in(lua_State *L, int idx, const char *what, int64_t lo, int64_t hi)
{
  double d = luaL_checknumber(L, idx);
  if (!(d >= -0x1p63 && d < 0x1p63) || d != floor(d) || (int64_t)d < lo || (int64_t)d > hi)
    return luaL_error(L, "%s is %f: expected a whole number from %lld to %lld", what, d, (long long)lo,
                      (long long)hi);
  return (int64_t)d;
}

static int64_t optional_in(lua_State *L, int idx, const char *what, int64_t lo, int64_t hi)
{
  return lua_isnoneornil(L, idx) ? 0 : number_in(L, idx, what, lo, hi);
}

/* core.reduction(counts) -> id, input slots, result slots. counts[k] is the
 * number of slots of kind k (lu_slot_kind order, 1-based in Lua). */
static int core_reduction(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lu_script *s = lz->script;
  int counts[LU_SLOT_KINDS];
  luaL_checktype(L, 1, LUA_TTABLE);
  for (int k = 0; k < LU_SLOT_KINDS; k++) {
    lua_rawgeti(L, 1, k + 1);
    counts[k] = (int)optional_in(L, -1, "a reduction's slot count", 0, 1 << 24);
    lua_pop(L, 1);
  }
  counts[LU_MIN] += LU_ENGINE_SLOTS;   /* the failure slot and the digest come first */
  if (s->c.nreductions == s->c.reductions_cap) {
    int cap = s->c.reductions_cap ? 2 * s->c.reductions_cap : 8;
    lu_reduction **grown = realloc(s->c.reductions, (size_t)cap * sizeof *grown);
    if (grown)
      s->c.reductions = grown;
    lu_exchange **xgrown = grown ? realloc(s->c.exchanges, (size_t)cap * sizeof *xgrown) : NULL;
    if (!xgrown)
      return luaL_error(L, "out of memory for reduction buffers");
    s->c.exchanges = xgrown;
    s->c.reductions_cap = cap;
  }
  s->c.exchanges[s->c.nreductions] = NULL;
  lu_reduction *r = transport_reduction_new(lz, counts);
  if (!r)
    return luaL_error(L, "out of memory for a reduction buffer");
  s->c.reductions[s->c.nreductions] = r;
  lua_pushinteger(L, s->c.nreductions++);
  lua_pushlightuserdata(L, transport_reduction_input(r) + LU_ENGINE_SLOTS);
  lua_pushlightuserdata(L, (void *)(transport_reduction_result(r) + LU_ENGINE_SLOTS));
  return 3;
}

static int64_t field_int(lua_State *L, int t, const char *k, int64_t lo, int64_t hi)
{
  lua_getfield(L, t, k);
  int64_t v = number_in(L, -1, k, lo, hi);
  lua_pop(L, 1);
  return v;
}

/* v[0..n) from the list at stack index t. */
static void field_ints_at(lua_State *L, int t, int n, int64_t *v)
{
  luaL_checktype(L, t, LUA_TTABLE);
  for (int d = 0; d < n; d++) {
    lua_rawgeti(L, t, d + 1);
    v[d] = number_in(L, -1, "an index or extent", -((int64_t)1 << 62), (int64_t)1 << 62);
    lua_pop(L, 1);
  }
}

static void field_ints(lua_State *L, int t, const char *k, int n, int64_t *v)
{
  lua_getfield(L, t, k);
  field_ints_at(L, lua_gettop(L), n, v);
  lua_pop(L, 1);
}

static int describe_exchange(lua_State *L, luisa *lz, lu_exchange *x, int nsend, int nrecv)
{
  for (int i = 0; i < nsend; i++) {
    lua_rawgeti(L, 3, i + 1);
    int m = lua_gettop(L);
    lua_getfield(L, m, "pieces");
    int np = (int)lua_objlen(L, -1);
    if (!exchange_message(x, 1, i, (int)field_int(L, m, "peer", 0, lz->size - 1),
                          (size_t)field_int(L, m, "bytes", 0, INT_MAX), np))
      return luaL_error(L, "out of memory for transfer buffers");
    for (int k = 0; k < np; k++) {
      lua_rawgeti(L, -1, k + 1);
      int p = lua_gettop(L);
      lua_getfield(L, p, "array");
      lu_array *a = array_find(lz, luaL_checkstring(L, -1));
      lua_pop(L, 1);
      int64_t lo[LUISA_MAX_DIMS], count[LUISA_MAX_DIMS], step[LUISA_MAX_DIMS];
      if (!a)
        return luaL_error(L, "transfer of an unknown array");
      field_ints(L, p, "lo", a->ndim, lo);
      field_ints(L, p, "count", a->ndim, count);
      field_ints(L, p, "step", a->ndim, step);
      lua_getfield(L, p, "version");
      int version = (int)optional_in(L, -1, "a transfer's version", 0, 1001);
      lua_pop(L, 1);
      if (!exchange_piece(x, i, k, a, (int)field_int(L, p, "chunk", 0, INT_MAX), version, lo, count, step,
                          (size_t)field_int(L, p, "offset", 0, INT_MAX)))
        return luaL_error(L, "transfer of chunk that does not exist");
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  lua_createtable(L, nrecv, 0);
  for (int i = 0; i < nrecv; i++) {
    lua_rawgeti(L, 4, i + 1);
    void *buf = exchange_message(x, 0, i, (int)field_int(L, -1, "peer", 0, lz->size - 1),
                                 (size_t)field_int(L, -1, "bytes", 0, INT_MAX), 0);
    if (!buf)
      return luaL_error(L, "out of memory for transfer buffers");
    lua_pop(L, 1);
    lua_pushlightuserdata(L, buf);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* core.exchange(reduction id, tag, sends, recvs) -> receive buffers.
 * sends = {{peer, bytes, pieces = {{array, chunk, lo, count, step, offset}}}},
 * recvs = {{peer, bytes}}: the transfers to run before the callback's kernels. */
static int core_exchange(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lu_script *s = lz->script;
  int id = (int)number_in(L, 1, "core.exchange's reduction id", 0, INT_MAX);
  int tag = (int)number_in(L, 2, "core.exchange's tag", 0, 32767);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  if (id < 0 || id >= s->c.nreductions || s->c.exchanges[id])
    return luaL_error(L, "core.exchange: bad reduction id %d", id);
  int nsend = (int)lua_objlen(L, 3), nrecv = (int)lua_objlen(L, 4);
  lu_exchange *x = s->c.exchanges[id] = exchange_new(nsend, nrecv);
  if (!x)
    return luaL_error(L, "out of memory for transfers");
  describe_exchange(L, lz, x, nsend, nrecv);
  if (exchange_commit(lz, x, tag) != LUISA_OK)
    return luaL_error(L, "%s", lz->err);
  return 1;
}

static lu_array *checked_array(lua_State *L, luisa *lz, int arg)
{
  const char *name = luaL_checkstring(L, arg);
  lu_array *a = array_find(lz, name);
  if (!a)
    luaL_error(L, "no array \"%s\"", name);
  return a;
}

/* core.field(reduction id, n, op) -> input, result: n doubles reduced
 * elementwise with op ("sum", "min", "max") onto rank 0 with the reduction. */
static int core_field(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lu_script *s = lz->script;
  int id = (int)number_in(L, 1, "core.field's reduction id", 0, INT_MAX);
  lua_Number n = (lua_Number)number_in(L, 2, "core.field's size", 1, 1 << 30);
  const char *op = luaL_checkstring(L, 3);
  if (id < 0 || id >= s->c.nreductions || n < 1 || n > 1 << 30)
    return luaL_error(L, "core.field: bad reduction %d or size %f", id, n);
  double *out, *in = transport_field_new(s->c.reductions[id], (int)n, op, &out);
  if (!in)
    return luaL_error(L, "out of memory for a field of %d values", (int)n);
  lua_pushlightuserdata(L, in);
  lua_pushlightuserdata(L, out);
  return 2;
}

/* core.fetch(name, version, owner, chunk, lo, count, out): the box of that
 * chunk into the FFI double array out; false if the owner has no such data.
 * Only while callbacks run on the root, when the owners serve. */
static int core_fetch(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lu_array *a = checked_array(L, lz, 1);
  int version = (int)number_in(L, 2, "luisa.fetch's version", 0, 1001);
  int owner = (int)number_in(L, 3, "luisa.fetch's owner", 0, lz->size - 1);
  int chunk = (int)number_in(L, 4, "luisa.fetch's chunk", 0, INT_MAX);
  int64_t lo[LUISA_MAX_DIMS] = { 0 }, count[LUISA_MAX_DIMS] = { 1, 1, 1, 1 };
  field_ints_at(L, 5, a->ndim, lo);
  field_ints_at(L, 6, a->ndim, count);
  double *out = (double *)lua_topointer(L, 7);
  if (!lz->script->delivering || lz->rank != 0)
    return luaL_error(L, "luisa.fetch can only be called inside a callback");
  if (owner < 0 || owner >= lz->size || !out)
    return luaL_error(L, "core.fetch: bad owner %d or buffer", owner);
  lua_pushboolean(L, fetch_box(lz, a, version, owner, chunk, lo, count, out));
  return 1;
}

static int push_param_value(lua_State *L, const lu_param *p)
{
  double number = 0;
  int boolean = 0;
  const char *text = NULL;
  switch (steer_value(p, &number, &boolean, &text)) {
  case 0: lua_pushnumber(L, number); break;
  case 1: lua_pushboolean(L, boolean); break;
  default: lua_pushstring(L, text); break;
  }
  return 1;
}

static lu_param *checked_param(lua_State *L, luisa *lz, int arg)
{
  const char *name = luaL_checkstring(L, arg);
  if (!lz->stepped)
    luaL_error(L, "parameters are registered after the script loads: read and set them in callbacks");
  lu_param *p = steer_find(lz, name);
  if (!p) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; i < lz->nparams; i++) {
      if (i)
        luaL_addstring(&b, ", ");
      luaL_addstring(&b, steer_name(lz, i));
    }
    luaL_pushresult(&b);
    luaL_error(L, "no steerable parameter named \"%s\" (registered: %s)", name,
               lz->nparams ? lua_tostring(L, -1) : "none");
  }
  return p;
}

/* core.param(name) -> the current value of a steerable parameter */
static int core_param(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  return push_param_value(L, checked_param(L, lz, 1));
}

/* core.bounds(name) -> {min, max} or {allowed...}, and the type */
static int core_bounds(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lu_param *p = checked_param(L, lz, 1);
  double min, max;
  int n;
  char *const *allowed;
  steer_bounds(p, &min, &max, &n, &allowed);
  lua_createtable(L, n ? n : 2, 0);
  for (int k = 0; k < n; k++) {
    lua_pushstring(L, allowed[k]);
    lua_rawseti(L, -2, k + 1);
  }
  if (!n && strcmp(steer_type(p), "bool") != 0) {
    lua_pushnumber(L, min);
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, max);
    lua_rawseti(L, -2, 2);
  }
  lua_pushstring(L, steer_type(p));
  return 2;
}

/* core.set(name, value) -> nil, or why the value is refused */
static int core_set(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lu_param *p = checked_param(L, lz, 1);
  if (!lz->script->delivering)
    return luaL_error(L, "luisa.set can only be called inside a callback");
  char why[LU_ERR_MAX];
  int type = lua_type(L, 2);
  const char *refused = steer_request(lz, p, type == LUA_TNUMBER, lua_tonumber(L, 2), type == LUA_TBOOLEAN,
                                      lua_toboolean(L, 2), type == LUA_TSTRING ? lua_tostring(L, 2) : NULL,
                                      why, sizeof why);
  if (!refused)
    return 0;
  lua_pushstring(L, refused);
  return 1;
}

/* core.period(callback index, n): from the next step on, every n steps */
static int core_period(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  int i = (int)number_in(L, 1, "luisa.period's callback", 0, INT_MAX);
  int every = (int)number_in(L, 2, "luisa.period's period", 1, INT_MAX);
  if (!lz->script->delivering)
    return luaL_error(L, "luisa.period can only be called inside a callback");
  if (i < 0 || i >= lz->script->c.ncallbacks || every < 1)
    return luaL_error(L, "luisa.period: no such callback, or a period below 1");
  if (steer_period(lz, i, every) != LUISA_OK)
    return luaL_error(L, "out of memory");
  return 0;
}

void script_set_period(luisa *lz, int64_t step, int callback, int every)
{
  lu_callback *cb = &lz->script->c.callbacks[callback];
  if (lz->rank == 0)
    log_write(lz, LUISA_LOG_INFO, "step %lld: callback %d runs every %d steps (was %d)", (long long)step,
              callback + 1, every, cb->every);
  cb->every = every;
}

/* core.move(region id, ranges text): from the next step on, on every rank */
static int core_move(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  int id = (int)number_in(L, 1, "luisa.move's region", 0, INT_MAX);
  const char *ranges = luaL_checkstring(L, 2);
  if (!lz->script->delivering)
    return luaL_error(L, "luisa.move can only be called inside a callback");
  if (steer_region(lz, id, ranges) != LUISA_OK)
    return luaL_error(L, "%s", lz->err);
  return 0;
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
void script_move_region(luisa *lz, int64_t step, int region, const char *ranges)
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

/* core.writable(name) -> whether scripts may assign to the array */
static int core_writable(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushboolean(L, checked_array(L, lz, 1)->writable);
  return 1;
}

/* core.stop(reason) */
static int core_stop(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  if (!lz->script->delivering)
    return luaL_error(L, "luisa.stop can only be called inside a callback");
  if (steer_stop(lz, luaL_optstring(L, 1, "")) != LUISA_OK)
    return luaL_error(L, "out of memory");
  return 0;
}

/* core.window(name, depth) -> {pointer table of version 1, ..., depth} */
static int core_window(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lu_array *a = checked_array(L, lz, 1);
  int depth = (int)number_in(L, 2, "a window's depth", 1, 1001);
  lu_script *s = lz->script;
  if (!s->depths)
    s->depths = calloc((size_t)lz->narrays, sizeof *s->depths);
  if (!s->depths || store_window(lz, a, depth) != LUISA_OK)
    return luaL_error(L, "%s", s->depths ? lz->err : "out of memory for a window");
  if (depth > s->depths[a - lz->arrays])
    s->depths[a - lz->arrays] = depth;
  lua_createtable(L, depth, 0);
  for (int v = 1; v <= depth; v++) {
    lua_pushlightuserdata(L, (void *)store_table(lz, a, v));
    lua_rawseti(L, -2, v);
  }
  return 1;
}

/* core.versions(name) -> how many earlier versions exist */
static int core_versions(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushinteger(L, store_versions(lz, checked_array(L, lz, 1)));
  return 1;
}

/* core.stats() -> this rank's store and transfer figures */
static int core_stats(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  int64_t objects, bytes;
  store_stats(lz, &objects, &bytes);
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, (lua_Number)objects);
  lua_setfield(L, -2, "objects");
  lua_pushnumber(L, (lua_Number)bytes);
  lua_setfield(L, -2, "bytes_held");
  lua_pushnumber(L, (lua_Number)lz->bytes_moved);
  lua_setfield(L, -2, "bytes_moved");
  lua_pushnumber(L, (lua_Number)lz->transfers);
  lua_setfield(L, -2, "transfers");
  int64_t heap, peak;
  host_heap(lz->script->host, &heap, &peak);
  lua_pushnumber(L, (lua_Number)heap);
  lua_setfield(L, -2, "lua_bytes");
  lua_pushnumber(L, (lua_Number)peak);
  lua_setfield(L, -2, "lua_bytes_peak");
  return 1;
}

/* core.refused() -> where the last allocation past the Lua heap's cap was made */
static int core_refused(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushstring(L, host_refused(lz->script->host));
  return 1;
}

/* core.budget(callback index): the time budget restarts for that callback */
static int core_budget(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  host_budget(lz->script->host, (int)number_in(L, 1, "core.budget's callback", -1, INT_MAX));
  return 0;
}

static void install_core(luisa *lz, lua_State *L)
{
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaded");
  lua_newtable(L);
  lua_pushinteger(L, lz->rank);
  lua_setfield(L, -2, "rank");
  lua_pushinteger(L, lz->size);
  lua_setfield(L, -2, "size");
  static const luaL_Reg with_context[] = {
    { "reduction", core_reduction }, { "exchange", core_exchange }, { "field", core_field },
    { "window", core_window },
    { "versions", core_versions }, { "stats", core_stats }, { "fetch", core_fetch }, { "param", core_param },
    { "bounds", core_bounds }, { "set", core_set }, { "stop", core_stop }, { "writable", core_writable },
    { "period", core_period }, { "move", core_move }, { "budget", core_budget },
    { "refused", core_refused },
    { NULL, NULL }
  };
  for (const luaL_Reg *f = with_context; f->name; f++) {
    lua_pushlightuserdata(L, lz);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
  lua_setfield(L, -2, "luisa.core");
  lua_pop(L, 2);
}

/* Scripts may require modules that sit beside them. */
static void prepend_script_dir(lua_State *L, const char *path)
{
  const char *slash = strrchr(path, '/');
  lua_getglobal(L, "package");
  if (slash)
    lua_pushlstring(L, path, (size_t)(slash - path));
  else
    lua_pushliteral(L, ".");
  lua_pushliteral(L, "/?.lua;");
  lua_getfield(L, -3, "path");
  lua_concat(L, 3);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
}

/* A searcher placed after package.preload's: modules beside the script.
 * Rank 0 reads them from its disk and adds them to the sources it sends;
 * the other ranks take them from those, else from their own disk. */
static int search_beside_script(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lu_bundle *b = &lz->script->bundle;
  const char *name = luaL_checkstring(L, 1);
  const lu_source *src = bundle_find(b, name);
  if (!src && b->n > 0) {
    const char *script = b->src[0].path, *slash = strrchr(script, '/');
    if (slash)
      lua_pushlstring(L, script, (size_t)(slash - script + 1));
    else
      lua_pushliteral(L, "");
    luaL_gsub(L, name, ".", "/");
    lua_pushliteral(L, ".lua");
    lua_concat(L, 3);
    const char *path = lua_tostring(L, -1);
    char *text, why[256];
    size_t len;
    if (!bundle_read_file(path, &text, &len, why, sizeof why)) {
      lua_pushfstring(L, "\n\tno file '%s'", path);
      return 1;
    }
    if (!bundle_add(b, name, path, text, len))
      return luaL_error(L, "out of memory reading %s", path);
    src = &b->src[b->n - 1];
  }
  if (!src) {
    lua_pushfstring(L, "\n\tno module '%s' among the sources rank 0 sent", name);
    return 1;
  }
  lua_pushfstring(L, "@%s", src->path);
  if (host_load(L, src->text, src->len, lua_tostring(L, -1)))
    return lua_error(L);
  return 1;
}

static void install_searcher(luisa *lz, lua_State *L)
{
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "insert");
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaders");
  lua_remove(L, -2);
  lua_pushinteger(L, 2);   /* after package.preload, where the engine's own modules are */
  lua_pushlightuserdata(L, lz);
  lua_pushcclosure(L, search_beside_script, 1);
  lua_call(L, 3, 0);
  lua_pop(L, 1);
}

typedef struct lu_load {
  luisa *lz;
  const char *state;
  char *msg;
  size_t cap;
  int syntax;                  /* the script does not parse: msg says where */
} lu_load;

static int load_in_state(lua_State *L)
{
  lu_load *ld = lua_touserdata(L, 1);
  luisa *lz = ld->lz;
  lu_script *s = lz->script;
  const lu_source *main = &s->bundle.src[0];
  install_core(lz, L);
  if (lz->opts.trusted)
    prepend_script_dir(L, main->path);
  install_searcher(lz, L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luisa.plan");
  lua_call(L, 1, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "luisa.plan");
  if (ld->state) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "luisa.state");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "unpack");
    lua_pushstring(L, ld->state);
    lua_call(L, 1, 0);
  }
  lua_pushfstring(L, "@%s", main->path);
  if (host_load(L, main->text, main->len, lua_tostring(L, -1))) {
    snprintf(ld->msg, ld->cap, "%s", lua_tostring(L, -1));
    ld->syntax = 1;
    return 0;
  }
  lua_call(L, 0, 0);
  return 0;
}

/* The directory a path's modules are searched in ("" for the working one). */
static void dir_of(const char *path, char *dir, size_t cap)
{
  const char *slash = strrchr(path, '/');
  snprintf(dir, cap, "%.*s", slash ? (int)(slash - path) : 0, path);
}

/* Load the script from the bundle into a new Lua state and run it, with
 * luisa.state unpacked first when a previous version left one. */
static int script_load(luisa *lz, const char *state, char *msg, size_t cap)
{
  lu_script *s = lz->script;
  char dir[4096];
  dir_of(s->bundle.src[0].path, dir, sizeof dir);
  lu_host_config cfg = { lz->opts.lua_bytes, lz->opts.step_budget_s, lz->opts.trusted, lz->opts.output_dir, dir };
  if (!(s->host = host_new(&cfg, msg, cap)))
    return 1;
  lu_load ld = { lz, state, msg, cap, 0 };
  return host_run(s->host, load_in_state, &ld, msg, cap) || ld.syntax;
}

static void free_plan(luisa *lz, lu_compiled *c)
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

static void script_free(luisa *lz, lu_script *s)
{
  if (!s)
    return;
  host_free(s->host);
  free_plan(lz, &s->c);
  bundle_free(&s->bundle);
  free(s->depths);
  free(s);
}

void script_close(luisa *lz)
{
  script_free(lz, lz->script);
  lz->script = NULL;
}

/* After a timeout: the Lua state goes, the buffers MPI may still write
 * into (reductions, transfers, the verdict) stay until the process ends. */
void script_abandon(luisa *lz)
{
  lu_script *s = lz->script;
  if (!s)
    return;
  host_free(s->host);
  s->host = NULL;
  bundle_free(&s->bundle);
  deadline_keep(s);
  lz->script = NULL;
}

/* A new script, or NULL on every rank when any rank is out of memory
 * (or not `ready`, out of memory before): *short_of is then the lowest
 * such rank, else -1. One all-reduce. */
static lu_script *script_new(luisa *lz, int ready, int *short_of)
{
  lu_script *s = ready ? calloc(1, sizeof *s) : NULL;
  int mine = s ? lz->size : lz->rank, first = lz->rank;
  int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, lz->comm);
  *short_of = rc != MPI_SUCCESS ? lz->rank : first < lz->size ? first : -1;
  if (*short_of >= 0) {
    free(s);
    return NULL;
  }
  return s;
}

/* Rank 0 reads the script and loads it, reading the modules it requires
 * from its disk into the bundle; the bundle goes to every rank, which loads
 * it too. Returns the first failing rank, whose message is then in msg on
 * every rank (-1: none failed, -2: MPI failed); `who` (when given) lists
 * the failing ranks. Collective. */
static int load_everywhere(luisa *lz, const char *state, char *msg, size_t cap, char *who, size_t wcap)
{
  lu_script *s = lz->script;
  int failed = 0;
  msg[0] = '\0';
  if (lz->rank == 0) {
    char *text;
    size_t len;
    if (!bundle_read_file(lz->script_path, &text, &len, msg, cap))
      failed = 1;
    else if (!bundle_add(&s->bundle, "", lz->script_path, text, len))
      failed = snprintf(msg, cap, "out of memory reading %s", lz->script_path) > 0;
    else
      failed = script_load(lz, state, msg, cap);
  }
  int sent = bundle_bcast(lz, &s->bundle);
  if (sent == LUISA_ERR_MPI)
    return -2;
  if (lz->rank != 0 && sent != LUISA_OK)
    failed = snprintf(msg, cap, "%s", lz->err) > 0;
  else if (lz->rank != 0 && s->bundle.n > 0)   /* else rank 0 could not read it and says why */
    failed = script_load(lz, state, msg, cap);
  int first = transport_agree(lz, failed, msg, cap);
  if (who && first >= 0 && transport_who(lz, failed, who, wcap) != LUISA_OK)
    return -2;
  return first;
}

/* Load the script on every rank; all keep it or all drop it. Collective. */
int script_open(luisa *lz, const char *path, char *msg, size_t cap)
{
  msg[0] = '\0';
  int short_of, ready = reload_open(lz) == LUISA_OK;
  if (!(lz->script = script_new(lz, ready, &short_of))) {   /* no rank keeps a reload the others lack */
    reload_close(lz);
    char where[32];
    snprintf(msg, cap, "out of memory%s loading %s", on_rank(where, sizeof where, lz, short_of), path);
    return LUISA_WARN_SCRIPT;
  }
  int who = load_everywhere(lz, NULL, msg, cap, NULL, 0);
  reload_watch(lz, &lz->script->bundle, who == -1 ? bundle_hash(&lz->script->bundle) : 0);
  if (who == -1)
    return LUISA_OK;
  script_close(lz);
  if (who == -2)
    return LUISA_ERR_MPI;
  if (lz->size > 1) {
    char tmp[LU_ERR_MAX];
    snprintf(tmp, sizeof tmp, "on rank %d: %s", who, msg);
    snprintf(msg, cap, "%s", tmp);
  }
  return LUISA_WARN_SCRIPT;
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

static void set_failure(lu_callback *cb, const char *msg)
{
  free(cb->failure);
  cb->failure = strdup(msg);
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
int script_due(const luisa *lz, int64_t step)
{
  const lu_script *s = lz->script;
  for (int i = 0; s && i < s->c.ncallbacks; i++)
    if (s->c.callbacks[i].enabled && s->c.callbacks[i].every > 0 && step % s->c.callbacks[i].every == 0)
      return 1;
  return 0;
}

/* Whether the analytics due at `step` read chunk `chunk` (< 0: any) of
 * array `a` on this rank. Callbacks fired by triggers count as due when
 * anything is; an array in a window is read at every step. */
int script_wants(luisa *lz, int a, int chunk, int64_t step)
{
  lu_script *s = lz->script;
  if (!s || !lz->declarations_ok)
    return !lz->stepped;   /* before the plan exists, everything may be needed */
  if (store_versions_kept(lz, &lz->arrays[a]))
    return 1;
  int any_due = 0;
  for (int i = 0; i < s->c.ncallbacks; i++)
    any_due |= s->c.callbacks[i].enabled && s->c.callbacks[i].every > 0 && step % s->c.callbacks[i].every == 0;
  for (int i = 0; i < s->c.ncallbacks; i++) {
    lu_callback *cb = &s->c.callbacks[i];
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
  s->c.control = calloc((size_t)(4 + 4 * n), sizeof *s->c.control);
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
      set_failure(cb, lua_tostring(L, -1));
    } else {
      lua_getfield(L, -2, "every");
      lua_getfield(L, -3, "reduction");
      cb->every = (int)number_in(L, -2, "a callback's period", 0, INT_MAX);
      int r = (int)number_in(L, -1, "a callback's reduction", 0, s->c.nreductions - 1);
      cb->reduction = s->c.reductions[r];
      cb->exchange = s->c.exchanges[r];
      cb->enabled = 1;
      lua_pop(L, 2);
      lua_getfield(L, -2, "assigns");
      cb->assigns = lua_toboolean(L, -1);
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
        log_write(lz, LUISA_LOG_ERROR, "%s", lz->err);
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
  if (agreed == LUISA_ERR_NOMEM) {   /* on every rank, lz->err saying where */
    snprintf(msg, cap, "%s", lz->err);
    return 2;
  }
  if (agreed >= LUISA_ERR_FIRST)
    return -1;
  for (int i = 0; i < s->c.ncallbacks; i++)
    s->c.callbacks[i].diverged = s->c.diverged[i] != NULL;
  return 0;
}

/* The digest of the plan every rank now runs, carried by each reduction. */
static void seal_plan(lu_script *s)
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
int script_compile(luisa *lz, int64_t step)
{
  char where[32];
  lu_script *s = lz->script;
  char msg[LU_ERR_MAX] = "";
  int failed = compile_counted(lz, msg, sizeof msg);
  if (failed < 0)
    return LUISA_ERR_MPI;
  if (failed == 2) {   /* known on every rank */
    script_close(lz);
    return error_set(lz, LUISA_ERR_NOMEM, "luisa_step(%lld): the analysis plan could not be compiled: %s",
                     (long long)step, msg);
  }
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
    script_close(lz);
    log_write(lz, lz->rank == 0 ? LUISA_LOG_ERROR : LUISA_LOG_DEBUG, "plan not compiled: %s", msg);
    return error_set(lz, agreed, "luisa_step(%lld): the analysis plan could not be compiled%s: %s",
                     (long long)step, on_rank(where, sizeof where, lz, who), msg);
  }
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
    on_rank(where, sizeof where, lz, first[i]);
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
  seal_plan(s);
  return status;
}

/* The compile of a reload: any failure, of the whole plan or of one
 * callback on one rank, fails it. Returns as load_everywhere. Collective. */
static int compile_strict(luisa *lz, int64_t step, char *msg, size_t cap, char *who, size_t wcap)
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
    snprintf(msg, cap, "%s", lz->err);
    who[0] = '\0';
    return 0;
  }
  return -1;
}

typedef struct lu_pack {
  char *text, *dropped;
} lu_pack;

static int pack_in_state(lua_State *L)
{
  lu_pack *p = lua_touserdata(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luisa.state");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "pack");
  lua_call(L, 0, 2);
  if (!(p->text = strdup(lua_tostring(L, -2))))
    return luaL_error(L, "out of memory");
  if (lua_objlen(L, -1) && !(p->dropped = strdup(lua_tostring(L, -1))))
    return luaL_error(L, "out of memory");
  return 0;
}

/* luisa.state of a running script, packed as text for the next version;
 * NULL (start fresh) if it cannot be. *dropped lists what is left out. */
static char *pack_state(luisa *lz, lu_script *s, char **dropped)
{
  char msg[LU_ERR_MAX];
  lu_pack p = { NULL, NULL };
  if (host_run(s->host, pack_in_state, &p, msg, sizeof msg)) {
    log_write(lz, LUISA_LOG_WARN, "luisa.state cannot be carried over, it starts fresh: %s", msg);
    free(p.text);
    free(p.dropped);
    return NULL;
  }
  *dropped = p.dropped;
  return p.text;
}

/* The store keeps the windows the running script asks for, no more. */
static void keep_windows(luisa *lz)
{
  for (int a = 0; a < lz->narrays; a++)
    store_trim(lz, &lz->arrays[a], lz->script && lz->script->depths ? lz->script->depths[a] : 0);
}

/* Load and compile the script's current sources beside the running one;
 * all ranks switch to it when it worked everywhere, or all keep the old
 * one. Collective. */
int script_reload(luisa *lz, int64_t step)
{
  int short_of;
  lu_script *old = lz->script, *fresh = script_new(lz, 1, &short_of);
  char *dropped = NULL, *state = old && fresh ? pack_state(lz, old, &dropped) : NULL;
  char msg[LU_ERR_MAX] = "out of memory", who[256] = "", why[LU_ERR_MAX + 512];
  int first = 0;
  uint64_t version = 0;
  if (fresh) {
    lz->script = fresh;
    first = load_everywhere(lz, state, msg, sizeof msg, who, sizeof who);
    if (first == -1)
      first = compile_strict(lz, step, msg, sizeof msg, who, sizeof who);
    if (first == -1 && !fresh->c.ncallbacks && !fresh->c.off) {   /* counts and luisa.off agree on every rank */
      first = 0;
      snprintf(msg, sizeof msg, "it registers no analysis (no luisa.every, luisa.assign or luisa.trigger ran): "
               "an empty version is refused, as one saved by mistake would end the analysis silently; call "
               "luisa.off() in it to turn analytics off on purpose");
    }
    version = bundle_hash(&fresh->bundle);
    reload_watch(lz, &fresh->bundle, first == -1 ? version : reload_version(lz));
  }
  free(state);
  if (first == -1) {
    seal_plan(fresh);
    script_free(lz, old);
    reload_record(lz, step, version, NULL);
    if (dropped && lz->rank == 0)
      log_write(lz, LUISA_LOG_WARN, "step %lld: left out of luisa.state (they start fresh): %s", (long long)step,
                dropped);
    free(dropped);
    keep_windows(lz);
    return LUISA_OK;
  }
  free(dropped);
  script_free(lz, fresh);
  lz->script = old;
  keep_windows(lz);
  if (first == -2)
    return LUISA_ERR_MPI;
  snprintf(why, sizeof why, "%s%s%s", who[0] ? who + 1 : "", who[0] ? ": " : "", msg);
  reload_record(lz, step, version, why);
  return error_set(lz, LUISA_WARN_SCRIPT, "luisa_step(%lld): the script %s was not reloaded, %s: %s",
                   (long long)step, lz->script_path, old ? "the previous version goes on" : "analytics stay off",
                   why);
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
static int script_recompile(luisa *lz, int64_t step)
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
    first = compile_strict(lz, step, msg, sizeof msg, who, sizeof who);
  else
    first = agreed;
  if (first == -1) {
    for (int i = 0; i < s->c.ncallbacks; i++) {
      s->c.callbacks[i].enabled &= old.callbacks[i].enabled;
      s->c.callbacks[i].every = old.callbacks[i].every;
    }
    seal_plan(s);
    free_plan(lz, &old);
    host_run(s->host, keep_plan, "drop", msg, sizeof msg);
    return LUISA_OK;
  }
  free_plan(lz, &s->c);
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
        set_failure(&s->c.callbacks[ph->ids[k]], lua_tostring(L, -1));
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
      set_failure(&s->c.callbacks[ids[k]], msg);
  int stopped[32], nstopped = host_take_stopped(s->host, stopped, 32);
  for (int k = 0; k < nstopped; k++)
    for (int j = 0; j < n; j++)
      if (stopped[k] == ids[j] || stopped[k] == -2) {
        lu_callback *cb = &s->c.callbacks[ids[j]];
        cb->stopped = 1;
        if (!cb->failure)
          set_failure(cb, "stopped: it ran past its time budget (opts.step_budget_s, LUISA_STEP_BUDGET)");
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
    int id = (int)number_in(L, -1, "a fired callback", 1, s->c.ncallbacks) - 1;
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
    log_write(lz, LUISA_LOG_ERROR, "%s", lz->err);
  return LUISA_ERR_STEP;
}

/* One round of analytics over the callbacks ids[0..n): planned transfers,
 * local kernels, reductions to the root, callbacks on the root, then the
 * root's verdict to all, so every rank returns the same status and disables
 * the same callbacks. Callbacks fired by triggers land in fired[0..*nfired).
 * Collective. */
static int run_round(luisa *lz, int64_t step, int *ids, int n, int *fired, int *nfired, int *nfail, int *stop)
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
        set_failure(cb, msg);
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
  if (c[2] > 0) {   /* the callbacks' parameter changes and stop, on every rank now */
    int steered = steer_apply(lz, step, c[2]);
    if (steered == LUISA_STOP)
      *stop = 1;
    else
      FORWARD_IF_ERROR(steered);
  }

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

/* One step of analytics: the callbacks due by their period, then those
 * their triggers fired, in a second round of the same step. Collective. */
int script_step(luisa *lz, int64_t step)
{
  lu_script *s = lz->script;
  int *ids = s->c.round_ids, *fired = ids + s->c.ncallbacks;
  int ndue = 0, nfired = 0, nfail = 0, failures = 0, stop = 0, status = LUISA_OK;
  for (int i = 0; i < s->c.ncallbacks; i++)
    if (s->c.callbacks[i].enabled && s->c.callbacks[i].every > 0 && step % s->c.callbacks[i].every == 0)
      ids[ndue++] = i;
  if (ndue > 0) {
    lz->analysed_steps++;
    status = run_round(lz, step, ids, ndue, fired, &nfired, &nfail, &stop);
    failures += nfail;
    if (status == LUISA_OK && nfired > 0) {   /* what they fire cannot fire again this step */
      memcpy(ids, fired, (size_t)nfired * sizeof *ids);
      status = run_round(lz, step, ids, nfired, fired, &nfired, &nfail, &stop);
      failures += nfail;
    }
  }
  if (status != LUISA_OK)
    return status;
  if (s->recompile) {
    s->recompile = 0;
    status = script_recompile(lz, step);
    FORWARD_IF_ERROR(status);
    failures += status != LUISA_OK;
  }
  if (failures)
    lz->script_failures++;
  return stop ? LUISA_STOP : failures ? LUISA_WARN_SCRIPT : LUISA_OK;
}

void script_summary(luisa *lz)
{
  if (lz->rank != 0)
    return;
  int enabled = 0;
  lu_script *s = lz->script;
  for (int i = 0; s && i < s->c.ncallbacks; i++)
    enabled += s->c.callbacks[i].enabled;
  int64_t objects, bytes;
  store_stats(lz, &objects, &bytes);
  log_write(lz, LUISA_LOG_INFO, "summary: %lld steps, %lld with analytics, %lld with script failures; "
            "%d of %d callbacks enabled; store: %lld objects, %lld bytes held; rank 0 sent %lld bytes "
            "in %lld planned transfers", (long long)lz->steps, (long long)lz->analysed_steps,
            (long long)lz->script_failures, enabled, s ? s->c.ncallbacks : 0, (long long)objects,
            (long long)bytes, (long long)lz->bytes_moved, (long long)lz->transfers);
  reload_summary(lz);
  if (lz->nchanges || lz->stop_reason[0])
    log_write(lz, LUISA_LOG_INFO, "summary: %lld parameter changes (%s)%s%s", (long long)lz->nchanges,
              steer_history(lz), lz->stop_reason[0] ? "; stopped: " : "", lz->stop_reason);
}
