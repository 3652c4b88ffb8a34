/* decomp.c: the collective check of every declaration at the first step.
 * Every rank gathers the whole chunk map, so every rank reaches the same
 * verdict and the same message without a further round of messages.
 * Memory per rank is O(P): the whole chunk map (72 bytes per chunk and
 * array) and one array's gathered coordinates at a time, never O(P^2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "array.h"
#include "error.h"
#include "log.h"
#include "transport.h"
#include "decomp.h"

/* One line per array: what every rank must agree on. */
static int declarations_text(luisa *lz, char *buf, size_t cap)
{
  size_t n = 0;
  char shape[128];
  buf[0] = '\0';
  for (int i = 0; i < lz->narrays && n < cap; i++) {
    lu_array *a = &lz->arrays[i];
    n += (size_t)snprintf(buf + n, cap - n, "%s%s %s %s", i ? "; " : "", a->name,
                          array_dtype_name(a->dtype),
                          array_format_index(shape, sizeof shape, a->ndim, a->shape));
  }
  return n < cap ? (int)n + 1 : -1;
}

/* Item k of a "; "-separated list into buf, or "" past its end. */
static const char *list_item(const char *list, int k, char *buf, size_t cap)
{
  for (; k > 0 && list; k--) {
    list = strstr(list, "; ");
    if (list)
      list += 2;
  }
  buf[0] = '\0';
  if (list && *list) {
    const char *end = strstr(list, "; ");
    size_t n = end ? (size_t)(end - list) : strlen(list);
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), list);
  }
  return buf;
}

/* Names the first array on which `mine` and rank 0's list differ. */
static void describe_difference(int rank, const char *mine, const char *root, char *msg, size_t cap)
{
  char a[256], b[256];
  int k = 0;
  while (strcmp(list_item(mine, k, a, sizeof a), list_item(root, k, b, sizeof b)) == 0)
    k++;
  if (!a[0])
    snprintf(msg, cap, "rank %d declares %d arrays, but rank 0 declares also \"%s\"", rank, k, b);
  else if (!b[0])
    snprintf(msg, cap, "rank %d declares \"%s\", but rank 0 declares only %d arrays", rank, a, k);
  else
    snprintf(msg, cap, "rank %d declares array number %d as \"%s\", but rank 0 declares \"%s\"",
             rank, k + 1, a, b);
  size_t n = strlen(msg);
  snprintf(msg + n, cap - n, ": every rank must declare the same arrays in the same order");
}

/* What the check needs, allocated before the collectives that use it: a
 * rank out of memory says so in the agreement before them, never leaving
 * the others in a broadcast or gather it skipped. */
typedef struct workspace {
  char *mine, *root;              /* the declarations' text, this rank's and rank 0's */
  int *sent;                      /* per array: the numbers this rank sends of its boxes */
  int *counts;                    /* counts[r * narrays + i]: those of every rank */
  int *fits;                      /* per array: its boxes can be gathered */
  int *recv, *displs;             /* per rank: one array's numbers and where they go */
  int64_t *send, *all;            /* one array's chunk boxes, this rank's and everyone's */
  lu_box *sorted;                 /* an array's boxes, sorted by find_overlap */
  int64_t *offsets;               /* find_overlap's one axis of offsets */
} workspace;

enum { TEXT_CAP = 1 << 16 };

static void workspace_free(workspace *w)
{
  free(w->mine);
  free(w->root);
  free(w->sent);
  free(w->counts);
  free(w->fits);
  free(w->recv);
  free(w->displs);
  free(w->send);
  free(w->all);
  free(w->sorted);
  free(w->offsets);
}

