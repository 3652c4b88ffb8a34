/* host.c: the Lua host. One LuaJIT state with a counted, capped heap;
 * every engine entry into it is protected (host_run), so the panic
 * handler is unreachable; scripts load from source text only, in the
 * sandbox's environment; a watchdog stops script code that runs past its
 * budget, and a heap near its cap stops script code the same way, so both
 * fail with file:line instead of hanging or aborting the job. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>
#include "context.h"
#include "host.h"
#include "watchdog.h"

enum { STOP_BUDGET = 1, STOP_MEMORY = 2 };
enum { HOOK_EVERY = 1000, STOPPED_MAX = 32, BIRTH_BYTES = 64 << 10 };

struct lu_host {
  lua_State *L;
  int64_t used, peak, cap, soft;  /* heap bytes; past soft, script code is stopped */
  atomic_int stop;                /* STOP_* bits: why the hook stops script code */
  double budget_s;
  lu_watchdog *watchdog;          /* NULL without a budget */
  int tag, tag_told;              /* whose budget runs, and whether it was stopped */
  int stopped[STOPPED_MAX], nstopped;
  int sandbox_load;               /* registry reference to luisa.sandbox's load */
  char refused[LU_ERR_MAX / 4];   /* where the last allocation past the cap was made */
  int noting;
  char *birth;                    /* what lua_newstate allocates comes from here */
  size_t birth_used;
  int born;
};

static void set_hook(lu_host *h);
static int is_engine(const char *source);

/* The script's line that asked for more than the cap allows. LuaJIT raises
 * a bare "not enough memory" there; this says where. Reading the stack
 * allocates nothing. */
static void note_refusal(lu_host *h, size_t bytes)
{
  lua_Debug ar;
  h->noting = 1;
  snprintf(h->refused, sizeof h->refused, "the Lua heap reached its cap of %d MiB (opts.lua_bytes, "
           "LUISA_LUA_BYTES): %.0f MiB more were refused", (int)(h->cap >> 20), (double)bytes / 1048576.0);
  for (int level = 0; level < 32 && lua_getstack(h->L, level, &ar); level++)
    if (lua_getinfo(h->L, "Sl", &ar) && !is_engine(ar.source) && ar.currentline > 0) {
      char why[sizeof h->refused];
      int n = snprintf(why, sizeof why, "%s:%d: ", ar.short_src, ar.currentline);
      if (n > 0 && (size_t)n < sizeof why) {
        snprintf(why + n, sizeof why - (size_t)n, "%.*s", (int)(sizeof why - (size_t)n - 1), h->refused);
        memcpy(h->refused, why, sizeof why);
      }
      break;
    }
  h->noting = 0;
}

/* Lua's allocator, counting every byte against the cap. Growth past the
 * cap fails (a memory error); past the soft limit the hook is set so the
 * script stops at its next line with a message that says where. */
static int from_birth(const lu_host *h, const void *p)
{
  return h->birth && (const char *)p >= h->birth && (const char *)p < h->birth + BIRTH_BYTES;
}

/* LuaJIT's lua_newstate crashes if an allocation fails while it builds the
 * state (2.1.0-beta3): what it asks for (about 12 KiB) comes from a block
 * reserved beforehand, so the state is made whole or not at all. */
static void *from_birth_block(lu_host *h, void *ptr, size_t osize, size_t nsize)
{
  size_t at = (h->birth_used + 15) & ~(size_t)15;
  if (at + nsize > BIRTH_BYTES)
    return NULL;
  void *p = h->birth + at;
  if (ptr)
    memcpy(p, ptr, osize < nsize ? osize : nsize);
  h->birth_used = at + nsize;
  h->used += (int64_t)nsize - (int64_t)osize;
  return p;
}

