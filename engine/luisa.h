/* luisa.h: Lua In Situ Analytics, the public C API.
 * This header is the specification: what is not here is not API. */
#ifndef LUISA_H
#define LUISA_H

#include <stdint.h>
#include <mpi.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LUISA_VERSION "0.1.0"

#if defined(__GNUC__) && defined(LUISA_BUILDING)
#  define LUISA_API __attribute__((visibility("default")))
#else
#  define LUISA_API
#endif
#define LUISA_MAX_DIMS 4

/* Status codes. Numbers are stable and never reused.
 * Codes below LUISA_ERR_FIRST are not errors: the call did its job (treat a
 * code you do not know below it as success). From LUISA_ERR_FIRST on, the
 * call was refused and changed nothing; the simulation may go on regardless.
 * A refused call is not logged: its status says so and luisa_error()
 * explains. What the caller cannot see coming is logged once on stderr:
 * script failures (by rank 0, or by the rank where a step's local work
 * failed) and a failed collective check of declarations (by rank 0). */
#define LUISA_STATUS_LIST(_) \
  _(OK,            0, "success") \
  _(WARN_SCRIPT,   1, "the analysis script failed; the simulation goes on") \
  _(STOP,          2, "the analysis asked the simulation to stop") \
  _(SERVED,        3, "this rank served the analytics until the simulation finalized: finalize and leave") \
  _(ERR_ARG,      16, "invalid argument") \
  _(ERR_NOMEM,    17, "out of memory") \
  _(ERR_MPI,      18, "MPI call failed") \
  _(ERR_ORDER,    19, "call not allowed at this point of the run") \
  _(ERR_NAME,     20, "unknown or duplicate name") \
  _(ERR_CHUNK,    21, "chunk declarations are inconsistent") \
  _(ERR_STEP,     22, "step number does not increase") \
  _(ERR_LUA,      23, "the Lua runtime could not be created") \
  _(ERR_TIMEOUT,  24, "another rank did not arrive within opts.timeout_s; analytics are off on this rank") \
  _(ERR_MODE,     25, "the execution mode cannot run with this MPI library or machine") \
  _(ERR_DATA,     26, "data received or read back is corrupt (a compressed frame failed its check)")

typedef enum luisa_status {
#define LUISA_STATUS_ENUM(name, num, text) LUISA_##name = num,
  LUISA_STATUS_LIST(LUISA_STATUS_ENUM)
#undef LUISA_STATUS_ENUM
  LUISA_ERR_FIRST = 16
} luisa_status;

typedef enum luisa_dtype {
  LUISA_F64 = 1,
  LUISA_F32 = 2,
  LUISA_I64 = 3,
  LUISA_I32 = 4
} luisa_dtype;

typedef enum luisa_mode {
  LUISA_MODE_INLINE = 0,  /* analytics run inside luisa_step, zero copy */
  LUISA_MODE_THREAD = 1,  /* on one analytics thread per rank, beside the
                             simulation, from copies (luisa_publish) or
                             handed-over buffers (luisa_publish_handover);
                             needs MPI_THREAD_MULTIPLE */
  LUISA_MODE_RANKS = 2    /* on dedicated analytics ranks taken from comm
                             (opts.analytics_ranks): luisa_init returns
                             LUISA_SERVED on those when the simulation has
                             finalized; the simulation runs on
                             luisa_comm() */
} luisa_mode;

typedef enum luisa_log_level {
  LUISA_LOG_ERROR = 0,
  LUISA_LOG_WARN  = 1,
  LUISA_LOG_INFO  = 2,
  LUISA_LOG_DEBUG = 3
} luisa_log_level;

typedef enum luisa_order {
  LUISA_ORDER_C = 0,      /* last axis varies fastest */
  LUISA_ORDER_F = 1       /* first axis varies fastest (Fortran) */
} luisa_order;

/* Options for luisa_init. Start from luisa_options_default() and set the
 * fields you need, so that fields added later keep their defaults. */
