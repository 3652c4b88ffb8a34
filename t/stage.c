/* stage.c: drives the engine with coarsen blocks and stencils wider than one kernel holds
 * (lua/luisa/stage.lua cuts them into stages; t/stage.lua), and checks every value against
 * plain C loops over global data, bit for bit.
 * usage: stage DTYPE SHAPE BLOCKS_A BLOCKS_B GHOST ORDER STEPS SCRIPT
 *        stage selftest
 *   SHAPE "37,35" (2D: extents >= 16; 3D: >= 8); BLOCKS_A "3,2": a grid of unevenly sized blocks
 *   of A, block k owned by rank k % size, so chunk boundaries fall inside coarsening blocks;
 *   BLOCKS_B the same for B, block k on rank (k + 1) % size. GHOST: ghost width around every
 *   chunk (filled with poison); ORDER c|f. A holds numbers with every bit of their type in use,
 *   so a block's mean or a stencil's value matches only when made of the same additions in the
 *   same order: a block's elements in odometer order, divided by its volume; the weights in C
 *   order. B holds multiples of 1/64, so every sum of its blocks or stencils is exact in any
 *   order. Rank 0 prints one TAP line. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luisa.h"
#include "tap.h"

enum { MAXD = 3, MAXPOOL = 64, MAXSTEPS = 8, MAXSHOW = 12 };

static luisa_dtype dtype;
static int ndim;
static int64_t shape[MAXD];

/* Value of A (which 0) or B (1) at a global linear index and step, as its dtype holds it. */
static double value(int which, int64_t i, int64_t step)
{
  uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ (uint64_t)(step * 7 + which) * 0xBF58476D1CE4E5B9ull;
  h ^= h >> 31;
  h *= 0x94D049BB133111EBull;
  h ^= h >> 29;
  double v = which == 0 ? (double)(h >> 11) * 0x1p-53 * 200 - 100 : (double)(h % 12801) / 64.0 - 100.0;
  return dtype == LUISA_F32 ? (double)(float)v : dtype == LUISA_I32 ? floor(v) : v;
}

static void store(void *buf, int64_t at, double v)
{
  switch (dtype) {
  case LUISA_F32: ((float *)buf)[at] = (float)v; break;
  case LUISA_I32: ((int32_t *)buf)[at] = (int32_t)v; break;
  default: ((double *)buf)[at] = v; break;
  }
}

static size_t dsize(void)
{
  return dtype == LUISA_F64 ? 8 : 4;
}

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
static int npool;

