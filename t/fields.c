/* fields.c: drives the engine with axis reductions, gathers and coarsening (t/fields.lua) over three
 * differently decomposed arrays, and checks every element against plain C loops over global data.
 * usage: fields DTYPE SHAPE BLOCKS_A BLOCKS_B GHOST ORDER STEPS SCRIPT [errors|PATTERN]
 *        fields selftest
 *   SHAPE "16,12" (2 or 3 axes, each >= 7); BLOCKS_A "3,2": a grid of unevenly sized blocks of A,
 *   block k owned by rank k % size; BLOCKS_B the same for B, block k owned by rank (k + 1) % size;
 *   V is 1-D, 2*SHAPE[0]+1 long, in BLOCKS_A[0]+1 blocks, block k on rank (k + 2) % size. GHOST:
 *   ghost width around every chunk (filled with poison); ORDER c|f. "errors": the script also
 *   registers bad callbacks (LUISA_TEST_ERRORS=1): step 1 must return LUISA_WARN_SCRIPT, later steps
 *   LUISA_OK, and the good callbacks must still be right. PATTERN: what A holds (pattern_names:
 *   NaN everywhere, on the last rank's blocks, on every third row, at the ends, ramps, a
 *   constant, infinities, NaN but one infinity; default random). "selftest": the C reference against values
 *   worked out by hand. Rank 0 prints three TAP lines: values, window values (not with "errors"),
 *   statuses. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luisa.h"
#include "tap.h"

enum { MAXD = 3, MAXPOOL = 512, MAXSTEPS = 8, MAXSHOW = 12 };
#define TOL 1e-12   /* sums and means; everything else must be exact */

static luisa_dtype dtype;
static int ndim, errors, nranks;
static int64_t shape[MAXD], blocks_a[MAXD], nglobal;

/* What A holds (B and V stay random); the NaN and inf patterns need f32 or f64. */
enum pattern { RANDOM, ALL_NAN, NAN_RANK, NAN_ROWS, NAN_ENDS, RISING, FALLING, CONSTANT, INF, NAN_INF, NPATTERNS };
static const char *const pattern_names[NPATTERNS] = {
  "random", "nan", "nanrank", "nanrows", "nanends", "rising", "falling", "constant", "inf", "naninf"
};
static enum pattern pattern;

static int64_t block_start(int64_t n, int64_t b, int64_t k);

/* The rank owning A's global element i: block k is on rank k % size. */
static int owner_of(int64_t i)
{
  int64_t k = 0, stride = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    int64_t g = i % shape[d], bk = 0;
    i /= shape[d];
    while (block_start(shape[d], blocks_a[d], bk + 1) <= g)
      bk++;
    k += bk * stride;
    stride *= blocks_a[d];
  }
  return (int)(k % nranks);
}

/* Values of A (0), B (1) and V (2) at a global linear index and step: multiples of 1/64 in
 * [-100, 100] (whole numbers for integer types), so f32 holds them exactly and every sum of a few
 * thousand of them is exact in float64 in any order: block means, gathers, minima and maxima of
 * them must match the reference bit for bit on any decomposition. */
static double value(int which, int64_t i, int64_t step)
{
  uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ (uint64_t)(step * 7 + which) * 0xBF58476D1CE4E5B9ull;
  h ^= h >> 31;
  h *= 0x94D049BB133111EBull;
  h ^= h >> 29;
  double v = (double)(h % 12801) / 64.0 - 100.0;
  if (which == 0)
    switch (pattern) {
    case RANDOM: break;
    case ALL_NAN: v = NAN; break;
    case NAN_RANK: v = owner_of(i) == nranks - 1 ? NAN : v; break;
    case NAN_ROWS: v = i / (nglobal / shape[0]) % 3 == 1 ? NAN : v; break;
    case NAN_ENDS: v = i == 0 || i == nglobal - 1 ? NAN : v; break;
    case RISING: v = (double)i / 8 - 30 + (double)step; break;
    case FALLING: v = 30 - (double)i / 8 + (double)step; break;
    case CONSTANT: v = 2.5 + (double)step; break;
    case INF: v = i == nglobal / 3 ? INFINITY : i == 2 * nglobal / 3 ? -INFINITY : v; break;
    case NAN_INF: v = i != nglobal / 2 ? NAN : step % 2 ? INFINITY : -INFINITY; break;
    case NPATTERNS: break;
    }
  return dtype == LUISA_I32 || dtype == LUISA_I64 ? floor(v) : v;
}

/* got equals want: NaN matches NaN, infinities match exactly, other numbers to tol relative. */
static int matches(double got, double want, double tol)
{
  if (isnan(want) || isnan(got))
    return isnan(want) && isnan(got);
  if (isinf(want) || isinf(got))
    return got == want;
  return fabs(got - want) <= tol * fmax(1.0, fabs(want));
}

