/* store.c: the objects the engine keeps past a step: earlier versions of
 * each rank's own chunks for windows, owned here, counted, released by
 * refcount; with opts.spill_dir, the oldest go to disk when the memory
 * budget has no room, and come back when read. */
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "array.h"
#include "codec.h"
#include "error.h"
#include "log.h"
#include "spill.h"
#include "store.h"

/* A chunk's elements at one step, packed in C order. */
typedef struct lu_object {
  int array, chunk, owner;
  int64_t step;
  size_t bytes;
  int refs;
  void *data;                  /* NULL while only on disk */
  int64_t spilled;             /* its file (spill.c), or 0 */
  int pinned;                  /* about to be read: not spilled */
  struct lu_object *next;      /* in the pool once released */
} lu_object;

/* The versions kept of one array: prev(1) .. prev(depth). */
typedef struct lu_history {
  int depth, captured;
  lu_object ***ring;           /* ring[v - 1][chunk] */
  const void ***tables;        /* tables[v - 1][chunk]: the data, for kernels; addresses never move */
} lu_history;

struct lu_store {
  int narrays;
  lu_history *history;
  lu_object *pool;             /* released objects, their buffers reused */
  int64_t live, bytes_held;    /* bytes_held: in memory */
  lu_spill *spill;             /* opened at the first spill */
  int spill_broken;            /* it failed once: told, not tried again */
};

static lu_store *store_of(luisa *lz)
{
  if (!lz->store) {
    lz->store = calloc(1, sizeof *lz->store);
    if (lz->store) {
      lz->store->history = calloc((size_t)(lz->narrays ? lz->narrays : 1), sizeof *lz->store->history);
      if (!lz->store->history) {
        free(lz->store);
        lz->store = NULL;
      } else {
        lz->store->narrays = lz->narrays;
      }
    }
  }
  return lz->store;
}

static size_t packed_bytes(const lu_array *a, int c)
{
  return (size_t)array_volume(a->ndim, a->chunks[c].shape) * array_dtype_size(a->dtype);
}

/* What the windows hold once full, for the budget: every version, or with
 * a spill directory the newest alone (the others may wait on disk) and
 * the frame the largest chunk is compressed in. */
static void count_windows(luisa *lz)
{
  int64_t full = 0;
  size_t largest = 0;
  for (int i = 0; lz->store && i < lz->store->narrays; i++) {
    int depth = lz->store->history[i].depth;
    for (int c = 0; depth && c < lz->arrays[i].nchunks; c++) {
      size_t bytes = packed_bytes(&lz->arrays[i], c);
      full += (int64_t)bytes * (lz->memory.spill ? 1 : depth);
      largest = bytes > largest ? bytes : largest;
    }
  }
  if (lz->memory.spill && largest)
    full += (int64_t)codec_bound(largest);
  atomic_store(&lz->memory.windows, full);
  lu_store *s = lz->store;
  if (store_spilling(lz) && largest && s && !s->spill_broken) {   /* the frame first: no room for it later */
    char why[LU_ERR_MAX] = "";
    if ((!s->spill && spill_open(&s->spill, lz->opts.spill_dir, lz->rank, &lz->memory, why, sizeof why) != LUISA_OK)
        || !spill_frame(s->spill, codec_bound(largest))) {
      s->spill_broken = 1;
      log_write(lz, LUISA_LOG_ERROR, "window versions stay in memory, over opts.store_bytes: %s",
                *why ? why : "out of memory for the spill's frame");
    }
  }
}

