/* context.h: the luisa context and the internal interfaces between engine
 * files. Not installed: nothing here is API. */
#ifndef LUISA_CONTEXT_H
#define LUISA_CONTEXT_H

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include "luisa.h"

#define LU_NAME_MAX 64
#define LU_ERR_MAX 4096
#define LU_VALUE_MAX 64                /* longest string parameter, with its NUL */
/* Chunks of one array on one rank: the chunk map's MPI counts stay ints. */
#define LU_CHUNKS_MAX (INT_MAX / (2 * LUISA_MAX_DIMS))

/* A block of an array: global box plus where its elements sit in memory. */
typedef struct lu_chunk {
  int64_t offset[LUISA_MAX_DIMS];
  int64_t shape[LUISA_MAX_DIMS];
  int64_t stride[LUISA_MAX_DIMS]; /* elements between neighbours on each axis */
  int64_t first;                  /* element index of the chunk's first element */
} lu_chunk;

/* Every chunk of an array on every rank, known after the first step. */
typedef struct lu_box {
  int owner;
  int local;                      /* index on the owner */
  int64_t offset[LUISA_MAX_DIMS];
  int64_t shape[LUISA_MAX_DIMS];
} lu_box;

typedef struct lu_array {
  char name[LU_NAME_MAX];
  luisa_dtype dtype;
  int ndim;
  int64_t shape[LUISA_MAX_DIMS];
  int nchunks, chunks_cap;
  lu_chunk *chunks;
  const void **published;         /* per local chunk, this step's data or NULL */
  int nboxes;
  lu_box *boxes;                  /* global chunk map, sorted by owner */
  int writable;                   /* scripts may assign to it (luisa_field_writable) */
} lu_array;

typedef struct lu_script lu_script;
typedef struct lu_reduction lu_reduction;
typedef struct lu_exchange lu_exchange;
typedef struct lu_store lu_store;
typedef struct lu_param lu_param;
typedef struct lu_reload lu_reload;
typedef struct lu_deadline lu_deadline;

/* The sources of a script version: src[0] is the script, then the modules
 * it required from its directory, in load order (bundle.c). */
typedef struct lu_source {
  char *name, *path, *text;       /* name: the module's ("" for the script) */
  size_t len;
} lu_source;

typedef struct lu_bundle {
  lu_source *src;
  int n, cap;
} lu_bundle;

struct luisa {
  MPI_Comm comm;
  int rank, size;
  luisa_options opts;
  char *script_path;
  lu_array *arrays;
  int narrays, arrays_cap;
  int stepped;                    /* luisa_step ran at least once */
  int64_t last_step;
  int declarations_ok;            /* the first step's collective check passed */
  lu_script *script;              /* NULL when analytics are off */
  lu_reload *reload;              /* NULL without a script path */
  MPI_Op reduce_op;               /* combines lu_reduction buffers */
  lu_store *store;                /* earlier versions kept for windows; NULL if none */
  int64_t steps, analysed_steps, script_failures;
  int64_t bytes_moved, transfers;  /* by planned transfers, sent from this rank */
  lu_param *params;               /* steerable simulation variables */
  int nparams, params_cap;
  void *pending;                  /* changes the root's callbacks asked for this step */
  int npending;
  int64_t nchanges;
  char *history;                  /* on rank 0: every change, for the summary */
  size_t history_len;
  char stop_reason[LU_VALUE_MAX];
  char err[LU_ERR_MAX];
  int err_told;                   /* err tells this step's first failure already */
  int halted;                     /* lu_halt: analytics off for the rest of the run */
  lu_deadline *deadline;          /* NULL unless some rank set opts.timeout_s */
};

/* Why analytics stopped for good. Agreed: every rank found, at the same
 * call, that the ranks no longer agree on the schedule; nothing collective
 * is made again. Cut: this rank timed out; lz->comm has a request pending
 * that cannot be cancelled, so it is never used again. */
enum lu_halt { LU_RUNNING = 0, LU_HALT_AGREED = 1, LU_HALT_CUT = 2 };

#define LU_LUA_BYTES_DEFAULT ((int64_t)1 << 30)
#define LU_LUA_BYTES_MIN ((int64_t)16 << 20)
#define LU_STEP_BUDGET_DEFAULT 60.0

/* options.c: defaults, the environment's overrides, the checks. */
int options_resolve(const luisa_options *given, luisa_options *o, char *why, size_t cap);

