/* transport.c: every MPI exchange the engine makes on its own communicator:
 * agreement on failures, message sharing, and the reductions of partials. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "deadline.h"
#include "error.h"
#include "log.h"
#include "transport.h"

/* A reduction buffer is a segment: a header counting the slots of each
 * kind, then the slots, kind after kind. A round packs every due
 * reduction and field as segments into one buffer, one MPI element, so a
 * step makes one all-reduce and MPI never splits what the combining
 * function parses. */
enum { HEADER = LU_SLOT_KINDS };
static const int slot_width[LU_SLOT_KINDS] = { 1, 1, 1, 2, 2, 3 };

/* An array reduced elementwise alongside (axis reductions and gathers):
 * a segment of n slots of one kind, which combine as fmin, + or fmax. */
typedef struct lu_field {
  int n;
  int kind;
  double *in, *out;
} lu_field;

struct lu_reduction {
  lu_memory *mem;              /* counts the fields (gathered and coarsened arrays) */
  int n;
  double *in, *out;
  int nfields;
  lu_field *fields;
};

/* The buffers a round packs into, and MPI types of the lengths rounds
 * have had: made at compile for all of a plan's callbacks due and each
 * alone, so that a step seldom makes one. */
enum { TYPES = 8 };
typedef struct lu_packed {
  double *in, *out;
  int cap;
  int n[TYPES], ntypes, next;
  MPI_Datatype type[TYPES];
} lu_packed;

/* (value, global index) pairs: the extreme value wins, the lowest index
 * breaks ties, so the answer does not depend on the decomposition. A NaN
 * never wins. */
static void combine_arg(const double *in, double *io, int better_is_less)
{
  double v = in[0], w = io[0];
  int better = better_is_less ? v < w : v > w;
  if (better || (v == w && in[1] < io[1])) {
    io[0] = v;
    io[1] = in[1];
  }
}

/* (count, mean, M2) of two parts, after Chan, Golub and LeVeque. */
static void combine_moments(const double *in, double *io)
{
  double na = io[0], nb = in[0], n = na + nb;
  if (nb == 0)
    return;
  if (na == 0) {
    memcpy(io, in, 3 * sizeof *io);
    return;
  }
  double delta = in[1] - io[1];
  io[1] += delta * nb / n;
  io[2] += in[2] + delta * delta * na * nb / n;
  io[0] = n;
}

/* Two buffers of different layouts meet when ranks pair different
 * reductions (a rank out of step): the result is marked, as a digest no
 * rank has, rather than combined. */
static int same_layout(const double *a, const double *b)
{
  return !memcmp(a, b, HEADER * sizeof *a);
}

static void combine(void *invec, void *inoutvec, int *len, MPI_Datatype *type)
{
  int bytes;
  MPI_Type_size(*type, &bytes);
  const double *in = invec;
  double *io = inoutvec;
  for (int e = 0; e < *len; e++) {
    double *first = io;
    const double *end = in + bytes / (int)sizeof *in;
    while (in < end) {
      /* Ranks out of step pack different segments: a header that does not
       * match, or a segment past the buffer, marks the round's first
       * segment (always a reduction) and combines nothing more. */
      int64_t length = HEADER;
      for (int kind = 0; kind < LU_SLOT_KINDS; kind++)
        length += in[kind] >= 0 && in[kind] <= end - in ? (int64_t)in[kind] * slot_width[kind] : end - in + 1;
      if (length > end - in || !same_layout(in, io)) {
        first[HEADER + LU_SLOT_DIGEST] = -1;
        return;
      }
      int i = HEADER;
      for (int kind = 0; kind < LU_SLOT_KINDS; kind++)
        for (int k = 0, count = (int)in[kind]; k < count; k++, i += slot_width[kind])
          switch (kind) {
          /* A min or max partial that saw no number is NaN (lua/luisa/plan.lua):
           * fmin and fmax return the other operand, and NaN only if both are.
           * Not MPI_MIN: Open MPI's returns NaN or the number depending on
           * which operand it is. */
          case LU_MIN: io[i] = fmin(io[i], in[i]); break;
          case LU_SUM: io[i] += in[i]; break;
          case LU_MAX: io[i] = fmax(io[i], in[i]); break;
          case LU_ARGMIN: combine_arg(in + i, io + i, 1); break;
          case LU_ARGMAX: combine_arg(in + i, io + i, 0); break;
          case LU_MOMENTS: combine_moments(in + i, io + i); break;
          }
      in += i;
      io += i;
    }
  }
}

int transport_open(luisa *lz)
{
  RETURN_IF(MPI_Op_create(combine, 1, &lz->reduce_op) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
            "luisa_init: MPI_Op_create failed");
  return LUISA_OK;
}

