/* ranks.c: a small simulation for t/052-ranks.t, run in every mode. The
 * global arrays are S blocks of 4 x 6 cells; a simulation rank of n owns
 * the blocks s with s % n == rank, in increasing s: in ranks mode (n == S)
 * one block each, and inline or in thread mode on A ranks exactly the
 * blocks the route gives analytics rank `rank` (equal bytes: simulation
 * rank s goes to analytics rank s % A), so both modes analyse the same
 * chunks on the same analysis ranks and must write the same bytes.
 *   T  f64 with ghost cells, per step rising, falling, constant, or with NaN;
 *   I  i32, published only when luisa_wants says so;
 *   W  f64, writable: each step W = W * 0.5 + gain, then what scripts assign.
 * Steerable: gain (f64), period (i64), label (string), on (bool).
 * usage: ranks SCRIPT S STEPS [handover]
 * The environment adds mistakes and requests, for the cases that need them:
 *   LUISA_TEST_SKIP=k    block k's T is never published;
 *   LUISA_TEST_BADSTEP=k the last simulation rank adds 1000 to steps from k on;
 *   LUISA_TEST_RELOAD=k:PATH  before step k, rank 0 copies PATH over SCRIPT
 *                        and calls luisa_reload.
 * Rank 0 of the simulation prints one line per step: the step, the status
 * of luisa_step, the parameters as the simulation has them, a digest of
 * each block of W. With LUISA_TEST_PROGRESS=PATH it writes there the most
 * steps the analysis was behind after a luisa_step, and the waits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luisa.h"

enum { ROWS = 4, NX = 6, GHOST = 1 };

static int rank, size, nblocks, mine, *blocks;
static double *T, *W;     /* per owned block: T with ghosts, W plain */
static int32_t *I;

static double t_value(int64_t i, int64_t j, int step)
{
  int64_t k = i * NX + j;
  switch (step % 4) {
  case 0: return (double)k + 0.5 * step;                  /* rising */
  case 1: return -(double)k - step;                       /* falling */
  case 2: return 3.25;                                    /* constant */
  default: return (k + step) % 5 == 0 ? NAN : 1.5 * (double)k;
  }
}

static void fill(int step, double gain)
{
  const int64_t ax = NX + 2 * GHOST;
  for (int b = 0; b < mine; b++) {
    int64_t i0 = (int64_t)blocks[b] * ROWS;
    double *t = T + (size_t)b * (ROWS + 2 * GHOST) * ax;
    for (int64_t i = 0; i < ROWS; i++)
      for (int64_t j = 0; j < NX; j++) {
        int64_t k = (i0 + i) * NX + j;
        t[(i + GHOST) * ax + j + GHOST] = t_value(i0 + i, j, step);
        I[(size_t)b * ROWS * NX + (size_t)(i * NX + j)] = (int32_t)((k % 7) * ((step % 3) - 1) + step);
        double *w = &W[(size_t)b * ROWS * NX + (size_t)(i * NX + j)];
        *w = *w * 0.5 + gain;
      }
  }
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
  const unsigned char *c = p;
  for (size_t k = 0; k < n; k++)
    h = (h ^ c[k]) * 1099511628211ull;
  return h;
}

static void release(void *data, void *user)
{
  free(data);
  ++*(int *)user;
}

