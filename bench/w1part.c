/* w1part.c: the hand-written W1 of benchmarks 4 and 10 (sum and max of a
 * rank's rows, count, mean and M2 of their axis-0 differences) and the MPI
 * operation that combines the ranks' parts. */
#include <math.h>
#include "bench.h"

_Static_assert(sizeof(bench_w1_part) == 5 * sizeof(double), "a part travels as 5 doubles");

MPI_Op bench_w1_op;
MPI_Datatype bench_w1_type;

/* (count, mean, M2) of two parts: Chan, Golub and LeVeque's pairwise
 * formula, sound whatever the magnitude of the mean. */
static void combine(void *in, void *inout, int *len, MPI_Datatype *type)
{
  (void)type;
  const bench_w1_part *a = in;
  bench_w1_part *b = inout;
  for (int i = 0; i < *len; i++, a++, b++) {
    b->sum += a->sum;
    b->max = fmax(b->max, a->max);
    if (a->n == 0)
      continue;
    if (b->n == 0) {
      b->n = a->n, b->mean = a->mean, b->m2 = a->m2;
      continue;
    }
    double n = a->n + b->n, delta = a->mean - b->mean;
    b->mean += delta * a->n / n;
    b->m2 += a->m2 + delta * delta * a->n * b->n / n;
    b->n = n;
  }
}

void bench_w1_begin(void)
{
  MPI_Op_create(combine, 1, &bench_w1_op);
  MPI_Type_contiguous(5, MPI_DOUBLE, &bench_w1_type);
  MPI_Type_commit(&bench_w1_type);
}

void bench_w1_end(void)
{
  MPI_Op_free(&bench_w1_op);
  MPI_Type_free(&bench_w1_type);
}

bench_w1_part bench_w1_local(const double *t, const double *halo, int64_t rows, int64_t cols, int fused)
{
  double s = 0, m0 = -HUGE_VAL, m1 = -HUGE_VAL, k = 0, sd = 0, sdd = 0;
  int64_t nd = 0;
  if (!fused)
    bench_sum_max(t, rows * cols, &s, &m0);
  for (int64_t i = 0; i < rows; i++) {
    const double *row = t + i * cols, *up = i ? row - cols : halo;
    if (!up) {
      if (fused)
        bench_sum_max(row, cols, &s, &m0);
      continue;
    }
    if (nd == 0)
      k = row[0] - up[0];
    if (!fused) {
      for (int64_t j = 0; j < cols; j++) {
        double d = (row[j] - up[j]) - k;
        sd += d;
        sdd += d * d;
      }
      nd += cols;
      continue;
    }
    int64_t j = 0;
    for (; j + 1 < cols; j += 2) {
      double x0 = row[j], x1 = row[j + 1];
      double d0 = (x0 - up[j]) - k, d1 = (x1 - up[j + 1]) - k;
      s += x0;
      s += x1;
      if (x0 > m0)
        m0 = x0;
      if (x1 > m1)
        m1 = x1;
      sd += d0;
      sd += d1;
      sdd += d0 * d0;
      sdd += d1 * d1;
    }
    for (; j < cols; j++) {
      double x = row[j], d = (x - up[j]) - k;
      s += x;
      if (x > m0)
        m0 = x;
      sd += d;
      sdd += d * d;
    }
    nd += cols;
  }
  bench_w1_part p = { s, fmax(m0, m1), (double)nd, 0, 0 };
  if (nd > 0) {
    p.mean = k + sd / (double)nd;
    double m2 = sdd - sd * sd / (double)nd;
    p.m2 = m2 < 0 ? 0 : m2;   /* rounding can dip below 0; NaN stays NaN */
  }
  return p;
}