typedef struct luisa_options {
  const char *script;          /* analysis script path; NULL: no analytics */
  luisa_mode mode;             /* default LUISA_MODE_INLINE */
  luisa_log_level log_level;   /* default LUISA_LOG_WARN; messages go to stderr; the
                                  environment's LUISA_LOG_LEVEL (error, warning, info,
                                  debug) overrides it */
  int reload_signal;           /* a signal that asks for a script reload (see
                                  luisa_reload); default SIGUSR1, 0: none. Not
                                  taken if the simulation handles it already */
  int64_t lua_bytes;           /* cap on each rank's Lua heap (scripts, plans,
                                  scratch of luisa.map, gathered results);
                                  0: the default, 1 GiB. A script that needs
                                  more fails with file:line; the simulation
                                  goes on */
  double step_budget_s;        /* the longest one callback (its local work on a
                                  rank, or its function on rank 0) or the
                                  script's load may run before it is stopped
                                  and disabled on every rank; default 60 s,
                                  0: no budget (script code then runs under
                                  the JIT, see docs/decisions.md) */
  int trusted;                 /* 0 (default): scripts run sandboxed (no process
                                  control, no raw FFI, no debug, modules only
                                  from the script's directory, writes only
                                  under output_dir); 1: the full Lua
                                  environment */
  const char *output_dir;      /* where sandboxed scripts may write files;
                                  NULL: "luisa-out" in the working directory.
                                  Copied */
  double timeout_s;            /* deadline on the engine's own waits for other
                                  ranks at each step (planned transfers,
                                  reductions, the root's verdict, reload
                                  requests, and luisa_finalize's last wait):
                                  when it passes, the call returns
                                  LUISA_ERR_TIMEOUT on that rank, luisa_error
                                  saying which ranks had not arrived and where
                                  they were, and analytics stay off on that
                                  rank. Not the first step's checks and compile,
                                  nor a reload's, which stay blocking. 0
                                  (default): wait forever. Costs one MPI_Test
                                  per luisa_step on every rank when any rank
                                  sets it. Make it longer than a step's
                                  analytics take (callbacks run on rank 0 while
                                  the others wait) */
  int max_lag;                 /* thread mode: how many steps the analytics may
                                  be behind when luisa_step returns; past it,
                                  luisa_step waits. A steering change decided
                                  while analysing step t lands after
                                  luisa_step(t + max_lag) returns. Default 1;
                                  0: luisa_step waits for its own step */
  const char *cpuset;          /* thread mode: where the analytics threads run:
                                  "auto" (default; a processing unit no rank of
                                  the node is bound to, else unpinned), or an
                                  hwloc list of PU numbers ("1", "2-3,6") that
                                  the node's ranks take one PU each from. Copied */
  int analytics_ranks;         /* ranks mode: how many ranks of comm serve the
                                  analytics: k > 0 in all, -n: n on every
                                  node, 0 (default): one per node. The
                                  highest ranks of each node serve */
  int compress_level;          /* ranks mode: chunks travel as zstd frames at
                                  this level (1 to 19; negative: zstd's fast
                                  levels), with a checksum; 0 (default): raw */
  int64_t store_bytes;         /* budget on the bytes each rank's engine holds
                                  for data: window versions, copies of steps in
                                  flight, transfer buffers; 0 (default): none.
                                  The plan's windows and transfers must fit:
                                  a budget too small for one step refuses the
                                  plan at the first step (or the reload),
                                  saying how much it needs. Past it, thread
                                  mode's luisa_step waits for the analysis (or
                                  analyses in place), ranks mode's waits for
                                  its sends: nothing is dropped */
  const char *spill_dir;       /* with store_bytes: older window versions that
                                  do not fit go there as zstd files, one per
                                  chunk and step, and come back when read;
                                  removed when done with, and at
                                  luisa_finalize. NULL (default): no spill,
                                  the windows must fit. Copied */
} luisa_options;
/* Every field can be set from the environment, which wins: LUISA_SCRIPT,
 * LUISA_MODE (inline, thread, ranks), LUISA_LOG_LEVEL, LUISA_RELOAD_SIGNAL,
 * LUISA_LUA_BYTES (K, M, G suffixes), LUISA_STEP_BUDGET, LUISA_TRUSTED (0 or
 * 1), LUISA_OUTPUT_DIR, LUISA_TIMEOUT, LUISA_MAX_LAG, LUISA_CPUSET,
 * LUISA_ANALYTICS_RANKS (k, or n/node), LUISA_COMPRESS, LUISA_STORE_BYTES (K, M,
 * G suffixes), LUISA_SPILL_DIR. A value that does not parse makes
 * luisa_init refuse, naming the variable. */