int main(int argc, char **argv)
{
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  if (argc < 4) {
    fprintf(stderr, "usage: ranks SCRIPT S STEPS [handover]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  nblocks = atoi(argv[2]);
  int steps = atoi(argv[3]), handover = argc > 4 && !strcmp(argv[4], "handover");
  luisa_options o = luisa_options_default();
  o.script = argv[1];
  luisa *lz;
  int status = luisa_init(MPI_COMM_WORLD, &o, &lz);
  if (status == LUISA_SERVED) {
    luisa_finalize(lz);
    MPI_Finalize();
    return 0;
  }
  if (status >= LUISA_ERR_FIRST) {
    fprintf(stderr, "ranks: luisa_init: %s\n", luisa_status_string(status));
    MPI_Finalize();
    return 1;
  }
  MPI_Comm comm = luisa_comm(lz);
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  blocks = malloc((size_t)nblocks * sizeof *blocks);
  for (int s = 0; s < nblocks; s++)
    if (s % size == rank)
      blocks[mine++] = s;
  const size_t tcells = (size_t)(ROWS + 2 * GHOST) * (NX + 2 * GHOST), cells = (size_t)ROWS * NX;
  T = calloc((size_t)mine * tcells + 1, sizeof *T);
  W = calloc((size_t)mine * cells + 1, sizeof *W);
  I = calloc((size_t)mine * cells + 1, sizeof *I);
  for (int b = 0; b < mine; b++)
    for (size_t k = 0; k < cells; k++)
      W[(size_t)b * cells + k] = blocks[b];
  double gain = 1.0;
  int64_t period = 1;
  char label[8] = "a";
  int on = 1, released = 0, handed = 0, again = 0;
  double *last_t = NULL;   /* T's chunk 0 as last handed over */
  const char *lag_env = getenv("LUISA_MAX_LAG");
  const int lagged = lag_env && atoi(lag_env) > 0;   /* else luisa_step gives it back at once */
  const char *labels[] = { "a", "b", NULL };
  int64_t shape[2] = { (int64_t)nblocks * ROWS, NX };
  luisa_param_f64(lz, "gain", &gain, 0, 100, "W's source");
  luisa_param_i64(lz, "period", &period, 1, 10, NULL);
  luisa_param_string(lz, "label", label, sizeof label, labels, NULL);
  luisa_param_bool(lz, "on", &on, NULL);
  const char *names[] = { "T", "I", "W" };
  const luisa_dtype types[] = { LUISA_F64, LUISA_I32, LUISA_F64 };
  for (int a = 0; a < 3; a++) {
    luisa_array(lz, names[a], types[a], 2, shape);
    for (int b = 0; b < mine; b++) {
      int64_t off[2] = { (int64_t)blocks[b] * ROWS, 0 }, len[2] = { ROWS, NX };
      luisa_layout ghosts = { LUISA_ORDER_C, { ROWS + 2 * GHOST, NX + 2 * GHOST }, { GHOST, GHOST } };
      luisa_chunk(lz, names[a], off, len, a == 0 ? &ghosts : NULL);
    }
  }
  luisa_field_writable(lz, "W");
  int64_t behind = 0;
  int skip = getenv("LUISA_TEST_SKIP") ? atoi(getenv("LUISA_TEST_SKIP")) : -1;
  int badstep = getenv("LUISA_TEST_BADSTEP") ? atoi(getenv("LUISA_TEST_BADSTEP")) : -1;
  const char *reload = getenv("LUISA_TEST_RELOAD");
  int reload_at = reload ? atoi(reload) : -1, wanted_count = 0;
  for (int step = 1; step <= steps; step++) {
    fill(step, gain);
    if (step == reload_at && rank == 0) {
      char cmd[4096];
      snprintf(cmd, sizeof cmd, "cp '%s' '%s'", strchr(reload, ':') + 1, argv[1]);
      if (system(cmd) != 0)
        fprintf(stderr, "ranks: %s failed\n", cmd);
      luisa_reload(lz);
    }
    for (int b = 0; b < mine; b++) {
      if (handover && b == 0 && last_t && lagged) {   /* step - 1's copy is still the engine's: refused */
        char want[64];
        snprintf(want, sizeof want, "still the engine's, handed over at step %d", step - 1);
        again += luisa_publish_handover(lz, "T", 0, last_t, release, &released) == LUISA_ERR_ARG &&
                 strstr(luisa_error(lz), want);
      }
      if (handover && b == 0) {   /* T's and I's first chunks handed over: copies the engine gives back */
        double *copy = last_t = malloc(tcells * sizeof *copy);
        memcpy(copy, T, tcells * sizeof *copy);
        luisa_publish_handover(lz, "T", 0, copy, release, &released);
        handed++;
      } else if (blocks[b] != skip) {
        luisa_publish(lz, "T", b, T + (size_t)b * tcells);
      }
      int wanted = 1;
      luisa_wants(lz, "I", b, step, &wanted);
      wanted_count += wanted && blocks[b] == 0;
      if (wanted && handover && b == 0) {   /* dense, no ghosts: ranks mode sends it from this very buffer */
        int32_t *copy = malloc(cells * sizeof *copy);
        memcpy(copy, I, cells * sizeof *copy);
        luisa_publish_handover(lz, "I", 0, copy, release, &released);
        handed++;
      } else if (wanted) {
        luisa_publish(lz, "I", b, I + (size_t)b * cells);
      }
      luisa_publish(lz, "W", b, W + (size_t)b * cells);
    }
    status = luisa_step(lz, badstep > 0 && step >= badstep && rank == size - 1 && size > 1 ? step + 1000 : step);
    int range[2] = { status, -status };   /* every simulation rank gets the same */
    MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_INT, MPI_MIN, comm);
    luisa_progress p;
    luisa_get_progress(lz, &p);
    if (p.steps - p.analysed > behind)
      behind = p.steps - p.analysed;
    uint64_t *d = calloc((size_t)nblocks, sizeof *d);
    for (int b = 0; b < mine; b++)
      d[blocks[b]] = fnv(W + (size_t)b * cells, cells * sizeof *W, 1469598103934665603ull);
    MPI_Allreduce(MPI_IN_PLACE, d, nblocks, MPI_UINT64_T, MPI_SUM, comm);
    if (rank == 0) {
      if (range[0] != -range[1])
        printf("%d status differs between ranks: %d to %d\n", step, range[0], -range[1]);
      printf("%d status %d gain %a period %lld label %s on %d W", step, status, gain, (long long)period, label, on);
      for (int s = 0; s < nblocks; s++)
        printf(" %016llx", (unsigned long long)d[s]);
      printf("%s%s\n", status != LUISA_OK ? " | " : "", status != LUISA_OK ? luisa_error(lz) : "");
      fflush(stdout);
    }
    free(d);
    if (status == LUISA_STOP)
      break;
  }
  luisa_progress p;
  luisa_get_progress(lz, &p);
  luisa_finalize(lz);
  const char *path = getenv("LUISA_TEST_PROGRESS");
  if (path && rank == 0) {
    FILE *f = fopen(path, "w");
    fprintf(f, "behind %lld waits %lld released %d handed %d wanted %d again %d\n", (long long)behind,
            (long long)p.waits, released, handed, wanted_count, again);
    fclose(f);
  }
  free(T);
  free(W);
  free(I);
  free(blocks);
  MPI_Finalize();
  return 0;
}

#ifdef RANKS_CORRUPT
/* build/t/ranks_corrupt: zstd's compress wrapped (-Wl,--wrap): on world
 * rank 0, the LUISA_TEST_CORRUPT-th frame made gets one byte flipped, as a
 * bad link or memory would, after its checksum was computed. */
size_t __real_ZSTD_compress2(void *cctx, void *dst, size_t cap, const void *src, size_t n);
size_t __wrap_ZSTD_compress2(void *cctx, void *dst, size_t cap, const void *src, size_t n)
{
  static int calls;
  size_t rc = __real_ZSTD_compress2(cctx, dst, cap, src, n);
  const char *at = getenv("LUISA_TEST_CORRUPT");
  int world;
  MPI_Comm_rank(MPI_COMM_WORLD, &world);
  if (at && world == 0 && ++calls == atoi(at) && rc > 16 && rc <= cap)
    ((unsigned char *)dst)[rc / 2] ^= 0x40;
  return rc;
}
#endif