static void *allocate(void *ud, void *ptr, size_t osize, size_t nsize)
{
  lu_host *h = ud;
  if (nsize == 0) {
    if (!from_birth(h, ptr))
      free(ptr);
    h->used -= (int64_t)osize;
    return NULL;
  }
  if (!h->born)
    return from_birth_block(h, ptr, osize, nsize);
  if (from_birth(h, ptr)) {   /* out of the birth block for good */
    if (nsize <= osize)
      return ptr;
    void *p = malloc(nsize);
    if (!p)
      return NULL;
    memcpy(p, ptr, osize);
    h->used += (int64_t)nsize - (int64_t)osize;
    return p;
  }
  if (nsize > osize && (int64_t)(nsize - osize) > h->cap - h->used) {
    if (h->L && !h->noting) {
      note_refusal(h, nsize - osize);
      atomic_fetch_or(&h->stop, STOP_MEMORY);
      set_hook(h);
    }
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (!p)
    return nsize <= osize ? ptr : NULL;   /* a shrink must not fail */
  h->used += (int64_t)nsize - (int64_t)osize;
  if (h->used > h->peak)
    h->peak = h->used;
  if (h->used > h->soft && h->L && !(atomic_load(&h->stop) & STOP_MEMORY)) {
    atomic_fetch_or(&h->stop, STOP_MEMORY);
    set_hook(h);
  }
  return p;
}

/* Engine code (chunks named "=luisa...") is left to finish: the hook
 * stops the script's own code only. */
static int is_engine(const char *source)
{
  return strncmp(source, "=luisa", 6) == 0 || strcmp(source, "=[C]") == 0;
}

static void stop_hook(lua_State *L, lua_Debug *ar)
{
  void *ud;
  lua_getallocf(L, &ud);
  lu_host *h = ud;
  int why = atomic_load(&h->stop);
  if (!why || !lua_getstack(L, 0, ar) || !lua_getinfo(L, "Sl", ar) || is_engine(ar->source))
    return;
  if (why & STOP_MEMORY) {
    lua_pushfstring(L, "%s:%d: the Lua heap holds %d MiB, near its cap of %d MiB (opts.lua_bytes, "
                    "LUISA_LUA_BYTES): the script was stopped", ar->short_src, ar->currentline,
                    (int)(h->used >> 20), (int)(h->cap >> 20));
    lua_error(L);
  }
  if (!h->tag_told && h->nstopped < STOPPED_MAX)
    h->stopped[h->nstopped++] = h->tag;
  else if (!h->tag_told)
    h->stopped[STOPPED_MAX - 1] = -2;
  h->tag_told = 1;
  lua_pushfstring(L, "%s:%d: stopped: the script ran past its time budget of %f s (opts.step_budget_s, "
                  "LUISA_STEP_BUDGET)", ar->short_src, ar->currentline, h->budget_s);
  lua_error(L);
}

/* lua_sethook may be called from another thread or a signal handler:
 * LuaJIT documents it so. */
static void set_hook(lu_host *h)
{
  if (atomic_load(&h->stop))
    lua_sethook(h->L, stop_hook, LUA_MASKCOUNT, HOOK_EVERY);
  else
    lua_sethook(h->L, NULL, 0, 0);
}

/* On the watchdog's thread. */
static void budget_ran_out(void *ud)
{
  lu_host *h = ud;
  atomic_fetch_or(&h->stop, STOP_BUDGET);
  set_hook(h);
}

static void budget_start(lu_host *h, int tag)
{
  if (!h->watchdog)
    return;
  watchdog_disarm(h->watchdog);
  if (atomic_fetch_and(&h->stop, ~STOP_BUDGET) & STOP_BUDGET)
    set_hook(h);
  h->tag = tag;
  h->tag_told = 0;
  watchdog_arm(h->watchdog);
}

static void budget_end(lu_host *h)
{
  if (!h->watchdog)
    return;
  watchdog_disarm(h->watchdog);
  if (atomic_fetch_and(&h->stop, ~STOP_BUDGET) & STOP_BUDGET)
    set_hook(h);
}

static int collect(lua_State *L)
{
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}

/* After the heap stopped a script: collect what the failed work held, and
 * let scripts run again if that brought the heap back under the limit. */
static void give_back(lu_host *h)
{
  if (!(atomic_load(&h->stop) & STOP_MEMORY))
    return;
  lua_cpcall(h->L, collect, NULL);
  if (h->used <= h->soft && (atomic_fetch_and(&h->stop, ~STOP_MEMORY) & STOP_MEMORY))
    set_hook(h);
}

/* Between callbacks: the next one gets a whole budget, and the heap a
 * failed one left behind is collected so it does not stop the next. */
void host_budget(lu_host *h, int tag)
{
  give_back(h);
  budget_start(h, tag);
}

int host_take_stopped(lu_host *h, int *tags, int max)
{
  int n = h->nstopped < max ? h->nstopped : max;
  memcpy(tags, h->stopped, (size_t)n * sizeof *tags);
  h->nstopped = 0;
  return n;
}

const char *host_refused(const lu_host *h)
{
  return h->refused;
}

void host_heap(const lu_host *h, int64_t *now, int64_t *peak)
{
  *now = h->used;
  *peak = h->peak;
}

lua_State *host_state(const lu_host *h)
{
  return h->L;
}

static int panic(lua_State *L)
{
  /* Unreachable: the engine enters Lua only through host_run. */
  fprintf(stderr, "luisa: unprotected Lua error (engine bug): %s\n", lua_tostring(L, -1));
  abort();
}

/* The message of an error object, for any object a script may raise. */
static const char *error_text(lua_State *L, int at)
{
  if (lua_type(L, at) == LUA_TSTRING || lua_type(L, at) == LUA_TNUMBER)
    return lua_tostring(L, at);
  if (luaL_callmeta(L, at, "__tostring") && lua_isstring(L, -1))
    return lua_tostring(L, -1);
  return lua_pushfstring(L, "(the script raised a %s value, not an error message: raise a string, "
                         "as error(\"what went wrong\"))", luaL_typename(L, at));
}

/* The message handler: the message and a traceback without the engine's
 * unnamed C frames ("[C]: at 0x..."), which say nothing to a script's author.
 * A __tostring that fails here gives "error in error handling". */
static int traceback(lua_State *L)
{
  const char *msg = error_text(L, 1);
  luaL_traceback(L, L, msg, 1);
  const char *t = lua_tostring(L, -1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (*t) {
    const char *nl = strchr(t, '\n');
    size_t n = nl ? (size_t)(nl - t + 1) : strlen(t);
    if (strncmp(t, "\t[C]: at 0x", 11) != 0)
      luaL_addlstring(&b, t, n);
    t += n;
  }
  luaL_pushresult(&b);
  return 1;
}

typedef struct lu_run {
  lua_CFunction fn;
  void *ud;
  int rc;
  char *msg;
  size_t cap;
} lu_run;

/* Runs under lua_cpcall, so even its own allocations are protected. */
static int trampoline(lua_State *L)
{
  lu_run *r = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_pushcfunction(L, traceback);
  lua_pushcfunction(L, r->fn);
  lua_pushlightuserdata(L, r->ud);
  r->rc = lua_pcall(L, 1, 0, 1);
  if (r->rc != 0)
    snprintf(r->msg, r->cap, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "unknown Lua error");
  return 0;
}

int host_run(lu_host *h, lua_CFunction fn, void *ud, char *msg, size_t cap)
{
  lua_State *L = h->L;
  int top = lua_gettop(L);
  lu_run r = { fn, ud, 0, msg, cap };
  h->refused[0] = '\0';
  budget_start(h, -1);
  int rc = lua_cpcall(L, trampoline, &r);
  budget_end(h);
  if (rc != 0)
    snprintf(msg, cap, "%s", rc == LUA_ERRMEM ? "Lua ran out of memory" : "luisa: Lua error in the engine");
  else
    rc = r.rc;
  if (rc == LUA_ERRMEM)
    snprintf(msg, cap, "%s", h->refused[0] ? h->refused : "Lua ran out of memory");
  lua_settop(L, top);
  give_back(h);
  return rc != 0;
}

int host_load(lua_State *L, const char *text, size_t len, const char *chunkname)
{
  void *ud;
  lua_getallocf(L, &ud);
  lu_host *h = ud;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->sandbox_load);
  if (*text == '#')   /* a first line starting with # is skipped, as luaL_loadfile does, lines kept */
    while (len && *text != '\n')
      text++, len--;
  lua_pushlstring(L, text, len);
  lua_pushstring(L, chunkname);
  return lua_pcall(L, 2, 1, 0) != 0;
}

/* package.preload: the engine's own modules, compiled into the library as
 * source text, named "=luisa/..." so the budget lets them finish. */
static int load_embedded(lua_State *L)
{
  const lu_lua_module *m = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbuffer(L, (const char *)m->code, m->size, m->chunkname) != 0)
    return lua_error(L);
  lua_pushstring(L, m->name);
  lua_call(L, 1, 1);
  return 1;
}