/* Where a chunk's elements sit in the simulation's memory. The chunk may be
 * the interior of a larger buffer (ghost cells, padding).
 * alloc_shape: extent of the buffer per axis, always in the array's axis
 *              order (axis 0 first, whatever `order` says);
 *              0 on an axis means "same as the chunk's shape".
 * start:       index in the buffer of the chunk's first element per axis
 *              (the ghost width, typically).
 * order:       which axis varies fastest in the buffer.
 * A NULL layout means a contiguous C-order buffer of exactly the chunk shape. */
typedef struct luisa_layout {
  luisa_order order;
  int64_t alloc_shape[LUISA_MAX_DIMS];
  int64_t start[LUISA_MAX_DIMS];
} luisa_layout;

/* Opaque per-communicator context. */
typedef struct luisa luisa;

/* luisa_options_default() :
 * @return : options with every field at its default. */
LUISA_API luisa_options luisa_options_default(void);

/* luisa_init() : create a context on `comm`. MPI collective over `comm`.
 * MPI must be initialised. The communicator is duplicated (twice when a
 * rank sets opts->timeout_s): luisa's traffic never mixes with the
 * simulation's. When opts->script is set, rank 0 reads it, with the modules
 * it requires from its directory, and sends them to every rank, which all
 * run it (SPMD): the other ranks need not see the file. Set opts->script on
 * every rank or on none: set on some ranks only, every rank refuses with
 * LUISA_ERR_ARG, naming on stderr the ranks that set it.
 * @opts : may be NULL for defaults; borrowed for the duration of the call.
 * @out  : receives the context, owned by the caller until luisa_finalize().
 *         Set even when the script failed to load, so the run can go on.
 * @return : LUISA_OK; LUISA_WARN_SCRIPT if the script failed to load on
 *           any rank (analytics stay off on all, luisa_error says file:line
 *           and why); an error code if no context could be made (*out is
 *           then NULL, the reason is printed on stderr). Given the same
 *           options on every rank, every rank returns the same status. */
LUISA_API int luisa_init(MPI_Comm comm, const luisa_options *opts, luisa **out);

/* luisa_comm() : the communicator the simulation runs on. In ranks mode
 * luisa_init takes the analytics ranks out of comm: a simulation rank must
 * use this communicator, not comm, from then on (MPI_COMM_WORLD included),
 * until luisa_finalize, which frees it. In the other modes (and in ranks
 * mode without a script, where no rank serves) it is comm itself.
 *
 *   int status = luisa_init(MPI_COMM_WORLD, &opts, &lz);
 *   if (status == LUISA_SERVED) {  // an analytics rank: the run is over
 *     luisa_finalize(lz);
 *     MPI_Finalize();
 *     return 0;
 *   }
 *   MPI_Comm comm = luisa_comm(lz);  // the simulation's ranks
 *
 * @return : MPI_COMM_NULL for a NULL context or on an analytics rank. */
LUISA_API MPI_Comm luisa_comm(const luisa *lz);

/* luisa_finalize() : free the context and its duplicated communicator.
 * MPI collective. Prints a summary at LUISA_LOG_INFO. NULL is a no-op.
 * After a timeout (LUISA_ERR_TIMEOUT) it does not wait for any rank and
 * leaves the duplicated communicator, and the few buffers MPI may still
 * write into, allocated until the process ends. */
