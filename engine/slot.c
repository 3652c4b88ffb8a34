/* slot.c: the chunks published for one step. The executor keeps one slot
 * per step in flight; the copy buffers stay with the slot, so a run in
 * thread mode allocates them once. */
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "array.h"
#include "error.h"
#include "slot.h"

/* Room for chunk c of array a. */
static int reserve(lu_slot *s, int a, int c)
{
  if (a >= s->narrays) {
    int n = a + 1;
    int *counts = realloc(s->nchunks, (size_t)n * sizeof *counts);
    if (!counts)
      return 0;
    s->nchunks = counts;
    lu_slot_chunk **chunks = realloc(s->chunks, (size_t)n * sizeof *chunks);
    if (!chunks)
      return 0;
    s->chunks = chunks;
    for (int k = s->narrays; k < n; k++) {
      s->nchunks[k] = 0;
      s->chunks[k] = NULL;
    }
    s->narrays = n;
  }
  if (c >= s->nchunks[a]) {
    lu_slot_chunk *grown = realloc(s->chunks[a], (size_t)(c + 1) * sizeof *grown);
    if (!grown)
      return 0;
    memset(grown + s->nchunks[a], 0, (size_t)(c + 1 - s->nchunks[a]) * sizeof *grown);
    s->chunks[a] = grown;
    s->nchunks[a] = c + 1;
  }
  return 1;
}

static void give_back(lu_slot_chunk *k)
{
  if (k->handed) {
    void *data = k->handed;
    k->handed = NULL;
    k->release(data, k->user);
  }
}

/* The step of another slot of the ring still holding `data` handed over
 * as chunk c of array a, or -1. Only that chunk is looked at: a check per
 * publish that costs the ring's length, not the rank's chunks. */
static int64_t still_held(const lu_slot *ring, int nring, const lu_slot *s, int a, int c, const void *data)
{
  for (int k = 0; k < nring; k++) {
    const lu_slot *o = &ring[k];
    if (o != s && a < o->narrays && c < o->nchunks[a] && o->chunks[a][c].handed == data)
      return o->step;
  }
  return -1;
}

int slot_put(luisa *lz, lu_slot *ring, int nring, lu_slot *s, int a, int c, const void *data,
             luisa_release_fn *release, void *user)
{
  int64_t held = release ? still_held(ring, nring, s, a, c, data) : -1;
  RETURN_IF(held >= 0, lz, LUISA_ERR_ARG, "luisa_publish_handover(\"%s\", chunk %d): this buffer (%p) is still "
            "the engine's, handed over at step %lld and not yet given back through its release callback: hand "
            "over another buffer (or use luisa_publish)", lz->arrays[a].name, c, data, (long long)held);
  RETURN_IF(!reserve(s, a, c), lz, LUISA_ERR_NOMEM, "luisa_publish(\"%s\", chunk %d): out of memory",
            lz->arrays[a].name, c);
  lu_slot_chunk *k = &s->chunks[a][c];
  give_back(k);
  k->data = data;
  k->own = release ? NULL : (void *)data;
  if (release) {
    k->handed = (void *)data;
    k->release = release;
    k->user = user;
  }
  return LUISA_OK;
}

void slot_drop(lu_slot *s, int a, int c)
{
  if (a < s->narrays && c < s->nchunks[a]) {
    give_back(&s->chunks[a][c]);
    s->chunks[a][c].data = NULL;
  }
}

int slot_copy(luisa *lz, lu_slot *s)
{
  for (int a = 0; a < s->narrays; a++)
    for (int c = 0; c < s->nchunks[a]; c++) {
      lu_slot_chunk *k = &s->chunks[a][c];
      if (!k->data || k->handed || k->data == k->copy)
        continue;
      size_t bytes = (size_t)lz->arrays[a].chunks[c].bytes;
      if (bytes > k->copy_cap) {
        void *grown = memory_realloc(&lz->memory, LU_USE_COPY, k->copy, k->copy_cap, bytes);
        RETURN_IF(!grown, lz, LUISA_ERR_NOMEM, "out of memory for a copy of chunk %d of \"%s\" (%zu bytes)", c,
                  lz->arrays[a].name, bytes);
        k->copy = grown;
        k->copy_cap = bytes;
      }
      memcpy(k->copy, k->data, bytes);
      k->data = k->copy;
    }
  return LUISA_OK;
}

