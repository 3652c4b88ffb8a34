/* pin.h: where thread mode's analytics thread runs, chosen with hwloc so it
 * does not take a processing unit (PU) the simulation uses. Not installed. */
#ifndef LUISA_PIN_H
#define LUISA_PIN_H

#include <stddef.h>
#include <mpi.h>

typedef struct lu_pin lu_pin;

/* Collective over comm, which must hold every simulation rank of each node
 * (ranks outside it are not seen), and made before any analytics thread
 * starts: the simulation's binding is read for the whole process.
 * cpuset: NULL, "" or "auto": the PUs no rank of this node is bound to,
 * node-local rank i taking the i-th; unpinned when there are fewer than the
 * node's ranks, or when a rank of the node is not bound (bound to every PU),
 * rather than share a bound core unseen. Otherwise a list of PU OS indexes
 * (as lstopo and taskset number them: "1", "2-3", "1,5"): node-local rank i
 * takes its i-th PU when it has as many as the node's ranks, else every
 * thread of the node is bound to the whole list.
 * @return : LUISA_OK with *out (pin_free it) and placement, a sentence for
 *           the log saying where the thread runs and why; or, on every rank
 *           alike, LUISA_ERR_ARG (a list that does not parse or names a PU
 *           that does not exist or may not be used, on any rank),
 *           LUISA_ERR_NOMEM or LUISA_ERR_MPI, with *out NULL and why naming
 *           the value and the rank that failed. */
int pin_plan(MPI_Comm comm, const char *cpuset, lu_pin **out, char *placement, size_t pcap,
             char *why, size_t wcap);
/* Binds the calling thread, the analytics thread itself, where pin_plan
 * chose (only that thread: the simulation's binding is not touched); does
 * nothing when unpinned. 0, or -1 with why. */
int pin_self(const lu_pin *p, char *why, size_t cap);
/* 1 if the thread is pinned, with the chosen PUs as a list ("1", "2-3") in
 * list; 0 and "" when it runs unpinned. */
int pin_pinned(const lu_pin *p, char *list, size_t cap);
/* pin_free(NULL) does nothing. */
void pin_free(lu_pin *p);

#endif
