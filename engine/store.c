/* store.c: the objects the engine keeps past a step: earlier versions of
 * each rank's own chunks for windows, owned here, counted, released by refcount. */
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "array.h"
#include "error.h"
#include "log.h"
#include "store.h"

/* A chunk's elements at one step, packed in C order. */
typedef struct lu_object {
  int array, chunk, owner;
  int64_t step;
  size_t bytes;
  int refs;
  void *data;
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
  int64_t live, bytes_held;
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
    s->live--;
    o->next = s->pool;
    s->pool = o;
  }
}

static lu_object *acquire(lu_store *s, size_t bytes)
{
  for (lu_object **p = &s->pool; *p; p = &(*p)->next)
    if ((*p)->bytes == bytes) {
      lu_object *o = *p;
      *p = o->next;
      s->live++;
      return o;
    }
  lu_object *o = calloc(1, sizeof *o);
  if (o)
    o->data = malloc(bytes ? bytes : 1);
  if (!o || !o->data) {
    free(o);
    return NULL;
  }
  o->bytes = bytes;
  s->live++;
  s->bytes_held += (int64_t)bytes;
  return o;
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
    s->bytes_held -= (int64_t)o->bytes;
    free(o->data);
    free(o);
  }
  s->pool = NULL;
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
        o = acquire(s, (size_t)array_volume(a->ndim, ch->shape) * array_dtype_size(a->dtype));
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
  return table ? table[chunk] : NULL;
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
    free(o->data);
    free(o);
  }
  free(s->history);
  free(s);
  lz->store = NULL;
}