LUISA_API void luisa_finalize(luisa *lz);

/* luisa_array() : declare a distributed array. Local, like luisa_chunk and
 * luisa_publish: a refusal on one rank needs no agreement, the first
 * luisa_step finds any mismatch and reports it on every rank. Every rank
 * must declare the same arrays in the same order.
 * @name  : 1 to 63 characters [A-Za-z0-9_], not starting with a digit; copied.
 * @shape : ndim global extents, each >= 1, at most 2^62 elements in all;
 *          copied. Scripts index in doubles: an array they analyse must
 *          have fewer than 2^53 elements (its callbacks fail to compile
 *          otherwise, saying so).
 * @return : LUISA_OK, LUISA_ERR_ARG (bad name, dtype, ndim or shape),
 *           LUISA_ERR_NAME (already declared), LUISA_ERR_ORDER (after the
 *           first luisa_step). */
LUISA_API int luisa_array(luisa *lz, const char *name, luisa_dtype dtype, int ndim,
                const int64_t *shape);

/* luisa_chunk() : declare a block of `name` owned by this rank. May be
 * called several times per rank; chunks get local indices 0, 1, ... in the
 * order of the calls. A rank may own no chunk. Together the chunks of all
 * ranks must tile the global array exactly: checked collectively at the
 * first luisa_step.
 * @offset, @shape : the block's global position and extent; copied.
 * @layout : may be NULL (contiguous, C order); copied. The buffer it
 *          describes (alloc_shape, or the chunk's shape) must have at most
 *          2^62 elements and 2^63-1 bytes; for scripts, its highest element
 *          index must be below 2^53 (as for arrays).
 * @return : LUISA_OK, LUISA_ERR_NAME, LUISA_ERR_ARG (block outside the
 *           array, empty, or a layout that cannot hold it: start + extent
 *           past alloc_shape, or a buffer past those limits; more than
 *           2^28 - 1 chunks of the array on this rank), LUISA_ERR_ORDER.
 *           Every test is made without overflow, whatever the numbers. */
LUISA_API int luisa_chunk(luisa *lz, const char *name, const int64_t *offset,
                const int64_t *shape, const luisa_layout *layout);

/* luisa_publish() : hand the current data of local chunk `chunk` of `name`
 * to the engine for the coming luisa_step. Zero copy in inline mode; in
 * thread mode luisa_step copies the chunk's buffer, in one pass, into a
 * buffer of the engine's (pooled, reused every step) before it hands the
 * step to the analytics (max_lag 0 reads it in place), so the simulation
 * may change it once luisa_step returns; assignments computed from step t
 * are written into the buffers published at step t + max_lag.
 * @data : the buffer described by the chunk's layout; borrowed: it must
 *         stay valid and unchanged until the next luisa_step() returns.
 *         Const, except for arrays made writable (luisa_field_writable).
 * @return : LUISA_OK, LUISA_ERR_NAME, LUISA_ERR_ARG (no such local chunk,
 *           NULL data), LUISA_ERR_NOMEM (thread mode: the table of the
 *           step's chunks could not grow; the chunk is not published). A
 *           chunk not published before a step that needs it makes that
 *           step's analytics fail with a message naming it. */
LUISA_API int luisa_publish(luisa *lz, const char *name, int chunk, const void *data);

/* luisa_publish_handover() : like luisa_publish, but the buffer itself is
 * handed to the engine, not copied: the simulation must neither change nor
 * free it until release(data, user) is called. That happens exactly once,
 * on the caller's thread, from inside the luisa_step that reports this
 * step's analysis (luisa_step(t + max_lag) in thread mode, luisa_step(t)
 * inline), or from luisa_finalize for steps not reported by then; a buffer
 * replaced by another publish of the same chunk in the same step is
 * released at once. A refused call (its status is an error) hands nothing
 * over and never calls release; LUISA_ERR_ARG as well when data is still
 * held, handed over as this chunk at an earlier step.
 * @release : not NULL. @user : passed to it as is. */