static void store(void *buf, int64_t at, double v)
{
  switch (dtype) {
  case LUISA_F64: ((double *)buf)[at] = v; break;
  case LUISA_F32: ((float *)buf)[at] = (float)v; break;
  case LUISA_I64: ((int64_t *)buf)[at] = (int64_t)v; break;
  case LUISA_I32: ((int32_t *)buf)[at] = (int32_t)v; break;
  }
}

static size_t dsize(void)
{
  return dtype == LUISA_F64 || dtype == LUISA_I64 ? 8 : 4;
}

/* "3,2,2" -> {3, 2, 2}; returns the count (at most MAXD). */
static int parse_list(const char *s, int64_t *v)
{
  int n = 0;
  for (char *end; *s && n < MAXD; s = *end ? end + 1 : end)
    v[n++] = strtoll(s, &end, 10);
  return n;
}

/* ---- The reference: dense arrays in C order, each operation a plain loop. ---- */

typedef struct dense {
  int nd;
  int64_t shape[MAXD], n;
  double *v;
} dense;
static dense pool[MAXPOOL];
static int npool, ref_bugs;

static dense *new_dense(int nd, const int64_t *shp)
{
  if (npool == MAXPOOL) {
    fprintf(stderr, "fields: dense pool exhausted\n");
    exit(2);
  }
  dense *a = &pool[npool++];
  a->nd = nd;
  a->n = 1;
  for (int d = 0; d < MAXD; d++) {
    a->shape[d] = d < nd ? shp[d] : 1;
    a->n *= a->shape[d];
  }
  a->v = calloc((size_t)a->n, sizeof *a->v);
  return a;
}

static void pool_free(void)
{
  while (npool > 0)
    free(pool[--npool].v);
}

static void unravel(const dense *a, int64_t k, int64_t *idx)
{
  for (int d = a->nd - 1; d >= 0; d--) {
    idx[d] = k % a->shape[d];
    k /= a->shape[d];
  }
}

static int64_t ravel(const dense *a, const int64_t *idx)
{
  int64_t k = 0;
  for (int d = 0; d < a->nd; d++) {
    if (idx[d] < 0 || idx[d] >= a->shape[d]) {   /* a bug in the reference, not in the engine */
      if (!ref_bugs++)
        fprintf(stderr, "fields: reference reads outside an array (axis %d index %lld of %lld)\n", d,
                (long long)idx[d], (long long)a->shape[d]);
      return 0;
    }
    k = k * a->shape[d] + idx[d];
  }
  return k;
}

/* Array `which` at `step` (V is 1-D, 2 * shape[0] + 1 long). */
static dense *global(int which, int64_t step)
{
  int64_t vlen = 2 * shape[0] + 1;
  dense *a = which == 2 ? new_dense(1, &vlen) : new_dense(ndim, shape);
  for (int64_t k = 0; k < a->n; k++)
    a->v[k] = value(which, k, step);
  return a;
}

/* A slice in Python notation, one comma-separated range per axis ("1:-1,::2"): empty parts take
 * their defaults, a missing axis is whole, a bare number i keeps the axis with extent 1. */
static dense *slice(const dense *a, const char *spec)
{
  int64_t start[MAXD], step[MAXD], shp[MAXD];
  const char *p = spec;
  for (int d = 0; d < a->nd; d++) {
    int64_t n = a->shape[d], f[3] = { 0, n, 1 };
    int has[3] = { 0, 0, 0 }, field = 0, colon = 0;
    while (*p && *p != ',') {
      if (*p == ':') {
        colon = 1;
        field++;
        p++;
        continue;
      }
      char *end;
      f[field] = strtoll(p, &end, 10);
      has[field] = end != p;
      p = end == p ? p + 1 : end;
    }
    if (*p == ',')
      p++;
    if (!colon && has[0]) {              /* i means i:i+1 */
      f[1] = f[0] + 1;
      has[1] = 1;
    }
    for (int k = 0; k < 2; k++) {
      if (has[k] && f[k] < 0)
        f[k] += n;
      f[k] = f[k] < 0 ? 0 : f[k] > n ? n : f[k];
    }
    start[d] = f[0];
    step[d] = f[2];
    shp[d] = f[1] > f[0] ? (f[1] - f[0] + f[2] - 1) / f[2] : 0;
    if (shp[d] < 1 && !ref_bugs++)
      fprintf(stderr, "fields: reference slice \"%s\" is empty on axis %d\n", spec, d);
  }
  dense *r = new_dense(a->nd, shp);
  int64_t idx[MAXD], src[MAXD];
  for (int64_t k = 0; k < r->n; k++) {
    unravel(r, k, idx);
    for (int d = 0; d < a->nd; d++)
      src[d] = start[d] + idx[d] * step[d];
    r->v[k] = a->v[ravel(a, src)];
  }
  return r;
}

static dense *diff(const dense *a, int axis)
{
  int64_t shp[MAXD];
  memcpy(shp, a->shape, sizeof shp);
  shp[axis]--;
  dense *r = new_dense(a->nd, shp);
  int64_t idx[MAXD];
  for (int64_t k = 0; k < r->n; k++) {
    unravel(r, k, idx);
    double here = a->v[ravel(a, idx)];
    idx[axis]++;
    r->v[k] = a->v[ravel(a, idx)] - here;
  }
  return r;
}

