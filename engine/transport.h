/* transport.h: the MPI traffic of the engine. Not installed. */
#ifndef LUISA_TRANSPORT_H
#define LUISA_TRANSPORT_H

#include "context.h"

int transport_open(luisa *lz);
void transport_close(luisa *lz);
int transport_agree(luisa *lz, int failed, char *msg, size_t cap);
int transport_share(luisa *lz, int owner, char *msg, size_t cap);
int transport_check(luisa *lz, int failed, char *msg, size_t cap, int status);
int transport_settle(luisa *lz, int status, char *msg, size_t cap, int *who);
int transport_verdict(luisa *lz, int status, char *msg, size_t cap);
/* Kinds of reduction slots, in buffer order; widths 1, 1, 1, 2, 2, 3. */
enum lu_slot_kind { LU_MIN, LU_SUM, LU_MAX, LU_ARGMIN, LU_ARGMAX, LU_MOMENTS, LU_SLOT_KINDS };
/* The engine's own LU_MIN slots, first in every reduction: the lowest
 * failing rank, then a digest d of plan, callback and step as d and -d
 * (all ranks agree when min(d) == -min(-d)). The script's slots follow. */
enum { LU_SLOT_FAILED = 0, LU_SLOT_DIGEST = 1, LU_ENGINE_SLOTS = 3 };
lu_reduction *transport_reduction_new(luisa *lz, const int *counts);
double *transport_reduction_input(lu_reduction *r);
const double *transport_reduction_result(lu_reduction *r);
int transport_reserve(luisa *lz, lu_reduction *const *reductions, int n, char *msg, size_t cap);
int transport_reduce(luisa *lz, lu_reduction **due, int ndue);
double *transport_field_new(lu_reduction *r, int n, const char *op, double **out);
void transport_reduction_free(lu_reduction *r);
int transport_bcast_ints(luisa *lz, int *v, int n);
int transport_who(luisa *lz, int failed, char *text, size_t cap);

#endif
