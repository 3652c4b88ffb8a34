/* stencil.c: drives the engine with diff, laplacian, stencil and slice expressions over two
 * differently decomposed arrays, and checks every statistic against plain C loops over global data.
 * usage: stencil DTYPE SHAPE BLOCKS_A BLOCKS_B GHOST ORDER STEPS SCRIPT [errors]
 *        stencil selftest
 *   SHAPE "16,12" (2 or 3 axes, each >= 7); BLOCKS_A "3,2": a grid of unevenly sized blocks of A,
 *   block k owned by rank k % size; BLOCKS_B the same for B, block k owned by rank (k + 1) % size,
 *   so B's chunks differ from A's; GHOST: ghost width around every chunk (filled with poison);
 *   ORDER c|f. "errors": the script's bad callbacks must fail at step 1 and only d0_sum and
 *   lap_sum are reported (t/data/stencil_errors.lua). "selftest": the C reference against values
 *   worked out by hand on a 4x3 array. Prints one TAP line on rank 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luisa.h"
#include "tap.h"

enum { MAXD = 3, MAXV = 256, MAXW = 27, MAXE = 512, MAXSTEPS = 8 };

static luisa_dtype dtype;
static int ndim;
static int64_t shape[MAXD];

/* Values of A and B at a global linear index and step: multiples of 1/64 in [-100, 100] (whole
 * numbers for integer types), so f32 holds them exactly and every sum of them, or of their
 * products with the multiple-of-1/4 weights, is exact in float64 in any order: a sum over a
 * different decomposition cannot differ by rounding. */
