/* heat2d.c: a 2D heat equation solver (explicit, Dirichlet 0) on an MPI process
 * grid whose time step scripts steer and whose field u they may nudge. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "luisa.h"

/* u_t = ALPHA * laplacian(u), dx = 1: the explicit 5-point scheme is stable
 * for dt <= 0.25 / ALPHA, so that is the upper bound of the steerable dt. */
#define ALPHA   1.0
#define DT      0.2     /* initial dt */
#define DT_MIN  1e-6

/* The observation: a Gaussian bump of unit height circling the centre. */
#define OBS_OMEGA 0.05  /* radians per unit of simulated time */

typedef struct config {
  int n;               /* global grid: n x n cells */
  int steps;
  int progress;        /* progress line every `progress` steps; 0: never */
  int check;           /* print a checksum of the final field */
  const char *script;  /* NULL: no analytics */
} config;

typedef struct domain {
  MPI_Comm cart;
  int dims[2];                      /* process grid: rows (y), columns (x) */
  int north, south, west, east;     /* neighbours, MPI_PROC_NULL at the edge */
  int y0, x0;                       /* global index of the first interior cell */
  int ny, nx;                       /* interior extent */
  ptrdiff_t stride;                 /* nx + 2: a row with its ghost cells */
  MPI_Datatype column;              /* ny interior cells of one column */
} domain;

