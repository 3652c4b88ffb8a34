/* memory.c: every buffer the engine allocates for data goes through here,
 * so one number says what a rank holds, and opts.store_bytes bounds it. */
#include <stdio.h>
#include <stdlib.h>
#include "context.h"
#include "log.h"
#include "memory.h"

void memory_init(lu_memory *m, int64_t limit, int spill)
{
  m->limit = limit;
  m->spill = spill;
  for (int u = 0; u < LU_USES; u++)
    atomic_init(&m->used[u], 0);
  atomic_init(&m->peak, 0);
  atomic_init(&m->windows, 0);
  atomic_init(&m->waits, 0);
  atomic_init(&m->waited_ns, 0);
  atomic_init(&m->spilled, 0);
  atomic_init(&m->spill_files, 0);
  atomic_init(&m->restored, 0);
}

int64_t memory_held(const lu_memory *m)
{
  int64_t sum = 0;
  for (int u = 0; u < LU_USES; u++)
    sum += atomic_load(&m->used[u]);
  return sum;
}

static void count(lu_memory *m, lu_use use, int64_t delta)
{
  atomic_fetch_add(&m->used[use], delta);
  int64_t now = memory_held(m), peak = atomic_load(&m->peak);
  while (now > peak && !atomic_compare_exchange_weak(&m->peak, &peak, now))
    ;
}

void *memory_alloc(lu_memory *m, lu_use use, size_t bytes)
{
  void *p = malloc(bytes ? bytes : 1);
  if (p)
    count(m, use, (int64_t)bytes);
  return p;
}

void *memory_realloc(lu_memory *m, lu_use use, void *p, size_t old, size_t bytes)
{
  void *grown = realloc(p, bytes ? bytes : 1);
  if (grown)
    count(m, use, (int64_t)bytes - (int64_t)old);
  return grown;
}

void memory_free(lu_memory *m, lu_use use, void *p, size_t bytes)
{
  if (!p)
    return;
  free(p);
  count(m, use, -(int64_t)bytes);
}

/* The windows are counted full from the compile on: a copy made while they
 * fill must not take the room they will need. */
static int64_t committed(const lu_memory *m)
{
  int64_t store = atomic_load(&m->used[LU_USE_STORE]), windows = atomic_load(&m->windows);
  return memory_held(m) - store + (windows > store ? windows : store);
}

int memory_fits(const lu_memory *m, size_t more)
{
  return !m->limit || committed(m) + (int64_t)more <= m->limit;
}

int memory_plan_fits(const lu_memory *m, char *msg, size_t cap)
{
  int64_t windows = atomic_load(&m->windows), transfers = atomic_load(&m->used[LU_USE_TRANSFER]);
  int64_t store = atomic_load(&m->used[LU_USE_STORE]);
  int64_t need = (windows > store ? windows : store) + transfers;
  if (!m->limit || need <= m->limit)
    return 1;
  snprintf(msg, cap, "opts.store_bytes (LUISA_STORE_BYTES) is %lld bytes, but one step needs %lld: %lld for "
           "windows and %lld for transfers; raise it to at least %lld%s", (long long)m->limit, (long long)need,
           (long long)(windows > store ? windows : store), (long long)transfers, (long long)need,
           windows > store && !m->spill ? ", or set opts.spill_dir (LUISA_SPILL_DIR) to keep older window versions on disk" : "");
  return 0;
}

void memory_waited(lu_memory *m, double seconds)
{
  atomic_fetch_add(&m->waits, 1);
  atomic_fetch_add(&m->waited_ns, (int64_t)(seconds * 1e9));
}

void memory_summary(luisa *lz)
{
  const lu_memory *m = &lz->memory;
  if (lz->rank != 0 || !atomic_load(&m->peak))
    return;
  char budget[64] = "no budget";
  if (m->limit)
    snprintf(budget, sizeof budget, "budget %lld", (long long)m->limit);
  log_write(lz, LUISA_LOG_INFO, "summary: memory: at most %lld bytes of data held on rank 0 (%s); held back by the "
            "budget %lld times, %.3f s; %lld bytes spilled in %lld files, %lld read back", (long long)atomic_load(&m->peak),
            budget, (long long)atomic_load(&m->waits), 1e-9 * (double)atomic_load(&m->waited_ns),
            (long long)atomic_load(&m->spilled), (long long)atomic_load(&m->spill_files),
            (long long)atomic_load(&m->restored));
}