void transport_close(luisa *lz)
{
  if (lz->reduce_op != MPI_OP_NULL)
    MPI_Op_free(&lz->reduce_op);
  lu_packed *p = lz->packed;
  if (p) {
    for (int k = 0; k < p->ntypes; k++)
      if (p->n[k] > 0)
        MPI_Type_free(&p->type[k]);
    memory_free(&lz->memory, LU_USE_TRANSFER, p->in, (size_t)p->cap * sizeof *p->in);
    memory_free(&lz->memory, LU_USE_TRANSFER, p->out, (size_t)p->cap * sizeof *p->out);
    free(p);
    lz->packed = NULL;
  }
}

/* Lowest rank that failed, or -1 if none; -2 if MPI failed. On failure,
 * msg holds that rank's message on every rank. Collective. */
int transport_agree(luisa *lz, int failed, char *msg, size_t cap)
{
  int mine = failed ? lz->rank : lz->size, first;
  if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, lz->comm) != MPI_SUCCESS) {
    error_set(lz, LUISA_ERR_MPI, "MPI_Allreduce failed while agreeing on a failure");
    return -2;
  }
  if (first == lz->size)
    return -1;
  return transport_share(lz, first, msg, cap) == LUISA_OK ? first : -2;
}

/* Which ranks failed, as " on rank 1", " on ranks 1, 3", " on every
 * rank" ("" on one rank or none). Collective; LUISA_ERR_MPI on failure. */
int transport_who(luisa *lz, int failed, char *text, size_t cap)
{
  int *all = malloc((size_t)lz->size * sizeof *all);
  RETURN_IF(!all, lz, LUISA_ERR_NOMEM, "out of memory listing failed ranks");
  failed = !!failed;
  if (MPI_Allgather(&failed, 1, MPI_INT, all, 1, MPI_INT, lz->comm) != MPI_SUCCESS) {
    free(all);
    return error_set(lz, LUISA_ERR_MPI, "MPI_Allgather of failures failed");
  }
  int n = 0;
  for (int r = 0; r < lz->size; r++)
    n += all[r];
  size_t len = 0;
  text[0] = '\0';
  if (n == lz->size && n > 1)
    snprintf(text, cap, " on every rank");
  else if (lz->size > 1 && n > 0)
    for (int r = 0; r < lz->size && len < cap; r++)
      if (all[r])
        len += (size_t)snprintf(text + len, cap - len, "%s%d", len ? ", " : n > 1 ? " on ranks " : " on rank ", r);
  free(all);
  return LUISA_OK;
}

/* The status of the lowest rank whose `status` is not LUISA_OK, on every
 * rank (LUISA_OK if none; LUISA_ERR_MPI if MPI failed), with that rank's
 * msg and, when who is given, its number (-1 if none). One all-reduce when
 * every rank is well. Collective. */
int transport_settle(luisa *lz, int status, char *msg, size_t cap, int *who)
{
  int first = transport_agree(lz, status != LUISA_OK, msg, cap);
  if (who)
    *who = first < 0 ? -1 : first;
  if (first == -2)
    return LUISA_ERR_MPI;
  if (first == -1)
    return LUISA_OK;
  if (MPI_Bcast(&status, 1, MPI_INT, first, lz->comm) != MPI_SUCCESS)
    return error_set(lz, LUISA_ERR_MPI, "MPI_Bcast of a status from rank %d failed", first);
  return status;
}

/* A collective check: when any rank's status is not LUISA_OK, every rank
 * refuses the step with the first failing rank's status and msg, logged
 * once by rank 0. Collective. */
int transport_verdict(luisa *lz, int status, char *msg, size_t cap)
{
  status = transport_settle(lz, status, msg, cap, NULL);
  if (status == LUISA_OK || status == LUISA_ERR_MPI)
    return status;
  error_set(lz, status, "luisa_step: %s", msg);
  if (lz->rank == 0)
    log_write(lz, LUISA_LOG_ERROR, "%s", error_buffer(lz));
  return status;
}

/* transport_verdict for a check whose only failure is `status`. */
int transport_check(luisa *lz, int failed, char *msg, size_t cap, int status)
{
  return transport_verdict(lz, failed ? status : LUISA_OK, msg, cap);
}

/* Broadcast the string msg from owner. Collective. */
int transport_share(luisa *lz, int owner, char *msg, size_t cap)
{
  int len = lz->rank == owner ? (int)strnlen(msg, cap - 1) : 0;
  if (MPI_Bcast(&len, 1, MPI_INT, owner, lz->comm) != MPI_SUCCESS ||
      MPI_Bcast(msg, len, MPI_CHAR, owner, lz->comm) != MPI_SUCCESS)
    return error_set(lz, LUISA_ERR_MPI, "MPI_Bcast of a message from rank %d failed", owner);
  msg[len] = '\0';
  return LUISA_OK;
}