static int check_same_arrays(luisa *lz, workspace *w)
{
  char msg[LU_ERR_MAX] = "";
  int status = LUISA_OK, most = 1;
  for (int i = 0; i < lz->narrays; i++)
    if (lz->arrays[i].nchunks > most)
      most = lz->arrays[i].nchunks;
  size_t k = (size_t)(lz->narrays ? lz->narrays : 1);
  w->mine = malloc(TEXT_CAP);
  w->root = malloc(TEXT_CAP);
  w->sent = malloc(k * sizeof *w->sent);
  w->counts = malloc((size_t)lz->size * k * sizeof *w->counts);
  w->fits = malloc(k * sizeof *w->fits);
  w->recv = malloc((size_t)lz->size * sizeof *w->recv);
  w->displs = malloc((size_t)lz->size * sizeof *w->displs);
  w->send = malloc((size_t)most * 2 * LUISA_MAX_DIMS * sizeof *w->send);
  if (!w->mine || !w->root || !w->sent || !w->counts || !w->fits || !w->recv || !w->displs || !w->send) {
    status = LUISA_ERR_NOMEM;
    snprintf(msg, sizeof msg, "out of memory checking declarations on rank %d", lz->rank);
  } else if (declarations_text(lz, w->mine, TEXT_CAP) < 0) {
    status = LUISA_ERR_NAME;
    snprintf(msg, sizeof msg, "rank %d declares too many arrays to check (text over %d bytes)", lz->rank,
             TEXT_CAP);
  }
  FORWARD_IF_ERROR(transport_verdict(lz, status, msg, sizeof msg));
  memcpy(w->root, w->mine, TEXT_CAP);
  RETURN_IF(MPI_Bcast(w->root, TEXT_CAP, MPI_CHAR, 0, lz->comm) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
            "luisa_step: MPI_Bcast of the declarations failed");
  int differs = strcmp(w->root, w->mine) != 0;
  if (differs)
    describe_difference(lz->rank, w->mine, w->root, msg, sizeof msg);
  return transport_check(lz, differs, msg, sizeof msg, LUISA_ERR_NAME);
}

/* offset + shape never overflows here: each rank checked its chunks
 * against the global shape (at most 2^62 elements), the same on all ranks. */
static int boxes_intersect(int ndim, const lu_box *a, const lu_box *b)
{
  for (int d = 0; d < ndim; d++)
    if (a->offset[d] >= b->offset[d] + b->shape[d] || b->offset[d] >= a->offset[d] + a->shape[d])
      return 0;
  return 1;
}

static int box_contains(int ndim, const lu_box *b, const int64_t *p)
{
  for (int d = 0; d < ndim; d++)
    if (p[d] < b->offset[d] || p[d] >= b->offset[d] + b->shape[d])
      return 0;
  return 1;
}

static int sort_axis;
static int compare_offsets(const void *x, const void *y)
{
  int64_t a = ((const lu_box *)x)->offset[sort_axis], b = ((const lu_box *)y)->offset[sort_axis];
  return (a > b) - (a < b);
}

static int compare_int64(const void *x, const void *y)
{
  int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  return (a > b) - (a < b);
}

/* Number of distinct values of the sorted v[0..n). */
static int distinct(int64_t *v, int n)
{
  int k = 0;
  for (int i = 0; i < n; i++)
    if (i == 0 || v[i] != v[k - 1])
      v[k++] = v[i];
  return k;
}

/* First overlapping pair, by a sweep along the axis with the most distinct
 * offsets (so a slab decomposition along any axis stays near n log n). */
static int find_overlap(const lu_array *a, lu_box *sorted, int64_t *v, const lu_box **x, const lu_box **y)
{
  int n = a->nboxes, best = 0, best_count = -1;
  for (int d = 0; d < a->ndim; d++) {
    for (int i = 0; i < n; i++)
      v[i] = a->boxes[i].offset[d];
    qsort(v, (size_t)n, sizeof *v, compare_int64);
    int k = distinct(v, n);
    if (k > best_count)
      best_count = k, best = d;
  }
  memcpy(sorted, a->boxes, (size_t)n * sizeof *sorted);
  sort_axis = best;
  qsort(sorted, (size_t)n, sizeof *sorted, compare_offsets);
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n && sorted[j].offset[best] < sorted[i].offset[best] + sorted[i].shape[best]; j++)
      if (boxes_intersect(a->ndim, &sorted[i], &sorted[j])) {
        *x = &sorted[i];
        *y = &sorted[j];
        return 1;
      }
  return 0;
}

/* The lexicographically first element no chunk holds. Each of its coordinates
 * is 0 or the end of some chunk on that axis, so only those are tried.
 * Returns 0 when the search would be too long for an error message. */
