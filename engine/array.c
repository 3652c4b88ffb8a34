/* array.c: declarations of distributed arrays and of the chunks this rank
 * owns, and the per-step table of published data. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "error.h"
#include "array.h"

#define VOLUME_LIMIT ((int64_t)1 << 62)
/* A chunk's buffer in bytes: pointer differences and offsets must hold it. */
#define BYTES_LIMIT (PTRDIFF_MAX < INT64_MAX ? (int64_t)PTRDIFF_MAX : INT64_MAX)

static int name_is_valid(const char *name)
{
  size_t n = strlen(name);
  if (n == 0 || n >= LU_NAME_MAX || (name[0] >= '0' && name[0] <= '9'))
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

/* The name of an array or a parameter, checked for the call `fn`. */
int array_check_name(luisa *lz, const char *fn, const char *name)
{
  RETURN_IF(!name || !name_is_valid(name), lz, LUISA_ERR_ARG,
            "%s: name \"%s\" is not valid: expected 1 to %d characters [A-Za-z0-9_], not starting with a digit",
            fn, name ? name : "(null)", LU_NAME_MAX - 1);
  return LUISA_OK;
}

/* "[a, b, c]" into buf, for messages. */
const char *array_format_index(char *buf, size_t cap, int ndim, const int64_t *v)
{
  size_t n = 0;
  buf[0] = '\0';
  for (int d = 0; d < ndim && n < cap; d++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "[", (long long)v[d]);
  if (n < cap)
    snprintf(buf + n, cap - n, "]");
  return buf;
}

size_t array_dtype_size(luisa_dtype dtype)
{
  return dtype == LUISA_F32 || dtype == LUISA_I32 ? 4 : 8;
}

/* Elements of the box lo + k * step (k < count, per axis, 4 axes) of local
 * chunk `chunk`, or -1 when any of them lies outside the chunk. Boxes come
 * from plans computed in Lua doubles: compared here without overflow
 * before anything is packed. */
int64_t array_box_volume(const lu_array *a, int chunk, const int64_t *lo, const int64_t *count,
                         const int64_t *step)
{
  if (chunk < 0 || chunk >= a->nchunks)
    return -1;
  const lu_chunk *c = &a->chunks[chunk];
  int64_t n = 1;
  for (int d = 0; d < LUISA_MAX_DIMS; d++) {
    if (lo[d] < c->offset[d] || lo[d] - c->offset[d] >= c->shape[d] || count[d] < 1 || step[d] < 1)
      return -1;
    if (count[d] - 1 > (c->shape[d] - 1 - (lo[d] - c->offset[d])) / step[d])
      return -1;
    n *= count[d];   /* count <= the chunk's extent: at most the chunk's volume */
  }
  return n;
}

/* Copy the elements lo + k * step (k < count, per axis, 4 axes) of a chunk
 * stored as `layout` says, from src into dst in C order. The box lies in
 * the chunk (array_box_volume), so no index passes the buffer's highest
 * element, which luisa_chunk bounded: none of this arithmetic overflows. */
void array_pack(const lu_array *a, const lu_chunk *layout, const void *src, const int64_t *lo,
                const int64_t *count, const int64_t *step, void *dst)
{
  const char *from = src;
  char *to = dst;
  size_t size = array_dtype_size(a->dtype);
  const int64_t *st = layout->stride;
  int64_t base = layout->first;
  for (int d = 0; d < LUISA_MAX_DIMS; d++)
    base += (lo[d] - layout->offset[d]) * st[d];
  int64_t s3 = step[3] * st[3];
  for (int64_t i0 = 0; i0 < count[0]; i0++)
    for (int64_t i1 = 0; i1 < count[1]; i1++)
      for (int64_t i2 = 0; i2 < count[2]; i2++) {
        int64_t at = base + i0 * step[0] * st[0] + i1 * step[1] * st[1] + i2 * step[2] * st[2];
        if (s3 == 1) {   /* contiguous rows: one copy */
          memcpy(to, from + (size_t)at * size, (size_t)count[3] * size);
          to += (size_t)count[3] * size;
        } else {
          for (int64_t i3 = 0; i3 < count[3]; i3++, to += size)
            memcpy(to, from + (size_t)(at + i3 * s3) * size, size);
        }
      }
}

void array_unpack(const lu_array *a, const lu_chunk *layout, const int64_t *lo, const int64_t *count,
                  const void *src, void *dst)
{
  size_t size = array_dtype_size(a->dtype);
  const char *from = src;
  char *to = dst;
  int64_t idx[LUISA_MAX_DIMS] = { 0 };
  for (;;) {
    int64_t at = layout->first;
    for (int d = 0; d < LUISA_MAX_DIMS; d++)
      at += (lo[d] + idx[d]) * layout->stride[d];
    memcpy(to + (size_t)at * size, from, size);
    from += size;
    int d = LUISA_MAX_DIMS - 1;
    while (d >= 0 && ++idx[d] == count[d])
      idx[d--] = 0;
    if (d < 0)
      return;
  }
}

const char *array_dtype_name(luisa_dtype dtype)
{
  switch (dtype) {
  case LUISA_F64: return "f64";
  case LUISA_F32: return "f32";
  case LUISA_I64: return "i64";
  case LUISA_I32: return "i32";
  }
  return NULL;
}

/* Product of extents, or -1 past VOLUME_LIMIT or for an extent below 1. */
int64_t array_volume(int ndim, const int64_t *shape)
{
  int64_t v = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 1 || v > VOLUME_LIMIT / shape[d])
      return -1;
    v *= shape[d];
  }
  return v;
}

