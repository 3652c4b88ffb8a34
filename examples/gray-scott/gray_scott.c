/* gray_scott.c: a 2D Gray-Scott reaction-diffusion solver on a periodic MPI
 * process grid that hands its U and V fields to luisa for in situ analysis. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "luisa.h"

/* Pearson's "spots" regime; dx = 1, and dt = 1 is stable since 4*Du*dt < 1. */
#define DU   0.2097
#define DV   0.105
#define FEED 0.0545   /* initial values: both are steerable ("feed", "kill") */
#define KILL 0.062
#define DT   1.0

typedef struct config {
  int nx, ny;          /* global grid: nx columns (x), ny rows (y) */
  int steps;
  int every;           /* hand data to luisa every `every` steps */
  int progress;        /* progress line every `progress` steps; 0: never */
  int seed;
  int check;           /* print a checksum of the final fields */
  const char *script;  /* NULL: no analytics */
} config;

typedef struct domain {
  MPI_Comm cart;
  int dims[2];                      /* process grid: rows (y), columns (x) */
  int north, south, west, east;     /* neighbour ranks in cart */
  int y0, x0;                       /* global index of the first interior cell */
  int ny, nx;                       /* interior extent */
  ptrdiff_t stride;                 /* nx + 2: a row with its ghost cells */
  MPI_Datatype column;              /* ny interior cells of one column */
} domain;

static void usage(FILE *f, const char *prog)
{
  fprintf(f,
    "usage: %s [options]\n"
    "  --size N       global grid of N x N cells (default 256)\n"
    "  --nx N         global grid width  (columns, axis 1)\n"
    "  --ny N         global grid height (rows, axis 0)\n"
    "  --steps N      time steps to run (default 400)\n"
    "  --script PATH  analysis script (default examples/gray-scott/stats.lua);\n"
    "                 an empty PATH runs without analytics\n"
    "  --every N      publish to luisa every N steps (default 1)\n"
    "  --progress N   progress line on stderr every N steps, 0: none (default 50)\n"
    "  --seed N       seed of the initial perturbation (default 1)\n"
    "  --check        print a checksum of the final fields on stderr\n"
    "  --help         show this text\n",
    prog);
}

static int parse_int(const char *s, int lo, int *out)
{
  char *end;
  errno = 0;
  long x = strtol(s, &end, 10);
  if (errno || end == s || *end || x < lo || x > (1L << 30))
    return 0;
  *out = (int)x;
  return 1;
}

/* @return : 0 to run, 1 when --help was asked, -1 on a bad command line
 *           (message already printed on rank 0). Every rank parses the same
 *           argv, so every rank takes the same decision. */
static int parse_args(int argc, char **argv, int rank, config *c)
{
  *c = (config){ .nx = 256, .ny = 256, .steps = 400, .every = 1,
                 .progress = 50, .seed = 1, .check = 0,
                 .script = "examples/gray-scott/stats.lua" };
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    int *dst = NULL, *dst2 = NULL, lo = 1;
    if (!strcmp(o, "--help") || !strcmp(o, "-h"))
      return 1;
    if (!strcmp(o, "--check")) {
      c->check = 1;
      continue;
    }
    if (!strcmp(o, "--script") && i + 1 < argc) {
      c->script = *argv[++i] ? argv[i] : NULL;
      continue;
    }
    if (!strcmp(o, "--size"))
      dst = &c->nx, dst2 = &c->ny;
    else if (!strcmp(o, "--nx"))
      dst = &c->nx;
    else if (!strcmp(o, "--ny"))
      dst = &c->ny;
    else if (!strcmp(o, "--steps"))
      dst = &c->steps, lo = 0;
    else if (!strcmp(o, "--every"))
      dst = &c->every;
    else if (!strcmp(o, "--progress"))
      dst = &c->progress, lo = 0;
    else if (!strcmp(o, "--seed"))
      dst = &c->seed, lo = 0;
    if (!dst) {
      if (rank == 0)
        fprintf(stderr, "gray-scott: unknown option or missing value: %s\n", o);
      return -1;
    }
    if (i + 1 >= argc || !parse_int(argv[++i], lo, dst)) {
      if (rank == 0)
        fprintf(stderr, "gray-scott: %s expects an integer in [%d, 2^30]\n",
                o, lo);
      return -1;
    }
    if (dst2)
      *dst2 = *dst;
  }
  return 0;
}

/* Block distribution of n cells over p parts: the first n % p parts get one
 * more cell, so any n >= p works. */
static int block(int n, int p, int c, int *start)
{
  int base = n / p, rem = n % p;
  *start = c * base + (c < rem ? c : rem);
  return base + (c < rem);
}