static double value(int which, int64_t i, int64_t step)
{
  uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ (uint64_t)(step * 7 + which) * 0xBF58476D1CE4E5B9ull;
  h ^= h >> 31;
  h *= 0x94D049BB133111EBull;
  h ^= h >> 29;
  double v = (double)(h % 12801) / 64.0 - 100.0;
  return dtype == LUISA_I32 || dtype == LUISA_I64 ? floor(v) : v;
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

/* ---- The reference: views over the global data, evaluated element by element. ---- */

typedef enum { V_ARRAY, V_DIFF, V_LAP, V_STENCIL, V_SLICE, V_BIN } vkind;
typedef struct view view;
struct view {
  vkind kind;
  int nd, axis;
  char op;                           /* V_BIN: + - *, or c: a times the constant c */
  double c;
  int64_t shape[MAXD];               /* the result's extents */
  const double *data;                /* V_ARRAY: the global array in C order */
  const view *a, *b;
  int64_t start[MAXD], step[MAXD];   /* V_SLICE: source index = start + r * step */
  int64_t ext[MAXD];                 /* V_STENCIL: weight extents 2h+1 */
  double w[MAXW];                    /* V_STENCIL: weights in C order over ext */
};
static view pool[MAXV];
static int npool, ref_bugs;

static view *new_view(vkind kind, const view *a)
{
  if (npool == MAXV) {
    fprintf(stderr, "stencil: view pool exhausted\n");
    exit(2);
  }
  view *v = &pool[npool++];
  memset(v, 0, sizeof *v);
  v->kind = kind;
  v->a = a;
  if (a) {
    v->nd = a->nd;
    memcpy(v->shape, a->shape, sizeof v->shape);
  }
  return v;
}

static double at(const view *v, const int64_t *r)
{
  int64_t q[MAXD] = { 0 };
  for (int d = 0; d < v->nd; d++) {
    if (r[d] < 0 || r[d] >= v->shape[d]) {   /* a bug in the reference, not in the engine */
      if (!ref_bugs++)
        fprintf(stderr, "stencil: reference reads outside a view (axis %d index %lld of %lld)\n", d,
                (long long)r[d], (long long)v->shape[d]);
      return NAN;
    }
    q[d] = r[d];
  }
  switch (v->kind) {
  case V_ARRAY: {
    int64_t l = 0;
    for (int d = 0; d < v->nd; d++)
      l = l * v->shape[d] + r[d];
    return v->data[l];
  }
  case V_DIFF:
    q[v->axis]++;
    return at(v->a, q) - at(v->a, r);
  case V_LAP: {
    for (int d = 0; d < v->nd; d++)
      q[d] = r[d] + 1;
    double s = 0;
    for (int d = 0; d < v->nd; d++) {
      q[d]++;
      double up = at(v->a, q);
      q[d] -= 2;
      s += up + at(v->a, q);
      q[d]++;
    }
    return s - 2.0 * v->nd * at(v->a, q);
  }
  case V_STENCIL: {
    int64_t nw = 1;
    for (int d = 0; d < v->nd; d++)
      nw *= v->ext[d];
    double s = 0;
    for (int64_t i = 0; i < nw; i++) {       /* weight i sits at offset k - h: reads r + k */
      int64_t rest = i;
      for (int d = v->nd - 1; d >= 0; d--) {
        q[d] = r[d] + rest % v->ext[d];
        rest /= v->ext[d];
      }
      s += v->w[i] * at(v->a, q);
    }
    return s;
  }
  case V_SLICE:
    for (int d = 0; d < v->nd; d++)
      q[d] = v->start[d] + r[d] * v->step[d];
    return at(v->a, q);
  case V_BIN: {
    double x = at(v->a, r), y = v->op == 'c' ? v->c : at(v->b, r);
    return v->op == '+' ? x + y : v->op == '-' ? x - y : x * y;
  }
  }
  return NAN;
}

static view *array_view(const double *data)
{
  view *v = new_view(V_ARRAY, NULL);
  v->nd = ndim;
  memcpy(v->shape, shape, sizeof v->shape);
  v->data = data;
  return v;
}

static view *diff(const view *a, int axis)
{
  view *v = new_view(V_DIFF, a);
  v->axis = axis;
  v->shape[axis]--;
  return v;
}

static view *laplacian(const view *a)
{
  view *v = new_view(V_LAP, a);
  for (int d = 0; d < v->nd; d++)
    v->shape[d] -= 2;
  return v;
}

/* Weight k (C order over the extents) is ((5k) % 11 - 5) / 4, as t/stencil.lua builds them:
 * asymmetric, so a flipped axis or offset shows. */
static view *stencil(const view *a, const int64_t *ext)
{
  view *v = new_view(V_STENCIL, a);
  int64_t nw = 1;
  for (int d = 0; d < v->nd; d++) {
    v->ext[d] = ext[d];
    v->shape[d] -= ext[d] - 1;
    nw *= ext[d];
  }
  for (int64_t k = 0; k < nw; k++)
    v->w[k] = (double)((5 * k) % 11 - 5) / 4.0;
  return v;
}

/* The laplacian as stencil weights: 1 at the neighbours along each axis, -2*ndim at the centre. */
static view *laplacian_weights(const view *a)
{
  int64_t ext[MAXD] = { 3, 3, 3 };
  view *v = stencil(a, ext);
  for (int k = 0; k < MAXW; k++)
    v->w[k] = 0;
  int64_t centre = 0, stride = 1;
  for (int d = v->nd - 1; d >= 0; d--, stride *= 3)
    centre += stride;
  v->w[centre] = -2.0 * v->nd;
  stride = 1;
  for (int d = v->nd - 1; d >= 0; d--, stride *= 3)
    v->w[centre - stride] = v->w[centre + stride] = 1;
  return v;
}

/* A slice in Python notation, one comma-separated range per axis ("1:-1:2,-5:,2"); ranges for
 * axes beyond the array's are ignored, so one text serves 2D and 3D. A bare number i keeps the
 * axis with extent 1. */
static view *slice(const view *a, const char *spec)
{
  view *v = new_view(V_SLICE, a);
  const char *p = spec;
  for (int d = 0; d < v->nd; d++) {
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
    if (!colon) {                        /* i means i:i+1 */
      f[1] = f[0] + 1;
      has[1] = 1;
    }
    for (int k = 0; k < 2; k++) {
      if (has[k] && f[k] < 0)
        f[k] += n;
      f[k] = f[k] < 0 ? 0 : f[k] > n ? n : f[k];
    }
    v->start[d] = f[0];
    v->step[d] = f[2];
    v->shape[d] = f[1] > f[0] ? (f[1] - f[0] + f[2] - 1) / f[2] : 0;
    if (v->shape[d] < 1 && !ref_bugs++)
      fprintf(stderr, "stencil: reference slice \"%s\" is empty on axis %d of extent %lld\n", spec, d,
              (long long)n);
  }
  return v;
}

static view *scale(const view *a, double c)
{
  view *v = new_view(V_BIN, a);
  v->op = 'c';
  v->c = c;
  return v;
}

static view *bin(char op, const view *a, const view *b)
{
  view *v = new_view(V_BIN, a);
  v->op = op;
  v->b = b;
  for (int d = 0; d < v->nd; d++)
    if (a->shape[d] != b->shape[d] && !ref_bugs++)
      fprintf(stderr, "stencil: reference combines views of different shapes\n");
  return v;
}

/* ---- Expected statistics: name, value, relative tolerance (0: exact). ---- */

typedef struct entry {
  char name[40];
  double value, tol;
} entry;
static entry expect[MAXE];
static int nexpect;

static void add(const char *name, const char *suffix, double value, double tol)
{
  if (nexpect == MAXE) {
    fprintf(stderr, "stencil: too many statistics\n");
    exit(2);
  }
  entry *e = &expect[nexpect++];
  snprintf(e->name, sizeof e->name, "%s%s", name, suffix);
  e->value = value;
  e->tol = tol;
}

static void add_index(const char *name, const char *kind, int64_t linear, const view *v)
{
  for (int d = v->nd - 1; d >= 0; d--) {
    char suffix[32];
    snprintf(suffix, sizeof suffix, "_%s.%d", kind, d);
    add(name, suffix, (double)(linear % v->shape[d]), 0);
    linear /= v->shape[d];
  }
}

/* The reductions named in `kinds` of the view, as "name_kind" entries; argmin/argmax as one entry
 * per axis ("name_amax.0" ...) in the view's own index space, the first (C order) of ties. */
static void stats(const char *name, const view *v, const char *kinds)
{
  int64_t n = 1;
  for (int d = 0; d < v->nd; d++)
    n *= v->shape[d];
  double *x = malloc((size_t)n * sizeof *x);
  int64_t r[MAXD] = { 0 };
  for (int64_t i = 0; i < n; i++) {      /* C order over the view */
    x[i] = at(v, r);
    for (int d = v->nd - 1; d >= 0 && ++r[d] == v->shape[d]; d--)
      r[d] = 0;
  }
  double sum = 0, sumsq = 0, mn = HUGE_VAL, mx = -HUGE_VAL, var = 0, hist[8] = { 0 };
  int64_t amin = 0, amax = 0;
  for (int64_t i = 0; i < n; i++) {
    sum += x[i];
    sumsq += x[i] * x[i];
    if (x[i] < mn) mn = x[i], amin = i;
    if (x[i] > mx) mx = x[i], amax = i;
    int b = (int)floor((x[i] + 200) / 50);   /* 8 bins over [-200, 200], 200 in the last */
    if (x[i] == 200) b = 7;
    if (b >= 0 && b < 8) hist[b]++;
  }
  double mean = sum / (double)n;
  for (int64_t i = 0; i < n; i++)        /* two passes: the textbook variance */
    var += (x[i] - mean) * (x[i] - mean);
  var /= (double)n;
  double vtol = dtype == LUISA_F32 ? 1e-9 : 1e-12;
  char copy[256];
  snprintf(copy, sizeof copy, "%s", kinds);
  for (char *k = strtok(copy, " "); k; k = strtok(NULL, " ")) {
    if (!strcmp(k, "sum")) add(name, "_sum", sum, 1e-12);
    else if (!strcmp(k, "mean")) add(name, "_mean", mean, 1e-12);
    else if (!strcmp(k, "min")) add(name, "_min", mn, 0);
    else if (!strcmp(k, "max")) add(name, "_max", mx, 0);
    else if (!strcmp(k, "count")) add(name, "_count", (double)n, 0);
    else if (!strcmp(k, "var")) add(name, "_var", var, vtol);
    else if (!strcmp(k, "std")) add(name, "_std", sqrt(var), vtol);
    else if (!strcmp(k, "norm")) add(name, "_norm", sqrt(sumsq), 1e-12);
    else if (!strcmp(k, "amin")) add_index(name, "amin", amin, v);
    else if (!strcmp(k, "amax")) add_index(name, "amax", amax, v);
    else if (!strcmp(k, "hist"))
      for (int b = 0; b < 8; b++) {
        char suffix[16];
        snprintf(suffix, sizeof suffix, "_hist.%d", b);
        add(name, suffix, hist[b], 0);
      }
    else {
      fprintf(stderr, "stencil: unknown statistic kind %s\n", k);
      exit(2);
    }
  }
  free(x);
}

/* Everything t/stencil.lua reports, in the same terms (its comments give the Python slices). */
static void expected_all(const double *ga, const double *gb)
{
  npool = nexpect = 0;
  const view *A = array_view(ga), *B = array_view(gb);
  char name[16];
  for (int d = 0; d < ndim; d++) {
    snprintf(name, sizeof name, "d%d", d);
    stats(name, diff(A, d), "sum min max amax count");
  }
  stats("d0", diff(A, 0), "mean var std hist");
  stats("d1", diff(A, 1), "std");
  stats(ndim == 2 ? "d1" : "d2", diff(A, ndim - 1), "amin");

  stats("lap", laplacian(A), "sum mean min max amin count norm std");
  stats("lapw", laplacian_weights(A), "sum max");

  int64_t e3[MAXD] = { 3, 3, 3 }, e35[MAXD] = { 3, 1, 1 };
  e35[ndim - 1] = 5;                     /* 3x5 in 2D, 3x1x5 in 3D */
  stats("st3", stencil(A, e3), "sum min max amax count");
  stats("st35", stencil(A, e35), "sum mean min max amin count std");
  stats("stB", stencil(B, e35), "sum max");
  stats("st3lap", bin('-', stencil(A, e3), laplacian(A)), "max");

  stats("s1", slice(A, "1:-1:2,-5:,1::2"), "sum min max amax count");
  stats("s2", slice(A, "::3,2,:"), "sum amin count");
  stats("s3", slice(diff(A, ndim - 1), "2:,0:-1:2,0:-1:2"), "sum min amax");
  stats("s4", bin('-', slice(A, "0:-1,:,:"), slice(A, "1:,:,:")), "sum max amin");
  stats("s5", bin('*', slice(diff(A, 0), ":,0:-1,:"), slice(diff(A, 1), "0:-1,:,:")), "sum max amax");
  stats("s6", diff(slice(A, "0::2,:,:"), 0), "sum min max");
  stats("s7", laplacian(slice(A, "1:,0:-1,-6:")), "sum max");
  stats("s8", slice(bin('-', bin('*', A, A), scale(A, 3)), "-7:-1:3,1::2,-3:"),
        "sum max count var");
  stats("s9", slice(stencil(A, e3), "1:-1:2,-4:,:"), "sum min");

  stats("w1", A, "mean max");
  stats("w1d", diff(A, 0), "std");
  stats("mx", A, "sum var amin");
  stats("mxd0", diff(A, 0), "var");
  stats("mxd1", diff(A, ndim - 1), "max");
  stats("mxlap", laplacian(A), "sum std");

  stats("ab", bin('+', A, B), "sum");
  stats("abm", bin('-', A, B), "min");
  stats("abp", bin('*', A, B), "max amax");
  stats("abd", bin('-', diff(A, 0), diff(B, 0)), "sum");
  stats("abd1", bin('*', diff(A, 1), diff(B, 1)), "max");
  stats("abl", bin('*', laplacian(A), slice(B, "1:-1,1:-1,1:-1")), "sum");
  stats("abs", bin('+', slice(A, "0:-1:2,:,:"), slice(B, "1::2,:,:")), "sum amin");
  stats("bd", diff(B, ndim - 1), "sum");
  stats("bl", laplacian(B), "max");
}

/* ---- The hand check of the reference. ---- */

static void print_view(const char *what, const view *v)
{
  printf("# %s (%lldx%lld):\n", what, (long long)v->shape[0], (long long)v->shape[1]);
  for (int64_t i = 0; i < v->shape[0]; i++) {
    printf("#  ");
    for (int64_t j = 0; j < v->shape[1]; j++)
      printf(" %7g", at(v, (int64_t[MAXD]){ i, j, 0 }));
    printf("\n");
  }
}

static int same(const char *what, const view *v, const double *want)
{
  int bad = 0;
  for (int64_t i = 0, k = 0; i < v->shape[0]; i++)
    for (int64_t j = 0; j < v->shape[1]; j++, k++)
      bad += at(v, (int64_t[MAXD]){ i, j, 0 }) != want[k];
  print_view(what, v);
  if (bad)
    printf("# %s: %d values differ from the ones worked out by hand\n", what, bad);
  return bad;
}

/* A[i][j] = 3i^2 + j^3 + ij on 4x3: the values below were worked out on paper. */
static int selftest(void)
{
  ndim = 2;
  shape[0] = 4, shape[1] = 3;
  dtype = LUISA_F64;
  double g[12];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++)
      g[i * 3 + j] = 3 * i * i + j * j * j + i * j;
  const view *A = array_view(g);
  print_view("A", A);
  int bad = 0;
  bad += same("A:diff(0)", diff(A, 0), (double[]){ 3, 4, 5, 9, 10, 11, 15, 16, 17 });
  bad += same("A:diff(1)", diff(A, 1), (double[]){ 1, 7, 2, 8, 3, 9, 4, 10 });
  /* d2/di2 of 3i^2 is 6, d2/dj2 of j^3 is 6j at j = 1 */
  bad += same("A:laplacian()", laplacian(A), (double[]){ 12, 12 });
  bad += same("A:stencil(laplacian weights)", laplacian_weights(A), (double[]){ 12, 12 });
  /* weights -1.25 0 1.25 / -0.25 1 -0.5 / 0.75 -0.75 0.5 */
  bad += same("A:stencil(3x3)", stencil(A, (int64_t[MAXD]){ 3, 3, 1 }), (double[]){ 17.5, 30 });
  /* weights -1.25 0 1.25 down a column: rows i-1, i, i+1 of column j */
  bad += same("A:stencil(3x1)", stencil(A, (int64_t[MAXD]){ 3, 1, 1 }),
              (double[]){ 15, 17.5, 20, 30, 32.5, 35 });
  bad += same("A[1::2, -2:]", slice(A, "1::2,-2:"), (double[]){ 5, 13, 31, 41 });
  bad += same("A[-3:-1, 2]", slice(A, "-3:-1,2"), (double[]){ 13, 24 });
  bad += same("A[::3, 0:-1:2]", slice(A, "::3,0:-1:2"), (double[]){ 0, 27 });
  bad += same("A:diff(1)[1:, 1]", slice(diff(A, 1), "1:,1"), (double[]){ 8, 9, 10 });
  bad += same("A[:-1] - A[1:]", bin('-', slice(A, ":-1,:"), slice(A, "1:,:")),
              (double[]){ -3, -4, -5, -9, -10, -11, -15, -16, -17 });
  nexpect = 0;
  stats("d0", diff(A, 0), "sum amax std");
  /* sum 90; max 17 at [2, 2]; the nine differences have mean 10 and variance 222/9 */
  const double want[] = { 90, 2, 2, sqrt(222.0 / 9) };
  for (int k = 0; k < 4; k++)
    if (fabs(expect[k].value - want[k]) > 1e-14 * fabs(want[k])) {
      printf("# %s = %.17g, expected %.17g\n", expect[k].name, expect[k].value, want[k]);
      bad++;
    }
  return bad + ref_bugs;
}