/* error.c: a status with its sentence, the early-return macro. */
int error_set(luisa *lz, int status, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
#define RETURN_IF(cond, lz, status, ...) \
  do { if (cond) return error_set((lz), (status), __VA_ARGS__); } while (0)
#define FORWARD_IF_ERROR(expr) \
  do { int fwd_ = (expr); if (fwd_ >= LUISA_ERR_FIRST) return fwd_; } while (0)

/* log.c */
void log_write(const luisa *lz, luisa_log_level level, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

/* array.c */
int array_check_name(luisa *lz, const char *fn, const char *name);
lu_array *array_find(luisa *lz, const char *name);
const char *array_dtype_name(luisa_dtype dtype);
size_t array_dtype_size(luisa_dtype dtype);
int64_t array_box_volume(const lu_array *a, int chunk, const int64_t *lo, const int64_t *count,
                         const int64_t *step);
void array_pack(const lu_array *a, const lu_chunk *layout, const void *src, const int64_t *lo,
                const int64_t *count, const int64_t *step, void *dst);
const char *array_format_index(char *buf, size_t cap, int ndim, const int64_t *v);
int64_t array_volume(int ndim, const int64_t *shape);
void array_forget_published(luisa *lz);
void array_free_all(luisa *lz);

/* decomp.c: collective check of every declaration, builds the chunk map. */
int decomp_check(luisa *lz);

/* transport.c: the MPI traffic of the engine. */
int transport_open(luisa *lz);
void transport_close(luisa *lz);
int transport_agree(luisa *lz, int failed, char *msg, size_t cap);
int transport_share(luisa *lz, int owner, char *msg, size_t cap);
int transport_check(luisa *lz, int failed, char *msg, size_t cap, int status);
int transport_settle(luisa *lz, int status, char *msg, size_t cap, int *who);
int transport_verdict(luisa *lz, int status, char *msg, size_t cap);
/* Kinds of reduction slots, in buffer order; widths 1, 1, 1, 2, 2, 3. */
enum lu_slot_kind { LU_MIN, LU_SUM, LU_MAX, LU_ARGMIN, LU_ARGMAX, LU_MOMENTS, LU_SLOT_KINDS };
/* The engine's own LU_MIN slots, first in every reduction: the lowest
 * failing rank, then a digest d of plan, callback and step as d and -d
 * (all ranks agree when min(d) == -min(-d)). The script's slots follow. */
enum { LU_SLOT_FAILED = 0, LU_SLOT_DIGEST = 1, LU_ENGINE_SLOTS = 3 };
lu_reduction *transport_reduction_new(luisa *lz, const int *counts);
double *transport_reduction_input(lu_reduction *r);
const double *transport_reduction_result(lu_reduction *r);
int transport_reduce(luisa *lz, lu_reduction **due, int ndue);
double *transport_field_new(lu_reduction *r, int n, const char *op, double **out);
void transport_reduction_free(lu_reduction *r);
int transport_bcast_ints(luisa *lz, int *v, int n);
int transport_who(luisa *lz, int failed, char *text, size_t cap);
int transport_ranks(char *text, size_t cap, const int *of, int size, int value);

/* agree.c: that every rank runs the same analysis. */
#define AGREE_WHY "a script must build the same analysis on every rank (rank-dependent periods, " \
                  "statistics or shapes are refused)"
int agree_plan(luisa *lz, int n, const uint64_t *fingerprint, char *const *where, char **why);
double agree_digest(uint64_t plan, int callback, int64_t step);
int agree_steps(luisa *lz, int64_t step, char *msg, size_t cap);

/* deadline.c: opts.timeout_s on the engine's waits for other ranks. Where a
 * rank is, told to a rank that stalled and asks: */
enum lu_wait { LU_PHASE_ENTRY, LU_PHASE_TRANSFERS, LU_PHASE_REDUCE, LU_PHASE_VERDICT, LU_PHASE_RELOAD,
                LU_PHASE_FINALIZE, LU_PHASES };
int deadline_open(luisa *lz, int any_timeout);
void deadline_poll(luisa *lz, int64_t step);
double deadline_start(luisa *lz, int phase);
int deadline_check(luisa *lz, double start);
int deadline_wait(luisa *lz, int n, MPI_Request *requests, int phase, const char *what);
void deadline_keep(void *memory);
void deadline_close(luisa *lz);

/* steer.c: steerable parameters. */
lu_param *steer_find(luisa *lz, const char *name);
int steer_check(luisa *lz);
const char *steer_request(luisa *lz, lu_param *p, int is_number, double number, int is_bool, int boolean,
                          const char *text, char *why, size_t cap);
int steer_queue(luisa *lz, const void *change);
int steer_stop(luisa *lz, const char *reason);
int steer_period(luisa *lz, int callback, int every);
int steer_region(luisa *lz, int region, const char *ranges);
int steer_pending(const luisa *lz);
int steer_apply(luisa *lz, int64_t step, int n);
int steer_value(const lu_param *p, double *number, int *boolean, const char **text);
void steer_bounds(const lu_param *p, double *min, double *max, int *nallowed, char *const **allowed);
const char *steer_type(const lu_param *p);
const char *steer_name(const luisa *lz, int i);
void steer_free(luisa *lz);
const char *steer_history(const luisa *lz);

/* store.c: earlier versions of chunks, kept for windows. */
int store_window(luisa *lz, lu_array *a, int depth);
const void **store_table(luisa *lz, lu_array *a, int version);
int store_versions(const luisa *lz, const lu_array *a);
int store_versions_kept(const luisa *lz, const lu_array *a);
int store_capture(luisa *lz, int64_t step);
void store_trim(luisa *lz, lu_array *a, int depth);
const void *store_version(luisa *lz, const lu_array *a, int version, int chunk, lu_chunk *layout);
void store_stats(const luisa *lz, int64_t *objects, int64_t *bytes_held);
void store_free(luisa *lz);

/* fetch.c: on-demand reads by the root, served during the verdict. */
int fetch_serve_bcast(luisa *lz, int *v, int n);
int fetch_box(luisa *lz, lu_array *a, int version, int owner, int chunk, const int64_t *lo, const int64_t *count,
              double *out);

/* exchange.c: transfers planned at compile time. */
lu_exchange *exchange_new(int nsend, int nrecv);
void *exchange_message(lu_exchange *x, int is_send, int i, int peer, size_t bytes, int npieces);
int exchange_piece(lu_exchange *x, int i, int k, lu_array *array, int chunk, int version,
                   const int64_t *lo, const int64_t *count, const int64_t *step, size_t offset);
int exchange_commit(luisa *lz, lu_exchange *x, int tag);
int exchange_run(luisa *lz, lu_exchange *x, int *complete, char *msg, size_t cap);
size_t exchange_bytes_sent(const lu_exchange *x);
void exchange_sizes(const lu_exchange *x, int size, int64_t *to, int64_t *from);
void exchange_free(lu_exchange *x);

/* bundle.c: a script version's sources, read by rank 0, sent to all. */
int bundle_add(lu_bundle *b, const char *name, const char *path, char *text, size_t len);
const lu_source *bundle_find(const lu_bundle *b, const char *name);
int bundle_read_file(const char *path, char **text, size_t *len, char *msg, size_t cap);
#define LU_FNV_START 1469598103934665603ULL
uint64_t bundle_fnv(uint64_t h, const void *bytes, size_t n);
uint64_t bundle_hash(const lu_bundle *b);
int bundle_bcast(luisa *lz, lu_bundle *b);
void bundle_free(lu_bundle *b);

/* reload.c: when every rank reloads the script. */
int reload_open(luisa *lz);
int reload_poll(luisa *lz, int *due);
int reload_post(luisa *lz);
void reload_watch(luisa *lz, const lu_bundle *b, uint64_t running);
void reload_record(luisa *lz, int64_t step, uint64_t version, const char *error);
uint64_t reload_version(const luisa *lz);
void reload_summary(const luisa *lz);
void reload_close(luisa *lz);

/* The lua/ modules, compiled into the library as source text at build time
 * (lua_embed.c, generated) so a simulation never depends on finding them. */
typedef struct lu_lua_module {
  const char *name, *chunkname;
  const unsigned char *code;
  size_t size;
} lu_lua_module;
extern const lu_lua_module lu_lua_modules[];

/* script.c: the Lua side of a context. */
int script_open(luisa *lz, const char *path, char *msg, size_t cap);
int script_compile(luisa *lz, int64_t step);
int script_reload(luisa *lz, int64_t step);
int script_step(luisa *lz, int64_t step);
int script_wants(luisa *lz, int a, int chunk, int64_t step);
int script_due(const luisa *lz, int64_t step);
void script_abandon(luisa *lz);
void script_set_period(luisa *lz, int64_t step, int callback, int every);
void script_move_region(luisa *lz, int64_t step, int region, const char *ranges);
void script_summary(luisa *lz);
void script_close(luisa *lz);

#endif