int slot_note_writes(lu_slot *s, const lu_write *w, int n)
{
  s->nwrites = 0;
  if (n > s->writes_cap) {
    lu_write *grown = realloc(s->writes, (size_t)n * sizeof *grown);
    if (!grown)
      return LUISA_ERR_NOMEM;
    s->writes = grown;
    s->writes_cap = n;
  }
  if (n)
    memcpy(s->writes, w, (size_t)n * sizeof *w);
  s->nwrites = n;
  return LUISA_OK;
}

/* One box between two buffers of the same layout. */
static void copy_box(const lu_chunk *ch, size_t size, const lu_write *w, const char *src, char *dst)
{
  int64_t idx[LUISA_MAX_DIMS] = { 0 };
  for (;;) {
    int64_t at = ch->first;
    for (int d = 0; d < LUISA_MAX_DIMS; d++)
      at += (w->lo[d] + idx[d]) * ch->stride[d];
    memcpy(dst + (size_t)at * size, src + (size_t)at * size, size);
    int d = LUISA_MAX_DIMS - 1;
    while (d >= 0 && ++idx[d] == w->n[d])
      idx[d--] = 0;
    if (d < 0)
      return;
  }
}

static const lu_slot_chunk *chunk_in(const lu_slot *s, int a, int c)
{
  return a < s->narrays && c < s->nchunks[a] ? &s->chunks[a][c] : NULL;
}

int slot_write_back(luisa *lz, const lu_slot *from, const lu_slot *to)
{
  int skipped = 0;
  for (int k = 0; k < from->nwrites; k++) {
    const lu_write *w = &from->writes[k];
    const lu_array *a = &lz->arrays[w->array];
    const lu_slot_chunk *src = chunk_in(from, w->array, w->chunk), *dst = chunk_in(to, w->array, w->chunk);
    if (src && dst && dst->own == src->data)   /* the same buffer: written in place already */
      continue;
    if (!src || !src->data || !dst || !dst->own) {
      skipped++;
      continue;
    }
    copy_box(&a->chunks[w->chunk], array_dtype_size(a->dtype), w, src->data, dst->own);
  }
  return skipped;
}

void slot_show(luisa *lz, const lu_slot *s)
{
  for (int a = 0; a < lz->narrays; a++)
    for (int c = 0; c < lz->arrays[a].nchunks; c++)
      lz->arrays[a].published[c] = a < s->narrays && c < s->nchunks[a] ? s->chunks[a][c].data : NULL;
}

void slot_release(lu_slot *s)
{
  for (int a = 0; a < s->narrays; a++)
    for (int c = 0; c < s->nchunks[a]; c++) {
      give_back(&s->chunks[a][c]);
      s->chunks[a][c].data = NULL;
    }
}

size_t slot_copy_bytes(const luisa *lz, const lu_slot *s)
{
  size_t more = 0;
  for (int a = 0; a < s->narrays; a++)
    for (int c = 0; c < s->nchunks[a]; c++) {
      const lu_slot_chunk *k = &s->chunks[a][c];
      size_t bytes = (size_t)lz->arrays[a].chunks[c].bytes;
      if (k->data && !k->handed && k->data != k->copy && bytes > k->copy_cap)
        more += bytes - k->copy_cap;
    }
  return more;
}

void slot_unpool(luisa *lz, lu_slot *s)
{
  for (int a = 0; a < s->narrays; a++)
    for (int c = 0; c < s->nchunks[a]; c++) {
      lu_slot_chunk *k = &s->chunks[a][c];
      if (k->data == k->copy)
        k->data = NULL;
      memory_free(&lz->memory, LU_USE_COPY, k->copy, k->copy_cap);
      k->copy = NULL;
      k->copy_cap = 0;
    }
}

void slot_free(luisa *lz, lu_slot *s)
{
  slot_release(s);
  slot_unpool(lz, s);
  for (int a = 0; a < s->narrays; a++) {
    free(s->chunks[a]);
  }
  free(s->chunks);
  free(s->nchunks);
  free(s->err);
  free(s->writes);
  memset(s, 0, sizeof *s);
}