static void usage(FILE *f, const char *prog)
{
  fprintf(f,
    "usage: %s [options]\n"
    "  --size N       global grid of N x N cells (default 128)\n"
    "  --steps N      time steps to run (default 200)\n"
    "  --script PATH  analysis script (default examples/heat2d/stats.lua);\n"
    "                 an empty PATH runs without analytics\n"
    "  --progress N   progress line on stderr every N steps, 0: none (default 50)\n"
    "  --check        print a checksum of the final u and its largest\n"
    "                 difference to the observation, on stderr\n"
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
  *c = (config){ .n = 128, .steps = 200, .progress = 50, .check = 0,
                 .script = "examples/heat2d/stats.lua" };
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    int *dst = NULL, lo = 1;
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
      dst = &c->n;
    else if (!strcmp(o, "--steps"))
      dst = &c->steps, lo = 0;
    else if (!strcmp(o, "--progress"))
      dst = &c->progress, lo = 0;
    if (!dst) {
      if (rank == 0)
        fprintf(stderr, "heat2d: unknown option or missing value: %s\n", o);
      return -1;
    }
    if (i + 1 >= argc || !parse_int(argv[++i], lo, dst)) {
      if (rank == 0)
        fprintf(stderr, "heat2d: %s expects an integer in [%d, 2^30]\n", o, lo);
      return -1;
    }
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
  int periods[2] = { 0, 0 }, coords[2];   /* not periodic: the edge is u = 0 */
  d->dims[0] = d->dims[1] = 0;
  MPI_Dims_create(nranks, 2, d->dims);
  if (cfg->n < d->dims[0] || cfg->n < d->dims[1])
    return 0;  /* some rank would own no cell */
  MPI_Cart_create(comm, 2, d->dims, periods, 0, &d->cart);
  int me;
  MPI_Comm_rank(d->cart, &me);
  MPI_Cart_coords(d->cart, me, 2, coords);
  MPI_Cart_shift(d->cart, 0, 1, &d->north, &d->south);
  MPI_Cart_shift(d->cart, 1, 1, &d->west, &d->east);
  d->ny = block(cfg->n, d->dims[0], coords[0], &d->y0);
  d->nx = block(cfg->n, d->dims[1], coords[1], &d->x0);
  d->stride = (ptrdiff_t)d->nx + 2;
  MPI_Type_vector(d->ny, 1, d->nx + 2, MPI_DOUBLE, &d->column);
  MPI_Type_commit(&d->column);
  return 1;
}

/* The observation at global cell (gy, gx) and simulated time t: a function
 * of global position and time alone, so it is the same on any rank count,
 * and the --check below recomputes exactly what was published. */
static double observation(int n, int gy, int gx, double t)
{
  const double c = 0.5 * n, r = 0.25 * n, s = n / 8.0;
  const double cy = c + r * sin(OBS_OMEGA * t), cx = c + r * cos(OBS_OMEGA * t);
  const double dy = gy - cy, dx = gx - cx;
  return exp(-(dy * dy + dx * dx) / (2.0 * s * s));
}

/* obs is contiguous (no ghost cells): its chunk is declared with a NULL layout. */
static void observe(const config *cfg, const domain *d, double t, double *obs)
{
  for (int i = 0; i < d->ny; i++)
    for (int j = 0; j < d->nx; j++)
      obs[(ptrdiff_t)i * d->nx + j] = observation(cfg->n, d->y0 + i, d->x0 + j, t);
}

/* u = 1 on a square away from where the bump starts, 0 elsewhere: its sharp
 * edges give a large laplacian for a script to react to. */
static void initial(const config *cfg, const domain *d, double *u)
{
  const int lo = cfg->n / 8, hi = 3 * cfg->n / 8;
  for (int i = 1; i <= d->ny; i++)
    for (int j = 1; j <= d->nx; j++) {
      const int gy = d->y0 + i - 1, gx = d->x0 + j - 1;
      u[i * d->stride + j] = gy >= lo && gy < hi && gx >= lo && gx < hi ? 1.0 : 0.0;
    }
}

/* Fill the ghost layer from the neighbours. At the global edge the neighbour
 * is MPI_PROC_NULL: the ghost cells keep the 0 they were allocated with, which
 * is the Dirichlet condition. The 5-point stencil never reads the corners. */
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

/* Steerable: scripts change it between steps (luisa.set). */
static double dt = DT;

/* One explicit Euler step. Each cell is computed by the same expression
 * whatever the decomposition, so u is bitwise rank-count independent (ISO C
 * mode keeps the compiler from contracting into FMAs). */
static void update(const domain *d, const double *restrict u, double *restrict un)
{
  const ptrdiff_t s = d->stride;
  const double k = ALPHA * dt;
  for (int i = 1; i <= d->ny; i++)
    for (int j = 1; j <= d->nx; j++) {
      const ptrdiff_t c = i * s + j;
      un[c] = u[c] + k * (u[c - s] + u[c + s] + u[c - 1] + u[c + 1] - 4.0 * u[c]);
    }
}

static uint64_t mix64(uint64_t x)   /* splitmix64's finaliser */
{
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

/* A hand-written MPI analysis, independent of luisa: mean, extrema, an
 * order-free hash of every cell's bits (equal for any rank count) and the
 * largest |u - obs| at the time of the last step, obs recomputed here. */
static void checksum(const config *cfg, const domain *d, const double *u,
                     int last, double t, int rank)
{
  double sum = 0, lo = 1e300, hi = -1e300, diff = 0;
  uint64_t hash = 0;
  for (int i = 1; i <= d->ny; i++)
    for (int j = 1; j <= d->nx; j++) {
      const double f = u[i * d->stride + j];
      const int gy = d->y0 + i - 1, gx = d->x0 + j - 1;
      const uint64_t g = (uint64_t)gy * (uint64_t)cfg->n + (uint64_t)gx;
      const double e = fabs(f - observation(cfg->n, gy, gx, t));
      uint64_t bits;
      memcpy(&bits, &f, sizeof bits);
      hash += mix64(bits ^ mix64(g));  /* wraps: order-free */
      sum += f;
      lo = f < lo ? f : lo;
      hi = f > hi ? f : hi;
      diff = e > diff ? e : diff;
    }
  double gsum, glo, ghi, gdiff;
  uint64_t ghash;
  MPI_Reduce(&sum, &gsum, 1, MPI_DOUBLE, MPI_SUM, 0, d->cart);
  MPI_Reduce(&lo, &glo, 1, MPI_DOUBLE, MPI_MIN, 0, d->cart);
  MPI_Reduce(&hi, &ghi, 1, MPI_DOUBLE, MPI_MAX, 0, d->cart);
  MPI_Reduce(&diff, &gdiff, 1, MPI_DOUBLE, MPI_MAX, 0, d->cart);
  MPI_Reduce(&hash, &ghash, 1, MPI_UINT64_T, MPI_SUM, 0, d->cart);
  if (rank == 0)
    fprintf(stderr,
            "heat2d: check u mean %.15f min %.15f max %.15f\n"
            "heat2d: check hash %016llx\n"
            "heat2d: check step %d t %.17g max|u - obs| %.17g\n",
            gsum / ((double)cfg->n * cfg->n), glo, ghi,
            (unsigned long long)ghash, last, t, gdiff);
}

/* Print a failed luisa call; @return : 1 if `rc` is an error. Setup calls
 * are local, so the failing rank reports and the ranks agree afterwards. */
static int failed(const luisa *lz, int rc, const char *what, int rank)
{
  if (rc < LUISA_ERR_FIRST)
    return 0;
  fprintf(stderr, "heat2d: rank %d: %s: %s (%s)\n", rank, what,
          luisa_error(lz), luisa_status_string(rc));
  return 1;
}

/* Declare dt, then u (the interior of a buffer with one ghost layer, which
 * scripts may write) and obs (a contiguous buffer of the same block). */
static int declare(luisa *lz, const config *cfg, const domain *d, int rank)
{
  const int64_t shape[2] = { cfg->n, cfg->n };
  const int64_t off[2] = { d->y0, d->x0 }, len[2] = { d->ny, d->nx };
  const luisa_layout lay = { .order = LUISA_ORDER_C,
                             .alloc_shape = { d->ny + 2, d->nx + 2 },
                             .start = { 1, 1 } };
  return !failed(lz, luisa_param_f64(lz, "dt", &dt, DT_MIN, 0.25 / ALPHA,
                                     "time step (stable up to 0.25/alpha)"),
                 "luisa_param_f64(dt)", rank) &&
         !failed(lz, luisa_array(lz, "u", LUISA_F64, 2, shape), "luisa_array(u)", rank) &&
         !failed(lz, luisa_chunk(lz, "u", off, len, &lay), "luisa_chunk(u)", rank) &&
         !failed(lz, luisa_field_writable(lz, "u"), "luisa_field_writable(u)", rank) &&
         !failed(lz, luisa_array(lz, "obs", LUISA_F64, 2, shape), "luisa_array(obs)", rank) &&
         !failed(lz, luisa_chunk(lz, "obs", off, len, NULL), "luisa_chunk(obs)", rank);
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
      fprintf(stderr, "heat2d: luisa_init: %s\n", luisa_status_string(rc));
    MPI_Finalize();
    return 1;
  }
  MPI_Comm comm = luisa_comm(lz);
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &nranks);
  domain d;
  if (!domain_setup(&cfg, comm, nranks, &d)) {
    if (rank == 0)
      fprintf(stderr, "heat2d: grid %d x %d is smaller than the %d x %d "
              "process grid\n", cfg.n, cfg.n, d.dims[1], d.dims[0]);
    luisa_finalize(lz);
    MPI_Finalize();
    return 2;
  }

  /* calloc: the ghost cells of both buffers are the boundary value 0 and
   * nothing ever writes them (exchange skips MPI_PROC_NULL, luisa.assign
   * writes inside the chunk only). */
  const size_t cells = (size_t)(d.ny + 2) * (size_t)(d.nx + 2);
  double *u = calloc(cells, sizeof *u), *un = calloc(cells, sizeof *un);
  double *obs = malloc(((size_t)d.ny * (size_t)d.nx) * sizeof *obs);
  int bad = !u || !un || !obs;
  if (bad)
    fprintf(stderr, "heat2d: rank %d: out of memory\n", rank);
  else
    initial(&cfg, &d, u);
  bad = bad || !declare(lz, &cfg, &d, rank);
  /* Ranks agree before the loop's collectives, so one rank failing alone
   * does not leave the others blocked in them. */
  MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_LOR, comm);

  /* The order within step s, which is what makes assignments exact:
   *   1. (s > 0) u_s = update(u_{s-1}) with the dt in force, t += dt;
   *   2. publish u_s, the buffer the next update reads, and obs(t) if wanted;
   *   3. luisa_step(s): the analytics read u_s and obs(t), then luisa.assign
   *      overwrites u_s in place, then luisa.set changes dt.
   * So an assignment at s is what step s + 1 starts from, and after the last
   * step u is exactly what the last assignment wrote: --check compares it
   * with obs at that step's time, with no update in between. */
  int status = bad, last = -1, nobs = 0;
  double t = 0;   /* simulated time of u */
  const double t0 = MPI_Wtime();
  double tlap = t0;
  for (int step = 0; !bad && step <= cfg.steps; step++) {
    if (step > 0) {  /* step 0 shows the initial condition */
      exchange(&d, u);
      update(&d, u, un);
      double *tmp = u; u = un; un = tmp;   /* u: the state at this step */
      t += dt;
    }
    last = step;
    /* A failed publish is reported by luisa_step on all ranks. */
    failed(lz, luisa_publish(lz, "u", 0, u), "luisa_publish(u)", rank);
    int want = 0;   /* obs costs an exp per cell: only when the plan reads it */
    failed(lz, luisa_wants(lz, "obs", -1, step, &want), "luisa_wants(obs)", rank);
    if (want) {
      observe(&cfg, &d, t, obs);
      failed(lz, luisa_publish(lz, "obs", 0, obs), "luisa_publish(obs)", rank);
      nobs++;
    }
    int st = luisa_step(lz, step);  /* same status on every rank */
    if (st >= LUISA_ERR_FIRST) {
      if (rank == 0)
        fprintf(stderr, "heat2d: luisa_step %d: %s (%s)\n", step,
                luisa_error(lz), luisa_status_string(st));
      status = 1;
      break;
    }
    if (st == LUISA_STOP) {   /* every rank gets it at the same step */
      if (rank == 0)
        fprintf(stderr, "heat2d: the analysis ended the run at step %d\n", step);
      break;
    }
    /* LUISA_WARN_SCRIPT: the analysis failed this step, the engine logged
     * it; the simulation goes on. */
    if (rank == 0 && cfg.progress > 0 && step > 0 && step % cfg.progress == 0) {
      const double now = MPI_Wtime();
      fprintf(stderr, "heat2d: step %d/%d dt %g (%.2f ms/step)\n", step,
              cfg.steps, dt, (now - tlap) * 1e3 / cfg.progress);
      tlap = now;
    }
  }

  if (!bad) {
    double elapsed = MPI_Wtime() - t0, slowest;
    MPI_Reduce(&elapsed, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, comm);
    if (rank == 0)  /* nobs: rank 0's count; whole-array statistics want obs alike everywhere */
      fprintf(stderr, "heat2d: %s step %d, %d x %d cells on %d ranks (%d x %d), "
              "obs computed at %d steps: %.3f s\n",
              status ? "failed at" : "done after", last, cfg.n, cfg.n, nranks,
              d.dims[1], d.dims[0], nobs, slowest);
    if (cfg.check)
      checksum(&cfg, &d, u, last, t, rank);
  }

  luisa_finalize(lz);
  MPI_Type_free(&d.column);
  MPI_Comm_free(&d.cart);
  free(u);
  free(un);
  free(obs);
  MPI_Finalize();
  return status;
}
