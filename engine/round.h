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

#endif