lu_array *array_find(luisa *lz, const char *name)
{
  for (int i = 0; i < lz->narrays; i++)
    if (strcmp(lz->arrays[i].name, name) == 0)
      return &lz->arrays[i];
  return NULL;
}

int luisa_array(luisa *lz, const char *name, luisa_dtype dtype, int ndim, const int64_t *shape)
{
  if (!lz)
    return LUISA_ERR_ARG;
  FORWARD_IF_ERROR(array_check_name(lz, "luisa_array", name));
  RETURN_IF(lz->stepped, lz, LUISA_ERR_ORDER,
            "luisa_array(\"%s\"): arrays must be declared before the first luisa_step", name);
  RETURN_IF(array_find(lz, name), lz, LUISA_ERR_NAME,
            "luisa_array: array \"%s\" is already declared", name);
  RETURN_IF(!array_dtype_name(dtype), lz, LUISA_ERR_ARG,
            "luisa_array(\"%s\"): dtype %d is not one of LUISA_F64, LUISA_F32, LUISA_I64, LUISA_I32",
            name, (int)dtype);
  RETURN_IF(ndim < 1 || ndim > LUISA_MAX_DIMS, lz, LUISA_ERR_ARG,
            "luisa_array(\"%s\"): ndim is %d, expected 1 to %d", name, ndim, LUISA_MAX_DIMS);
  RETURN_IF(!shape, lz, LUISA_ERR_ARG, "luisa_array(\"%s\"): shape is NULL", name);
  for (int d = 0; d < ndim; d++)
    RETURN_IF(shape[d] < 1, lz, LUISA_ERR_ARG,
              "luisa_array(\"%s\"): shape[%d] is %lld, expected >= 1", name, d, (long long)shape[d]);
  char b1[128];
  RETURN_IF(array_volume(ndim, shape) < 0, lz, LUISA_ERR_ARG,
            "luisa_array(\"%s\"): the global shape %s has more than 2^62 elements", name,
            array_format_index(b1, sizeof b1, ndim, shape));

  if (lz->narrays == lz->arrays_cap) {
    int cap = lz->arrays_cap ? 2 * lz->arrays_cap : 8;
    lu_array *grown = lz->arrays_cap <= INT_MAX / 2 ? realloc(lz->arrays, (size_t)cap * sizeof *grown) : NULL;
    RETURN_IF(!grown, lz, LUISA_ERR_NOMEM, "luisa_array(\"%s\"): out of memory", name);
    lz->arrays = grown;
    lz->arrays_cap = cap;
  }
  lu_array *a = &lz->arrays[lz->narrays++];
  memset(a, 0, sizeof *a);
  strcpy(a->name, name);
  a->dtype = dtype;
  a->ndim = ndim;
  for (int d = 0; d < LUISA_MAX_DIMS; d++)
    a->shape[d] = d < ndim ? shape[d] : 1;
  return LUISA_OK;
}

/* Strides and first element of `c` inside the buffer that `layout` describes.
 * Every test is made without overflow (start, alloc_shape are the caller's
 * numbers): once the buffer's bytes fit, so does every element index,
 * first + sum((shape - 1) * stride) being below the buffer's volume. */
