/* fetch.c: on-demand reads of any part of an array by a callback on the
 * root, served by the owners while they wait for the root's verdict. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "array.h"
#include "deadline.h"
#include "error.h"
#include "store.h"
#include "fetch.h"

/* Tags above any callback's (exchange tags are callback indices). */
enum { TAG_REQUEST = 30000, TAG_DATA = 30001 };

/* A request: array, version, owner's chunk, then lo and count per axis. */
enum { REQUEST_WORDS = 3 + 2 * LUISA_MAX_DIMS };

/* The bytes of a box of count elements, or 0 when count is not a box or
 * the box does not fit in one MPI message (an int count of bytes). */
static size_t box_bytes(const lu_array *a, const int64_t *count)
{
  int64_t n = array_volume(LUISA_MAX_DIMS, count), size = (int64_t)array_dtype_size(a->dtype);
  return n < 0 || n > INT_MAX / size ? 0 : (size_t)(n * size);
}

/* Pack the box of a chunk version into a new buffer; NULL if missing, or
 * if the box is not inside the chunk. */
static void *pack_box(luisa *lz, lu_array *a, int version, int chunk, const int64_t *lo, const int64_t *count,
                      size_t *bytes)
{
  int64_t one[LUISA_MAX_DIMS] = { 1, 1, 1, 1 };
  *bytes = box_bytes(a, count);
  if (!*bytes || array_box_volume(a, chunk, lo, count, one) < 0)
    return NULL;
  lu_chunk layout;
  const void *src = store_version(lz, a, version, chunk, &layout);
  void *buf = src ? memory_alloc(&lz->memory, LU_USE_TRANSFER, *bytes) : NULL;
  if (buf)
    array_pack(a, &layout, src, lo, count, one, buf);
  return buf;
}

/* Serve one request from the root. A missing chunk is answered with no
 * data, which the root reports. */
static int serve(luisa *lz)
{
  int64_t req[REQUEST_WORDS];
  RETURN_IF(MPI_Recv(req, REQUEST_WORDS, MPI_INT64_T, 0, TAG_REQUEST, lz->comm, MPI_STATUS_IGNORE) != MPI_SUCCESS,
            lz, LUISA_ERR_MPI, "MPI_Recv of a fetch request failed");
  lu_array *a = req[0] >= 0 && req[0] < lz->narrays ? &lz->arrays[req[0]] : NULL;
  size_t bytes = 0;
  void *buf = a && req[2] >= 0 && req[2] < a->nchunks
              ? pack_box(lz, a, (int)req[1], (int)req[2], req + 3, req + 3 + LUISA_MAX_DIMS, &bytes) : NULL;
  int rc = MPI_Send(buf, buf ? (int)bytes : 0, MPI_BYTE, 0, TAG_DATA, lz->comm);
  if (buf) {
    lz->bytes_moved += (int64_t)bytes;
    lz->transfers++;
  }
  memory_free(&lz->memory, LU_USE_TRANSFER, buf, bytes);
  RETURN_IF(rc != MPI_SUCCESS, lz, LUISA_ERR_MPI, "MPI_Send of fetched data failed");
  return LUISA_OK;
}

/* The root's verdict to all; meanwhile the others serve fetches, and
 * queries under a deadline. Collective. */
int fetch_serve_bcast(luisa *lz, int *v, int n)
{
  MPI_Request done;
  RETURN_IF(MPI_Ibcast(v, n, MPI_INT, 0, lz->comm, &done) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
            "MPI_Ibcast from the root failed");
  double start = deadline_start(lz, LU_PHASE_VERDICT);
  for (;;) {
    int finished = 0, asked = 0;
    RETURN_IF(MPI_Test(&done, &finished, MPI_STATUS_IGNORE) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
              "MPI_Test failed");
    if (finished)
      return LUISA_OK;
    if (lz->rank != 0) {
      RETURN_IF(MPI_Iprobe(0, TAG_REQUEST, lz->comm, &asked, MPI_STATUS_IGNORE) != MPI_SUCCESS, lz,
                LUISA_ERR_MPI, "MPI_Iprobe failed");
      if (asked)
        FORWARD_IF_ERROR(serve(lz));
    }
    FORWARD_IF_ERROR(deadline_check(lz, start));
  }
}

/* On the root: the elements lo .. lo + count - 1 of chunk `chunk` of a
 * (owner `owner`, version `version`), as doubles at out in C order over
 * count. 0 when the owner has no such data, or the box is not one of its
 * chunk or too large for one message (luisa.fetch refuses those first). */
int fetch_box(luisa *lz, lu_array *a, int version, int owner, int chunk, const int64_t *lo, const int64_t *count,
              double *out)
{
  size_t bytes = box_bytes(a, count);
  void *raw;
  if (!bytes)
    return 0;
  if (owner == lz->rank) {
    raw = pack_box(lz, a, version, chunk, lo, count, &bytes);
    if (!raw)
      return 0;
  } else {
    int64_t req[REQUEST_WORDS] = { a - lz->arrays, version, chunk };
    memcpy(req + 3, lo, LUISA_MAX_DIMS * sizeof *lo);
    memcpy(req + 3 + LUISA_MAX_DIMS, count, LUISA_MAX_DIMS * sizeof *count);
    raw = memory_alloc(&lz->memory, LU_USE_TRANSFER, bytes);
    MPI_Status status;
    int got = 0;
    if (!raw || MPI_Send(req, REQUEST_WORDS, MPI_INT64_T, owner, TAG_REQUEST, lz->comm) != MPI_SUCCESS ||
        MPI_Recv(raw, (int)bytes, MPI_BYTE, owner, TAG_DATA, lz->comm, &status) != MPI_SUCCESS ||
        MPI_Get_count(&status, MPI_BYTE, &got) != MPI_SUCCESS || (size_t)got != bytes) {
      memory_free(&lz->memory, LU_USE_TRANSFER, raw, bytes);
      return 0;
    }
  }
  size_t n = bytes / array_dtype_size(a->dtype);
  for (size_t i = 0; i < n; i++)
    switch (a->dtype) {
    case LUISA_F64: out[i] = ((const double *)raw)[i]; break;
    case LUISA_F32: out[i] = ((const float *)raw)[i]; break;
    case LUISA_I64: out[i] = (double)((const int64_t *)raw)[i]; break;
    case LUISA_I32: out[i] = ((const int32_t *)raw)[i]; break;
    }
  memory_free(&lz->memory, LU_USE_TRANSFER, raw, bytes);
  return 1;
}