static dense *laplacian(const dense *a)
{
  int64_t shp[MAXD];
  for (int d = 0; d < a->nd; d++)
    shp[d] = a->shape[d] - 2;
  dense *r = new_dense(a->nd, shp);
  int64_t idx[MAXD];
  for (int64_t k = 0; k < r->n; k++) {
    unravel(r, k, idx);
    for (int d = 0; d < a->nd; d++)
      idx[d]++;
    double s = -2.0 * a->nd * a->v[ravel(a, idx)];
    for (int d = 0; d < a->nd; d++) {
      idx[d]++;
      s += a->v[ravel(a, idx)];
      idx[d] -= 2;
      s += a->v[ravel(a, idx)];
      idx[d]++;
    }
    r->v[k] = s;
  }
  return r;
}

/* Means over blocks of f[d] elements per axis ("2,3,2": the first nd factors); trailing elements
 * that fill no block are dropped. */
static dense *coarsen(const dense *a, const char *factors)
{
  int64_t f[MAXD], shp[MAXD], vol = 1;
  int nf = parse_list(factors, f);
  for (int d = 0; d < a->nd; d++) {
    if (nf == 1)                         /* one number: the same factor on every axis */
      f[d] = f[0];
    else if (d >= nf && !ref_bugs++)
      fprintf(stderr, "fields: reference coarsens %d axes with %d factors\n", a->nd, nf);
    shp[d] = a->shape[d] / f[d];
    vol *= f[d];
    if (shp[d] < 1 && !ref_bugs++)
      fprintf(stderr, "fields: reference coarsens axis %d of %lld by %lld\n", d, (long long)a->shape[d],
              (long long)f[d]);
  }
  dense *r = new_dense(a->nd, shp);
  int64_t idx[MAXD], src[MAXD];
  for (int64_t k = 0; k < r->n; k++) {
    unravel(r, k, idx);
    double s = 0;
    for (int64_t j = 0; j < vol; j++) {
      int64_t rest = j;
      for (int d = a->nd - 1; d >= 0; d--) {
        src[d] = idx[d] * f[d] + rest % f[d];
        rest /= f[d];
      }
      s += a->v[ravel(a, src)];
    }
    r->v[k] = s / (double)vol;
  }
  return r;
}

/* a op b elementwise; op 'c' is a times the constant c. */
static dense *bin(char op, const dense *a, const dense *b, double c)
{
  dense *r = new_dense(a->nd, a->shape);
  if (b && memcmp(a->shape, b->shape, sizeof a->shape) && !ref_bugs++)
    fprintf(stderr, "fields: reference combines arrays of different shapes\n");
  for (int64_t k = 0; k < r->n; k++) {
    double x = a->v[k], y = op == 'c' ? c : b->v[k];
    r->v[k] = op == '+' ? x + y : op == '-' ? x - y : x * y;
  }
  return r;
}

typedef enum { SUM, MEAN, MIN, MAX } kind;

/* Reduction along one axis: the shape without it, {1} for a 1-D input. Min and max start from
 * NaN and use C's fmin and fmax, which return the other operand when one is NaN: NaN values are
 * skipped and a line of NaN only gives NaN. */
static dense *reduce(const dense *a, int axis, kind what)
{
  int64_t shp[MAXD];
  int nd = 0;
  for (int d = 0; d < a->nd; d++)
    if (d != axis)
      shp[nd++] = a->shape[d];
  if (nd == 0)
    shp[nd++] = 1;
  dense *r = new_dense(nd, shp);
  for (int64_t k = 0; k < r->n; k++)
    r->v[k] = what == SUM || what == MEAN ? 0 : NAN;
  int64_t idx[MAXD], out[MAXD];
  for (int64_t k = 0; k < a->n; k++) {
    unravel(a, k, idx);
    int o = 0;
    for (int d = 0; d < a->nd; d++)
      if (d != axis)
        out[o++] = idx[d];
    if (o == 0)
      out[o++] = 0;
    double *x = &r->v[ravel(r, out)];
    *x = what == SUM || what == MEAN ? *x + a->v[k] : what == MIN ? fmin(*x, a->v[k]) : fmax(*x, a->v[k]);
  }
  if (what == MEAN)
    for (int64_t k = 0; k < r->n; k++)
      r->v[k] /= (double)a->shape[axis];
  return r;
}

static double whole(const dense *a, kind what)
{
  double s = 0, mn = NAN, mx = NAN;
  for (int64_t k = 0; k < a->n; k++) {
    s += a->v[k];
    mn = fmin(mn, a->v[k]);
    mx = fmax(mx, a->v[k]);
  }
  return what == SUM ? s : what == MEAN ? s / (double)a->n : what == MIN ? mn : mx;
}

