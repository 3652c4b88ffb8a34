/* context.h: the luisa context and the internal interfaces between engine
 * files. Not installed: nothing here is API. */
#ifndef LUISA_CONTEXT_H
#define LUISA_CONTEXT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include "luisa.h"
#include "memory.h"

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
  int64_t bytes;                  /* of its whole buffer, ghost cells included */
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
  int *origin;                    /* ranks mode, analytics side: per local chunk, the
                                     simulation rank and its chunk number; else NULL */
} lu_array;

/* A box an assignment wrote, in its chunk's coordinates. */
typedef struct lu_write {
  int array, chunk;
  int64_t lo[LUISA_MAX_DIMS], n[LUISA_MAX_DIMS];
} lu_write;

typedef struct lu_script lu_script;
typedef struct lu_reduction lu_reduction;
typedef struct lu_exchange lu_exchange;
typedef struct lu_store lu_store;
typedef struct lu_param lu_param;
typedef struct lu_reload lu_reload;
typedef struct lu_deadline lu_deadline;
typedef struct lu_change lu_change;
typedef struct lu_executor lu_executor;
typedef struct lu_split lu_split;

struct luisa {
  MPI_Comm comm;
  MPI_Comm user_comm;             /* as given to luisa_init (luisa_comm) */
  lu_split *split;                /* ranks mode: the job's division; else NULL */
  int rank, size;
  luisa_options opts;
  char *script_path;
  lu_array *arrays;
  int narrays, arrays_cap;
  int stepped;                    /* luisa_step ran at least once */
  int began;                      /* the analysis of the first step began */
  int64_t last_step;
  int declarations_ok;            /* the first step's collective check passed */
  const lu_executor *exec;        /* how analytics run (opts.mode) */
  void *exec_state;               /* the executor's own */
  lu_write *written;              /* what this step's assignments wrote (the analysis') */
  int nwritten, written_cap;
  int64_t reload_at;              /* a reload is due at the end of this call's analysis; 0: none */
  lu_script *script;              /* NULL when analytics are off */
  lu_reload *reload;              /* NULL without a script path */
  MPI_Op reduce_op;               /* combines lu_reduction buffers */
  struct lu_packed *packed;       /* a round's reductions in one buffer (transport.c) */
  lu_store *store;                /* earlier versions kept for windows; NULL if none */
  lu_memory memory;               /* what this rank holds for data, against opts.store_bytes */
  int64_t steps, analysed_steps, script_failures;
  int64_t bytes_moved, transfers;  /* by planned transfers, sent from this rank */
  int64_t transit_raw, transit_wire;  /* ranks mode, analytics side: chunks received, raw and as sent */
  double transit_s;               /* and the time spent decompressing them */
  lu_param *params;               /* steerable simulation variables */
  int nparams, params_cap;
  void *pending;                  /* changes the root's callbacks asked for this step */
  int npending;
  lu_change *arrived;             /* changes every rank received, waiting for their step */
  int narrived;
  size_t arrived_cap;
  pthread_mutex_t changes_lock;   /* arrived, between the analysis and the simulation */
  int64_t nchanges;
  char *history;                  /* on rank 0: every change, for the summary */
  size_t history_len;
  char stop_reason[LU_VALUE_MAX];
  char err[LU_ERR_MAX];
  char analysis_err[LU_ERR_MAX];   /* err, as an analytics thread says it */
  int err_told;                   /* err tells this step's first failure already */
  atomic_int halted;              /* lu_halt: analytics off for the rest of the run */
  atomic_int reload_asked;        /* luisa_reload() since the requests were last posted */
  atomic_int reload_granted;      /* thread and ranks modes: the request the executor took at
                                     luisa_step for the call being analysed (1), or none (0);
                                     -1: inline, the analysis takes requests itself */
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
#define LU_MAX_LAG 1024
#define LU_ANALYTICS_MAX (1 << 20)

/* The lua/ modules, compiled into the library as source text at build time
 * (lua_embed.c, generated) so a simulation never depends on finding them. */
typedef struct lu_lua_module {
  const char *name, *chunkname;
  const unsigned char *code;
  size_t size;
} lu_lua_module;
extern const lu_lua_module lu_lua_modules[];

#endif
