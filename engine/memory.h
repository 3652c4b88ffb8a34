/* memory.h: the one count of the bytes a rank's engine holds for data,
 * against opts.store_bytes. Not installed. */
#ifndef LUISA_MEMORY_H
#define LUISA_MEMORY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* What a buffer holds, for the count's breakdown. */
typedef enum lu_use {
  LU_USE_STORE,                /* window versions (store.c) */
  LU_USE_COPY,                 /* a step's chunks copied or packed for the analysis in flight */
  LU_USE_TRANSFER,             /* planned transfers, chunks received, fetches */
  LU_USES
} lu_use;

/* Atomic: the simulation and the analytics thread both allocate. */
typedef struct lu_memory {
  int64_t limit;               /* opts.store_bytes; 0: no budget */
  int spill;                   /* opts.spill_dir is set: older window versions may go to disk */
  _Atomic int64_t used[LU_USES];
  _Atomic int64_t peak;        /* of the sum */
  _Atomic int64_t windows;     /* what the plan's windows hold once full */
  _Atomic int64_t waits, waited_ns;   /* the simulation held back by the budget */
  _Atomic int64_t spilled, spill_files, restored;   /* spill (store.c) */
} lu_memory;

void memory_init(lu_memory *m, int64_t limit, int spill);
/* malloc, realloc and free, counted; they never refuse for the budget:
 * callers ask memory_fits first where they can wait or do without. */
void *memory_alloc(lu_memory *m, lu_use use, size_t bytes);
void *memory_realloc(lu_memory *m, lu_use use, void *p, size_t old, size_t bytes);
void memory_free(lu_memory *m, lu_use use, void *p, size_t bytes);
/* Whether `more` bytes fit, with the windows counted full. */
int memory_fits(const lu_memory *m, size_t more);
/* What a step needs besides copies: the windows full and what is held for
 * transfers now. Over the budget: writes a sentence into msg, returns 0. */
int memory_plan_fits(const lu_memory *m, char *msg, size_t cap);
int64_t memory_held(const lu_memory *m);
void memory_waited(lu_memory *m, double seconds);

struct luisa;
void memory_summary(struct luisa *lz);   /* logged by rank 0 at luisa_finalize */

#endif
