/* host.h: the Lua host: one LuaJIT state, its capped heap, protected entry,
 * source-only loading, the sandbox and the time budget. Not installed.
 * The engine touches a Lua state only inside host_run, so no Lua error can
 * escape to the panic handler. */
#ifndef LUISA_HOST_H
#define LUISA_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>

typedef struct lu_host lu_host;

typedef struct lu_host_config {
  int64_t heap_cap;             /* bytes the state may hold */
  double budget_s;              /* per budget segment; 0: none, and the JIT stays on for scripts */
  int trusted;                  /* no sandbox */
  const char *output_dir;       /* where sandboxed scripts may write */
  const char *script_dir;       /* modules are searched there; may be "" */
} lu_host_config;

/* A new state with the standard libraries, the engine's modules preloaded
 * and the script environment made (sandboxed unless trusted). NULL, with
 * msg, when it cannot be made. */
lu_host *host_new(const lu_host_config *cfg, char *msg, size_t cap);
void host_free(lu_host *h);
lua_State *host_state(const lu_host *h);

/* Runs fn(L) with ud as its only argument (a light userdata), protected:
 * an error, a memory error or a stopped script gives 1 and msg (with a
 * traceback for runtime errors); 0 on success. The budget runs from here
 * under tag -1 until host_budget restarts it. The stack is left as found. */
int host_run(lu_host *h, lua_CFunction fn, void *ud, char *msg, size_t cap);

/* Inside host_run: pushes the function of a script source (text only, in
 * the script environment, under the budget's rules) and returns 0, or
 * pushes the error message (file:line: what) and returns 1. chunkname is
 * "@path" for files. */
int host_load(lua_State *L, const char *text, size_t len, const char *chunkname);

/* Inside host_run: restart the budget for the work of `tag` (a callback's
 * index). Called from Lua through luisa.core. */
void host_budget(lu_host *h, int tag);

/* Tags whose budget ran out since the last call: fills tags[0..n) and
 * returns how many (at most max; more stop with an entry of -2). */
int host_take_stopped(lu_host *h, int *tags, int max);

/* Where and why the last allocation past the cap was refused ("" if none):
 * LuaJIT's own message for it is a bare "not enough memory". */
const char *host_refused(const lu_host *h);

/* A whole number in [lo, hi] from the Lua value at idx, or a Lua error
 * naming what (casting NaN, infinities or numbers past the type is UB). */
int64_t host_whole(lua_State *L, int idx, const char *what, int64_t lo, int64_t hi);

/* Bytes the Lua heap holds now and at most so far. */
void host_heap(const lu_host *h, int64_t *now, int64_t *peak);

#endif
