/* agree.c: that every rank runs the same analysis: each compile compares
 * the callbacks' fingerprints with rank 0's, each reduction carries a digest
 * of plan, callback and step that rank 0 checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "bundle.h"
#include "error.h"
#include "transport.h"
#include "agree.h"

/* For each callback whose fingerprint (0: it did not compile here, not
 * compared) differs on some rank from rank 0's, why[i] receives a new
 * sentence, the same on every rank: "callback 2 (registered at x.lua:14)
 * differs on rank 1 from rank 0's". where[i]: this rank's registration
 * file:line. One broadcast and one all-reduce when all agree. Collective. */
int agree_plan(luisa *lz, int n, const uint64_t *fingerprint, char *const *where, char **why)
{
  uint64_t *root = malloc((size_t)(n ? n : 1) * sizeof *root);
  int mine_ok = root ? lz->size : lz->rank, short_of;   /* the lowest rank out of memory, or size */
  if (MPI_Allreduce(&mine_ok, &short_of, 1, MPI_INT, MPI_MIN, lz->comm) != MPI_SUCCESS) {
    free(root);
    return error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Allreduce comparing plans failed");
  }
  if (short_of < lz->size) {
    free(root);
    return error_set(lz, LUISA_ERR_NOMEM, "out of memory on rank %d comparing plans", short_of);
  }
  memcpy(root, fingerprint, (size_t)n * sizeof *root);
  int status = MPI_Bcast(root, n, MPI_UINT64_T, 0, lz->comm) == MPI_SUCCESS ? LUISA_OK
               : error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Bcast of rank 0's plan failed");
  for (int from = 0; status == LUISA_OK;) {
    int mine = n, first;
    for (int i = from; i < n && mine == n; i++)
      if (fingerprint[i] && root[i] && fingerprint[i] != root[i])
        mine = i;
    if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, lz->comm) != MPI_SUCCESS) {
      status = error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Allreduce comparing plans failed");
      break;
    }
    if (first >= n)
      break;
    char who[256], at[LU_ERR_MAX];
    snprintf(at, sizeof at, "%s", where[first] ? where[first] : "?");
    if ((status = transport_who(lz, mine == first, who, sizeof who)) != LUISA_OK ||
        (status = transport_share(lz, 0, at, sizeof at)) != LUISA_OK)
      break;
    char text[LU_ERR_MAX + 320];
    snprintf(text, sizeof text, "callback %d (registered at %s) differs%s from rank 0's", first + 1, at, who);
    free(why[first]);
    why[first] = strdup(text);
    from = first + 1;
  }
  free(root);
  return status;
}

/* What a reduction holds, in 52 bits so that a double carries it exactly. */
double agree_digest(uint64_t plan, int callback, int64_t step)
{
  uint64_t h = bundle_fnv(bundle_fnv(plan, &callback, sizeof callback), &step, sizeof step);
  return (double)(h >> 12);
}

/* "ranks 0, 2 at 10; rank 1 at 11" from every rank's step, on rank 0. */
static void list_steps(const int64_t *all, int size, char *text, size_t cap)
{
  int *group = malloc((size_t)size * sizeof *group);
  size_t len = 0;
  text[0] = '\0';
  if (!group)
    return;
  int64_t below = INT64_MIN;
  for (int shown = 0; shown < 8 && len < cap; shown++) {   /* each step, smallest first */
    int64_t next = INT64_MAX;
    int any = 0;
    for (int r = 0; r < size; r++)
      if (all[r] > below && all[r] <= next)
        next = all[r], any = 1;
    if (!any)
      break;
    for (int r = 0; r < size; r++)
      group[r] = all[r] == next;
    char ranks[512];
    error_ranks(ranks, sizeof ranks, group, size, 1);
    len += (size_t)snprintf(text + len, cap - len, "%s%s at %lld", shown ? "; " : "", ranks, (long long)next);
    below = next;
  }
  free(group);
}

/* After rank 0 found reductions that do not match: why, in msg on every
 * rank (the steps every rank passed, gathered). Collective. */
int agree_steps(luisa *lz, int64_t step, char *msg, size_t cap)
{
  int64_t *all = lz->rank == 0 ? malloc((size_t)lz->size * sizeof *all) : NULL;
  int64_t mine = step;
  msg[0] = '\0';
  if (MPI_Gather(&mine, 1, MPI_INT64_T, all, 1, MPI_INT64_T, 0, lz->comm) != MPI_SUCCESS) {
    free(all);
    return error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Gather of step numbers failed");
  }
  if (lz->rank == 0) {
    int64_t lo = step, hi = step;
    for (int r = 0; all && r < lz->size; r++) {
      lo = all[r] < lo ? all[r] : lo;
      hi = all[r] > hi ? all[r] : hi;
    }
    char steps[2048] = "";
    if (all)
      list_steps(all, lz->size, steps, sizeof steps);
    if (lo != hi)
      snprintf(msg, cap, "ranks passed different step numbers to luisa_step: from %lld to %lld (%s): every rank "
               "must pass the same step at each call; their reductions were not combined and analytics are off "
               "on every rank", (long long)lo, (long long)hi, steps);
    else
      snprintf(msg, cap, "the ranks' reductions at step %lld do not match (a rank called luisa_step a different "
               "number of times, or a luisa internal error): they were not combined and analytics are off on "
               "every rank", (long long)step);
  }
  free(all);
  return transport_share(lz, 0, msg, cap);
}