/* ---- Expected values: name, value, relative tolerance (0: exact). ---- */

typedef struct entry {
  char name[48];
  double value, tol;
} entry;
static entry *expect;
static int nexpect, capexpect;

static void add(double value, double tol, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(double value, double tol, const char *fmt, ...)
{
  if (nexpect == capexpect) {
    capexpect = capexpect ? 2 * capexpect : 1024;
    expect = realloc(expect, (size_t)capexpect * sizeof *expect);
  }
  entry *e = &expect[nexpect++];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->name, sizeof e->name, fmt, ap);
  va_end(ap);
  e->value = value;
  e->tol = tol;
}

/* An array as t/fields.lua writes it: n, the number of axes, the shape, then every element in
 * C order from data[k] (name.k) and from at(i, j, ...) (name.at.k). */
static void field(const char *name, const dense *a, double tol)
{
  add((double)a->n, 0, "%s.n", name);
  add(a->nd, 0, "%s.nd", name);
  for (int d = 0; d < a->nd; d++)
    add((double)a->shape[d], 0, "%s.shape.%d", name, d);
  for (int64_t k = 0; k < a->n; k++) {
    add(a->v[k], tol, "%s.%lld", name, (long long)k);
    add(a->v[k], tol, "%s.at.%lld", name, (long long)k);
  }
}

static void not_yet(const char *name)
{
  add(1, 0, "%s.nil", name);
}

/* Everything t/fields.lua reports at `step`, in the same terms (its comments give the calls). */
static void expected_all(int64_t step)
{
  pool_free();
  nexpect = 0;
  const dense *A = global(0, step), *B = global(1, step), *V = global(2, step);
  const dense *A1 = step >= 2 ? global(0, step - 1) : NULL, *A2 = step >= 3 ? global(0, step - 2) : NULL;
  const dense *B1 = step >= 2 ? global(1, step - 1) : NULL, *B2 = step >= 3 ? global(1, step - 2) : NULL;
  int last = ndim - 1;
  char name[32];

  /* Along each axis, and whole-array reductions beside them. */
  for (int d = 0; d < ndim; d++) {
    snprintf(name, sizeof name, "sum%d", d);
    field(name, reduce(A, d, SUM), TOL);
    snprintf(name, sizeof name, "mean%d", d);
    field(name, reduce(A, d, MEAN), TOL);
    snprintf(name, sizeof name, "min%d", d);
    field(name, reduce(A, d, MIN), 0);
    snprintf(name, sizeof name, "max%d", d);
    field(name, reduce(A, d, MAX), 0);
  }
  field("bsum", reduce(B, last, SUM), TOL);
  field("bmin0", reduce(B, 0, MIN), 0);
  add(whole(A, SUM), TOL, "tot");
  add(whole(A, MAX), 0, "amax");
  field("vsum", reduce(V, 0, SUM), TOL);
  field("vmean", reduce(V, 0, MEAN), TOL);
  field("vmin", reduce(V, 0, MIN), 0);
  field("vmax", reduce(V, 0, MAX), 0);

  /* Gathers. */
  field("g", A, 0);
  field("gsl", slice(A, "1:-1,::2"), 0);
  field("gc2", coarsen(A, "2"), 0);
  field("gc23", coarsen(A, "2,3,2"), 0);
  field("gbc3", coarsen(B, "3"), 0);
  field("gd", coarsen(diff(A, 0), "2"), 0);
  field("gsc", coarsen(slice(A, "1:,2:"), "2"), 0);
  field("gcs", slice(coarsen(A, "2"), "::2"), 0);
  field("gv", coarsen(V, "3"), 0);
  field("gab", slice(bin('-', A, bin('c', B, NULL, 2), 0), "::3,1:-1"), 0);

  /* Coarsened arrays reduced. */
  add(whole(coarsen(A, "2,3,2"), SUM), TOL, "c23sum");
  add(whole(coarsen(A, "2"), MEAN), TOL, "c2mean");
  add(whole(coarsen(A, "2"), MIN), 0, "c2min");
  add(whole(coarsen(A, "2"), MAX), 0, "c2max");
  add(whole(bin('-', coarsen(A, "2"), coarsen(B, "2"), 0), MAX), 0, "cab");
  field("c3s1", reduce(coarsen(A, "3"), 1, SUM), TOL);
  field("c2m0", reduce(coarsen(A, "2"), 0, MAX), 0);
  field("c2meanl", reduce(coarsen(A, "2"), last, MEAN), TOL);
  field("cbmin", reduce(coarsen(B, "3,2,1"), 0, MIN), 0);

  /* With stencils, slices and another decomposition. */
  field("d0s1", reduce(diff(A, 0), 1, SUM), TOL);
  field("d1m0", reduce(diff(A, 1), 0, MAX), 0);
  field("lapmean0", reduce(laplacian(A), 0, MEAN), TOL);
  field("lapmin", reduce(laplacian(A), last, MIN), 0);
  field("sls0", reduce(slice(A, "1:-1,::2"), 0, SUM), TOL);
  field("abmin", reduce(bin('-', A, B, 0), last, MIN), 0);
  field("abs1", reduce(bin('*', A, B, 0), 1, SUM), TOL);

  /* Windows: nil until the steps they read exist (not in the run with bad callbacks). */
  if (!errors && A1) {
    field("dp", reduce(bin('-', A, A1, 0), 0, MAX), 0);
    add(whole(bin('-', A, A1, 0), SUM), TOL, "dps");
    field("w1g", slice(A1, "::2"), 0);
    add(whole(bin('-', coarsen(A, "2"), coarsen(B1, "2"), 0), MAX), 0, "wbc");
    field("kp", coarsen(A1, "2"), 0);
  } else if (!errors) {
    not_yet("dp");
    not_yet("dps");
    not_yet("w1g");
    not_yet("wbc");
    not_yet("kp");
  }
  if (!errors && A2) {
    field("w2s1", reduce(bin('+', bin('-', A, bin('c', A1, NULL, 2), 0), A2, 0), 1, SUM), TOL);
    field("w2g", coarsen(A2, "2"), 0);
    field("wb", reduce(bin('-', B2, A, 0), 0, MIN), 0);
  } else if (!errors) {
    not_yet("w2s1");
    not_yet("w2g");
    not_yet("wb");
  }

  /* A gathered array kept by the callback past its step. */
  field("kc", coarsen(A, "2"), 0);
  if (A1)
    field("keep", coarsen(A1, "2"), 0);
  else
    not_yet("keep");
}

