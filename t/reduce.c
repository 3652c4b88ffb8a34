/* reduce.c: drives the engine on a generated decomposition and checks every
 * statistic the script reports against a plain C loop over the global data.
 * usage: reduce DTYPE SHAPE BLOCKS GHOST ORDER STEPS SCRIPT [PATTERN]
 *   SHAPE "64,48"; BLOCKS "3,2": a grid of unevenly sized blocks, block k
 *   owned by rank k % size; GHOST: ghost width around every chunk (filled
 *   with poison); ORDER c|f; PATTERN: what A holds (see pattern_names;
 *   default random). Prints one TAP line on rank 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luisa.h"
#include "tap.h"

enum { NBINS = 8, NSTATS = 26 + NBINS };
static const char *const stat_names[NSTATS] = {
  "sum", "mean", "min", "max", "count", "absdiff", "pos", "ab", "mix", "sq", "ex", "neg", "le",
  "var", "std", "norm", "amin", "amax", "wh", "f32", "i32", "sin", "mm", "bstd",
  "hist1", "hist2", "hist3", "hist4", "hist5", "hist6", "hist7", "hist8", "dprev", "mid"
};
#define NOT_YET 1e308   /* what the script writes for a result that needs older steps */

static luisa_dtype dtype;
static int ndim, nranks;
static int64_t shape[LUISA_MAX_DIMS], blocks[LUISA_MAX_DIMS], nglobal;

/* What A holds: pseudo-random values, NaN everywhere, on the last rank's
 * blocks only or at the first and last elements, a rising or falling ramp,
 * one value, random values with one +inf and one -inf, or NaN but for one
 * element that is +inf at odd steps and -inf at even ones. B stays random.
 * The NaN and inf patterns need a floating-point dtype. */
enum pattern { RANDOM, ALL_NAN, NAN_RANK, NAN_ENDS, RISING, FALLING, CONSTANT, INF, NAN_INF, NPATTERNS };
static const char *const pattern_names[NPATTERNS] = {
  "random", "nan", "nanrank", "nanends", "rising", "falling", "constant", "inf", "naninf"
};
static enum pattern pattern;

static int64_t block_start(int64_t n, int64_t b, int64_t k);

/* The rank owning global element i: block k of the grid is on rank k % size. */
static int owner_of(int64_t i)
{
  int64_t k = 0, stride = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    int64_t g = i % shape[d], bk = 0;
    i /= shape[d];
    while (block_start(shape[d], blocks[d], bk + 1) <= g)
      bk++;
    k += bk * stride;
    stride *= blocks[d];
  }
  return (int)(k % nranks);
}

/* Deterministic values of A and B at a global linear index and step, already
 * rounded to the array's type: the reference sees what the engine sees. */
static double value(int which, int64_t i, int64_t step)
{
  uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ (uint64_t)(step * 7 + which) * 0xBF58476D1CE4E5B9ull;
  h ^= h >> 31;
  h *= 0x94D049BB133111EBull;
  h ^= h >> 29;
  double v = (double)(h % 200001) / 1000.0 - 100.0;   /* [-100, 100] */
  if (which == 0)
    switch (pattern) {
    case RANDOM: break;
    case ALL_NAN: v = NAN; break;
    case NAN_RANK: v = owner_of(i) == nranks - 1 ? NAN : v; break;
    case NAN_ENDS: v = i == 0 || i == nglobal - 1 ? NAN : v; break;
    case RISING: v = (double)i * 0.5 - (double)nglobal / 4 + (double)step; break;
    case FALLING: v = (double)nglobal / 4 - (double)i * 0.5 + (double)step; break;
    case CONSTANT: v = 2.5 + (double)step; break;
    case INF: v = i == nglobal / 3 ? INFINITY : i == 2 * nglobal / 3 ? -INFINITY : v; break;
    case NAN_INF: v = i != nglobal / 2 ? NAN : step % 2 ? INFINITY : -INFINITY; break;
    case NPATTERNS: break;
    }
  switch (dtype) {
  case LUISA_F32: return (double)(float)v;
  case LUISA_I32: case LUISA_I64: return floor(v);
  default: return v;
  }
}

/* The least and greatest numbers seen, and the first index of each; NaN
 * is not a number here, and with no number seen both are NaN (index -1). */
typedef struct extremes {
  int64_t n;
  double lo, hi, ilo, ihi;
} extremes;

static void see(extremes *e, double v, int64_t i)
{
  if (isnan(v))
    return;
  if (e->n == 0 || v < e->lo)
    e->lo = v, e->ilo = (double)i;
  if (e->n == 0 || v > e->hi)
    e->hi = v, e->ihi = (double)i;
  e->n++;
}

static double lowest(const extremes *e) { return e->n ? e->lo : NAN; }
static double highest(const extremes *e) { return e->n ? e->hi : NAN; }

/* got equals want: NaN matches NaN, infinities match exactly, other
 * numbers to tol relative. */
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