static int domain_setup(const config *cfg, MPI_Comm comm, int nranks, domain *d)
{
  int periods[2] = { 1, 1 }, coords[2];
  d->dims[0] = d->dims[1] = 0;
  MPI_Dims_create(nranks, 2, d->dims);
  if (cfg->ny < d->dims[0] || cfg->nx < d->dims[1])
    return 0;  /* some rank would own no cell: its halo would be garbage */
  MPI_Cart_create(comm, 2, d->dims, periods, 0, &d->cart);
  int me;
  MPI_Comm_rank(d->cart, &me);
  MPI_Cart_coords(d->cart, me, 2, coords);
  MPI_Cart_shift(d->cart, 0, 1, &d->north, &d->south);
  MPI_Cart_shift(d->cart, 1, 1, &d->west, &d->east);
  d->ny = block(cfg->ny, d->dims[0], coords[0], &d->y0);
  d->nx = block(cfg->nx, d->dims[1], coords[1], &d->x0);
  d->stride = (ptrdiff_t)d->nx + 2;
  MPI_Type_vector(d->ny, 1, d->nx + 2, MPI_DOUBLE, &d->column);
  MPI_Type_commit(&d->column);
  return 1;
}

/* splitmix64: a well-mixed hash, so the perturbation is a function of the
 * global cell index alone and the run does not depend on the rank count. */