/* Results of the windows callback are counted apart, so a window bug does not hide the rest. */
static int is_window(const char *name)
{
  static const char *const keys[] = { "dp", "dps", "w1g", "wbc", "kp", "w2s1", "w2g", "wb" };
  size_t len = strcspn(name, ".");
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
    if (strlen(keys[k]) == len && !strncmp(name, keys[k], len))
      return 1;
  return 0;
}

/* ---- The hand check of the reference. ---- */

static int same(const char *what, const dense *a, int nd, const int64_t *shp, const double *want)
{
  int bad = a->nd != nd;
  for (int d = 0; d < nd && !bad; d++)
    bad = a->shape[d] != shp[d];
  printf("# %s:", what);
  for (int64_t k = 0; k < a->n; k++)
    printf(" %g", a->v[k]);
  printf("\n");
  for (int64_t k = 0; k < a->n && !bad; k++)
    bad = a->v[k] != want[k];
  if (bad)
    printf("# %s differs from the values worked out by hand\n", what);
  return bad;
}

/* G[i][j] = 10i + j on 4x6, H[i][j] = i^2 + 2j^2 on 4x5 (laplacian 6), V = 3 1 4 1 5 9 2,
 * T[i][j][k] = 100i + 10j + k on 2x3x2: the values below were worked out on paper. */
static int selftest(void)
{
  int64_t s46[2] = { 4, 6 }, s45[2] = { 4, 5 }, s7 = 7, s232[3] = { 2, 3, 2 };
  dense *G = new_dense(2, s46), *H = new_dense(2, s45), *V = new_dense(1, &s7), *T = new_dense(3, s232);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 6; j++)
      G->v[i * 6 + j] = 10 * i + j;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 5; j++)
      H->v[i * 5 + j] = i * i + 2 * j * j;
  const double v7[7] = { 3, 1, 4, 1, 5, 9, 2 };
  memcpy(V->v, v7, sizeof v7);
  for (int k = 0; k < 12; k++)
    T->v[k] = 100 * (k / 6) + 10 * (k / 2 % 3) + k % 2;
  int bad = 0;
  bad += same("G:coarsen(2)", coarsen(G, "2"), 2, (int64_t[]){ 2, 3 },
              (double[]){ 5.5, 7.5, 9.5, 25.5, 27.5, 29.5 });
  bad += same("G:coarsen({3,4})", coarsen(G, "3,4"), 2, (int64_t[]){ 1, 1 }, (double[]){ 11.5 });
  bad += same("G:sum(0)", reduce(G, 0, SUM), 1, (int64_t[]){ 6 }, (double[]){ 60, 64, 68, 72, 76, 80 });
  bad += same("G:sum(1)", reduce(G, 1, SUM), 1, (int64_t[]){ 4 }, (double[]){ 15, 75, 135, 195 });
  bad += same("G:mean(1)", reduce(G, 1, MEAN), 1, (int64_t[]){ 4 }, (double[]){ 2.5, 12.5, 22.5, 32.5 });
  bad += same("G:min(0)", reduce(G, 0, MIN), 1, (int64_t[]){ 6 }, (double[]){ 0, 1, 2, 3, 4, 5 });
  bad += same("G:max(1)", reduce(G, 1, MAX), 1, (int64_t[]){ 4 }, (double[]){ 5, 15, 25, 35 });
  bad += same("G[1:-1, ::2]", slice(G, "1:-1,::2"), 2, (int64_t[]){ 2, 3 },
              (double[]){ 10, 12, 14, 20, 22, 24 });
  bad += same("G[::3]", slice(G, "::3"), 2, (int64_t[]){ 2, 6 },
              (double[]){ 0, 1, 2, 3, 4, 5, 30, 31, 32, 33, 34, 35 });
  bad += same("G:diff(1):max(0)", reduce(diff(G, 1), 0, MAX), 1, (int64_t[]){ 5 }, (double[]){ 1, 1, 1, 1, 1 });
  bad += same("H:laplacian()", laplacian(H), 2, (int64_t[]){ 2, 3 }, (double[]){ 6, 6, 6, 6, 6, 6 });
  bad += same("V:sum(0)", reduce(V, 0, SUM), 1, (int64_t[]){ 1 }, (double[]){ 25 });
  bad += same("V:min(0)", reduce(V, 0, MIN), 1, (int64_t[]){ 1 }, (double[]){ 1 });
  bad += same("V:coarsen(3)", coarsen(V, "3"), 1, (int64_t[]){ 2 }, (double[]){ 8.0 / 3, 5 });
  bad += same("T:sum(1)", reduce(T, 1, SUM), 2, (int64_t[]){ 2, 2 }, (double[]){ 30, 33, 330, 333 });
  bad += same("T:coarsen({1,2,2})", coarsen(T, "1,2,2"), 3, (int64_t[]){ 2, 1, 1 }, (double[]){ 5.5, 105.5 });
  bad += same("T:coarsen(2)", coarsen(T, "2"), 3, (int64_t[]){ 1, 1, 1 }, (double[]){ 55.5 });
  bad += whole(G, MEAN) != 17.5 || whole(coarsen(G, "2"), MAX) != 29.5;
  pool_free();
  return bad + ref_bugs;
}

