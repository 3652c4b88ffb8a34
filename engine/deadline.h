/* deadline.h: opts.timeout_s on the waits for other ranks. Not installed. */
#ifndef LUISA_DEADLINE_H
#define LUISA_DEADLINE_H

#include "context.h"

/* Where a rank is, told to a rank that stalled and asks: */
enum lu_wait { LU_PHASE_ENTRY, LU_PHASE_TRANSFERS, LU_PHASE_REDUCE, LU_PHASE_VERDICT, LU_PHASE_RELOAD,
                LU_PHASE_FINALIZE, LU_PHASES };
int deadline_open(luisa *lz, int any_timeout);
/* At each step's entry (due: analysis is due at it): serves a stalled
 * rank's question with one MPI_Test. */
void deadline_poll(luisa *lz, int64_t step, int due);
double deadline_start(luisa *lz, int phase);
int deadline_check(luisa *lz, double start);
int deadline_wait(luisa *lz, int n, MPI_Request *requests, int phase, const char *what);
void deadline_keep(void *memory);
void deadline_close(luisa *lz);

#endif