static int chunk_place(luisa *lz, const lu_array *a, lu_chunk *c, const luisa_layout *layout)
{
  int64_t alloc[LUISA_MAX_DIMS], start[LUISA_MAX_DIMS];
  luisa_order order = layout ? layout->order : LUISA_ORDER_C;
  RETURN_IF(order != LUISA_ORDER_C && order != LUISA_ORDER_F, lz, LUISA_ERR_ARG,
            "luisa_chunk(\"%s\"): layout order is %d, expected LUISA_ORDER_C or LUISA_ORDER_F",
            a->name, (int)order);
  for (int d = 0; d < a->ndim; d++) {
    alloc[d] = layout && layout->alloc_shape[d] ? layout->alloc_shape[d] : c->shape[d];
    start[d] = layout ? layout->start[d] : 0;
    RETURN_IF(start[d] < 0, lz, LUISA_ERR_ARG, "luisa_chunk(\"%s\"): layout axis %d: start %lld is "
              "negative: expected >= 0", a->name, d, (long long)start[d]);
    /* alloc >= 1 and shape >= 1: alloc - shape cannot overflow, start + shape could */
    RETURN_IF(alloc[d] < 1 || start[d] > alloc[d] - c->shape[d], lz, LUISA_ERR_ARG,
              "luisa_chunk(\"%s\"): layout axis %d: start %lld + chunk extent %lld does not fit "
              "in alloc_shape %lld", a->name, d, (long long)start[d], (long long)c->shape[d],
              (long long)alloc[d]);
  }
  char b1[128];
  int64_t volume = array_volume(a->ndim, alloc), size = (int64_t)array_dtype_size(a->dtype);
  RETURN_IF(volume < 0, lz, LUISA_ERR_ARG,
            "luisa_chunk(\"%s\"): layout alloc_shape %s has more than 2^62 elements", a->name,
            array_format_index(b1, sizeof b1, a->ndim, alloc));
  RETURN_IF(volume > BYTES_LIMIT / size, lz, LUISA_ERR_ARG,
            "luisa_chunk(\"%s\"): the buffer (alloc_shape %s) holds %lld elements of %lld bytes, "
            "more than %lld bytes", a->name, array_format_index(b1, sizeof b1, a->ndim, alloc),
            (long long)volume, (long long)size, (long long)BYTES_LIMIT);
  c->bytes = volume * size;
  int64_t s = 1;
  c->first = 0;
  for (int k = 0; k < a->ndim; k++) {
    int d = order == LUISA_ORDER_C ? a->ndim - 1 - k : k;
    c->stride[d] = s;
    c->first += start[d] * s;
    s *= alloc[d];
  }
  for (int d = a->ndim; d < LUISA_MAX_DIMS; d++)
    c->stride[d] = 0;
  return LUISA_OK;
}

int luisa_chunk(luisa *lz, const char *name, const int64_t *offset, const int64_t *shape,
                const luisa_layout *layout)
{
  if (!lz)
    return LUISA_ERR_ARG;
  RETURN_IF(!name, lz, LUISA_ERR_ARG, "luisa_chunk: name is NULL");
  lu_array *a = array_find(lz, name);
  RETURN_IF(!a, lz, LUISA_ERR_NAME, "luisa_chunk: no array \"%s\" is declared", name);
  RETURN_IF(lz->stepped, lz, LUISA_ERR_ORDER,
            "luisa_chunk(\"%s\"): chunks must be declared before the first luisa_step", name);
  RETURN_IF(!offset || !shape, lz, LUISA_ERR_ARG, "luisa_chunk(\"%s\"): %s is NULL", name,
            offset ? "shape" : "offset");
  char b1[128], b2[128], b3[128];
  for (int d = 0; d < a->ndim; d++)
    RETURN_IF(offset[d] < 0 || shape[d] < 1 || shape[d] > a->shape[d] - offset[d], lz, LUISA_ERR_ARG,
              "luisa_chunk(\"%s\"): chunk at offset %s with shape %s is %s on axis %d "
              "(global shape %s)", name, array_format_index(b1, sizeof b1, a->ndim, offset),
              array_format_index(b2, sizeof b2, a->ndim, shape), shape[d] < 1 ? "empty" : "outside the array",
              d, array_format_index(b3, sizeof b3, a->ndim, a->shape));

  RETURN_IF(a->nchunks >= LU_CHUNKS_MAX, lz, LUISA_ERR_ARG,
            "luisa_chunk(\"%s\"): rank %d already declares %d chunks of this array, the most one rank may",
            name, lz->rank, a->nchunks);

  lu_chunk c;
  memset(&c, 0, sizeof c);
  for (int d = 0; d < LUISA_MAX_DIMS; d++) {
    c.offset[d] = d < a->ndim ? offset[d] : 0;
    c.shape[d] = d < a->ndim ? shape[d] : 1;
  }
  FORWARD_IF_ERROR(chunk_place(lz, a, &c, layout));

  if (a->nchunks == a->chunks_cap) {
    int cap = a->chunks_cap ? 2 * a->chunks_cap : 4;
    lu_chunk *chunks = realloc(a->chunks, (size_t)cap * sizeof *chunks);
    RETURN_IF(!chunks, lz, LUISA_ERR_NOMEM, "luisa_chunk(\"%s\"): out of memory", name);
    a->chunks = chunks;
    const void **published = realloc(a->published, (size_t)cap * sizeof *published);
    RETURN_IF(!published, lz, LUISA_ERR_NOMEM, "luisa_chunk(\"%s\"): out of memory", name);
    a->published = published;
    a->chunks_cap = cap;
  }
  a->published[a->nchunks] = NULL;
  a->chunks[a->nchunks++] = c;
  return LUISA_OK;
}

