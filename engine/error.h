/* error.h: statuses with their sentences. Not installed. */
#ifndef LUISA_ERROR_H
#define LUISA_ERROR_H

#include <stdarg.h>
#include "context.h"

/* The sentence of the last failure, as the calling thread sees it: an
 * analytics thread (error_analysis_thread) has a buffer of its own, which
 * its executor hands to the simulation's thread at the step it reports. */
char *error_buffer(luisa *lz);
void error_analysis_thread(void);
int error_set(luisa *lz, int status, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
/* " on rank N", or "" when there is one rank: for sentences naming one. */
const char *error_on_rank(char *buf, size_t cap, const luisa *lz, int rank);
/* "rank 3" or "ranks 0-2, 5": the ranks r with of[r] == value. Returns how many. */
int error_ranks(char *text, size_t cap, const int *of, int size, int value);
#define RETURN_IF(cond, lz, status, ...) \
  do { if (cond) return error_set((lz), (status), __VA_ARGS__); } while (0)
#define FORWARD_IF_ERROR(expr) \
  do { int fwd_ = (expr); if (fwd_ >= LUISA_ERR_FIRST) return fwd_; } while (0)

#endif