/* ---- Decomposition and publishing (as in t/stencil.c, for any number of axes). ---- */

/* Uneven split: block k of b on an axis of n starts at n*(k/b)^1.5 (at least one element
 * each), so blocks differ in size, some narrower than a coarsening block. */
static int64_t block_start(int64_t n, int64_t b, int64_t k)
{
  if (k >= b)
    return n;
  int64_t s = (int64_t)((double)n * pow((double)k / (double)b, 1.5));
  return s < k ? k : s;
}

typedef struct chunk {
  int64_t off[MAXD], shp[MAXD], alloc[MAXD], vol;
  void *buf;
} chunk;

typedef struct darray {
  const char *name;
  int which, nd, shift, n;               /* n: chunks on this rank */
  int64_t shape[MAXD], blocks[MAXD];
  chunk *mine;
} darray;

/* Declares this rank's blocks of `a` (block k owned by rank (k + shift) % size). */
static void decompose(luisa *lz, darray *a, int ghost, luisa_order order, int rank, int size, int *failures)
{
  int64_t nblocks = 1;
  for (int d = 0; d < a->nd; d++)
    nblocks *= a->blocks[d];
  a->mine = calloc((size_t)nblocks, sizeof *a->mine);
  a->n = 0;
  for (int64_t k = 0; k < nblocks; k++) {
    if ((k + a->shift) % size != rank)
      continue;
    chunk *c = &a->mine[a->n++];
    int64_t rest = k;
    c->vol = 1;
    for (int d = a->nd - 1; d >= 0; d--) {
      int64_t bk = rest % a->blocks[d];
      rest /= a->blocks[d];
      c->off[d] = block_start(a->shape[d], a->blocks[d], bk);
      c->shp[d] = block_start(a->shape[d], a->blocks[d], bk + 1) - c->off[d];
      c->alloc[d] = c->shp[d] + 2 * ghost;
      c->vol *= c->alloc[d];
    }
    luisa_layout layout = { .order = order };
    for (int d = 0; d < a->nd; d++) {
      layout.alloc_shape[d] = c->alloc[d];
      layout.start[d] = ghost;
    }
    c->buf = malloc((size_t)c->vol * dsize());
    if (luisa_chunk(lz, a->name, c->off, c->shp, &layout) != LUISA_OK) {
      printf("# rank %d: luisa_chunk(%s) refused: %s\n", rank, a->name, luisa_error(lz));
      (*failures)++;
    }
  }
}

