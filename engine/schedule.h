/* schedule.h: what the simulation's side knows of the running plan: a copy
 * taken after each analysed step, enough to answer luisa_wants and to tell
 * where assignments land, without touching the plan itself (in
 * thread mode it lives on another thread). Not installed. */
#ifndef LUISA_SCHEDULE_H
#define LUISA_SCHEDULE_H

#include "context.h"

typedef struct lu_schedule {
  int known;                   /* else everything is wanted */
  int64_t until;               /* the copy holds for the luisa_step calls up to this one */
  int ncallbacks, nflat;       /* callbacks; local chunks of all arrays */
  int *every;
  unsigned char *enabled;
  int *assigns;                /* the array it assigns + 1, or 0 */
  unsigned char *kept;         /* per array: a window reads it at every step */
  int *base, *nchunks;         /* per array: the flat index of its chunk 0, its chunks */
  unsigned char *reads;        /* ncallbacks x nflat */
  size_t caps[7];              /* of each buffer above, in elements */
} lu_schedule;

/* The running plan's schedule, valid up to call `until`. Unknown when
 * there is none yet or it cannot be copied (out of memory). */
void schedule_take(const luisa *lz, lu_schedule *s, int64_t until);
/* Whether the analysis of the call-th luisa_step (numbered step) may read
 * chunk `chunk` (< 0: any) of array a, or an assignment write into it. */
int schedule_wants(const lu_schedule *s, int a, int chunk, int64_t step, int64_t call);
/* Ranks mode. The part of s about one simulation rank's chunks (flat:
 * their flat indices in s, array by array, counts[a] of array a), into w;
 * read back on that rank as its own schedule (unknown if it does not fit
 * its declarations). */
typedef struct lu_wire lu_wire;
void schedule_put(const lu_schedule *s, const int *flat, const int *counts, int narrays, lu_wire *w);
void schedule_get(lu_schedule *s, const luisa *lz, lu_wire *w);
void schedule_free(lu_schedule *s);

#endif
