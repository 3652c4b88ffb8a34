/* version.c: script versions: loading one on every rank (rank 0 reads the
 * sources and sends them), reloading beside the running one and switching
 * all ranks together, carrying luisa.state over, freeing. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "script.h"
#include "bundle.h"
#include "core.h"
#include "deadline.h"
#include "error.h"
#include "host.h"
#include "log.h"
#include "plan.h"
#include "reload.h"
#include "steer.h"
#include "store.h"
#include "transport.h"
#include "version.h"

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
  core_install(lz, L);
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

static void version_free(luisa *lz, lu_script *s)
{
  if (!s)
    return;
  host_free(s->host);
  plan_free(lz, &s->c);
  bundle_free(&s->bundle);
  free(s->depths);
  free(s);
}

void version_close(luisa *lz)
{
  version_free(lz, lz->script);
  lz->script = NULL;
}

/* After a timeout: the Lua state goes, the buffers MPI may still write
 * into (reductions, transfers, the verdict) stay until the process ends. */
void version_abandon(luisa *lz)
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
    failed = snprintf(msg, cap, "%s", error_buffer(lz)) > 0;
  else if (lz->rank != 0 && s->bundle.n > 0)   /* else rank 0 could not read it and says why */
    failed = script_load(lz, state, msg, cap);
  int first = transport_agree(lz, failed, msg, cap);
  if (who && first >= 0 && transport_who(lz, failed, who, wcap) != LUISA_OK)
    return -2;
  return first;
}

/* Load the script on every rank; all keep it or all drop it. Collective. */
int version_open(luisa *lz, const char *path, char *msg, size_t cap)
{
  msg[0] = '\0';
  int short_of, ready = reload_open(lz) == LUISA_OK;
  if (!(lz->script = script_new(lz, ready, &short_of))) {   /* no rank keeps a reload the others lack */
    reload_close(lz);
    char where[32];
    snprintf(msg, cap, "out of memory%s loading %s", error_on_rank(where, sizeof where, lz, short_of), path);
    return LUISA_WARN_SCRIPT;
  }
  int who = load_everywhere(lz, NULL, msg, cap, NULL, 0);
  reload_watch(lz, &lz->script->bundle, who == -1 ? bundle_hash(&lz->script->bundle) : 0);
  if (who == -1)
    return LUISA_OK;
  version_close(lz);
  if (who == -2)
    return LUISA_ERR_MPI;
  if (lz->size > 1) {
    char tmp[LU_ERR_MAX];
    snprintf(tmp, sizeof tmp, "on rank %d: %s", who, msg);
    snprintf(msg, cap, "%s", tmp);
  }
  return LUISA_WARN_SCRIPT;
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
int version_reload(luisa *lz, int64_t step)
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
      first = plan_compile_strict(lz, step, msg, sizeof msg, who, sizeof who);
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
    plan_seal(fresh);
    version_free(lz, old);
    reload_record(lz, step, version, NULL);
    if (dropped && lz->rank == 0)
      log_write(lz, LUISA_LOG_WARN, "step %lld: left out of luisa.state (they start fresh): %s", (long long)step,
                dropped);
    free(dropped);
    keep_windows(lz);
    return LUISA_OK;
  }
  free(dropped);
  version_free(lz, fresh);
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

void version_summary(luisa *lz)
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