int transport_bcast_ints(luisa *lz, int *v, int n)
{
  RETURN_IF(MPI_Bcast(v, n, MPI_INT, 0, lz->comm) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
            "MPI_Bcast from the root failed");
  return LUISA_OK;
}

/* NULL when out of memory, or when a count is negative or past SLOTS_MAX:
 * the counts are the plan's (Lua numbers), and the buffer's size must
 * stay an int. */
enum { SLOTS_MAX = 1 << 24 };
lu_reduction *transport_reduction_new(luisa *lz, const int *counts)
{
  for (int kind = 0; kind < LU_SLOT_KINDS; kind++)
    if (counts[kind] < 0 || counts[kind] > SLOTS_MAX)
      return NULL;
  lu_reduction *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->mem = &lz->memory;
  r->n = HEADER;
  for (int kind = 0; kind < LU_SLOT_KINDS; kind++)
    r->n += counts[kind] * slot_width[kind];
  r->in = calloc((size_t)r->n, sizeof *r->in);
  r->out = calloc((size_t)r->n, sizeof *r->out);
  if (!r->in || !r->out) {
    transport_reduction_free(r);
    return NULL;
  }
  for (int kind = 0; kind < LU_SLOT_KINDS; kind++)
    r->in[kind] = counts[kind];
  return r;
}

/* The slots after the header, kind after kind in lu_slot_kind order. */
double *transport_reduction_input(lu_reduction *r)
{
  return r->in + HEADER;
}

const double *transport_reduction_result(lu_reduction *r)
{
  return r->out + HEADER;
}

/* A field of n doubles combined elementwise by op ("sum", "min", "max")
 * with the reduction. Returns its input buffer, NULL if out of memory or
 * op is unknown; *out receives its result buffer (meaningful on rank 0). */
double *transport_field_new(lu_reduction *r, int n, const char *op, double **out)
{
  int kind = !strcmp(op, "min") ? LU_MIN : !strcmp(op, "max") ? LU_MAX : !strcmp(op, "sum") ? LU_SUM : -1;
  if (kind < 0 || n < 0 || n > SLOTS_MAX)
    return NULL;
  lu_field *grown = realloc(r->fields, (size_t)(r->nfields + 1) * sizeof *grown);
  if (!grown)
    return NULL;
  r->fields = grown;
  lu_field *f = &r->fields[r->nfields];
  f->n = n;
  f->kind = kind;
  size_t bytes = (size_t)(n ? n : 1) * sizeof *f->in;
  f->in = memory_alloc(r->mem, LU_USE_TRANSFER, bytes);
  f->out = memory_alloc(r->mem, LU_USE_TRANSFER, bytes);
  if (f->in)
    memset(f->in, 0, bytes);
  if (f->out)
    memset(f->out, 0, bytes);
  if (!f->in || !f->out) {
    memory_free(r->mem, LU_USE_TRANSFER, f->in, bytes);
    memory_free(r->mem, LU_USE_TRANSFER, f->out, bytes);
    return NULL;
  }
  r->nfields++;
  *out = f->out;
  return f->in;
}

static int64_t packed_length(lu_reduction *const *r, int n)
{
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    total += r[i]->n;
    for (int f = 0; f < r[i]->nfields; f++)
      total += HEADER + r[i]->fields[f].n;
  }
  return total;
}

/* The buffers grown to need doubles each way. 0, or 1 with msg saying why. */
static int grow(luisa *lz, lu_packed *p, int need, char *msg, size_t cap)
{
  size_t old = (size_t)p->cap * sizeof *p->in, bytes = (size_t)need * sizeof *p->in;
  double *in = memory_alloc(&lz->memory, LU_USE_TRANSFER, bytes), *out = memory_alloc(&lz->memory, LU_USE_TRANSFER, bytes);
  if (!in || !out) {
    memory_free(&lz->memory, LU_USE_TRANSFER, in, bytes);
    memory_free(&lz->memory, LU_USE_TRANSFER, out, bytes);
    return snprintf(msg, cap, "out of memory packing the reductions (%lld bytes)", (long long)bytes) > 0;
  }
  memory_free(&lz->memory, LU_USE_TRANSFER, p->in, old);
  memory_free(&lz->memory, LU_USE_TRANSFER, p->out, old);
  p->in = in, p->out = out, p->cap = need;
  return 0;
}

/* The MPI type of n doubles, from those kept or made now (the oldest
 * made goes when all are taken). */
