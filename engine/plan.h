/* plan.h: the compiled plan of the running script. Not installed. */
#ifndef LUISA_PLAN_H
#define LUISA_PLAN_H

#include "script.h"

/* Compile the plan on every rank at the first step; a callback that fails
 * on any rank is disabled on all. *unusable: the plan as a whole failed
 * (the script must be closed). Collective. */
int plan_compile(luisa *lz, int64_t step, int *unusable);
/* The compile of a reload: any failure fails it. Returns the first failing
 * rank (msg, who say what), -1 if none, -2 if MPI failed. Collective. */
int plan_compile_strict(luisa *lz, int64_t step, char *msg, size_t cap, char *who, size_t wcap);
/* Compile again in the same state after a region moved; all ranks take
 * the new plan or all keep the old. Collective. */
int plan_recompile(luisa *lz, int64_t step);
void plan_seal(lu_script *s);
void plan_free(luisa *lz, lu_compiled *c);
/* A callback's message for this step (replaces an earlier one). */
void plan_fail(lu_callback *cb, const char *msg);
/* Steering of the plan, on every rank at the same step. */
void plan_set_period(luisa *lz, int64_t step, int callback, int every);
void plan_move_region(luisa *lz, int64_t step, int region, const char *ranges);
/* Whether a callback is due at step by its period; whether the analysis
 * due at step reads a chunk (< 0: any) of array a on this rank. */
int plan_due(const luisa *lz, int64_t step);
int plan_wants(const luisa *lz, int a, int chunk, int64_t step);

#endif