typedef void luisa_release_fn(void *data, void *user);
LUISA_API int luisa_publish_handover(luisa *lz, const char *name, int chunk, void *data,
                                     luisa_release_fn *release, void *user);

/* Steerable parameters: simulation variables that scripts read
 * (luisa.param.NAME) and change (luisa.set). Register them before the first
 * luisa_step, identically on every rank (checked at the first step). A
 * change decided while analysing step t is written into *var on every rank
 * before luisa_step(t + max_lag) returns (luisa_step(t) inline), so the
 * simulation uses it from step t + 1 + max_lag.
 * The engine reads *var at each step: the simulation may change it too.
 * @name : as for arrays; copied. @var : borrowed until luisa_finalize.
 * @description : may be NULL; copied.
 * @min, @max : inclusive bounds; for f64 they may be infinite, not NaN.
 * A script's value is refused unless it lies in the bounds: for i64 a
 * whole number, compared exactly as an integer (never NaN, infinite,
 * fractional, or rounded into range). Scripts read i64 values and bounds
 * as Lua numbers (doubles): exact within 2^53 in magnitude, rounded to
 * nearest beyond (INT64_MAX reads as 2^63).
 * @return : LUISA_OK, LUISA_ERR_ARG (bad name, NULL var, min > max or a
 *           NaN bound, current value outside the bounds or NaN),
 *           LUISA_ERR_NAME (already registered), LUISA_ERR_ORDER (after
 *           the first luisa_step). */
LUISA_API int luisa_param_f64(luisa *lz, const char *name, double *var, double min, double max,
                              const char *description);
LUISA_API int luisa_param_i64(luisa *lz, const char *name, int64_t *var, int64_t min, int64_t max,
                              const char *description);
/* A boolean: *var is 0 or 1. */
LUISA_API int luisa_param_bool(luisa *lz, const char *name, int *var, const char *description);
/* A short string from an allowed set: *var holds one of `allowed` (a NULL
 * terminated list, copied) in a buffer of cap bytes. */
LUISA_API int luisa_param_string(luisa *lz, const char *name, char *var, size_t cap,
                                 const char *const *allowed, const char *description);

/* luisa_field_writable() : let scripts write into array `name`
 * (luisa.assign), for nudging or data assimilation. The engine then writes
 * into the buffers published for a step, inside the chunks (ghost cells
 * untouched), on every rank after that step's analytics and before
 * luisa_step returns: publish a buffer the simulation reads next. Local;
 * before the first luisa_step.
 * @return : LUISA_OK, LUISA_ERR_NAME, LUISA_ERR_ORDER. */
LUISA_API int luisa_field_writable(luisa *lz, const char *name);

/* luisa_wants() : whether the analytics at `step` will read array `name`
 * on this rank: chunk < 0 asks about any of its local chunks, else about
 * that one. A chunk not wanted need not be published (nor computed, if it
 * is derived). Local, and cheap: it follows the compiled plan (periods, the
 * chunks slices and stencils touch, windows, which need every step).
 * Before the first step everything is wanted; after it, nothing is when
 * there are no analytics (no script, or it did not load or compile).
 * luisa.fetch reads in callbacks are not foreseen: publish what they read.
 * @wanted : out, 1 or 0 (1 on a refusal).
 * @return : LUISA_OK, LUISA_ERR_NAME, LUISA_ERR_ARG. */
LUISA_API int luisa_wants(luisa *lz, const char *name, int chunk, int64_t step, int *wanted);

