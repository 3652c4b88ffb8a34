/* exchange.c: the transfers a plan fixes at compile time (halos, data of
 * arrays decomposed differently), pushed by owners on persistent requests. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "array.h"
#include "deadline.h"
#include "error.h"
#include "store.h"
#include "exchange.h"

/* A box of an array's elements (lo + k*step, k < count per axis) that the
 * owner packs, in C order, at `offset` bytes into a message. */
typedef struct lu_piece {
  lu_array *array;
  int chunk, version;          /* version 0: this step's data, k: k steps ago */
  int64_t lo[LUISA_MAX_DIMS], count[LUISA_MAX_DIMS], step[LUISA_MAX_DIMS];
  size_t offset;
} lu_piece;

typedef struct lu_message {
  int peer;
  size_t bytes;
  char *buf;
  MPI_Request request;
  int npieces;
  lu_piece *pieces;            /* sends only */
} lu_message;

struct lu_exchange {
  lu_memory *mem;              /* counts the message buffers */
  int nsend, nrecv;
  lu_message *send, *recv;
  MPI_Request *requests;       /* receives then sends, for Startall/Waitall */
};

lu_exchange *exchange_new(lu_memory *mem, int nsend, int nrecv)
{
  lu_exchange *x = calloc(1, sizeof *x);
  if (!x)
    return NULL;
  x->mem = mem;
  x->send = calloc((size_t)(nsend ? nsend : 1), sizeof *x->send);
  x->recv = calloc((size_t)(nrecv ? nrecv : 1), sizeof *x->recv);
  x->requests = calloc((size_t)(nsend + nrecv + 1), sizeof *x->requests);
  if (!x->send || !x->recv || !x->requests) {
    exchange_free(x);
    return NULL;
  }
  for (int i = 0; i < nsend; i++)
    x->send[i].request = MPI_REQUEST_NULL;
  for (int i = 0; i < nrecv; i++)
    x->recv[i].request = MPI_REQUEST_NULL;
  x->nsend = nsend;
  x->nrecv = nrecv;
  return x;
}

/* Message i: its peer and size, and for a send its pieces. Returns the
 * message buffer (where a receive lands), or NULL when out of memory. */
void *exchange_message(lu_exchange *x, int is_send, int i, int peer, size_t bytes, int npieces)
{
  lu_message *m = is_send ? &x->send[i] : &x->recv[i];
  m->peer = peer;
  m->bytes = bytes;
  m->buf = memory_alloc(x->mem, LU_USE_TRANSFER, bytes);
  if (m->buf)
    memset(m->buf, 0, bytes);
  m->pieces = npieces ? calloc((size_t)npieces, sizeof *m->pieces) : NULL;
  if (!m->buf || (npieces && !m->pieces))
    return NULL;
  m->npieces = npieces;
  return m->buf;
}

/* Piece k of send i. 0 when it does not lie inside its chunk or its bytes
 * inside the message: the plan, computed in Lua doubles, is checked before
 * anything is packed. */
int exchange_piece(lu_exchange *x, int i, int k, lu_array *array, int chunk, int version,
                   const int64_t *lo, const int64_t *count, const int64_t *step, size_t offset)
{
  lu_message *m = &x->send[i];
  if (k < 0 || k >= m->npieces || chunk < 0 || chunk >= array->nchunks)
    return 0;
  lu_piece p;
  p.array = array;
  p.chunk = chunk;
  p.version = version;
  p.offset = offset;
  for (int d = 0; d < LUISA_MAX_DIMS; d++) {
    p.lo[d] = d < array->ndim ? lo[d] : 0;
    p.count[d] = d < array->ndim ? count[d] : 1;
    p.step[d] = d < array->ndim ? step[d] : 1;
  }
  int64_t n = array_box_volume(array, chunk, p.lo, p.count, p.step);
  if (n < 0 || offset > m->bytes || (uint64_t)n > (m->bytes - offset) / array_dtype_size(array->dtype))
    return 0;
  m->pieces[k] = p;
  return 1;
}

/* Persistent requests, once every message is described. Local. MPI counts
 * are ints: a larger message is refused, never truncated. */