/* Keep `depth` earlier versions of `a` from now on; existing ones stay. */
int store_window(luisa *lz, lu_array *a, int depth)
{
  lu_store *s = store_of(lz);
  RETURN_IF(!s, lz, LUISA_ERR_NOMEM, "out of memory for the store");
  lu_history *h = &s->history[a - lz->arrays];
  if (depth <= h->depth)
    return LUISA_OK;
  lu_object ***ring = realloc(h->ring, (size_t)depth * sizeof *ring);
  if (ring)
    h->ring = ring;
  const void ***tables = ring ? realloc(h->tables, (size_t)depth * sizeof *tables) : NULL;
  RETURN_IF(!tables, lz, LUISA_ERR_NOMEM, "out of memory for the window of \"%s\"", a->name);
  h->tables = tables;
  for (int v = h->depth; v < depth; v++) {
    size_t n = (size_t)(a->nchunks ? a->nchunks : 1);
    h->ring[v] = calloc(n, sizeof **h->ring);
    h->tables[v] = calloc(n, sizeof **h->tables);
    if (!h->ring[v] || !h->tables[v]) {   /* versions past depth are never freed: this one goes now */
      free(h->ring[v]);
      free(h->tables[v]);
      return error_set(lz, LUISA_ERR_NOMEM, "out of memory for the window of \"%s\"", a->name);
    }
    h->depth = v + 1;
  }
  count_windows(lz);
  return LUISA_OK;
}

/* The pointer table of version v (1 = the previous step), per local chunk. */
const void **store_table(luisa *lz, lu_array *a, int version)
{
  lu_store *s = lz->store;
  return s && version >= 1 && version <= s->history[a - lz->arrays].depth
         ? s->history[a - lz->arrays].tables[version - 1] : NULL;
}

/* How many versions of a the store keeps (0: no window on it). */
int store_versions_kept(const luisa *lz, const lu_array *a)
{
  return lz->store ? lz->store->history[a - lz->arrays].depth : 0;
}

/* How many earlier versions of a exist so far (the same on every rank). */
int store_versions(const luisa *lz, const lu_array *a)
{
  return lz->store ? lz->store->history[a - lz->arrays].captured : 0;
}

static void release(lu_store *s, lu_object *o)
{
  if (o && --o->refs == 0) {
    if (o->spilled)
      spill_remove(s->spill, o->spilled);
    o->spilled = 0;
    s->live--;
    o->next = s->pool;
    s->pool = o;
  }
}

static void free_data(luisa *lz, lu_store *s, lu_object *o)
{
  memory_free(&lz->memory, LU_USE_STORE, o->data, o->bytes);
  s->bytes_held -= (int64_t)o->bytes;
  o->data = NULL;
}

/* One object out of memory to make room: a pooled buffer first, then the
 * oldest version in memory, written to disk unless it is there already.
 * Returns 0 when there is nothing left to take. */
static int drop_one(luisa *lz, lu_store *s)
{
  for (lu_object *o = s->pool; o; o = o->next)
    if (o->data)
      return free_data(lz, s, o), 1;
  int deepest = 0;
  for (int i = 0; i < s->narrays; i++)
    deepest = s->history[i].depth > deepest ? s->history[i].depth : deepest;
  for (int v = deepest - 1; v >= 0 && s->spill && !s->spill_broken; v--)
    for (int i = 0; i < s->narrays; i++) {
      lu_history *h = &s->history[i];
      for (int c = 0; v < h->depth && c < lz->arrays[i].nchunks; c++) {
        lu_object *o = h->ring[v][c];
        if (!o || !o->data || o->pinned)
          continue;
        char why[LU_ERR_MAX] = "";
        int status = o->spilled ? LUISA_OK : spill_write(s->spill, o->data, o->bytes, &o->spilled, why, sizeof why);
        if (status != LUISA_OK) {
          s->spill_broken = 1;
          log_write(lz, LUISA_LOG_ERROR, "window versions stay in memory, over opts.store_bytes: %s", why);
          return 0;
        }
        free_data(lz, s, o);
        h->tables[v][c] = NULL;
        return 1;
      }
    }
  return 0;
}

/* Past the budget, with a spill directory: room for `bytes` more. */
static void make_room(luisa *lz, lu_store *s, size_t bytes)
{
  while (lz->memory.spill && !memory_fits(&lz->memory, bytes) && drop_one(lz, s))
    ;
}