/* ---- Decomposition and publishing (as in t/reduce.c). ---- */

static int parse_list(const char *s, int64_t *v)
{
  int n = 0;
  for (char *end; *s && n < MAXD; s = *end ? end + 1 : end)
    v[n++] = strtoll(s, &end, 10);
  return n;
}

/* Uneven split: block k of b on an axis of n starts at n*(k/b)^1.5 (at least one element
 * each), so blocks differ in size, some narrower than a stencil's reach. */
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

/* Declares this rank's blocks of `name` (block k owned by rank (k + shift) % size). */
static chunk *decompose(luisa *lz, const char *name, const int64_t *blocks, int shift, int ghost,
                        luisa_order order, int rank, int size, int *count, int *failures)
{
  int64_t nblocks = 1;
  for (int d = 0; d < ndim; d++)
    nblocks *= blocks[d];
  chunk *mine = calloc((size_t)nblocks, sizeof *mine);
  int n = 0;
  for (int64_t k = 0; k < nblocks; k++) {
    if ((k + shift) % size != rank)
      continue;
    chunk *c = &mine[n++];
    int64_t rest = k;
    c->vol = 1;
    for (int d = ndim - 1; d >= 0; d--) {
      int64_t bk = rest % blocks[d];
      rest /= blocks[d];
      c->off[d] = block_start(shape[d], blocks[d], bk);
      c->shp[d] = block_start(shape[d], blocks[d], bk + 1) - c->off[d];
      c->alloc[d] = c->shp[d] + 2 * ghost;
      c->vol *= c->alloc[d];
    }
    luisa_layout layout = { .order = order };
    for (int d = 0; d < ndim; d++) {
      layout.alloc_shape[d] = c->alloc[d];
      layout.start[d] = ghost;
    }
    c->buf = malloc((size_t)c->vol * dsize());
    if (luisa_chunk(lz, name, c->off, c->shp, &layout) != LUISA_OK) {
      printf("# rank %d: luisa_chunk(%s) refused: %s\n", rank, name, luisa_error(lz));
      (*failures)++;
    }
  }
  *count = n;
  return mine;
}

