/* round.h: one step of analysis on every rank. Not installed. */
#ifndef LUISA_ROUND_H
#define LUISA_ROUND_H

#include "context.h"

/* The analysis of the call-th luisa_step (its number: step): the
 * callbacks due by their period, then those their triggers fired, in a
 * second round. The changes they decide apply after the (call + lag)-th
 * step: the plan's (periods, regions) are made here at the end of that
 * step's analysis, a region move compiling the plan again; the
 * simulation's wait in steer's queue (steer_apply_due). Collective. */
int round_step(luisa *lz, int64_t step, int64_t call, int lag);

/* Take the root's word on the last round's callbacks if it is still on
 * its way (see run_round): before a plan is replaced or closed. Their
 * changes apply after the after-th step; *nfail (if given) counts the
 * callbacks it disabled. Collective when a word is pending. */
int round_settle(luisa *lz, int64_t after, int *nfail);

#endif