static void *take_data(luisa *lz, lu_store *s, lu_object *o)
{
  make_room(lz, s, o->bytes);
  o->data = memory_alloc(&lz->memory, LU_USE_STORE, o->bytes);
  if (o->data)
    s->bytes_held += (int64_t)o->bytes;
  return o->data;
}

static lu_object *acquire(luisa *lz, lu_store *s, size_t bytes)
{
  for (lu_object **p = &s->pool; *p; p = &(*p)->next)
    if ((*p)->bytes == bytes) {
      lu_object *o = *p;
      if (!o->data && !take_data(lz, s, o))
        return NULL;
      *p = o->next;
      s->live++;
      return o;
    }
  lu_object *o = calloc(1, sizeof *o);
  if (o)
    o->bytes = bytes;
  if (!o || !take_data(lz, s, o)) {
    free(o);
    return NULL;
  }
  s->live++;
  return o;
}

/* Version v (1 = the previous step) of chunk c back in memory if it went
 * to disk; its address in the kernels' table. NULL if it cannot be. */
static const void *resident(luisa *lz, lu_store *s, int array, int v, int c)
{
  lu_history *h = &s->history[array];
  lu_object *o = h->ring[v - 1][c];
  if (!o || o->data || !o->spilled)
    return o ? o->data : NULL;
  char why[LU_ERR_MAX];
  if (!take_data(lz, s, o))
    return NULL;
  if (spill_read(s->spill, o->spilled, o->data, o->bytes, why, sizeof why) != LUISA_OK) {
    log_write(lz, LUISA_LOG_ERROR, "step %lld of chunk %d of \"%s\" could not be read back from opts.spill_dir: "
              "%s", (long long)o->step, c, lz->arrays[array].name, why);
    free_data(lz, s, o);
    return NULL;
  }
  h->tables[v - 1][c] = o->data;
  return o->data;
}

int store_spilling(const luisa *lz)
{
  return lz->memory.spill && lz->memory.limit;
}

static void pin(luisa *lz, lu_store *s, const int *arrays, const int *versions, int n, int on)
{
  for (int k = 0; k < n; k++) {
    lu_history *h = &s->history[arrays[k]];
    for (int c = 0; versions[k] >= 1 && versions[k] <= h->depth && c < lz->arrays[arrays[k]].nchunks; c++)
      if (h->ring[versions[k] - 1][c])
        h->ring[versions[k] - 1][c]->pinned = on;
  }
}

/* What a kernel is about to read, in memory: versions[k] of arrays[k]. */
void store_restore(luisa *lz, const int *arrays, const int *versions, int n)
{
  lu_store *s = lz->store;
  if (!s)
    return;
  pin(lz, s, arrays, versions, n, 1);   /* bringing one back must not drop another */
  for (int k = 0; k < n; k++)
    for (int c = 0; versions[k] >= 1 && versions[k] <= s->history[arrays[k]].depth &&
                    c < lz->arrays[arrays[k]].nchunks; c++)
      resident(lz, s, arrays[k], versions[k], c);
  pin(lz, s, arrays, versions, n, 0);
}

/* Keep at most `depth` versions of `a`: the older ones are released, and
 * the buffers pooled for reuse are freed (the windows just changed). */
void store_trim(luisa *lz, lu_array *a, int depth)
{
  lu_store *s = lz->store;
  if (!s || depth >= s->history[a - lz->arrays].depth)
    return;
  lu_history *h = &s->history[a - lz->arrays];
  for (int v = depth; v < h->depth; v++) {
    for (int c = 0; c < a->nchunks; c++)
      release(s, h->ring[v][c]);
    free(h->ring[v]);
    free(h->tables[v]);
  }
  h->depth = depth;
  if (h->captured > depth)
    h->captured = depth;
  for (lu_object *o = s->pool, *next; o; o = next) {
    next = o->next;
    if (o->data)
      free_data(lz, s, o);
    free(o);
  }
  s->pool = NULL;
  count_windows(lz);
}