static void expected(int64_t step, double *e)
{
  int64_t n = 1;
  for (int d = 0; d < ndim; d++)
    n *= shape[d];
  double sum = 0, absdiff = 0, pos = 0, sq = 0, ex = 0, le = 0, sumsq = 0, wh = 0, f32 = 0, i32 = 0;
  double sn = 0, mm = 0, bsum = 0;
  extremes ea = { 0 }, eab = { 0 }, emix = { 0 }, eneg = { 0 }, edprev = { 0 };
  double hist[NBINS] = { 0 };
  for (int64_t i = 0; i < n; i++) {
    double a = value(0, i, step), b = value(1, i, step);
    sum += a;
    see(&ea, a, i);   /* the first of equal values is the arg */
    absdiff += fabs(a * 2 - 1);
    pos += a > 0;
    see(&eab, a - b, i);
    see(&emix, a * b + 3, i);
    sq += sqrt(fabs(a));
    ex += exp(a / 1000);
    see(&eneg, -a, i);
    le += a <= b;
    sumsq += a * a;
    wh += a > b ? a : b;
    f32 += (double)(float)a;
    i32 += trunc(a / 3);
    sn += sin(a / 100);
    mm += fmin(a, b);
    bsum += b;
    if (a >= -100 && a <= 100) {   /* 8 bins over [-100, 100], 100 in the last; NaN is outside */
      int bin = a == 100 ? NBINS - 1 : (int)floor((a + 100) / 25);
      hist[bin]++;
    }
  }
  double mean = sum / n, bmean = bsum / n, var = 0, bvar = 0;
  for (int64_t i = 0; i < n; i++) {   /* two passes: the textbook variance */
    double a = value(0, i, step), b = value(1, i, step);
    var += (a - mean) * (a - mean);
    bvar += (b - bmean) * (b - bmean);
  }
  var /= n;
  double r[NSTATS] = { sum, mean, lowest(&ea), highest(&ea), (double)n, absdiff, pos, highest(&eab),
                       lowest(&emix), sq, ex / n, highest(&eneg), le, var, sqrt(var), sqrt(sumsq),
                       ea.n ? ea.ilo : -1, ea.n ? ea.ihi : -1, wh, f32, i32, sn, mm, sqrt(bvar / n) };
  for (int k = 0; k < NBINS; k++)
    r[24 + k] = hist[k];
  /* Windows: the change since the previous step, a second difference over three. */
  double mid = 0;
  for (int64_t i = 0; i < n; i++) {
    see(&edprev, fabs(value(0, i, step) - value(0, i, step - 1)), i);
    mid += value(0, i, step) - 2 * value(0, i, step - 1) + value(0, i, step - 2);
  }
  r[24 + NBINS] = step >= 2 ? highest(&edprev) : NOT_YET;
  r[25 + NBINS] = step >= 3 ? mid : NOT_YET;
  memcpy(e, r, sizeof r);
}

static int parse_list(const char *s, int64_t *v)
{
  int n = 0;
  for (char *end; *s && n < LUISA_MAX_DIMS; s = *end ? end + 1 : end)
    v[n++] = strtoll(s, &end, 10);
  return n;
}

/* Uneven split: block k of b on an axis of n starts at n*(k/b)^1.5 (at least
 * one element each), so blocks differ in size. */
static int64_t block_start(int64_t n, int64_t b, int64_t k)
{
  if (k >= b)
    return n;
  int64_t s = (int64_t)((double)n * pow((double)k / (double)b, 1.5));
  return s < k ? k : s;
}

typedef struct chunk {
  int64_t off[LUISA_MAX_DIMS], shp[LUISA_MAX_DIMS], alloc[LUISA_MAX_DIMS];
  void *a, *b;
} chunk;