/* luisa_step() : iteration boundary. MPI collective: every rank calls it
 * with the same step number. The first call checks every declaration
 * collectively and compiles the script's plan, checking that every rank
 * built the same one (a callback whose period, statistics or shapes depend
 * on the rank is disabled on every rank); every call runs the analytics due
 * at `step`, and each of their reductions carries the step and the plan, so
 * ranks out of step are found before their numbers are combined. Published
 * data is forgotten when the call returns, unless it refused the step with
 * LUISA_ERR_STEP (then nothing ran and nothing is forgotten).
 * In thread mode the call hands the step to the analytics thread and
 * returns at once, unless the analytics are more than opts.max_lag steps
 * behind: then it waits. It returns the status of the analysis of the step
 * max_lag calls earlier (LUISA_OK in the first max_lag calls), the same on
 * every rank, and applies the changes the analyses decided for this step.
 * @step : must be greater than the previous call's, and the same on every
 *         rank.
 * @return : LUISA_OK; LUISA_WARN_SCRIPT if analytics failed at this step
 *           (the failing callback is disabled, the others go on);
 *           LUISA_STOP when a script called luisa.stop: end the run;
 *           LUISA_ERR_STEP: the step does not increase (local, nothing ran),
 *           or the ranks passed different step numbers, or one skipped a
 *           call (found at an analysed step: returned on every rank,
 *           nothing combined, analytics off for the rest of the run);
 *           LUISA_ERR_CHUNK, LUISA_ERR_NAME (declarations inconsistent across
 *           ranks: returned on every rank, analytics stay off);
 *           LUISA_ERR_TIMEOUT (opts->timeout_s passed in a wait for other
 *           ranks: on this rank, analytics off for the rest of the run);
 *           LUISA_ERR_MPI. Every rank returns the same status, but for a
 *           timeout. After analytics went off, luisa_step returns LUISA_OK
 *           and makes no collective call. */
LUISA_API int luisa_step(luisa *lz, int64_t step);

/* How far the analytics are: counters of this rank, for monitoring and
 * tests. In thread mode luisa_step(t) returns with analysed >= t - max_lag
 * (counting luisa_step calls); inline, analysed == steps. */
typedef struct luisa_progress {
  int64_t steps;               /* luisa_step calls so far */
  int64_t analysed;            /* of those, the ones whose analysis is done */
  int64_t waits;               /* luisa_step calls that waited for the analytics */
  double waited_s;             /* the time they waited, in seconds */
} luisa_progress;
LUISA_API int luisa_get_progress(luisa *lz, luisa_progress *out);

/* luisa_reload() : ask every rank to reload the script. Local: a call on
 * any one rank is enough, as is the reload signal (luisa_options) reaching
 * any rank, or a change of the script or of a module it required from its
 * directory, which rank 0 checks at every step (one stat per file; the
 * contents are read only when a stat changed). A request made before
 * luisa_step(t) returns is carried out at the end of luisa_step(t + 1)
 * (requests travel in a nonblocking all-reduce, so no rank waits for
 * them): rank 0 reads the sources and sends them to all; every rank loads
 * and compiles them beside the running script. If that worked on every
 * rank, all switch: the new script runs from step t + 2, luisa_wants
 * included. Else all keep the old one and luisa_step(t + 1) returns
 * LUISA_WARN_SCRIPT, saying where and on which ranks it failed. A version
 * that registers no callback (an empty file saved by mistake) is refused
 * so, unless it calls luisa.off(); one whose plan differs between ranks
 * too. luisa.state carries over; windows the new script keeps survive.
 * In thread mode the reload is made max_lag steps later, like a steering
 * change: at the end of the analysis of step t + 1 + max_lag, the new
 * script running from step t + 2 + max_lag, its status returned by
 * luisa_step(t + 1 + 2 * max_lag).
 * @return : LUISA_OK, LUISA_ERR_ORDER (luisa_init had no script). */
LUISA_API int luisa_reload(luisa *lz);

/* luisa_error() : the last failure on this context in one sentence naming
 * the argument and what was expected; "" if none. Owned by the context,
 * valid until the next call on it. NULL context gives a fixed message. */
LUISA_API const char *luisa_error(const luisa *lz);

/* luisa_status_string() : the fixed text of a status code. */
LUISA_API const char *luisa_status_string(int status);

#ifdef __cplusplus
}
#endif
#endif