static uint64_t mix64(uint64_t x)
{
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

static double unit_noise(uint64_t seed, uint64_t i)
{
  return (double)(mix64(mix64(seed) ^ i) >> 11) * 0x1p-53;  /* [0, 1) */
}

/* U = 1, V = 0, except a square of side min(NX,NY)/8 in the middle of the
 * global domain: U = 0.5, V = 0.25, each +-0.01 of noise. */
static void initial(const config *cfg, const domain *d, double *u, double *v)
{
  int h = (cfg->nx < cfg->ny ? cfg->nx : cfg->ny) / 16;
  if (h < 1)
    h = 1;
  for (int i = 1; i <= d->ny; i++) {
    for (int j = 1; j <= d->nx; j++) {
      const ptrdiff_t c = i * d->stride + j;
      const int gy = d->y0 + i - 1, gx = d->x0 + j - 1;
      const uint64_t g = (uint64_t)gy * (uint64_t)cfg->nx + (uint64_t)gx;
      u[c] = 1.0;
      v[c] = 0.0;
      if (gy >= cfg->ny / 2 - h && gy < cfg->ny / 2 + h &&
          gx >= cfg->nx / 2 - h && gx < cfg->nx / 2 + h) {
        u[c] = 0.50 + 0.02 * (unit_noise((uint64_t)cfg->seed, 2 * g) - 0.5);
        v[c] = 0.25 + 0.02 * (unit_noise((uint64_t)cfg->seed, 2 * g + 1) - 0.5);
      }
    }
  }
}

/* Fill the ghost layer from the periodic neighbours. Rows and columns carry
 * interior cells only: the 5-point stencil never reads the corners. */
static void exchange(const domain *d, double *a)
{
  const ptrdiff_t s = d->stride;
  const int nx = d->nx, ny = d->ny;
  MPI_Sendrecv(a + s + 1, nx, MPI_DOUBLE, d->north, 0,
               a + (ny + 1) * s + 1, nx, MPI_DOUBLE, d->south, 0,
               d->cart, MPI_STATUS_IGNORE);
  MPI_Sendrecv(a + ny * s + 1, nx, MPI_DOUBLE, d->south, 1,
               a + 1, nx, MPI_DOUBLE, d->north, 1,
               d->cart, MPI_STATUS_IGNORE);
  MPI_Sendrecv(a + s + 1, 1, d->column, d->west, 2,
               a + s + nx + 1, 1, d->column, d->east, 2,
               d->cart, MPI_STATUS_IGNORE);
  MPI_Sendrecv(a + s + nx, 1, d->column, d->east, 3,
               a + s, 1, d->column, d->west, 3,
               d->cart, MPI_STATUS_IGNORE);
}

/* One explicit Euler step. Each cell is computed by the same expression
 * whatever the decomposition, so fields are bitwise rank-count independent
 * (ISO C mode keeps the compiler from contracting into FMAs). */
/* Steerable: analysis scripts may change them between steps (luisa.set). */
static double feed = FEED, kill = KILL;

static void update(const domain *d, const double *restrict u,
                   const double *restrict v, double *restrict un,
                   double *restrict vn)
{
  const ptrdiff_t s = d->stride;
  for (int i = 1; i <= d->ny; i++) {
    for (int j = 1; j <= d->nx; j++) {
      const ptrdiff_t c = i * s + j;
      const double lu = u[c - s] + u[c + s] + u[c - 1] + u[c + 1] - 4.0 * u[c];
      const double lv = v[c - s] + v[c + s] + v[c - 1] + v[c + 1] - 4.0 * v[c];
      const double uvv = u[c] * v[c] * v[c];
      un[c] = u[c] + DT * (DU * lu - uvv + feed * (1.0 - u[c]));
      vn[c] = v[c] + DT * (DV * lv + uvv - (feed + kill) * v[c]);
    }
  }
}

/* A hand-written MPI analysis, independent of luisa: sums, extrema and an
 * order-free hash of every cell's bits (equal for any rank count). */
static void checksum(const config *cfg, const domain *d, const double *u,
                     const double *v, int rank)
{
  double sum[2] = { 0, 0 }, lo[2] = { 1e300, 1e300 }, hi[2] = { -1e300, -1e300 };
  uint64_t hash = 0;
  for (int i = 1; i <= d->ny; i++) {
    for (int j = 1; j <= d->nx; j++) {
      const ptrdiff_t c = i * d->stride + j;
      const uint64_t g = (uint64_t)(d->y0 + i - 1) * (uint64_t)cfg->nx
                       + (uint64_t)(d->x0 + j - 1);
      const double f[2] = { u[c], v[c] };
      for (int k = 0; k < 2; k++) {
        uint64_t bits;
        memcpy(&bits, &f[k], sizeof bits);
        hash += mix64(bits ^ mix64(2 * g + (uint64_t)k));  /* wraps: order-free */
        sum[k] += f[k];
        lo[k] = f[k] < lo[k] ? f[k] : lo[k];
        hi[k] = f[k] > hi[k] ? f[k] : hi[k];
      }
    }
  }
  double gsum[2], glo[2], ghi[2];
  uint64_t ghash;
  MPI_Reduce(sum, gsum, 2, MPI_DOUBLE, MPI_SUM, 0, d->cart);
  MPI_Reduce(lo, glo, 2, MPI_DOUBLE, MPI_MIN, 0, d->cart);
  MPI_Reduce(hi, ghi, 2, MPI_DOUBLE, MPI_MAX, 0, d->cart);
  MPI_Reduce(&hash, &ghash, 1, MPI_UINT64_T, MPI_SUM, 0, d->cart);
  if (rank == 0) {
    const double n = (double)cfg->nx * cfg->ny;
    fprintf(stderr,
            "gray-scott: check U mean %.15f min %.15f max %.15f\n"
            "gray-scott: check V mean %.15f min %.15f max %.15f\n"
            "gray-scott: check hash %016llx\n",
            gsum[0] / n, glo[0], ghi[0], gsum[1] / n, glo[1], ghi[1],
            (unsigned long long)ghash);
  }
}

/* Print a failed luisa call; @return : 1 if `rc` is an error. Setup calls
 * are local, so the failing rank reports and the ranks agree afterwards. */
static int failed(const luisa *lz, int rc, const char *what, int rank)
{
  if (rc < LUISA_ERR_FIRST)
    return 0;
  fprintf(stderr, "gray-scott: rank %d: %s: %s (%s)\n", rank, what,
          luisa_error(lz), luisa_status_string(rc));
  return 1;
}

/* Declare U and V and this rank's block of each: the interior of a buffer
 * with one ghost cell on every side. */
static int declare(luisa *lz, const config *cfg, const domain *d, int rank)
{
  const int64_t shape[2] = { cfg->ny, cfg->nx };
  const int64_t off[2] = { d->y0, d->x0 }, len[2] = { d->ny, d->nx };
  const luisa_layout lay = { .order = LUISA_ORDER_C,
                             .alloc_shape = { d->ny + 2, d->nx + 2 },
                             .start = { 1, 1 } };
  if (failed(lz, luisa_param_f64(lz, "feed", &feed, 0.01, 0.1, "feed rate F"), "luisa_param_f64", rank) ||
      failed(lz, luisa_param_f64(lz, "kill", &kill, 0.04, 0.08, "kill rate k"), "luisa_param_f64", rank))
    return 0;
  const char *names[2] = { "U", "V" };
  for (int k = 0; k < 2; k++) {
    if (failed(lz, luisa_array(lz, names[k], LUISA_F64, 2, shape),
               "luisa_array", rank) ||
        failed(lz, luisa_chunk(lz, names[k], off, len, &lay),
               "luisa_chunk", rank))
      return 0;
  }
  return 1;
}

int main(int argc, char **argv)
{
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank, nranks;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);

  config cfg;
  int pa = parse_args(argc, argv, rank, &cfg);
  if (pa != 0) {
    if (rank == 0)
      usage(pa > 0 ? stdout : stderr, argv[0]);
    MPI_Finalize();
    return pa > 0 ? 0 : 2;
  }
  /* First, so that in ranks mode (LUISA_MODE=ranks) the analytics ranks
   * leave the job here and the simulation runs on luisa_comm(). */
  luisa *lz = NULL;
  luisa_options opts = luisa_options_default();
  opts.script = cfg.script;
  int rc = luisa_init(MPI_COMM_WORLD, &opts, &lz);
  if (rc == LUISA_SERVED) {   /* an analytics rank: the simulation has finalized */
    luisa_finalize(lz);
    MPI_Finalize();
    return 0;
  }
  /* LUISA_WARN_SCRIPT: the engine logged why; lz is valid and the run goes
   * on without analytics. An error: every rank got it, nothing to run. */
  if (rc >= LUISA_ERR_FIRST) {
    if (rank == 0)
      fprintf(stderr, "gray-scott: luisa_init: %s\n", luisa_status_string(rc));
    MPI_Finalize();
    return 1;
  }
  MPI_Comm comm = luisa_comm(lz);
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &nranks);
  domain d;
  if (!domain_setup(&cfg, comm, nranks, &d)) {
    if (rank == 0)
      fprintf(stderr, "gray-scott: grid %d x %d is smaller than the %d x %d "
              "process grid\n", cfg.nx, cfg.ny, d.dims[1], d.dims[0]);
    luisa_finalize(lz);
    MPI_Finalize();
    return 2;
  }

  const size_t cells = (size_t)(d.ny + 2) * (size_t)(d.nx + 2);
  double *u = calloc(cells, sizeof *u), *v = calloc(cells, sizeof *v);
  double *un = calloc(cells, sizeof *un), *vn = calloc(cells, sizeof *vn);
  int bad = !u || !v || !un || !vn;
  if (bad)
    fprintf(stderr, "gray-scott: rank %d: out of memory\n", rank);
  else
    initial(&cfg, &d, u, v);
  bad = bad || !declare(lz, &cfg, &d, rank);
  /* Ranks agree before the loop's collectives, so one rank failing alone
   * does not leave the others blocked in them. */
  MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_LOR, comm);

  int status = bad, step = 0;
  const double t0 = MPI_Wtime();
  double tlap = t0;
  for (step = 0; !bad && step <= cfg.steps; step++) {
    if (step > 0) {  /* step 0 shows the initial condition */
      exchange(&d, u);
      exchange(&d, v);
      update(&d, u, v, un, vn);
      double *t = u; u = un; un = t;
      t = v; v = vn; vn = t;
    }
    if (step % cfg.every == 0) {
      /* u and v hold the current state and stay untouched until luisa_step
       * returns. A failed publish is reported by luisa_step on all ranks. */
      failed(lz, luisa_publish(lz, "U", 0, u), "luisa_publish(U)", rank);
      failed(lz, luisa_publish(lz, "V", 0, v), "luisa_publish(V)", rank);
      int st = luisa_step(lz, step);  /* same status on every rank */
      if (st >= LUISA_ERR_FIRST) {
        if (rank == 0)
          fprintf(stderr, "gray-scott: luisa_step %d: %s (%s)\n", step,
                  luisa_error(lz), luisa_status_string(st));
        status = 1;
        break;
      }
      if (st == LUISA_STOP) {   /* every rank gets it at the same step */
        if (rank == 0)
          fprintf(stderr, "gray-scott: the analysis ended the run at step %d\n", step);
        step++;   /* as the loop would: step - 1 is the last step run */
        break;
      }
      /* LUISA_WARN_SCRIPT: the analysis failed this step, the engine logged
       * it; the simulation does not care. */
    }
    if (rank == 0 && cfg.progress > 0 && step > 0 && step % cfg.progress == 0) {
      const double now = MPI_Wtime();
      fprintf(stderr, "gray-scott: step %d/%d (%.2f ms/step)\n", step,
              cfg.steps, (now - tlap) * 1e3 / cfg.progress);
      tlap = now;
    }
  }

  if (!bad) {
    double elapsed = MPI_Wtime() - t0, slowest;
    MPI_Reduce(&elapsed, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, comm);
    if (rank == 0)
      fprintf(stderr, "gray-scott: %s %d steps, %d x %d cells on %d ranks "
              "(%d x %d): %.3f s\n", status ? "stopped at step" : "done after",
              step - 1, cfg.nx, cfg.ny, nranks, d.dims[1],
              d.dims[0], slowest);
    if (cfg.check)
      checksum(&cfg, &d, u, v, rank);
  }

  luisa_finalize(lz);
  MPI_Type_free(&d.column);
  MPI_Comm_free(&d.cart);
  free(u);
  free(v);
  free(un);
  free(vn);
  MPI_Finalize();
  return status;
}