int exchange_commit(luisa *lz, lu_exchange *x, int tag)
{
  for (int i = 0; i < x->nsend + x->nrecv; i++) {
    const lu_message *m = i < x->nsend ? &x->send[i] : &x->recv[i - x->nsend];
    RETURN_IF(m->bytes > INT_MAX, lz, LUISA_ERR_ARG, "a planned transfer %s rank %d is %zu bytes, more than "
              "one MPI message carries (%d bytes)", i < x->nsend ? "to" : "from", m->peer, m->bytes, INT_MAX);
  }
  for (int i = 0; i < x->nrecv; i++) {
    lu_message *m = &x->recv[i];
    RETURN_IF(MPI_Recv_init(m->buf, (int)m->bytes, MPI_BYTE, m->peer, tag, lz->comm, &m->request) != MPI_SUCCESS,
              lz, LUISA_ERR_MPI, "MPI_Recv_init failed");
    x->requests[i] = m->request;
  }
  for (int i = 0; i < x->nsend; i++) {
    lu_message *m = &x->send[i];
    RETURN_IF(MPI_Send_init(m->buf, (int)m->bytes, MPI_BYTE, m->peer, tag, lz->comm, &m->request) != MPI_SUCCESS,
              lz, LUISA_ERR_MPI, "MPI_Send_init failed");
    x->requests[x->nrecv + i] = m->request;
  }
  return LUISA_OK;
}

/* Copy a piece out of the chunk version it reads. 0 if that is missing; a
 * version older than the run itself is no error: the receiver waits for it
 * too and sends nothing of it to a kernel. */
static int pack(luisa *lz, const lu_piece *p, char *dst)
{
  lu_chunk layout;
  if (p->version > store_versions(lz, p->array))
    return 1;
  const void *src = store_version(lz, p->array, p->version, p->chunk, &layout);
  if (!src)
    return 0;
  array_pack(p->array, &layout, src, p->lo, p->count, p->step, dst + p->offset);
  return 1;
}

/* Start every receive, pack and start every send; exchange_finish waits
 * for them, so that the work that needs none runs meanwhile. Collective
 * among the ranks the plan pairs. A piece whose chunk was not published is
 * still sent (so no peer waits forever) and named in msg; *complete is 0
 * then. */
int exchange_start(luisa *lz, lu_exchange *x, int *complete, char *msg, size_t cap)
{
  *complete = 1;
  if (x->nrecv)
    RETURN_IF(MPI_Startall(x->nrecv, x->requests) != MPI_SUCCESS, lz, LUISA_ERR_MPI, "MPI_Startall failed");
  for (int i = 0; i < x->nsend; i++)
    for (int k = 0; k < x->send[i].npieces; k++) {
      const lu_piece *p = &x->send[i].pieces[k];
      if (!pack(lz, p, x->send[i].buf) && *complete) {
        *complete = 0;
        const int *from = p->array->origin ? &p->array->origin[2 * p->chunk] : NULL;   /* ranks mode */
        snprintf(msg, cap, "chunk %d of array \"%s\" was not published on %srank %d%s, and %srank %d needs "
                 "part of it: call luisa_publish before luisa_step", from ? from[1] : p->chunk, p->array->name,
                 from ? "simulation " : "", from ? from[0] : lz->rank, p->version ? " at that earlier step" : "",
                 from ? "analytics " : "", x->send[i].peer);
      }
    }
  if (x->nsend)
    RETURN_IF(MPI_Startall(x->nsend, x->requests + x->nrecv) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
              "MPI_Startall failed");
  return LUISA_OK;
}

int exchange_finish(luisa *lz, lu_exchange *x)
{
  FORWARD_IF_ERROR(deadline_wait(lz, x->nrecv + x->nsend, x->requests, LU_PHASE_TRANSFERS, "planned transfers"));
  lz->bytes_moved += exchange_bytes_sent(x);
  lz->transfers += x->nsend;
  return LUISA_OK;
}

/* Bytes sent to and expected from each rank (x may be NULL: nothing). */
void exchange_sizes(const lu_exchange *x, int size, int64_t *to, int64_t *from)
{
  memset(to, 0, (size_t)size * sizeof *to);
  memset(from, 0, (size_t)size * sizeof *from);
  for (int i = 0; x && i < x->nsend; i++)
    to[x->send[i].peer] += (int64_t)x->send[i].bytes;
  for (int i = 0; x && i < x->nrecv; i++)
    from[x->recv[i].peer] += (int64_t)x->recv[i].bytes;
}

size_t exchange_bytes_sent(const lu_exchange *x)
{
  size_t n = 0;
  for (int i = 0; i < x->nsend; i++)
    n += x->send[i].bytes;
  return n;
}

void exchange_free(lu_exchange *x)
{
  if (!x)
    return;
  for (int i = 0; i < x->nrecv; i++) {
    if (x->recv[i].request != MPI_REQUEST_NULL)
      MPI_Request_free(&x->recv[i].request);
    memory_free(x->mem, LU_USE_TRANSFER, x->recv[i].buf, x->recv[i].bytes);
  }
  for (int i = 0; i < x->nsend; i++) {
    if (x->send[i].request != MPI_REQUEST_NULL)
      MPI_Request_free(&x->send[i].request);
    memory_free(x->mem, LU_USE_TRANSFER, x->send[i].buf, x->send[i].bytes);
    free(x->send[i].pieces);
  }
  free(x->send);
  free(x->recv);
  free(x->requests);
  free(x);
}
