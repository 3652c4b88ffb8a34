/* limit.h: benchmark 1's physical limit (limit.c, -O3 -march=native). */
#ifndef BENCH_LIMIT_H
#define BENCH_LIMIT_H
#include <stdint.h>
double bench_limit_kernel(const double *t, int64_t n);
double bench_limit_read(const double *t, int64_t n);
#endif
