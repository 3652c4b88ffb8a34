/* split.c: which ranks of the job serve the analytics in ranks mode. Spread
 * over the nodes, so that most chunks never cross the network, and the
 * highest ranks of each node, so that the simulation keeps its low ranks. */
#include <stdio.h>
#include <stdlib.h>
#include "context.h"
#include "split.h"

void split_close(lu_split *s)
{
  if (!s)
    return;
  if (s->own != MPI_COMM_NULL)
    MPI_Comm_free(&s->own);
  if (s->link != MPI_COMM_NULL)
    MPI_Comm_free(&s->link);
  free(s->sim_link);
  free(s->ana_link);
  free(s->sim_node);
  free(s->ana_node);
  free(s);
}

/* How many ranks of each node serve: nodes[n] ranks on node n. */
static int serving_per_node(int want, int nnodes, const int *nodes, int *serve)
{
  int total = 0, per = want < 0 ? -want : 1;
  for (int n = 0; n < nnodes; n++)
    serve[n] = want > 0 ? 0 : per < nodes[n] ? per : nodes[n];
  for (int placed = 0; want > 0 && placed < want;) {
    int progressed = 0;
    for (int n = 0; n < nnodes && placed < want; n++)
      if (serve[n] < nodes[n])
        serve[n]++, placed++, progressed = 1;
    if (!progressed)
      break;
  }
  for (int n = 0; n < nnodes; n++)
    total += serve[n];
  return total;
}

int split_open(MPI_Comm comm, int want, lu_split **out, char *why, size_t cap)
{
  *out = NULL;
  int rank, size, local = 0, leader = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  MPI_Comm node = MPI_COMM_NULL;
  int rc = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  if (rc == MPI_SUCCESS) {
    MPI_Comm_rank(node, &local);
    leader = rank;
    rc = MPI_Bcast(&leader, 1, MPI_INT, 0, node);
    MPI_Comm_free(&node);
  }
  lu_split *s = calloc(1, sizeof *s);
  if (s)
    s->own = s->link = MPI_COMM_NULL;
  int *all = malloc(2 * (size_t)size * sizeof *all), *node_of = malloc((size_t)size * sizeof *node_of);
  int *nodes = calloc((size_t)size, sizeof *nodes), *serve = calloc((size_t)size, sizeof *serve);
  int ok = s && all && node_of && nodes && serve, all_ok = 0;
  int mine[2] = { leader, local };
  if (rc == MPI_SUCCESS)
    rc = MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
  if (rc == MPI_SUCCESS && all_ok)
    rc = MPI_Allgather(mine, 2, MPI_INT, all, 2, MPI_INT, comm);
  int status = rc != MPI_SUCCESS ? LUISA_ERR_MPI : !all_ok ? LUISA_ERR_NOMEM : LUISA_OK;
  if (status == LUISA_OK) {
    /* Node n is the n-th distinct leader in rank order: a node's leader is its lowest rank. */
    int nnodes = 0;
    for (int r = 0; r < size; r++) {
      if (all[2 * r] == r)
        node_of[r] = nnodes++;
      else
        node_of[r] = node_of[all[2 * r]];
      nodes[node_of[r]]++;
    }
    int nana = serving_per_node(want, nnodes, nodes, serve);
    if ((want > 0 && nana < want) || nana >= size) {
      snprintf(why, cap, "opts->analytics_ranks (or LUISA_ANALYTICS_RANKS) asks for %d analytics rank%s%s of the "
               "%d ranks of comm: at least one simulation rank must be left", want > 0 ? want : nana,
               (want > 0 ? want : nana) == 1 ? "" : "s", want < 0 ? " per node" : want == 0 ? " (one per node)" : "",
               size);
      status = LUISA_ERR_ARG;
    } else {
      s->nana = nana;
      s->nsim = size - nana;
      s->sim_link = malloc((size_t)s->nsim * sizeof(int));
      s->sim_node = malloc((size_t)s->nsim * sizeof(int));
      s->ana_link = malloc((size_t)nana * sizeof(int));
      s->ana_node = malloc((size_t)nana * sizeof(int));
      ok = s->sim_link && s->sim_node && s->ana_link && s->ana_node;
      for (int r = 0, i = 0, j = 0; ok && r < size; r++) {
        int serves = all[2 * r + 1] >= nodes[node_of[r]] - serve[node_of[r]];
        if (serves)
          s->ana_link[j] = r, s->ana_node[j++] = node_of[r];
        else
          s->sim_link[i] = r, s->sim_node[i++] = node_of[r];
        if (r == rank)
          s->serving = serves;
      }
      rc = MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
      status = rc != MPI_SUCCESS ? LUISA_ERR_MPI : !all_ok ? LUISA_ERR_NOMEM : LUISA_OK;
    }
  }
  free(all);
  free(node_of);
  free(nodes);
  free(serve);
  if (status == LUISA_OK) {
    if (MPI_Comm_split(comm, s->serving, rank, &s->own) != MPI_SUCCESS ||
        MPI_Comm_dup(comm, &s->link) != MPI_SUCCESS)
      status = LUISA_ERR_MPI;
    else {
      MPI_Comm_set_errhandler(s->own, MPI_ERRORS_RETURN);
      MPI_Comm_set_errhandler(s->link, MPI_ERRORS_RETURN);
    }
  }
  if (status == LUISA_ERR_MPI)
    snprintf(why, cap, "MPI failed while dividing the ranks into simulation and analytics ranks");
  else if (status == LUISA_ERR_NOMEM)
    snprintf(why, cap, "out of memory on some rank while dividing the ranks into simulation and analytics ranks");
  if (status != LUISA_OK) {
    split_close(s);
    return status;
  }
  *out = s;
  return LUISA_OK;
}