/* Poison everywhere, then the interior: reading a ghost spoils a result. */
static void fill_and_publish(luisa *lz, const char *name, int which, chunk *mine, int n, int ghost,
                             luisa_order order, int64_t step)
{
  double poison = dtype == LUISA_F64 || dtype == LUISA_F32 ? NAN : which ? -1e9 : 1e9;
  for (int m = 0; m < n; m++) {
    chunk *c = &mine[m];
    for (int64_t at = 0; at < c->vol; at++)
      store(c->buf, at, poison);
    int64_t idx[MAXD] = { 0 };
    for (int64_t e = 0; e < c->vol; e++) {
      int64_t rest = e, inside = 1, global = 0, at = 0, stride = 1;
      for (int d = ndim - 1; d >= 0; d--) {     /* e walks the buffer in C order */
        idx[d] = rest % c->alloc[d];
        rest /= c->alloc[d];
      }
      for (int d = 0; d < ndim; d++) {
        int64_t g = idx[d] - ghost;
        inside &= g >= 0 && g < c->shp[d];
        global = global * shape[d] + c->off[d] + g;
      }
      if (!inside)
        continue;
      for (int k = 0; k < ndim; k++) {          /* position of idx in the buffer's order */
        int d = order == LUISA_ORDER_C ? ndim - 1 - k : k;
        at += idx[d] * stride;
        stride *= c->alloc[d];
      }
      store(c->buf, at, value(which, global, step));
    }
    luisa_publish(lz, name, m, c->buf);
  }
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
    tap_print("%sok - the C reference agrees with values worked out by hand on a 4x3 array\n",
              bad ? "not " : "");
    MPI_Finalize();
    return bad != 0;
  }
  if (argc != 9 && !(argc == 10 && !strcmp(argv[9], "errors"))) {
    tap_print("not ok - usage: stencil DTYPE SHAPE BLOCKS_A BLOCKS_B GHOST ORDER STEPS SCRIPT [errors]\n");
    MPI_Finalize();
    return 1;
  }
  int errors = argc == 10;
  dtype = !strcmp(argv[1], "f32") ? LUISA_F32 : !strcmp(argv[1], "i32") ? LUISA_I32
        : !strcmp(argv[1], "i64") ? LUISA_I64 : LUISA_F64;
  ndim = parse_list(argv[2], shape);
  int64_t blocks_a[MAXD], blocks_b[MAXD];
  int ok_args = ndim >= 2 && parse_list(argv[3], blocks_a) == ndim && parse_list(argv[4], blocks_b) == ndim;
  for (int d = 0; d < ndim; d++)
    ok_args &= shape[d] >= 7 && blocks_a[d] >= 1 && blocks_a[d] <= shape[d] && blocks_b[d] >= 1
               && blocks_b[d] <= shape[d];
  int ghost = atoi(argv[5]);
  luisa_order order = argv[6][0] == 'f' ? LUISA_ORDER_F : LUISA_ORDER_C;
  int steps = atoi(argv[7]);
  char desc[512];
  snprintf(desc, sizeof desc, "%d rank%s, %s %s, A blocks %s, B blocks %s, ghost %d, order %s, %d steps%s",
           size, size > 1 ? "s" : "", argv[1], argv[2], argv[3], argv[4], ghost, argv[6], steps,
           errors ? ", bad callbacks" : "");
  if (!ok_args || steps < 1 || steps >= MAXSTEPS) {
    tap_print("not ok - %s: SHAPE needs 2 or 3 extents >= 7 and BLOCKS as many counts\n", desc);
    MPI_Finalize();
    return 1;
  }

  setenv("LUISA_TEST_SHAPE", argv[2], 1);   /* the script builds its weights from the shape */
  luisa_options opts = luisa_options_default();
  opts.script = argv[8];
  luisa *lz;
  int failures = 0;
  int st = luisa_init(MPI_COMM_WORLD, &opts, &lz);
  if (st != LUISA_OK) {
    tap_print("not ok - %s: luisa_init returned %d: %s\n", desc, st, lz ? luisa_error(lz) : "");
    luisa_finalize(lz);
    MPI_Finalize();
    return 1;
  }
  luisa_array(lz, "A", dtype, ndim, shape);
  luisa_array(lz, "B", dtype, ndim, shape);
  int na, nb;
  chunk *ca = decompose(lz, "A", blocks_a, 0, ghost, order, rank, size, &na, &failures);
  chunk *cb = decompose(lz, "B", blocks_b, 1, ghost, order, rank, size, &nb, &failures);

  const char *outpath = getenv("LUISA_TEST_OUT");
  for (int64_t step = 1; step <= steps; step++) {
    fill_and_publish(lz, "A", 0, ca, na, ghost, order, step);
    fill_and_publish(lz, "B", 1, cb, nb, ghost, order, step);
    st = luisa_step(lz, step);
    int want = errors && step == 1 ? LUISA_WARN_SCRIPT : LUISA_OK;
    if (errors && step == 1 && rank == 0)   /* t/013-stencil.t looks for file:line here too */
      fprintf(stderr, "luisa_error at step 1: %s\n", luisa_error(lz));
    if (st != want) {
      printf("# rank %d step %lld: status %d, expected %d: %s\n", rank, (long long)step, st, want,
             luisa_error(lz));
      failures++;
    }
  }

  if (rank == 0) {
    int64_t n = shape[0] * shape[1] * (ndim > 2 ? shape[2] : 1);
    double *ga = malloc((size_t)n * sizeof *ga), *gb = malloc((size_t)n * sizeof *gb);
    static double got[MAXSTEPS][MAXE];
    static char seen[MAXSTEPS][MAXE];
    /* The names are the same every step: read the file against step 1's. */
    for (int64_t i = 0; i < n; i++)
      ga[i] = value(0, i, 1), gb[i] = value(1, i, 1);
    expected_all(ga, gb);
    FILE *f = outpath ? fopen(outpath, "r") : NULL;
    char name[64];
    long long s;
    double v;
    int unexpected = 0;
    while (f && fscanf(f, "%lld %63s %lf", &s, name, &v) == 3) {
      int k = 0;
      while (k < nexpect && strcmp(name, expect[k].name))
        k++;
      if (k == nexpect || s < 1 || s > steps) {
        if (unexpected++ < 10)
          printf("# step %lld: unexpected statistic %s = %.17g\n", s, name, v);
        failures++;
        continue;
      }
      got[s][k] = v;
      seen[s][k] = 1;
    }
    if (f)
      fclose(f);
    for (int step = 1; step <= steps; step++) {
      for (int64_t i = 0; i < n; i++)
        ga[i] = value(0, i, step), gb[i] = value(1, i, step);
      expected_all(ga, gb);
      if (ref_bugs) {
        printf("# the C reference itself is wrong: see stderr\n");
        failures++;
        break;
      }
      for (int k = 0; k < nexpect; k++) {
        entry *e = &expect[k];
        /* A failing callback disables itself, so its values are missing, not wrong. */
        if (errors && strcmp(e->name, "d0_sum") && strcmp(e->name, "lap_sum"))
          continue;
        if (!seen[step][k]) {
          printf("# step %d: %s was not reported\n", step, e->name);
          failures++;
          continue;
        }
        double tol = e->tol * fmax(1.0, fabs(e->value));
        if (!(fabs(got[step][k] - e->value) <= tol)) {
          printf("# step %d: %s = %.17g, expected %.17g\n", step, e->name, got[step][k], e->value);
          failures++;
        }
      }
    }
    free(ga);
    free(gb);
  }
  MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  tap_print("%sok - %s\n", failures ? "not " : "", desc);
  for (int m = 0; m < na; m++)
    free(ca[m].buf);
  for (int m = 0; m < nb; m++)
    free(cb[m].buf);
  free(ca);
  free(cb);
  luisa_finalize(lz);
  MPI_Finalize();
  return failures != 0;
}
