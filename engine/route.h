/* route.h: in transit mode's plan of which analytics rank receives each
 * simulation rank's chunks, made once at the first step. Not installed. */
#ifndef LUISA_ROUTE_H
#define LUISA_ROUTE_H

#include <stddef.h>
#include <stdint.h>

/* The plan, computed without any MPI call: every rank that gives the same
 * inputs gets the same plan. Simulation rank i (0..nsim-1) is on node
 * sim_node[i] and publishes sim_bytes[i] >= 0 bytes per step; analytics rank
 * j (0..nana-1) is on node ana_node[j]. A node id is any int (e.g. the index
 * of the rank's MPI_Comm_split_type shared group); equal ids, same node.
 * The rules, in order:
 *  1. A simulation rank on a node with analytics ranks goes to one of them,
 *     never elsewhere (node first: its chunks do not cross the network).
 *  2. The simulation ranks of nodes without analytics ranks (spill) are
 *     placed after all of rule 1's, onto any analytics rank.
 *  3. Each group (one node's ranks, then the spill) is placed largest first:
 *     by bytes descending, equal bytes by lowest i; each simulation rank
 *     onto the candidate analytics rank holding the fewest bytes so far,
 *     then the fewest simulation ranks (so that with all bytes 0 the plan
 *     balances by count), then the lowest j. Loads from rule 1 count when
 *     the spill is placed.
 * Consequences: within a node's group the most loaded analytics rank holds
 * at most the least loaded one's bytes plus its group's largest simulation
 * rank's; an analytics rank is left without a simulation rank only when
 * its node has fewer simulation ranks than analytics ranks and the spill
 * (if any) did not reach it, so every analytics rank has one when, for
 * instance, each node has at least as many simulation ranks as analytics
 * ranks. O(nsim log nsim + nsim * analytics ranks per candidate group).
 * @return : LUISA_OK with ana_of_sim[i] in 0..nana-1 for every i; or
 *           LUISA_ERR_ARG (nsim < 1, nana < 1, a NULL array, a negative
 *           sim_bytes[i], bytes summing beyond INT64_MAX) or LUISA_ERR_NOMEM,
 *           with a sentence in why naming the argument and ana_of_sim's
 *           content unspecified. */
int route_plan(int nsim, const int *sim_node, const int64_t *sim_bytes, int nana,
               const int *ana_node, int *ana_of_sim, char *why, size_t cap);

/* The plan for the init log, one line per analytics rank, each ending in
 * '\n': "analytics rank 3 (node 1): simulation ranks 0-5, 48 MiB/step", or
 * "analytics rank 2 (node 0): no simulation rank" when it has none. Ranks
 * are the indexes route_plan was given. The text always ends with a NUL
 * within text[0..cap) when cap > 0; when it does not fit it is cut and ends
 * with "...". ana_of_sim values outside 0..nana-1 are not listed.
 * text may be NULL when cap is 0, to measure.
 * @return : the length the whole text has (as snprintf), so a result >= cap
 *           says it was cut; 0 and "" when an array is NULL or a count is
 *           below 1. */
size_t route_describe(int nsim, const int64_t *sim_bytes, int nana, const int *ana_node,
                      const int *ana_of_sim, char *text, size_t cap);

#endif
