/* limit.c: the fastest hand-written C for benchmark 1's expression, built
 * apart with -O3 -march=native: 8 independent accumulators, which the
 * compiler vectorises (it may not reorder one sum by itself). What one core
 * pulls from memory through it is the kernel's physical limit here. */
#include <math.h>
#include <stdint.h>
#include "limit.h"

double bench_limit_kernel(const double *t, int64_t n)
{
  double s[8] = { 0 };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++)
      s[k] += fabs((t[i + k] - 1) * 2);
  for (; i < n; i++)
    s[0] += fabs((t[i] - 1) * 2);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* The same loop reading only: the memory bandwidth one core gets. */
double bench_limit_read(const double *t, int64_t n)
{
  double s[8] = { 0 };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++)
      s[k] += t[i + k];
  for (; i < n; i++)
    s[0] += t[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}