static dense *new_dense(int nd, const int64_t *shp)
{
  if (npool == MAXPOOL) {
    fprintf(stderr, "stage: dense pool exhausted\n");
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

static double get(const dense *a, const int64_t *idx)
{
  int64_t k = 0;
  for (int d = 0; d < a->nd; d++)
    k = k * a->shape[d] + idx[d];
  return a->v[k];
}

static dense *global(int which, int64_t step)
{
  dense *a = new_dense(ndim, shape);
  for (int64_t k = 0; k < a->n; k++)
    a->v[k] = value(which, k, step);
  return a;
}

/* Block means, f[d] per axis: the block's elements added in odometer order (the last axis
 * fastest), then divided by its volume. */
static dense *coarsen(const dense *a, const int64_t *f)
{
  int64_t shp[MAXD], vol = 1, idx[MAXD], src[MAXD];
  for (int d = 0; d < a->nd; d++) {
    shp[d] = a->shape[d] / f[d];
    vol *= f[d];
  }
  dense *r = new_dense(a->nd, shp);
  for (int64_t k = 0; k < r->n; k++) {
    unravel(r, k, idx);
    double s = 0;
    for (int64_t j = 0; j < vol; j++) {
      int64_t rest = j;
      for (int d = a->nd - 1; d >= 0; d--) {
        src[d] = idx[d] * f[d] + rest % f[d];
        rest /= f[d];
      }
      s += get(a, src);
    }
    r->v[k] = s / (double)vol;
  }
  return r;
}

/* Weight k of an e^nd stencil in C order: ((5k) % 11 - 5.5) / 4, as t/stage.lua builds it. */
static double weight(int64_t k)
{
  return ((double)((5 * k) % 11) - 5.5) / 4;
}

/* A stencil of extent e on every axis, over the points where it fits: the terms added in the
 * weights' C order. */
static dense *stencil(const dense *a, int64_t e)
{
  int64_t shp[MAXD], nw = 1, idx[MAXD], src[MAXD];
  for (int d = 0; d < a->nd; d++) {
    shp[d] = a->shape[d] - (e - 1);
    nw *= e;
  }
  dense *r = new_dense(a->nd, shp);
  for (int64_t k = 0; k < r->n; k++) {
    unravel(r, k, idx);
    double s = 0;
    for (int64_t j = 0; j < nw; j++) {
      int64_t rest = j;
      for (int d = a->nd - 1; d >= 0; d--) {
        src[d] = idx[d] + rest % e;
        rest /= e;
      }
      s += weight(j) * get(a, src);
    }
    r->v[k] = s;
  }
  return r;
}

/* |a - c| elementwise. */
static dense *absdiff(const dense *a, double c)
{
  dense *r = new_dense(a->nd, a->shape);
  for (int64_t k = 0; k < a->n; k++)
    r->v[k] = fabs(a->v[k] - c);
  return r;
}

static dense *diff0(const dense *a)
{
  int64_t shp[MAXD];
  memcpy(shp, a->shape, sizeof shp);
  shp[0]--;
  dense *r = new_dense(a->nd, shp);
  int64_t row = a->n / a->shape[0];
  for (int64_t k = 0; k < r->n; k++)
    r->v[k] = a->v[k + row] - a->v[k];
  return r;
}

typedef enum { SUM, MEAN, MIN, MAX, ARGMIN, ARGMAX } kind;

/* A whole-array reduction; argmin/argmax: the linear index of the first extreme in C order. */
static double whole(const dense *a, kind what)
{
  double s = 0, mn = HUGE_VAL, mx = -HUGE_VAL;
  int64_t amin = 0, amax = 0;
  for (int64_t k = 0; k < a->n; k++) {
    s += a->v[k];
    if (a->v[k] < mn) mn = a->v[k], amin = k;
    if (a->v[k] > mx) mx = a->v[k], amax = k;
  }
  switch (what) {
  case SUM: return s;
  case MEAN: return s / (double)a->n;
  case MIN: return mn;
  case MAX: return mx;
  case ARGMIN: return (double)amin;
  default: return (double)amax;
  }
}

/* Max or sum along one axis: the shape without it. */
static dense *along(const dense *a, int axis, kind what)
{
  int64_t shp[MAXD], idx[MAXD], out[MAXD];
  int nd = 0;
  for (int d = 0; d < a->nd; d++)
    if (d != axis)
      shp[nd++] = a->shape[d];
  dense *r = new_dense(nd, shp);
  for (int64_t k = 0; k < r->n; k++)
    r->v[k] = what == SUM ? 0 : -HUGE_VAL;
  for (int64_t k = 0; k < a->n; k++) {
    unravel(a, k, idx);
    int o = 0;
    for (int d = 0; d < a->nd; d++)
      if (d != axis)
        out[o++] = idx[d];
    int64_t at = 0;
    for (int d = 0; d < nd; d++)
      at = at * r->shape[d] + out[d];
    r->v[at] = what == SUM ? r->v[at] + a->v[k] : fmax(r->v[at], a->v[k]);
  }
  return r;
}

/* ---- Expected values: name, value, and whether it must match bit for bit. ---- */

typedef struct entry {
  char name[48];
  double value;
  int exact;
} entry;
static entry *expect;
static int nexpect, capexpect;

static void add(double value, int exact, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(double value, int exact, const char *fmt, ...)
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
  e->exact = exact;
}

static void field(const char *name, const dense *a)
{
  add((double)a->n, 1, "%s.n", name);
  for (int64_t k = 0; k < a->n; k++)
    add(a->v[k], 1, "%s.%lld", name, (long long)k);
}

static void index_of(const char *name, const dense *a, kind what)
{
  int64_t idx[MAXD];
  unravel(a, (int64_t)whole(a, what), idx);
  for (int d = 0; d < a->nd; d++)
    add((double)idx[d], 1, "%s.%d", name, d);
}

/* Everything t/stage.lua reports at `step`. Sums of A are not exact in another order: s3 and
 * s3_alone are checked to 1e-12 here, and against each other bit for bit in check(). */
static void expected_all(int64_t step)
{
  pool_free();
  nexpect = 0;
  const dense *A = global(0, step), *B = global(1, step);
  int64_t f2[MAXD] = { 2, 2, 2 }, f4[MAXD] = { 4, 4, 4 }, f8[MAXD] = { 8, 8, 8 }, f16[MAXD] = { 16, 16 };
  int64_t f82[MAXD] = { 8, 2 }, wide = ndim == 2 ? 7 : 5;
  const dense *W3 = stencil(A, 3), *Wide = stencil(A, wide);
  add(whole(W3, SUM), 0, "s3_alone");
  if (ndim == 2) {
    field("g8", coarsen(A, f8));
    field("g16", coarsen(A, f16));
    field("g82", coarsen(A, f82));
    field("gw", Wide);
    add(whole(coarsen(A, f8), MAX), 1, "m8");
    add(whole(coarsen(A, f16), MIN), 1, "n16");
    index_of("x8", coarsen(A, f8), ARGMAX);
    add(whole(coarsen(A, f82), MAX), 1, "m82");
    add(whole(absdiff(coarsen(B, f4), 1), SUM), 1, "s4");
    add(whole(absdiff(coarsen(B, f8), 1), SUM), 1, "s8");
    add(whole(coarsen(B, f16), MEAN), 1, "e16");
    add(whole(coarsen(B, f82), SUM), 1, "s82");
    field("m8a0", along(coarsen(A, f8), 0, MAX));
    field("s16a1", along(coarsen(B, f16), 1, SUM));
  } else {
    field("g4", coarsen(A, f4));
    field("g222", coarsen(A, f2));
    field("g8", coarsen(A, f8));
    field("g27", W3);
    field("gw", Wide);
    add(whole(coarsen(A, f4), MAX), 1, "m4");
    index_of("x4", coarsen(A, f4), ARGMAX);
    add(whole(coarsen(A, f2), MIN), 1, "m222");
    add(whole(absdiff(coarsen(B, f4), 1), SUM), 1, "s4");
    add(whole(coarsen(B, f2), SUM), 1, "s222");
    add(whole(coarsen(B, f4), MEAN), 1, "e4");
    add(whole(W3, MAX), 1, "m27");
    index_of("a27", W3, ARGMIN);
    add(whole(stencil(B, 3), SUM), 1, "s27");
  }
  add(whole(Wide, MAX), 1, "mw");
  index_of("aw", Wide, ARGMIN);
  add(whole(stencil(B, wide), SUM), 1, "sw");
  add(whole(W3, SUM), 0, "s3");
  add(whole(A, MAX), 1, "amax");
  add(whole(B, SUM), 1, "bsum");
  add(whole(diff0(A), MAX), 1, "d0");
}

/* ---- The hand check of the reference. ---- */

/* On G[i][j] = 10i + j (4x5): coarsen {2, 2} and the 3x3 stencil, worked out on paper. */
static int selftest(void)
{
  ndim = 2;
  int64_t s[MAXD] = { 4, 5 }, f[MAXD] = { 2, 2 };
  dense *G = new_dense(2, s);
  for (int64_t k = 0; k < G->n; k++)
    G->v[k] = (double)(10 * (k / 5) + k % 5);
  const dense *c = coarsen(G, f), *st = stencil(G, 3);
  /* blocks {0, 1, 10, 11}, {2, 3, 12, 13}, {20, 21, 30, 31}, {22, 23, 32, 33} */
  const double want_c[] = { 5.5, 7.5, 25.5, 27.5 };
  /* weights -1.375 -0.125 1.125 / -0.375 0.875 -0.625 / 0.625 -0.875 0.375: at [i, j] they sum
   * to -0.375 G[i][j] + 10 * 0.125 (rows) + 1.625 (columns) */
  const double want_st[] = { 2.875, 2.5, 2.125, -0.875, -1.25, -1.625 };
  int bad = c->n != 4 || st->n != 6;
  for (int k = 0; k < 4 && !bad; k++)
    bad += c->v[k] != want_c[k];
  for (int k = 0; k < 6 && !bad; k++)
    bad += st->v[k] != want_st[k];
  if (bad)
    printf("# coarsen: %g %g %g %g; stencil: %g %g %g\n", c->v[0], c->v[1], c->v[2], c->v[3], st->v[0],
           st->v[1], st->v[2]);
  pool_free();
  return bad;
}

/* ---- Decomposition and publishing (as in t/fields.c). ---- */

/* Uneven split: block k of b on an axis of n starts at n*(k/b)^1.5 (at least one element each). */
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
  int which, shift, n;
  int64_t blocks[MAXD];
  chunk *mine;
} darray;

static void decompose(luisa *lz, darray *a, int ghost, luisa_order order, int rank, int size, int *failures)
{
  int64_t nblocks = 1;
  for (int d = 0; d < ndim; d++)
    nblocks *= a->blocks[d];
  a->mine = calloc((size_t)nblocks, sizeof *a->mine);
  a->n = 0;
  for (int64_t k = 0; k < nblocks; k++) {
    if ((k + a->shift) % size != rank)
      continue;
    chunk *c = &a->mine[a->n++];
    int64_t rest = k;
    c->vol = 1;
    for (int d = ndim - 1; d >= 0; d--) {
      int64_t bk = rest % a->blocks[d];
      rest /= a->blocks[d];
      c->off[d] = block_start(shape[d], a->blocks[d], bk);
      c->shp[d] = block_start(shape[d], a->blocks[d], bk + 1) - c->off[d];
      c->alloc[d] = c->shp[d] + 2 * ghost;
      c->vol *= c->alloc[d];
    }
    luisa_layout layout = { .order = order };
    for (int d = 0; d < ndim; d++) {
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
  double poison = dtype == LUISA_I32 ? 1e9 : NAN;
  for (int m = 0; m < a->n; m++) {
    const chunk *c = &a->mine[m];
    for (int64_t at = 0; at < c->vol; at++)
      store(c->buf, at, poison);
    int64_t idx[MAXD] = { 0 };
    for (int64_t e = 0; e < c->vol; e++) {
      int64_t rest = e, inside = 1, global = 0, at = 0, stride = 1;
      for (int d = ndim - 1; d >= 0; d--) {      /* e walks the buffer in C order */
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
      for (int k = 0; k < ndim; k++) {           /* position of idx in the buffer's order */
        int d = order == LUISA_ORDER_C ? ndim - 1 - k : k;
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
  int step, used;
  char name[48];
  double value;
} report;

static int by_step_name(const void *x, const void *y)
{
  const report *a = x, *b = y;
  return a->step != b->step ? (a->step > b->step) - (a->step < b->step) : strcmp(a->name, b->name);
}

static report *find(report *rep, int n, int step, const char *name)
{
  report key = { .step = step };
  snprintf(key.name, sizeof key.name, "%s", name);
  return bsearch(&key, rep, (size_t)n, sizeof *rep, by_step_name);
}

/* Rank 0's reports against the reference; returns the mismatches. */
static int check(const char *path, int steps)
{
  FILE *f = path ? fopen(path, "r") : NULL;
  int n = 0, cap = 0, bad = 0, shown = 0;
  report *rep = NULL, tmp = { 0 };
  long long s;
  while (f && fscanf(f, "%lld %47s %lf", &s, tmp.name, &tmp.value) == 3) {
    if (n == cap)
      rep = realloc(rep, (size_t)(cap = cap ? 2 * cap : 4096) * sizeof *rep);
    tmp.step = (int)s;
    rep[n++] = tmp;
  }
  if (f)
    fclose(f);
  if (!n) {
    printf("# nothing reported in %s\n", path ? path : "(LUISA_TEST_OUT unset)");
    return 1;
  }
  qsort(rep, (size_t)n, sizeof *rep, by_step_name);
  for (int step = 1; step <= steps; step++) {
    expected_all(step);
    for (int k = 0; k < nexpect; k++) {
      const entry *e = &expect[k];
      report *r = find(rep, n, step, e->name);
      double tol = e->exact ? 0 : 1e-12 * fmax(1.0, fabs(e->value));
      if (r)
        r->used++;
      if (!r || !(fabs(r->value - e->value) <= tol)) {
        if (shown++ < MAXSHOW)
          printf("# step %d: %s = %.17g, expected %.17g\n", step, e->name, r ? r->value : NAN, e->value);
        bad++;
      }
    }
    report *fused = find(rep, n, step, "s3"), *alone = find(rep, n, step, "s3_alone");
    if (fused && alone && memcmp(&fused->value, &alone->value, sizeof fused->value)) {
      printf("# step %d: the staged stencil's sum %.17g differs from one kernel's %.17g\n", step,
             fused->value, alone->value);
      bad++;
    }
  }
  for (int i = 0; i < n; i++)
    if (rep[i].used != 1) {
      if (shown++ < MAXSHOW)
        printf("# step %d: %s = %.17g %s\n", rep[i].step, rep[i].name, rep[i].value,
               rep[i].used ? "reported twice" : "not expected");
      bad++;
    }
  if (shown > MAXSHOW)
    printf("# ... %d mismatches in all\n", bad);
  free(rep);
  pool_free();
  return bad;
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
  dtype = argc < 2 ? LUISA_F64 : !strcmp(argv[1], "f32") ? LUISA_F32 : !strcmp(argv[1], "i32") ? LUISA_I32
        : LUISA_F64;
  ndim = argc == 9 ? parse_list(argv[2], shape) : 0;
  darray A = { .name = "A", .which = 0, .shift = 0 }, B = { .name = "B", .which = 1, .shift = 1 };
  int ok_args = (ndim == 2 || ndim == 3) && parse_list(argv[3], A.blocks) == ndim
                && parse_list(argv[4], B.blocks) == ndim;
  for (int d = 0; d < ndim; d++)
    ok_args &= shape[d] >= (ndim == 2 ? 16 : 8) && A.blocks[d] >= 1 && A.blocks[d] <= shape[d]
               && B.blocks[d] >= 1 && B.blocks[d] <= shape[d];
  int steps = argc == 9 ? atoi(argv[7]) : 0;
  if (!ok_args || steps < 1 || steps >= MAXSTEPS) {
    tap_print("not ok - usage: stage DTYPE SHAPE BLOCKS_A BLOCKS_B GHOST ORDER STEPS SCRIPT "
              "(2D extents >= 16, 3D >= 8)\n");
    MPI_Finalize();
    return 1;
  }
  int ghost = atoi(argv[5]);
  luisa_order order = argv[6][0] == 'f' ? LUISA_ORDER_F : LUISA_ORDER_C;
  char desc[512];
  snprintf(desc, sizeof desc, "%d rank%s, %s %s, A blocks %s, B blocks %s, ghost %d, order %s, %d steps", size,
           size > 1 ? "s" : "", argv[1], argv[2], argv[3], argv[4], ghost, argv[6], steps);

  setenv("LUISA_TEST_SHAPE", argv[2], 1);
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
  decompose(lz, &A, ghost, order, rank, size, &failures);
  decompose(lz, &B, ghost, order, rank, size, &failures);
  for (int64_t step = 1; step <= steps; step++) {
    fill_and_publish(lz, &A, ghost, order, step);
    fill_and_publish(lz, &B, ghost, order, step);
    st = luisa_step(lz, step);
    if (st != LUISA_OK) {
      printf("# rank %d step %lld: status %d: %s\n", rank, (long long)step, st, luisa_error(lz));
      failures++;
    }
  }
  if (rank == 0)
    failures += check(getenv("LUISA_TEST_OUT"), steps);
  MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  tap_print("%sok - %s: wide blocks and stencils match C loops bit for bit\n", failures ? "not " : "", desc);
  for (int m = 0; m < A.n; m++)
    free(A.mine[m].buf);
  for (int m = 0; m < B.n; m++)
    free(B.mine[m].buf);
  free(A.mine);
  free(B.mine);
  free(expect);
  luisa_finalize(lz);
  MPI_Finalize();
  return failures != 0;
}
