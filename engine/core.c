/* core.c: the luisa.core module, what the engine's Lua side calls: buffers
 * for the plan, fetches, parameters, steering requests, windows, figures.
 * Its functions run inside host_run, with the context as upvalue. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "script.h"
#include "array.h"
#include "error.h"
#include "exchange.h"
#include "fetch.h"
#include "host.h"
#include "steer.h"
#include "store.h"
#include "transport.h"
#include "core.h"

static int64_t optional_in(lua_State *L, int idx, const char *what, int64_t lo, int64_t hi)
{
  return lua_isnoneornil(L, idx) ? 0 : host_whole(L, idx, what, lo, hi);
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
  int64_t v = host_whole(L, -1, k, lo, hi);
  lua_pop(L, 1);
  return v;
}

/* v[0..n) from the list at stack index t. */
static void field_ints_at(lua_State *L, int t, int n, int64_t *v)
{
  luaL_checktype(L, t, LUA_TTABLE);
  for (int d = 0; d < n; d++) {
    lua_rawgeti(L, t, d + 1);
    v[d] = host_whole(L, -1, "an index or extent", -((int64_t)1 << 62), (int64_t)1 << 62);
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
  int id = (int)host_whole(L, 1, "core.exchange's reduction id", 0, INT_MAX);
  int tag = (int)host_whole(L, 2, "core.exchange's tag", 0, 32767);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  if (id < 0 || id >= s->c.nreductions || s->c.exchanges[id])
    return luaL_error(L, "core.exchange: bad reduction id %d", id);
  int nsend = (int)lua_objlen(L, 3), nrecv = (int)lua_objlen(L, 4);
  lu_exchange *x = s->c.exchanges[id] = exchange_new(&lz->memory, nsend, nrecv);
  if (!x)
    return luaL_error(L, "out of memory for transfers");
  describe_exchange(L, lz, x, nsend, nrecv);
  if (exchange_commit(lz, x, tag) != LUISA_OK)
    return luaL_error(L, "%s", error_buffer(lz));
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
  int id = (int)host_whole(L, 1, "core.field's reduction id", 0, INT_MAX);
  lua_Number n = (lua_Number)host_whole(L, 2, "core.field's size", 1, 1 << 30);
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

/* A callback that steers or fetches though the script's sources never
 * name it (round.c: names_steering): the other ranks did not wait. */
static int went_on(lua_State *L, const char *name)
{
  return luaL_error(L, "luisa.%s: the other ranks went on without waiting for this callback, as the script's "
                    "sources never name set, stop, period, move or fetch: call it by its name (luisa.%s)", name, name);
}

/* core.fetch(name, version, owner, chunk, lo, count, out): the box of that
 * chunk into the FFI double array out; false if the owner has no such data.
 * Only while callbacks run on the root, when the owners serve. */
static int core_fetch(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lu_array *a = checked_array(L, lz, 1);
  int version = (int)host_whole(L, 2, "luisa.fetch's version", 0, 1001);
  int owner = (int)host_whole(L, 3, "luisa.fetch's owner", 0, lz->size - 1);
  int chunk = (int)host_whole(L, 4, "luisa.fetch's chunk", 0, INT_MAX);
  int64_t lo[LUISA_MAX_DIMS] = { 0 }, count[LUISA_MAX_DIMS] = { 1, 1, 1, 1 };
  field_ints_at(L, 5, a->ndim, lo);
  field_ints_at(L, 6, a->ndim, count);
  double *out = (double *)lua_topointer(L, 7);
  if (!lz->script->delivering || lz->rank != 0)
    return luaL_error(L, "luisa.fetch can only be called inside a callback");
  if (owner < 0 || owner >= lz->size || !out)
    return luaL_error(L, "core.fetch: bad owner %d or buffer", owner);
  if (owner != lz->rank && lz->script->delivering == 2)
    return went_on(L, "fetch");
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
  if (!lz->began)
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
  if (lz->script->delivering == 2)
    return went_on(L, "set");
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
  int i = (int)host_whole(L, 1, "luisa.period's callback", 0, INT_MAX);
  int every = (int)host_whole(L, 2, "luisa.period's period", 1, INT_MAX);
  if (!lz->script->delivering)
    return luaL_error(L, "luisa.period can only be called inside a callback");
  if (lz->script->delivering == 2)
    return went_on(L, "period");
  if (i < 0 || i >= lz->script->c.ncallbacks || every < 1)
    return luaL_error(L, "luisa.period: no such callback, or a period below 1");
  if (steer_period(lz, i, every) != LUISA_OK)
    return luaL_error(L, "out of memory");
  return 0;
}

/* core.move(region id, ranges text): from the next step on, on every rank */
static int core_move(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  int id = (int)host_whole(L, 1, "luisa.move's region", 0, INT_MAX);
  const char *ranges = luaL_checkstring(L, 2);
  if (!lz->script->delivering)
    return luaL_error(L, "luisa.move can only be called inside a callback");
  if (lz->script->delivering == 2)
    return went_on(L, "move");
  if (steer_region(lz, id, ranges) != LUISA_OK)
    return luaL_error(L, "%s", error_buffer(lz));
  return 0;
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
  if (lz->script->delivering == 2)
    return went_on(L, "stop");
  if (steer_stop(lz, luaL_optstring(L, 1, "")) != LUISA_OK)
    return luaL_error(L, "out of memory");
  return 0;
}

/* core.window(name, depth) -> {pointer table of version 1, ..., depth} */
static int core_window(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  lu_array *a = checked_array(L, lz, 1);
  int depth = (int)host_whole(L, 2, "a window's depth", 1, 1001);
  lu_script *s = lz->script;
  if (!s->depths)
    s->depths = calloc((size_t)lz->narrays, sizeof *s->depths);
  if (!s->depths || store_window(lz, a, depth) != LUISA_OK)
    return luaL_error(L, "%s", s->depths ? error_buffer(lz) : "out of memory for a window");
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

/* core.origin(name, chunk) -> the simulation rank and its chunk number
 * that local chunk came from (ranks mode, on an analytics rank), or nil. */
static int core_origin(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  const lu_array *a = checked_array(L, lz, 1);
  lua_Integer c = luaL_checkinteger(L, 2);
  if (!a->origin || c < 0 || c >= a->nchunks)
    return 0;
  lua_pushinteger(L, a->origin[2 * c]);
  lua_pushinteger(L, a->origin[2 * c + 1]);
  return 2;
}

/* core.spilling() -> whether window versions may be on disk */
static int core_spilling(lua_State *L)
{
  lua_pushboolean(L, store_spilling(lua_touserdata(L, lua_upvalueindex(1))));
  return 1;
}

/* core.restore({name, version, ...}) -> nothing: those versions are in
 * memory for the kernel about to read them. */
static int core_restore(lua_State *L)
{
  luisa *lz = lua_touserdata(L, lua_upvalueindex(1));
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)lua_objlen(L, 1) / 2;
  int *pairs = lua_newuserdata(L, 2 * (size_t)(n ? n : 1) * sizeof *pairs);
  for (int k = 0; k < n; k++) {
    lua_rawgeti(L, 1, 2 * k + 1);
    pairs[k] = (int)(checked_array(L, lz, -1) - lz->arrays);
    lua_rawgeti(L, 1, 2 * k + 2);
    pairs[n + k] = (int)host_whole(L, -1, "core.restore's version", 1, 1001);
    lua_pop(L, 2);
  }
  store_restore(lz, pairs, pairs + n, n);
  return 0;
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
  const lu_memory *m = &lz->memory;
  lua_pushnumber(L, (lua_Number)memory_held(m));   /* every data buffer the engine holds on this rank */
  lua_setfield(L, -2, "memory_held");
  lua_pushnumber(L, (lua_Number)atomic_load(&m->peak));
  lua_setfield(L, -2, "memory_peak");
  lua_pushnumber(L, (lua_Number)m->limit);
  lua_setfield(L, -2, "memory_limit");
  lua_pushnumber(L, (lua_Number)atomic_load(&m->waits));
  lua_setfield(L, -2, "memory_waits");
  lua_pushnumber(L, (lua_Number)atomic_load(&m->spilled));
  lua_setfield(L, -2, "spilled_bytes");
  lua_pushnumber(L, (lua_Number)atomic_load(&m->spill_files));
  lua_setfield(L, -2, "spill_files");
  lua_pushnumber(L, (lua_Number)lz->transit_raw);   /* ranks mode: chunks this analytics rank received */
  lua_setfield(L, -2, "transit_raw");
  lua_pushnumber(L, (lua_Number)lz->transit_wire);
  lua_setfield(L, -2, "transit_wire");
  lua_pushnumber(L, lz->transit_s);
  lua_setfield(L, -2, "transit_seconds");
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
  host_budget(lz->script->host, (int)host_whole(L, 1, "core.budget's callback", -1, INT_MAX));
  return 0;
}

void core_install(luisa *lz, lua_State *L)
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
    { "versions", core_versions }, { "stats", core_stats }, { "origin", core_origin }, { "spilling", core_spilling }, { "restore", core_restore }, { "fetch", core_fetch }, { "param", core_param },
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