static int find_hole(const lu_array *a, int64_t *hole)
{
  int n = a->nboxes, ok = 0;
  int64_t *cand[LUISA_MAX_DIMS] = { 0 };
  int count[LUISA_MAX_DIMS];
  double work = n;
  for (int d = 0; d < a->ndim; d++) {
    cand[d] = malloc((size_t)(n + 1) * sizeof *cand[d]);
    if (!cand[d])
      goto done;
    cand[d][0] = 0;
    for (int i = 0; i < n; i++)
      cand[d][i + 1] = a->boxes[i].offset[d] + a->boxes[i].shape[d];
    qsort(cand[d], (size_t)n + 1, sizeof *cand[d], compare_int64);
    count[d] = distinct(cand[d], n + 1);
    work *= count[d];
  }
  if (work > 1e8)
    goto done;
  int idx[LUISA_MAX_DIMS] = { 0 };
  for (;;) {
    int inside = 1, covered = 0;
    for (int d = 0; d < a->ndim; d++) {
      hole[d] = cand[d][idx[d]];
      inside &= hole[d] < a->shape[d];
    }
    for (int i = 0; inside && i < n && !covered; i++)
      covered = box_contains(a->ndim, &a->boxes[i], hole);
    if (inside && !covered) {
      ok = 1;
      goto done;
    }
    int d = a->ndim - 1;
    while (d >= 0 && ++idx[d] == count[d])
      idx[d--] = 0;
    if (d < 0)
      goto done;
  }
done:
  for (int d = 0; d < a->ndim; d++)
    free(cand[d]);
  return ok;
}

/* Every rank's chunk boxes of array i into a->boxes, from the numbers
 * chunk_counts gathered. Collective. */
static int gather_boxes(luisa *lz, workspace *w, int i)
{
  lu_array *a = &lz->arrays[i];
  int nd = a->ndim, per = 2 * nd;
  for (int c = 0; c < a->nchunks; c++)
    for (int d = 0; d < nd; d++) {
      w->send[c * per + d] = a->chunks[c].offset[d];
      w->send[c * per + nd + d] = a->chunks[c].shape[d];
    }
  int total = 0;
  for (int r = 0; r < lz->size; r++) {
    w->displs[r] = total;
    total += w->recv[r] = w->counts[(size_t)r * (size_t)lz->narrays + (size_t)i];
  }
  if (MPI_Allgatherv(w->send, w->sent[i], MPI_INT64_T, w->all, w->recv, w->displs, MPI_INT64_T, lz->comm)
      != MPI_SUCCESS)
    return error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Allgatherv of chunks failed");
  a->nboxes = 0;
  for (int r = 0; r < lz->size; r++)
    for (int c = 0; c < w->recv[r] / per; c++) {
      lu_box *b = &a->boxes[a->nboxes++];
      const int64_t *src = w->all + w->displs[r] + c * per;
      b->owner = r;
      b->local = c;
      for (int d = 0; d < LUISA_MAX_DIMS; d++) {
        b->offset[d] = d < nd ? src[d] : 0;
        b->shape[d] = d < nd ? src[nd + d] : 1;
      }
    }
  return LUISA_OK;
}

/* Every rank's numbers of box coordinates per array, in one gather; then
 * what the gathers and checks of the boxes need, agreed on once. An array
 * with too many chunks to gather gets no boxes: fits[i] is 0, the same on
 * every rank. Collective. */
static int chunk_counts(luisa *lz, workspace *w)
{
  for (int i = 0; i < lz->narrays; i++)
    w->sent[i] = lz->arrays[i].nchunks * 2 * lz->arrays[i].ndim;
  RETURN_IF(lz->narrays && MPI_Allgather(w->sent, lz->narrays, MPI_INT, w->counts, lz->narrays, MPI_INT, lz->comm)
            != MPI_SUCCESS, lz, LUISA_ERR_MPI, "luisa_step: MPI_Allgather of chunk counts failed");
  long long most = 1;
  int boxes = 1, ok = 1;
  for (int i = 0; i < lz->narrays; i++) {
    long long total = 0;
    for (int r = 0; r < lz->size; r++)
      total += w->counts[(size_t)r * (size_t)lz->narrays + (size_t)i];
    lu_array *a = &lz->arrays[i];
    w->fits[i] = total <= 0x7fffffff;
    free(a->boxes);
    a->boxes = NULL;
    a->nboxes = 0;
    if (!w->fits[i])
      continue;
    int n = (int)(total / (2 * a->ndim));
    most = total > most ? total : most;
    boxes = n + 1 > boxes ? n + 1 : boxes;
    ok = ok && (a->boxes = malloc((size_t)(n + 1) * sizeof *a->boxes)) != NULL;
  }
  w->all = malloc((size_t)most * sizeof *w->all);
  w->sorted = malloc((size_t)boxes * sizeof *w->sorted);
  w->offsets = malloc((size_t)boxes * sizeof *w->offsets);
  ok = ok && w->all && w->sorted && w->offsets;
  char msg[LU_ERR_MAX] = "";
  if (!ok)
    snprintf(msg, sizeof msg, "out of memory gathering the chunks on rank %d", lz->rank);
  return transport_verdict(lz, ok ? LUISA_OK : LUISA_ERR_NOMEM, msg, sizeof msg);
}