/* Poison everywhere, then the interior: reading a ghost spoils a result. */
static void fill_and_publish(luisa *lz, const darray *a, int ghost, luisa_order order, int64_t step)
{
  double poison = dtype == LUISA_F64 || dtype == LUISA_F32 ? NAN : a->which == 1 ? -1e9 : 1e9;
  for (int m = 0; m < a->n; m++) {
    const chunk *c = &a->mine[m];
    for (int64_t at = 0; at < c->vol; at++)
      store(c->buf, at, poison);
    int64_t idx[MAXD] = { 0 };
    for (int64_t e = 0; e < c->vol; e++) {
      int64_t rest = e, inside = 1, global = 0, at = 0, stride = 1;
      for (int d = a->nd - 1; d >= 0; d--) {    /* e walks the buffer in C order */
        idx[d] = rest % c->alloc[d];
        rest /= c->alloc[d];
      }
      for (int d = 0; d < a->nd; d++) {
        int64_t g = idx[d] - ghost;
        inside &= g >= 0 && g < c->shp[d];
        global = global * a->shape[d] + c->off[d] + g;
      }
      if (!inside)
        continue;
      for (int k = 0; k < a->nd; k++) {         /* position of idx in the buffer's order */
        int d = order == LUISA_ORDER_C ? a->nd - 1 - k : k;
        at += idx[d] * stride;
        stride *= c->alloc[d];
      }
      store(c->buf, at, value(a->which, global, step));
    }
    luisa_publish(lz, a->name, m, c->buf);
  }
}

/* ---- Reading what the script wrote. ---- */

typedef struct report {
  int step;
  char name[48];
  double value;
  int used;
} report;

static int by_step_name(const void *x, const void *y)
{
  const report *a = x, *b = y;
  return a->step != b->step ? (a->step > b->step) - (a->step < b->step) : strcmp(a->name, b->name);
}

static report *read_reports(const char *path, int *count)
{
  FILE *f = path ? fopen(path, "r") : NULL;
  int n = 0, cap = 0;
  report *r = NULL, tmp;
  long long s;
  while (f && fscanf(f, "%lld %47s %lf", &s, tmp.name, &tmp.value) == 3) {
    if (n == cap) {
      cap = cap ? 2 * cap : 4096;
      r = realloc(r, (size_t)cap * sizeof *r);
    }
    tmp.step = (int)s;
    tmp.used = 0;
    r[n++] = tmp;
  }
  if (f)
    fclose(f);
  if (n)
    qsort(r, (size_t)n, sizeof *r, by_step_name);
  *count = n;
  return r;
}

/* Compares rank 0's reports with the reference; bad[1] counts the mismatches of window results,
 * bad[0] all others. */
static void check(const char *path, int steps, int *bad)
{
  int nrep, shown = 0;
  report *rep = read_reports(path, &nrep);
  if (!nrep) {
    printf("# nothing reported in %s\n", path ? path : "(LUISA_TEST_OUT unset)");
    bad[0]++;
    bad[1]++;
    return;
  }
  for (int step = 1; step <= steps; step++) {
    expected_all(step);
    if (ref_bugs)
      bad[0]++;
    for (int k = 0; k < nexpect; k++) {
      const entry *e = &expect[k];
      report key = { .step = step };
      snprintf(key.name, sizeof key.name, "%s", e->name);
      report *r = bsearch(&key, rep, (size_t)nrep, sizeof *rep, by_step_name);
      if (!r) {
        if (shown++ < MAXSHOW)
          printf("# step %d: %s was not reported\n", step, e->name);
        bad[is_window(e->name)]++;
        continue;
      }
      r->used++;
      if (!matches(r->value, e->value, e->tol)) {
        if (shown++ < MAXSHOW)
          printf("# step %d: %s = %.17g, expected %.17g\n", step, e->name, r->value, e->value);
        bad[is_window(e->name)]++;
      }
    }
  }
  for (int i = 0; i < nrep; i++)   /* extra keys, steps that should not have run, repeats */
    if (rep[i].used != 1) {
      if (shown++ < MAXSHOW)
        printf("# step %d: %s = %.17g %s\n", rep[i].step, rep[i].name, rep[i].value,
               rep[i].used ? "reported twice" : "not expected");
      bad[is_window(rep[i].name)]++;
    }
  if (shown > MAXSHOW)
    printf("# ... %d mismatches in all\n", bad[0] + bad[1]);
  free(rep);
  pool_free();
}