/* A chunk declared with the strides a simulation rank's buffer has (ranks
 * mode: the analytics rank receives that buffer whole). The numbers come
 * from another rank: every element must lie inside the bytes. */
int array_chunk_strided(luisa *lz, const char *name, const int64_t *offset, const int64_t *shape,
                        const int64_t *stride, int64_t first, int64_t bytes)
{
  FORWARD_IF_ERROR(luisa_chunk(lz, name, offset, shape, NULL));
  lu_array *a = array_find(lz, name);
  lu_chunk *c = &a->chunks[a->nchunks - 1];
  int64_t size = (int64_t)array_dtype_size(a->dtype), elems = bytes / size, last = first;
  int fits = bytes > 0 && bytes <= BYTES_LIMIT && bytes % size == 0 && first >= 0 && first < elems;
  for (int d = 0; fits && d < a->ndim; d++) {   /* no product can overflow: each stays below elems */
    int64_t more = shape[d] - 1;   /* >= 0: luisa_chunk checked the shape */
    fits = stride[d] >= 0 && (more == 0 || stride[d] <= (elems - 1 - last) / more);
    last += fits ? more * stride[d] : 0;
  }
  if (!fits) {
    a->nchunks--;
    return error_set(lz, LUISA_ERR_DATA, "chunk of \"%s\" at its buffer's element %lld: the strides sent do not fit "
                     "its %lld bytes", name, (long long)first, (long long)bytes);
  }
  for (int d = 0; d < LUISA_MAX_DIMS; d++)
    c->stride[d] = d < a->ndim ? stride[d] : 0;
  c->first = first;
  c->bytes = bytes;
  return LUISA_OK;
}

/* Whether a chunk travels as its whole buffer (ghost cells and padding
 * included: one contiguous copy, or none when handed over) rather than
 * packed: when the buffer is not much larger than the chunk. */
int array_whole_buffer(const lu_array *a, const lu_chunk *c)
{
  int64_t packed = array_volume(LUISA_MAX_DIMS, c->shape) * (int64_t)array_dtype_size(a->dtype);
  return c->bytes - packed <= (packed / 8 > 4096 ? packed / 8 : 4096);
}

int luisa_field_writable(luisa *lz, const char *name)
{
  if (!lz)
    return LUISA_ERR_ARG;
  RETURN_IF(!name, lz, LUISA_ERR_ARG, "luisa_field_writable: name is NULL");
  lu_array *a = array_find(lz, name);
  RETURN_IF(!a, lz, LUISA_ERR_NAME, "luisa_field_writable: no array \"%s\" is declared", name);
  RETURN_IF(lz->stepped, lz, LUISA_ERR_ORDER,
            "luisa_field_writable(\"%s\"): call it before the first luisa_step", name);
  a->writable = 1;
  return LUISA_OK;
}

void array_forget_published(luisa *lz)
{
  for (int i = 0; i < lz->narrays; i++)
    for (int c = 0; c < lz->arrays[i].nchunks; c++)
      lz->arrays[i].published[c] = NULL;
}

void array_free_all(luisa *lz)
{
  for (int i = 0; i < lz->narrays; i++) {
    free(lz->arrays[i].chunks);
    free(lz->arrays[i].published);
    free(lz->arrays[i].boxes);
    free(lz->arrays[i].origin);
  }
  free(lz->arrays);
  lz->arrays = NULL;
  lz->narrays = lz->arrays_cap = 0;
}