int main(int argc, char **argv)
{
  tap_mpi_init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  pattern = NPATTERNS;
  for (int p = 0; p < NPATTERNS; p++)
    if (argc == 8 || (argc == 9 && !strcmp(argv[8], pattern_names[p])))
      pattern = (enum pattern)p;
  if (argc == 8)
    pattern = RANDOM;
  dtype = argc < 2 ? LUISA_F64 : !strcmp(argv[1], "f32") ? LUISA_F32 : !strcmp(argv[1], "i32") ? LUISA_I32
        : !strcmp(argv[1], "i64") ? LUISA_I64 : LUISA_F64;
  int integer = dtype == LUISA_I32 || dtype == LUISA_I64;
  if ((argc != 8 && argc != 9) || pattern == NPATTERNS
      || (integer && (pattern == ALL_NAN || pattern == NAN_RANK || pattern == NAN_ENDS || pattern == INF
                      || pattern == NAN_INF))) {
    tap_print("not ok - usage: reduce DTYPE SHAPE BLOCKS GHOST ORDER STEPS SCRIPT [PATTERN] "
              "(NaN and inf patterns need f32 or f64)\n");
    MPI_Finalize();
    return 1;
  }
  nranks = size;
  ndim = parse_list(argv[2], shape);
  parse_list(argv[3], blocks);
  nglobal = 1;
  for (int d = 0; d < ndim; d++)
    nglobal *= shape[d];
  int ghost = atoi(argv[4]);
  luisa_order order = argv[5][0] == 'f' ? LUISA_ORDER_F : LUISA_ORDER_C;
  int steps = atoi(argv[6]);
  char desc[512];
  snprintf(desc, sizeof desc, "%d ranks, %s %s blocks %s ghost %d order %s, %d steps, A %s", size,
           argv[1], argv[2], argv[3], ghost, argv[5], steps, pattern_names[pattern]);

  setenv("LUISA_TEST_SHAPE", argv[2], 1);   /* the script turns argmin's index into a linear one */
  luisa_options opts = luisa_options_default();
  opts.script = argv[7];
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

  /* Blocks of the grid owned here. */
  int64_t nblocks = 1;
  for (int d = 0; d < ndim; d++)
    nblocks *= blocks[d];
  chunk *mine = calloc((size_t)nblocks, sizeof *mine);
  int nmine = 0;
  for (int64_t k = 0; k < nblocks; k++) {
    if (k % size != rank)
      continue;
    chunk *c = &mine[nmine++];
    int64_t rest = k, vol = 1;
    for (int d = ndim - 1; d >= 0; d--) {
      int64_t bk = rest % blocks[d];
      rest /= blocks[d];
      c->off[d] = block_start(shape[d], blocks[d], bk);
      c->shp[d] = block_start(shape[d], blocks[d], bk + 1) - c->off[d];
      c->alloc[d] = c->shp[d] + 2 * ghost;
      vol *= c->alloc[d];
    }
    luisa_layout layout = { .order = order };
    for (int d = 0; d < ndim; d++) {
      layout.alloc_shape[d] = c->alloc[d];
      layout.start[d] = ghost;
    }
    c->a = malloc((size_t)vol * dsize());
    c->b = malloc((size_t)vol * dsize());
    if (luisa_chunk(lz, "A", c->off, c->shp, &layout) != LUISA_OK ||
        luisa_chunk(lz, "B", c->off, c->shp, &layout) != LUISA_OK) {
      printf("# rank %d: luisa_chunk refused: %s\n", rank, luisa_error(lz));
      failures++;
    }
  }

  const char *outpath = getenv("LUISA_TEST_OUT");
  for (int64_t step = 1; step <= steps; step++) {
    for (int m = 0; m < nmine; m++) {
      chunk *c = &mine[m];
      int64_t vol = 1;
      for (int d = 0; d < ndim; d++)
        vol *= c->alloc[d];
      /* Poison everywhere, then the interior: reading a ghost spoils a result. */
      for (int64_t at = 0; at < vol; at++) {
        store(c->a, at, dtype == LUISA_F64 || dtype == LUISA_F32 ? NAN : 1e9);
        store(c->b, at, dtype == LUISA_F64 || dtype == LUISA_F32 ? NAN : -1e9);
      }
      int64_t idx[LUISA_MAX_DIMS] = { 0 };
      for (int64_t e = 0, n = vol; e < n; e++) {
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
        store(c->a, at, value(0, global, step));
        store(c->b, at, value(1, global, step));
      }
      luisa_publish(lz, "A", m, c->a);
      luisa_publish(lz, "B", m, c->b);
    }
    st = luisa_step(lz, step);
    if (st != LUISA_OK) {
      printf("# rank %d step %lld: status %d: %s\n", rank, (long long)step, st, luisa_error(lz));
      failures++;
    }
  }

  if (rank == 0) {
    FILE *f = outpath ? fopen(outpath, "r") : NULL;
    uint64_t seen[64] = { 0 };
    double got[64][NSTATS];
    char name[32];
    long long s;
    double v;
    while (f && fscanf(f, "%lld %31s %lf", &s, name, &v) == 3)
      for (int k = 0; k < NSTATS; k++)
        if (s >= 1 && s <= steps && s < 64 && !strcmp(name, stat_names[k])) {
          got[s][k] = v;
          seen[s] |= (uint64_t)1 << k;
        }
    if (f)
      fclose(f);
    for (int64_t step = 1; step <= steps && step < 64; step++) {
      double e[NSTATS];
      expected(step, e);
      for (int k = 0; k < NSTATS; k++) {
        if (!(seen[step] & ((uint64_t)1 << k))) {
          printf("# step %lld: %s was not reported\n", (long long)step, stat_names[k]);
          failures++;
          continue;
        }
        /* luisa.minimum of NaN and a number is either (docs/decisions.md, "NaN") */
        int nan_in_a = pattern == ALL_NAN || pattern == NAN_RANK || pattern == NAN_ENDS || pattern == NAN_INF;
        if (nan_in_a && !strcmp(stat_names[k], "mm"))
          continue;
        if (!matches(got[step][k], e[k], 1e-12)) {
          printf("# step %lld: %s = %.17g, expected %.17g\n", (long long)step, stat_names[k], got[step][k], e[k]);
          failures++;
        }
      }
    }
  }
  MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  tap_print("%sok - %s\n", failures ? "not " : "", desc);
  for (int m = 0; m < nmine; m++) {
    free(mine[m].a);
    free(mine[m].b);
  }
  free(mine);
  luisa_finalize(lz);
  MPI_Finalize();
  return failures != 0;
}
