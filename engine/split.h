/* split.h: the ranks mode's division of the job into simulation and
 * analytics ranks, and the communicators between them. Not installed. */
#ifndef LUISA_SPLIT_H
#define LUISA_SPLIT_H

#include "context.h"

typedef struct lu_split {
  int serving;                 /* this rank is an analytics rank */
  MPI_Comm own;                /* the ranks of this rank's kind, in job order */
  MPI_Comm link;               /* the whole job, for the traffic between the kinds */
  int nsim, nana;
  int *sim_link, *ana_link;    /* per simulation / analytics rank, its rank in link */
  int *sim_node, *ana_node;    /* per simulation / analytics rank, its node */
} lu_split;

/* Which ranks of comm serve the analytics: `want` in all (> 0), `-want`
 * on every node (< 0), one per node (0). On each node the highest ranks
 * serve; the nodes take turns in order for a total. Collective over comm;
 * every rank returns the same status. LUISA_ERR_ARG (no simulation rank
 * would be left), LUISA_ERR_MPI, LUISA_ERR_NOMEM, with a sentence in why. */
int split_open(MPI_Comm comm, int want, lu_split **out, char *why, size_t cap);
/* Frees the communicators too. NULL: nothing. */
void split_close(lu_split *s);

#endif
