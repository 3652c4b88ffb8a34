/* slowdown.c: benchmark 7, what in situ analytics cost the simulation: the
 * wall time of a Gray-Scott loop on 1 rank without luisa, inline and in
 * thread mode (publishing, or handing the buffers over), side by side; and
 * whether thread mode keeps the analytics within max_lag steps behind.
 * On 2 ranks, in transit: 1 simulation rank and 1 analytics rank (ranks
 * mode, raw and zstd level 1) against no luisa and a hand-written MPI_Send
 * of the same bytes, all timed on rank 0 in the same run.
 * usage: slowdown SCRIPT N STEPS EVERY MAX_LAG... [--header]
 *   NxN cells, STEPS timed steps (rounded up to a multiple of EVERY),
 *   luisa_publish + luisa_step every EVERY steps; thread or ranks mode per MAX_LAG. */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench.h"

enum { REPS = 5, BINS = 64 };   /* BINS: as the script's histograms */
enum { TAG_OUT = 7 };           /* the analytics rank's bench_out, to rank 0 */

/* Pearson's "spots" regime, as examples/gray-scott: dx = dt = 1. */
#define DU   0.2097
#define DV   0.105
#define FEED 0.0545
#define KILL 0.062

/* One field of the simulation: the current state, the buffer the next
 * step writes, and buffers to swap in for those handed over to the engine
 * (luisa_publish_handover), which returns them through field_release. */
typedef struct field {
  double *cur, *next;
  double **bufs;                /* every buffer, for freeing */
  double **spare;               /* buffers free to take */
  int nbufs, nspare;
  int lent;                     /* cur is handed over: the step after it must not reuse it */
} field;

/* NxN periodic cells, each field with one ghost cell on every side. */
typedef struct sim {
  int n;
  ptrdiff_t stride;             /* n + 2 */
  field f[2];                   /* U, V */
} sim;