/* For the sandbox: mkdir -p of the output directory, on first write. */
static int make_dirs(lua_State *L)
{
  char path[4096];
  snprintf(path, sizeof path, "%s", luaL_checkstring(L, 1));
  for (char *p = path + 1; ; p++) {
    char c = *p;
    if (c == '/' || c == '\0') {
      *p = '\0';
      if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return luaL_error(L, "cannot make the output directory %s: %s", path, strerror(errno));
      *p = c;
    }
    if (!c)
      break;
  }
  return 0;
}

/* For the sandbox: whether the budget or the heap is stopping scripts. */
static int stopping(lua_State *L)
{
  void *ud;
  lua_getallocf(L, &ud);
  lua_pushboolean(L, atomic_load(&((lu_host *)ud)->stop) != 0);
  return 1;
}

typedef struct lu_setup {
  lu_host *h;
  const lu_host_config *cfg;
} lu_setup;

static int setup(lua_State *L)
{
  lu_setup *s = lua_touserdata(L, 1);
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  for (const lu_lua_module *m = lu_lua_modules; m->name; m++) {
    lua_pushlightuserdata(L, (void *)m);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 2);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luisa.sandbox");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "setup");
  lua_createtable(L, 0, 4);
  lua_pushboolean(L, s->cfg->trusted);
  lua_setfield(L, -2, "trusted");
  lua_pushboolean(L, s->cfg->budget_s > 0);
  lua_setfield(L, -2, "jit_off");
  lua_pushstring(L, s->cfg->output_dir);
  lua_setfield(L, -2, "output_dir");
  lua_pushcfunction(L, make_dirs);
  lua_setfield(L, -2, "mkdir");
  lua_pushcfunction(L, stopping);
  lua_setfield(L, -2, "stopped");
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "load");
  s->h->sandbox_load = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