static int packed_type(luisa *lz, int n, MPI_Datatype *type)
{
  lu_packed *p = lz->packed;
  RETURN_IF(!p || n > p->cap, lz, LUISA_ERR_ARG, "luisa_step: %d values to reduce, room for %d", n, p ? p->cap : 0);
  for (int k = 0; k < p->ntypes; k++)
    if (p->n[k] == n) {
      *type = p->type[k];
      return LUISA_OK;
    }
  int k = p->ntypes < TYPES ? p->ntypes++ : p->next;   /* n[k] > 0: a type to free */
  if (p->n[k] > 0)
    MPI_Type_free(&p->type[k]);
  p->next = (k + 1) % TYPES;
  p->n[k] = 0;
  if (MPI_Type_contiguous(n, MPI_DOUBLE, &p->type[k]) != MPI_SUCCESS || MPI_Type_commit(&p->type[k]) != MPI_SUCCESS)
    return error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Type_contiguous of %d doubles failed", n);
  p->n[k] = n;
  *type = p->type[k];
  return LUISA_OK;
}

/* Room to pack all of a plan's reductions at once, made when it compiles
 * (a step allocates nothing: a rank out of memory there would leave the
 * others in the all-reduce). 0, or 1 with msg saying why. Local. */
int transport_reserve(luisa *lz, lu_reduction *const *reductions, int n, char *msg, size_t cap)
{
  int64_t need = packed_length(reductions, n);
  lu_packed *p = lz->packed;
  if (need > INT_MAX / (int)sizeof(double))   /* MPI_Type_size counts bytes in an int */
    return snprintf(msg, cap, "the plan's reductions hold %lld values, more than one MPI message carries (%d): "
                    "gather or coarsen less", (long long)need, INT_MAX / (int)sizeof(double)) > 0;
  if (!p && !(p = lz->packed = calloc(1, sizeof *p)))
    return snprintf(msg, cap, "out of memory packing the reductions") > 0;
  if (need > p->cap && grow(lz, p, (int)need, msg, cap))
    return 1;
  MPI_Datatype type;
  for (int k = -1; k < n && k < TYPES - 1; k++)   /* every callback due, then each alone */
    if (need > 0 && packed_type(lz, k < 0 ? (int)need : (int)packed_length(reductions + k, 1), &type) != LUISA_OK)
      return snprintf(msg, cap, "%s", error_buffer(lz)) > 0;
  return 0;
}

/* Combine every due reduction, and its fields, on every rank: packed as
 * segments into one buffer, one all-reduce. Every rank learns every
 * result, failures and digests included, so all take the same verdict. */
int transport_reduce(luisa *lz, lu_reduction **due, int ndue)
{
  MPI_Datatype type;
  FORWARD_IF_ERROR(packed_type(lz, (int)packed_length(due, ndue), &type));
  lu_packed *p = lz->packed;
  double *at = p->in;
  for (int i = 0; i < ndue; i++) {
    lu_reduction *r = due[i];
    memcpy(at, r->in, (size_t)r->n * sizeof *at);
    at += r->n;
    for (int f = 0; f < r->nfields; f++) {
      memset(at, 0, HEADER * sizeof *at);
      at[r->fields[f].kind] = r->fields[f].n;
      memcpy(at + HEADER, r->fields[f].in, (size_t)r->fields[f].n * sizeof *at);
      at += HEADER + r->fields[f].n;
    }
  }
  MPI_Request req;
  RETURN_IF(MPI_Iallreduce(p->in, p->out, 1, type, lz->reduce_op, lz->comm, &req) != MPI_SUCCESS, lz,
            LUISA_ERR_MPI, "luisa_step: MPI_Iallreduce of partial results failed");
  FORWARD_IF_ERROR(deadline_wait(lz, 1, &req, LU_PHASE_REDUCE, "reductions"));
  at = p->out;
  for (int i = 0; i < ndue; i++) {
    lu_reduction *r = due[i];
    memcpy(r->out, at, (size_t)r->n * sizeof *at);
    at += r->n;
    for (int f = 0; f < r->nfields; f++) {
      memcpy(r->fields[f].out, at + HEADER, (size_t)r->fields[f].n * sizeof *at);
      at += HEADER + r->fields[f].n;
    }
  }
  return LUISA_OK;
}

void transport_reduction_free(lu_reduction *r)
{
  if (!r)
    return;
  for (int f = 0; f < r->nfields; f++) {
    size_t bytes = (size_t)(r->fields[f].n ? r->fields[f].n : 1) * sizeof *r->fields[f].in;
    memory_free(r->mem, LU_USE_TRANSFER, r->fields[f].in, bytes);
    memory_free(r->mem, LU_USE_TRANSFER, r->fields[f].out, bytes);
  }
  free(r->fields);
  free(r->in);
  free(r->out);
  free(r);
}