int main(int argc, char **argv)
{
  tap_mpi_init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  if (argc == 2 && !strcmp(argv[1], "selftest")) {
    int bad = rank == 0 ? selftest() : 0;
    tap_print("%sok - the C reference agrees with values worked out by hand\n", bad ? "not " : "");
    MPI_Finalize();
    return bad != 0;
  }
  errors = argc == 10 && !strcmp(argv[9], "errors");
  pattern = argc == 9 || errors ? RANDOM : NPATTERNS;
  for (int p = 0; p < NPATTERNS && argc == 10 && !errors; p++)
    if (!strcmp(argv[9], pattern_names[p]))
      pattern = (enum pattern)p;
  dtype = argc < 2 ? LUISA_F64 : !strcmp(argv[1], "f32") ? LUISA_F32 : !strcmp(argv[1], "i32") ? LUISA_I32
        : !strcmp(argv[1], "i64") ? LUISA_I64 : LUISA_F64;
  int integer = dtype == LUISA_I32 || dtype == LUISA_I64;
  if ((argc != 9 && argc != 10) || pattern == NPATTERNS
      || (integer && pattern != RANDOM && pattern != RISING && pattern != FALLING && pattern != CONSTANT)) {
    tap_print("not ok - usage: fields DTYPE SHAPE BLOCKS_A BLOCKS_B GHOST ORDER STEPS SCRIPT [errors|PATTERN] "
              "(NaN and inf patterns need f32 or f64)\n");
    MPI_Finalize();
    return 1;
  }
  nranks = size;
  ndim = parse_list(argv[2], shape);
  darray A = { .name = "A", .which = 0, .nd = ndim, .shift = 0 };
  darray B = { .name = "B", .which = 1, .nd = ndim, .shift = 1 };
  darray V = { .name = "V", .which = 2, .nd = 1, .shift = 2 };
  int ok_args = ndim >= 2 && parse_list(argv[3], A.blocks) == ndim && parse_list(argv[4], B.blocks) == ndim;
  nglobal = 1;
  for (int d = 0; d < ndim; d++) {
    blocks_a[d] = A.blocks[d];
    nglobal *= shape[d];
    A.shape[d] = B.shape[d] = shape[d];
    ok_args &= shape[d] >= 7 && A.blocks[d] >= 1 && A.blocks[d] <= shape[d] && B.blocks[d] >= 1
               && B.blocks[d] <= shape[d];
  }
  V.shape[0] = 2 * shape[0] + 1;
  V.blocks[0] = A.blocks[0] + 1;
  int ghost = atoi(argv[5]);
  luisa_order order = argv[6][0] == 'f' ? LUISA_ORDER_F : LUISA_ORDER_C;
  int steps = atoi(argv[7]);
  char desc[512];
  snprintf(desc, sizeof desc, "%d rank%s, %s %s, A blocks %s, B blocks %s, ghost %d, order %s, %d steps%s%s%s",
           size, size > 1 ? "s" : "", argv[1], argv[2], argv[3], argv[4], ghost, argv[6], steps,
           errors ? ", bad callbacks" : "", pattern != RANDOM ? ", A " : "", pattern != RANDOM ? pattern_names[pattern] : "");
  if (!ok_args || steps < 1 || steps >= MAXSTEPS) {
    tap_print("not ok - %s: SHAPE needs 2 or 3 extents >= 7 and BLOCKS as many counts\n", desc);
    MPI_Finalize();
    return 1;
  }

  setenv("LUISA_TEST_SHAPE", argv[2], 1);   /* the script writes its slices and factors per axis */
  if (errors)
    setenv("LUISA_TEST_ERRORS", "1", 1);
  luisa_options opts = luisa_options_default();
  opts.script = argv[8];
  luisa *lz;
  int failures = 0, bad_status = 0, bad[2] = { 0, 0 };   /* bad: values, window values */
  int st = luisa_init(MPI_COMM_WORLD, &opts, &lz);
  if (st != LUISA_OK) {
    tap_print("not ok - %s: luisa_init returned %d: %s\n", desc, st, lz ? luisa_error(lz) : "");
    luisa_finalize(lz);
    MPI_Finalize();
    return 1;
  }
  darray *all[3] = { &A, &B, &V };
  for (int i = 0; i < 3; i++)
    luisa_array(lz, all[i]->name, dtype, all[i]->nd, all[i]->shape);
  for (int i = 0; i < 3; i++)
    decompose(lz, all[i], ghost, order, rank, size, &failures);

  for (int64_t step = 1; step <= steps; step++) {
    for (int i = 0; i < 3; i++)
      fill_and_publish(lz, all[i], ghost, order, step);
    st = luisa_step(lz, step);
    int want = errors && step == 1 ? LUISA_WARN_SCRIPT : LUISA_OK;
    if (errors && step == 1 && rank == 0)   /* t/015-fields.t looks for file:line here too */
      fprintf(stderr, "luisa_error at step 1: %s\n", luisa_error(lz));
    if (st != want) {
      printf("# rank %d step %lld: status %d, expected %d: %s\n", rank, (long long)step, st, want,
             luisa_error(lz));
      bad_status++;
    }
  }

  if (rank == 0)
    check(getenv("LUISA_TEST_OUT"), steps, bad);
  bad[0] += failures;   /* declarations refused */
  MPI_Allreduce(MPI_IN_PLACE, bad, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &bad_status, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  tap_print("%sok - %s: axis reductions, gathers and coarsening match C loops\n", bad[0] ? "not " : "", desc);
  if (!errors)
    tap_print("%sok - %s: windows are nil until their steps exist, then match\n", bad[1] ? "not " : "", desc);
  tap_print("%sok - %s: luisa_step returns %s on every rank\n", bad_status ? "not " : "", desc,
            errors ? "LUISA_WARN_SCRIPT at step 1, then LUISA_OK" : "LUISA_OK at every step");
  failures = bad[0] + bad[1] + bad_status;
  for (int i = 0; i < 3; i++) {
    for (int m = 0; m < all[i]->n; m++)
      free(all[i]->mine[m].buf);
    free(all[i]->mine);
  }
  free(expect);
  luisa_finalize(lz);
  MPI_Finalize();
  return failures != 0;
}