/* Local: every rank holds the same boxes, so reaches the same verdict. */
static int check_tiling(luisa *lz, workspace *w, lu_array *a)
{
  char o1[128], s1[128], o2[128], s2[128], g[128];
  const lu_box *x = NULL, *y = NULL;
  if (find_overlap(a, w->sorted, w->offsets, &x, &y)) {
    if (x->owner > y->owner || (x->owner == y->owner && x->local > y->local)) {
      const lu_box *t = x;
      x = y, y = t;
    }
    error_set(lz, LUISA_ERR_CHUNK, "luisa_step: array \"%s\": chunk %d of rank %d (offset %s, shape %s) "
              "overlaps chunk %d of rank %d (offset %s, shape %s)", a->name, x->local, x->owner,
              array_format_index(o1, sizeof o1, a->ndim, x->offset),
              array_format_index(s1, sizeof s1, a->ndim, x->shape), y->local, y->owner,
              array_format_index(o2, sizeof o2, a->ndim, y->offset),
              array_format_index(s2, sizeof s2, a->ndim, y->shape));
    return LUISA_ERR_CHUNK;
  }

  /* Disjoint boxes inside the array hold at most its 2^62 elements; the
   * sum saturates anyway, since the boxes are other ranks' numbers. */
  int64_t held = 0, hole[LUISA_MAX_DIMS];
  for (int i = 0; i < a->nboxes; i++) {
    int64_t v = array_volume(a->ndim, a->boxes[i].shape);
    held = v < 0 || held > INT64_MAX - v ? INT64_MAX : held + v;
  }
  int64_t total = array_volume(a->ndim, a->shape);
  if (held == total)
    return LUISA_OK;
  if (find_hole(a, hole))
    return error_set(lz, LUISA_ERR_CHUNK, "luisa_step: array \"%s\" (global shape %s) is not fully covered: "
                     "the chunks of all ranks hold %lld of %lld elements; no chunk holds element %s",
                     a->name, array_format_index(g, sizeof g, a->ndim, a->shape), (long long)held,
                     (long long)total, array_format_index(o1, sizeof o1, a->ndim, hole));
  return error_set(lz, LUISA_ERR_CHUNK, "luisa_step: array \"%s\" (global shape %s) is not fully covered: "
                   "the chunks of all ranks hold %lld of %lld elements", a->name,
                   array_format_index(g, sizeof g, a->ndim, a->shape), (long long)held, (long long)total);
}

/* The texts are compared first: past that, every rank declares the same
 * arrays, so the gathers below are the same on all. */
static int check_all(luisa *lz, workspace *w)
{
  FORWARD_IF_ERROR(check_same_arrays(lz, w));
  FORWARD_IF_ERROR(chunk_counts(lz, w));
  int first = LUISA_OK;
  char first_msg[LU_ERR_MAX];
  for (int i = 0; i < lz->narrays; i++) {
    lu_array *a = &lz->arrays[i];
    int status = w->fits[i] ? gather_boxes(lz, w, i)
                            : error_set(lz, LUISA_ERR_CHUNK, "luisa_step: array \"%s\" has too many chunks to check",
                                        a->name);
    if (status == LUISA_OK)
      status = check_tiling(lz, w, a);
    if (status == LUISA_ERR_MPI)
      return status;
    if (status != LUISA_OK) {
      if (lz->rank == 0)
        log_write(lz, LUISA_LOG_ERROR, "%s", error_buffer(lz));
      if (first == LUISA_OK) {
        first = status;
        memcpy(first_msg, error_buffer(lz), sizeof first_msg);
      }
    }
  }
  if (first != LUISA_OK)
    memcpy(error_buffer(lz), first_msg, sizeof first_msg);
  return first;
}

int decomp_check(luisa *lz)
{
  workspace w = { 0 };
  int status = check_all(lz, &w);
  workspace_free(&w);
  return status;
}