/* Element strides of a chunk packed in C order, as a layout. */
static void packed_layout(const lu_chunk *c, int ndim, lu_chunk *layout)
{
  *layout = *c;
  layout->first = 0;
  int64_t s = 1;
  for (int d = LUISA_MAX_DIMS - 1; d >= 0; d--) {
    layout->stride[d] = d < ndim ? s : 0;
    if (d < ndim)
      s *= c->shape[d];
  }
}

/* At the end of a step: every window slides by one. The oldest version is
 * released; this step's published chunks are copied in as the newest. A
 * chunk not published leaves a hole that a later use reports. So does one
 * this rank has no memory to keep: the use fails on every rank (its
 * reduction carries the failure), and this step's status stays the same
 * on every rank without a collective of its own (docs/decisions.md). */
int store_capture(luisa *lz, int64_t step)
{
  lu_store *s = lz->store;
  for (int i = 0; s && i < s->narrays; i++) {
    lu_history *h = &s->history[i];
    lu_array *a = &lz->arrays[i];
    if (!h->depth)
      continue;
    for (int c = 0; c < a->nchunks; c++) {
      release(s, h->ring[h->depth - 1][c]);
      for (int v = h->depth - 1; v > 0; v--)
        h->ring[v][c] = h->ring[v - 1][c];
      lu_object *o = NULL;
      if (a->published[c]) {
        const lu_chunk *ch = &a->chunks[c];   /* its bytes fit: luisa_chunk bounded its buffer's */
        o = acquire(lz, s, packed_bytes(a, c));
        if (o) {
          int64_t one[LUISA_MAX_DIMS] = { 1, 1, 1, 1 };
          array_pack(a, ch, a->published[c], ch->offset, ch->shape, one, o->data);
          o->array = i, o->chunk = c, o->owner = lz->rank, o->step = step, o->refs = 1;
        } else {
          log_write(lz, LUISA_LOG_ERROR, "out of memory keeping step %lld of chunk %d of \"%s\": that version "
                    "is dropped, a window that needs it fails", (long long)step, c, a->name);
        }
      }
      h->ring[0][c] = o;
      for (int v = 0; v < h->depth; v++)
        h->tables[v][c] = h->ring[v][c] ? h->ring[v][c]->data : NULL;
    }
    if (h->captured < h->depth)
      h->captured++;
  }
  return LUISA_OK;
}

/* The data of a chunk's version (0: this step's published buffer) and its
 * layout; NULL when it is missing. */
const void *store_version(luisa *lz, const lu_array *a, int version, int chunk, lu_chunk *layout)
{
  const lu_chunk *c = &a->chunks[chunk];
  if (version == 0) {
    *layout = *c;
    return a->published[chunk];
  }
  const void **table = store_table(lz, (lu_array *)a, version);
  packed_layout(c, a->ndim, layout);
  return !table ? NULL : table[chunk] ? table[chunk] : resident(lz, lz->store, (int)(a - lz->arrays), version, chunk);
}

void store_stats(const luisa *lz, int64_t *objects, int64_t *bytes_held)
{
  *objects = lz->store ? lz->store->live : 0;
  *bytes_held = lz->store ? lz->store->bytes_held : 0;
}

void store_free(luisa *lz)
{
  lu_store *s = lz->store;
  if (!s)
    return;
  for (int i = 0; i < s->narrays; i++) {
    lu_history *h = &s->history[i];
    for (int v = 0; v < h->depth; v++) {
      for (int c = 0; c < lz->arrays[i].nchunks; c++)
        release(s, h->ring[v][c]);
      free(h->ring[v]);
      free(h->tables[v]);
    }
    free(h->ring);
    free(h->tables);
  }
  for (lu_object *o = s->pool, *next; o; o = next) {
    next = o->next;
    if (o->data)
      free_data(lz, s, o);
    free(o);
  }
  spill_close(s->spill);
  free(s->history);
  free(s);
  lz->store = NULL;
  atomic_store(&lz->memory.windows, 0);
}