lu_host *host_new(const lu_host_config *cfg, char *msg, size_t cap)
{
  lu_host *h = calloc(1, sizeof *h);
  if (!h) {
    snprintf(msg, cap, "out of memory for a Lua state");
    return NULL;
  }
  h->cap = cfg->heap_cap;
  h->soft = h->cap - h->cap / 8;
  h->budget_s = cfg->budget_s;
  atomic_init(&h->stop, 0);
  h->birth = malloc(BIRTH_BYTES);
  h->L = h->birth ? lua_newstate(allocate, h) : NULL;
  h->born = 1;
  if (!h->L) {
    snprintf(msg, cap, "cannot create a Lua state (out of memory)");
    free(h->birth);
    free(h);
    return NULL;
  }
  lua_atpanic(h->L, panic);
  if (cfg->budget_s > 0 && !(h->watchdog = watchdog_new(cfg->budget_s, budget_ran_out, h))) {
    snprintf(msg, cap, "cannot start the time budget's watchdog thread");
    host_free(h);
    return NULL;
  }
  lu_setup s = { h, cfg };
  if (host_run(h, setup, &s, msg, cap)) {
    host_free(h);
    return NULL;
  }
  return h;
}

void host_free(lu_host *h)
{
  if (!h)
    return;
  watchdog_free(h->watchdog);   /* first: it may touch the state */
  if (h->L)
    lua_close(h->L);
  free(h->birth);
  free(h);
}

/* A whole number in [lo, hi] from the Lua value at idx, or an error naming
 * what: casting NaN, infinities or numbers past the type is undefined. */
int64_t host_whole(lua_State *L, int idx, const char *what, int64_t lo, int64_t hi)
{
  double d = luaL_checknumber(L, idx);
  if (!(d >= -0x1p63 && d < 0x1p63) || d != floor(d) || (int64_t)d < lo || (int64_t)d > hi)
    return luaL_error(L, "%s is %f: expected a whole number from %lld to %lld", what, d, (long long)lo,
                      (long long)hi);
  return (int64_t)d;
}