static void field_release(void *data, void *user)
{
  field *f = user;
  if (f->nspare == f->nbufs) {   /* spare[] has room for every buffer, once */
    fprintf(stdout, "\n!!!!! BENCHMARK BROKEN: a buffer came back twice\n\n");
    fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  f->spare[f->nspare++] = data;
}

/* The initial state goes out max_lag + 1 times before the loop: each
 * handover gives the engine a buffer of its own, so cur moves to a spare
 * copy of itself while the engine holds the one handed over. */
static double *field_spare(field *f)
{
  if (f->nspare == 0) {
    fprintf(stdout, "\n!!!!! BENCHMARK BROKEN: no spare buffer: the engine kept more than max_lag + 1\n\n");
    fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  return f->spare[--f->nspare];
}

static void field_detach(field *f, size_t cells)
{
  if (!f->lent)
    return;
  double *copy = field_spare(f);
  memcpy(copy, f->cur, cells * sizeof *copy);
  f->cur = copy;
  f->lent = 0;
}

/* The ghost layer from the opposite side (periodic); the 5-point stencil
 * never reads the corners. */
static void sim_ghosts(const sim *s, double *a)
{
  const ptrdiff_t w = s->stride;
  const int n = s->n;
  memcpy(a + 1, a + n * w + 1, (size_t)n * sizeof *a);
  memcpy(a + (n + 1) * w + 1, a + w + 1, (size_t)n * sizeof *a);
  for (int i = 1; i <= n; i++) {
    a[i * w] = a[i * w + n];
    a[i * w + n + 1] = a[i * w + 1];
  }
}

/* U = 1, V = 0, but a square of side n/8 in the middle: U = 0.5, V = 0.25,
 * each +-0.01 of noise; the same at every run. Buffers back in their places. */
static void sim_start(sim *s)
{
  const ptrdiff_t w = s->stride;
  const int n = s->n, h = n / 16 > 0 ? n / 16 : 1;
  for (int k = 0; k < 2; k++) {
    field *f = &s->f[k];
    f->cur = f->bufs[0], f->next = f->bufs[1], f->lent = 0;
    f->nspare = f->nbufs - 2;
    memcpy(f->spare, f->bufs + 2, (size_t)f->nspare * sizeof *f->spare);
  }
  uint64_t x = 12345;
  for (int i = 1; i <= n; i++)
    for (int j = 1; j <= n; j++) {
      double *u = s->f[0].cur + i * w + j, *v = s->f[1].cur + i * w + j;
      *u = 1.0, *v = 0.0;
      if (i - 1 >= n / 2 - h && i - 1 < n / 2 + h && j - 1 >= n / 2 - h && j - 1 < n / 2 + h) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        *u = 0.50 + 0.02 * ((double)(x >> 11) * 0x1p-53 - 0.5);
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        *v = 0.25 + 0.02 * ((double)(x >> 11) * 0x1p-53 - 0.5);
      }
    }
  sim_ghosts(s, s->f[0].cur);
  sim_ghosts(s, s->f[1].cur);
}

/* One explicit Euler step into the next buffers, which become current with
 * their ghosts filled: a buffer is never written once it has been handed
 * over, ghosts included. */
static void sim_step(sim *s)
{
  const ptrdiff_t w = s->stride;
  const double *restrict u = s->f[0].cur, *restrict v = s->f[1].cur;
  double *restrict un = s->f[0].next, *restrict vn = s->f[1].next;
  for (int i = 1; i <= s->n; i++)
    for (ptrdiff_t c = i * w + 1; c <= i * w + s->n; c++) {
      const double lu = u[c - w] + u[c + w] + u[c - 1] + u[c + 1] - 4.0 * u[c];
      const double lv = v[c - w] + v[c + w] + v[c - 1] + v[c + 1] - 4.0 * v[c];
      const double uvv = u[c] * v[c] * v[c];
      un[c] = u[c] + DU * lu - uvv + FEED * (1.0 - u[c]);
      vn[c] = v[c] + DV * lv + uvv - (FEED + KILL) * v[c];
    }
  for (int k = 0; k < 2; k++) {
    field *f = &s->f[k];
    double *old = f->cur;
    f->cur = f->next;
    f->next = old;
    if (f->lent) {
      f->next = field_spare(f);
      f->lent = 0;
    }
    sim_ghosts(s, f->cur);
  }
}

/* Population std of field a, or of its laplacian (on the interior points,
 * as the engine's): two passes, the mean first. */
static double c_std(const sim *s, const double *a, int laplacian)
{
  const ptrdiff_t w = s->stride;
  const int e = laplacian ? 1 : 0, n = s->n;
  double sum = 0, m2 = 0, count = (double)(n - 2 * e) * (n - 2 * e);
  for (int pass = 0; pass < 2; pass++) {
    const double mean = sum / count;
    for (int i = 1 + e; i <= n - e; i++)
      for (int j = 1 + e; j <= n - e; j++) {
        const double *c = a + i * w + j;
        double x = laplacian ? c[-w] + c[w] + c[-1] + c[1] - 4.0 * c[0] : c[0];
        if (pass == 0)
          sum += x;
        else
          m2 += (x - mean) * (x - mean);
      }
  }
  return sqrt(m2 / count);
}

/* Sum over V's cells of their bin's index in the script's histogram of V
 * (BINS bins over [0, 1], 1 in the last, values outside not counted). */
static double c_binsum(const sim *s)
{
  double total = 0;
  for (int i = 1; i <= s->n; i++)
    for (int j = 1; j <= s->n; j++) {
      const double x = s->f[1].cur[i * s->stride + j];
      double b = x == 1.0 ? BINS - 1 : floor(x * BINS);
      if (b >= 0 && b < BINS)
        total += b;
    }
  return total;
}

/* A configuration: no luisa at all, inline, or thread mode with max_lag,
 * publishing (luisa_step copies the chunks) or handing the buffers over
 * (luisa_publish_handover: no copy, the simulation takes spares); on 2
 * ranks, ranks mode with max_lag (chunks as zstd frames at `level`, 0:
 * raw; handing the buffers over: sent from them, no copy), or no luisa but
 * U and V sent to rank 1 by MPI_Send (BY_HAND). */
typedef enum { NONE, INLINE, THREAD, HANDOVER, RANKS, BY_HAND } mode;
typedef struct config {
  mode mode;
  int max_lag;
  int level;
  int handover;                 /* RANKS: luisa_publish_handover */
} config;

static int analysed(mode m)
{
  return m != NONE && m != BY_HAND;
}

static int lagged(mode m)
{
  return m == THREAD || m == HANDOVER || m == RANKS;
}

enum { MAX_LAGS = 4, MAX_CONFIGS = 2 + 3 * MAX_LAGS };

static const char *config_name(config c, char *buf, size_t cap)
{
  static const char *const names[] = { "none", "inline", "thread", "thread, handover", "ranks", "MPI_Send by hand" };
  if (c.mode == RANKS && c.level)
    snprintf(buf, cap, "ranks, zstd %d, max_lag %d", c.level, c.max_lag);
  else if (c.mode == RANKS && c.handover)
    snprintf(buf, cap, "ranks, handover, max_lag %d", c.max_lag);
  else
    snprintf(buf, cap, lagged(c.mode) ? "%s, max_lag %d" : "%s", names[c.mode], c.max_lag);
  return buf;
}

/* What one timed loop gives. */
typedef struct loop_figures {
  double loop_s;                /* the simulation loop, luisa's calls included */
  double sim_s;                 /* of which in sim_step */
  int64_t calls, waits;         /* timed luisa_step calls; of those, the ones that waited */
  double waited_s;
  int64_t lag_max, at_max;      /* after each call: the largest steps - analysed, the calls at max_lag */
  double sent_s;                /* BY_HAND: of the loop, in MPI_Send */
  double out[8];                /* the script's last results and, in ranks mode, its transit stats (bench_out) */
} loop_figures;

static void declare(luisa *lz, const sim *s)
{
  const int64_t shape[2] = { s->n, s->n }, off[2] = { 0, 0 };
  const luisa_layout lay = { .order = LUISA_ORDER_C, .alloc_shape = { s->n + 2, s->n + 2 }, .start = { 1, 1 } };
  if (luisa_array(lz, "U", LUISA_F64, 2, shape) != LUISA_OK || luisa_chunk(lz, "U", off, shape, &lay) != LUISA_OK ||
      luisa_array(lz, "V", LUISA_F64, 2, shape) != LUISA_OK || luisa_chunk(lz, "V", off, shape, &lay) != LUISA_OK) {
    fprintf(stdout, "\n!!!!! BENCHMARK BROKEN: declaring U and V: %s\n\n", luisa_error(lz));
    fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
}

static void publish_step(luisa *lz, sim *s, int handover, int64_t step)
{
  static const char *const names[2] = { "U", "V" };
  for (int k = 0; k < 2; k++) {
    field *f = &s->f[k];
    if (!handover)
      luisa_publish(lz, names[k], 0, f->cur);
    else if (luisa_publish_handover(lz, names[k], 0, f->cur, field_release, f) == LUISA_OK)
      f->lent = 1;
  }
  bench_step(lz, step);
}

/* A context for configuration c. In ranks mode world rank 1 serves the
 * analytics: its luisa_init returns LUISA_SERVED once rank 0 finalized. */
static luisa *open_context(const char *script, config c)
{
  luisa_options opts = luisa_options_default();
  opts.script = script;
  opts.mode = c.mode == INLINE ? LUISA_MODE_INLINE : c.mode == RANKS ? LUISA_MODE_RANKS : LUISA_MODE_THREAD;
  opts.max_lag = c.max_lag;
  if (c.mode != RANKS)
    return bench_open_with(opts);
  opts.analytics_ranks = 1;
  opts.compress_level = c.level;
  opts.trusted = 1;   /* the script hands its results back through ffi.C */
  luisa *lz = NULL;
  int st = luisa_init(MPI_COMM_WORLD, &opts, &lz);
  if (st != (bench_rank == 0 ? LUISA_OK : LUISA_SERVED)) {
    fprintf(stdout, "\n!!!!! BENCHMARK BROKEN: luisa_init(%s) in ranks mode returned %d on rank %d: %s\n\n",
            script, st, bench_rank, lz ? luisa_error(lz) : "");
    fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  return lz;
}

/* U and V's interiors to rank 1, the bytes ranks mode sends. */
static double send_fields(const sim *s, MPI_Datatype interior)
{
  double t0 = bench_now();
  for (int k = 0; k < 2; k++)
    MPI_Send(s->f[k].cur + s->stride + 1, 1, interior, 1, k, MPI_COMM_WORLD);
  return bench_now() - t0;
}

/* Runs the simulation from its start for `steps` steps in configuration c,
 * a context of its own opened and closed around it. Step 0 (the first
 * luisa_step checks the declarations and compiles the plan) is not timed;
 * in thread mode the loop starts once its analysis is done. Ranks mode
 * reports a call's analysis max_lag calls later: the initial state goes
 * out at steps -max_lag to 0, and the loop starts once the first of them
 * is reported, with max_lag calls in flight as ever after. */
static loop_figures run_loop(sim *s, const char *script, config c, int steps, int every, MPI_Datatype interior)
{
  loop_figures f = { 0 };
  luisa *lz = NULL;
  luisa_progress p0 = { 0 }, p;
  sim_start(s);
  if (analysed(c.mode)) {
    lz = open_context(script, c);
    declare(lz, s);
    const int behind = c.mode == RANKS ? c.max_lag : 0;
    for (int k = behind; k >= 0; k--) {
      publish_step(lz, s, c.mode == HANDOVER || c.handover, -k);
      for (int a = 0; k > 0 && a < 2; a++)
        field_detach(&s->f[a], (size_t)s->stride * (size_t)s->stride);
    }
    for (luisa_get_progress(lz, &p0); p0.analysed < p0.steps - behind; luisa_get_progress(lz, &p0))
      nanosleep(&(struct timespec){ 0, 100000 }, NULL);
  }
  memset(bench_out, 0, sizeof bench_out);
  double t0 = bench_now();
  for (int step = 1; step <= steps; step++) {
    double ts = bench_now();
    sim_step(s);
    f.sim_s += bench_now() - ts;
    if (c.mode == BY_HAND && step % every == 0) {
      f.sent_s += send_fields(s, interior);
      f.calls++;
    }
    if (lz && step % every == 0) {
      publish_step(lz, s, c.mode == HANDOVER || c.handover, step);
      luisa_get_progress(lz, &p);
      int64_t lag = p.steps - p.analysed;
      f.lag_max = lag > f.lag_max ? lag : f.lag_max;
      f.at_max += lagged(c.mode) && lag == c.max_lag;
      f.calls++;
    }
  }
  f.loop_s = bench_now() - t0;
  if (lz) {
    luisa_get_progress(lz, &p);
    f.waits = p.waits - p0.waits;
    f.waited_s = p.waited_s - p0.waited_s;
    luisa_finalize(lz);   /* thread and ranks mode: the last steps' analyses finish here */
    if (c.mode == RANKS)   /* the script ran on rank 1 */
      MPI_Recv(f.out, 8, MPI_DOUBLE, 1, TAG_OUT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    else
      memcpy(f.out, bench_out, sizeof f.out);
  }
  return f;
}

/* Rank 1's part of configuration c: it serves the analytics (ranks mode)
 * and sends rank 0 what the script left, or receives what BY_HAND sends. */
static void serve_loop(const char *script, config c, int calls, double *const into[2], int n)
{
  if (c.mode == RANKS) {
    memset(bench_out, 0, sizeof bench_out);   /* a callback that never ran must not pass the check */
    luisa_finalize(open_context(script, c));
    MPI_Send(bench_out, 8, MPI_DOUBLE, 0, TAG_OUT, MPI_COMM_WORLD);
  }
  for (int call = 0; c.mode == BY_HAND && call < calls; call++)
    for (int k = 0; k < 2; k++)
      MPI_Recv(into[k], n * n, MPI_DOUBLE, 0, k, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

static int sim_alloc(sim *s, int n, int max_lag)
{
  const size_t cells = (size_t)(n + 2) * (size_t)(n + 2);
  s->n = n;
  s->stride = (ptrdiff_t)n + 2;
  for (int k = 0; k < 2; k++) {
    field *f = &s->f[k];
    f->nbufs = max_lag + 3;   /* cur and next, max_lag + 1 handed over at most */
    f->bufs = calloc((size_t)f->nbufs, sizeof *f->bufs);
    f->spare = calloc((size_t)f->nbufs, sizeof *f->spare);
    if (!f->bufs || !f->spare)
      return 0;
    for (int b = 0; b < f->nbufs; b++)
      if (!(f->bufs[b] = calloc(cells, sizeof *f->bufs[b])))
        return 0;
    for (int b = 0; b < f->nbufs; b++)   /* every page touched before timing */
      memset(f->bufs[b], 0, cells * sizeof *f->bufs[b]);
  }
  return 1;
}

static void sim_free(sim *s)
{
  for (int k = 0; k < 2; k++) {
    for (int b = 0; s->f[k].bufs && b < s->f[k].nbufs; b++)
      free(s->f[k].bufs[b]);
    free(s->f[k].bufs);
    free(s->f[k].spare);
  }
}

/* The results of every repetition of every configuration with analytics
 * against C, from the fields the last loop left: every loop ends in the
 * same state, analysed at its last step. */
static void check(const sim *s, config *cfg, int ncfg, loop_figures f[][REPS], int steps)
{
  const double want[4] = { c_std(s, s->f[1].cur, 1), c_std(s, s->f[0].cur, 0), c_binsum(s), (double)steps };
  static const char *const what[4] = { "V:laplacian():std()", "U:std()", "V:histogram() bins", "last step" };
  for (int c = 0; c < ncfg; c++)
    for (int r = 0; analysed(cfg[c].mode) && r < REPS; r++)
      for (int k = 0; k < 4; k++) {
        char name[48], label[96];
        snprintf(label, sizeof label, "slowdown %s, %s", config_name(cfg[c], name, sizeof name), what[k]);
        bench_check(label, f[c][r].out[k], want[k]);
      }
}

/* One line on the lag of a thread configuration over all its repetitions. */
static void report_lag(config c, const loop_figures *f)
{
  int64_t lag_max = 0, at_max = 0, waits = 0, calls = 0;
  for (int r = 0; r < REPS; r++) {
    lag_max = f[r].lag_max > lag_max ? f[r].lag_max : lag_max;
    at_max += f[r].at_max, waits += f[r].waits, calls += f[r].calls;
  }
  char name[48];
  printf("   %s: after each luisa_step, steps - analysed <= %lld (%s), = %d after %lld of %lld calls; "
         "waited in %lld (%d runs)\n", config_name(c, name, sizeof name), (long long)lag_max,
         lag_max > c.max_lag ? "EXCEEDS max_lag" : lag_max == c.max_lag ? "held to exactly max_lag" : "below max_lag",
         c.max_lag, (long long)at_max, (long long)calls, (long long)waits, REPS);
  if (lag_max > c.max_lag) {
    printf("\n!!!!! WARNING: %s let the analytics fall %lld steps behind\n\n", name, (long long)lag_max);
    bench_wrong++;
  }
}

/* Ranks mode: what the analytics rank received over the context's calls
 * (the timed ones, and max_lag + 1 of the initial state), per call. */
static void report_transit(config c, const loop_figures *f)
{
  const double calls = (double)(f->calls + c.max_lag + 1), mib = 1024.0 * 1024.0 * calls;
  char name[48];
  printf("   %s: per call %.2f MiB of chunks sent as %.2f MiB on the wire (raw/wire %.1f); the analytics rank "
         "decompressed for %.2f ms a call\n", config_name(c, name, sizeof name), f->out[4] / mib, f->out[5] / mib,
         f->out[5] > 0 ? f->out[4] / f->out[5] : 0.0, 1e3 * f->out[6] / calls);
}

/* The physical floor: the same bytes by MPI_Send to rank 1, blocking. */
static void report_by_hand(const loop_figures *f, int n)
{
  const double bytes = 2.0 * n * n * sizeof(double), per_call = f->sent_s / (double)f->calls;
  printf("   MPI_Send by hand: U and V (2 x %.1f MiB) to rank 1 took %.2f ms a call (%.2f GB/s), %.1f ms of the "
         "loop's %.1f ms\n", bytes / 2 / (1024.0 * 1024.0), 1e3 * per_call, bytes / per_call * 1e-9, 1e3 * f->sent_s,
         1e3 * f->loop_s);
}

/* On 1 rank: none, inline, then thread mode copying and handing over per
 * max_lag; on 2: none, MPI_Send by hand, then ranks mode raw and zstd 1. */
static int configs(const int *lags, int nlags, config *cfg)
{
  int ncfg = 0;
  cfg[ncfg++] = (config){ NONE, 0, 0, 0 };
  cfg[ncfg++] = (config){ bench_size == 1 ? INLINE : BY_HAND, 0, 0, 0 };
  for (int l = 0; l < nlags; l++) {
    cfg[ncfg++] = (config){ bench_size == 1 ? THREAD : RANKS, lags[l], 0, 0 };
    cfg[ncfg++] = (config){ bench_size == 1 ? HANDOVER : RANKS, lags[l], bench_size == 1 ? 0 : 1, 0 };
    if (bench_size == 2)
      cfg[ncfg++] = (config){ RANKS, lags[l], 0, 1 };
  }
  return ncfg;
}

/* Rank 1 in the 2-rank run: its part of every loop, in rank 0's order. */
static void serve(const char *script, int n, int steps, int every, const int *lags, int nlags)
{
  config cfg[MAX_CONFIGS];
  const int ncfg = configs(lags, nlags, cfg);
  double *into[2] = { malloc((size_t)n * n * sizeof(double)), malloc((size_t)n * n * sizeof(double)) };
  if (!into[0] || !into[1])
    MPI_Abort(MPI_COMM_WORLD, 2);
  for (int r = 0; r < REPS; r++)
    for (int c = 0; c < ncfg; c++) {
      serve_loop(script, cfg[c], steps / every, into, n);
      MPI_Barrier(MPI_COMM_WORLD);
    }
  free(into[0]);
  free(into[1]);
}

static void run(const char *script, int n, int steps, int every, const int *lags, int nlags)
{
  config cfg[MAX_CONFIGS];
  const int ncfg = configs(lags, nlags, cfg);
  int max_lag = 0;
  for (int l = 0; l < nlags; l++)
    max_lag = lags[l] > max_lag ? lags[l] : max_lag;
  sim s = { 0 };
  if (!sim_alloc(&s, n, max_lag))
    MPI_Abort(MPI_COMM_WORLD, 2);
  MPI_Datatype interior;   /* a field's n x n cells inside its ghosts */
  MPI_Type_vector(n, n, n + 2, MPI_DOUBLE, &interior);
  MPI_Type_commit(&interior);
  loop_figures f[MAX_CONFIGS][REPS];
  for (int r = 0; r < REPS; r++)   /* interleaved: drift hits all alike */
    for (int c = 0; c < ncfg; c++) {
      f[c][r] = run_loop(&s, script, cfg[c], steps, every, interior);
      MPI_Barrier(MPI_COMM_WORLD);   /* rank 1 (2 ranks) has done its part */
    }
  MPI_Type_free(&interior);
  check(&s, cfg, ncfg, f, steps);

  /* Each configuration's fastest repetition. */
  const loop_figures *best[MAX_CONFIGS] = { 0 };
  for (int c = 0; c < ncfg; c++) {
    best[c] = &f[c][0];
    for (int r = 1; r < REPS; r++)
      best[c] = f[c][r].loop_s < best[c]->loop_s ? &f[c][r] : best[c];
  }
  const double none = best[0]->loop_s;
  char size[32], name[48];
  snprintf(size, sizeof size, "%dx%d", n, n);
  for (int c = 0; c < ncfg; c++) {
    const loop_figures *b = best[c];
    printf("%-9s  %5d  %5d  %-27s  %8.1f  %7.2f  %7.2f  %6.3f  %5lld  %5lld  %9.1f  %7lld  %6lld\n", size, steps,
           every, config_name(cfg[c], name, sizeof name), 1e3 * b->loop_s, 1e3 * b->loop_s / steps,
           1e3 * b->sim_s / steps, b->loop_s / none, (long long)b->calls, (long long)b->waits, 1e3 * b->waited_s,
           (long long)b->lag_max, (long long)b->at_max);
  }
  if (cfg[1].mode == INLINE) {
    const double calls = (double)best[1]->calls;
    const double analysis = (best[1]->loop_s - none) / calls, between = none / calls;
    printf("   every %d steps: the analysis takes %.1f ms a call (inline - none), the simulation %.1f ms between "
           "calls: %s\n", every, 1e3 * analysis, 1e3 * between,
           analysis < between ? "the analytics can keep up" : "the analytics are slower: thread mode is bound by them");
    if (analysis >= between)
      printf("   (bound by the analytics, a thread loop would take about calls x analysis = %.1f ms)\n",
             1e3 * calls * analysis);
  } else {
    report_by_hand(best[1], n);
  }
  for (int c = 0; c < ncfg; c++)
    if (cfg[c].mode == RANKS)
      report_transit(cfg[c], best[c]);
  for (int c = 0; c < ncfg; c++)
    if (lagged(cfg[c].mode))
      report_lag(cfg[c], f[c]);
  fflush(stdout);
  sim_free(&s);
}

int main(int argc, char **argv)
{
  bench_init(&argc, &argv);
  if (argc > 1 && !strcmp(argv[argc - 1], "--header")) {
    argc--;
    if (bench_rank == 0)
      printf("%-9s  %5s  %5s  %-27s  %8s  %7s  %7s  %6s  %5s  %5s  %9s  %7s  %6s\n", "size", "steps", "every",
             "configuration", "loop ms", "ms/step", "sim ms", "/ none", "calls", "waits", "waited ms", "lag max",
             "at max");
  }
  if (argc < 6 || argc > 5 + MAX_LAGS || bench_size > 2) {
    fprintf(stderr, "usage: slowdown SCRIPT N STEPS EVERY MAX_LAG... [--header]   (on 1 rank, or 2 for ranks mode; "
            "up to %d MAX_LAG)\n", MAX_LAGS);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int n = atoi(argv[2]), steps = atoi(argv[3]), every = atoi(argv[4]), lags[MAX_LAGS], nlags = argc - 5;
  for (int l = 0; l < nlags; l++)
    lags[l] = atoi(argv[5 + l]);
  int bad = n < 3 || steps < 1 || every < 1 || (int64_t)n * n > INT_MAX;   /* n * n: an MPI count */
  for (int l = 0; l < nlags; l++)
    bad |= lags[l] < 1 || lags[l] > 1000;
  if (bad) {
    fprintf(stderr, "slowdown: expected N from 3 to 46340, STEPS >= 1, EVERY >= 1, MAX_LAG from 1 to 1000\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  /* Each configuration sets its own mode, lag, analytics ranks and compression: the environment's would win. */
  static const char *const ours[] = { "LUISA_MODE", "LUISA_MAX_LAG", "LUISA_ANALYTICS_RANKS", "LUISA_COMPRESS" };
  for (int k = 0; k < 4; k++)
    if (getenv(ours[k])) {
      if (bench_rank == 0)
        printf("   (%s=%s ignored: each configuration sets its own)\n", ours[k], getenv(ours[k]));
      unsetenv(ours[k]);
    }
  steps = (steps + every - 1) / every * every;
  if (bench_rank == 0)
    run(argv[1], n, steps, every, lags, nlags);
  else
    serve(argv[1], n, steps, every, lags, nlags);
  return bench_finish();
}
