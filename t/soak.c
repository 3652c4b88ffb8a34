/* soak.c: make soak (t/soak.mk), not part of make test: 10,000 steps of a small Gray-Scott run
 * on 2 ranks whose script uses windows, steering and region moves, reloaded every 500 steps
 * (two versions in turn), while memory must stay flat. Rank 0 prints a series line every 500
 * steps and PASS or FAIL with the figures.
 * usage: soak [STEPS [N]]   (default 10000 steps of an N x N grid, N = 64) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "luisa.h"

enum { EVERY = 500, MAXPOINTS = 1024 };
#define DU 0.2097   /* Pearson's "spots", as examples/gray-scott/gray_scott.c */
#define DV 0.105
#define KILL 0.062

/* The script, in two versions (%d: the version, twice). It reports through steerable parameters
 * what the driver checks: rank 0's Lua heap (after a full collection at the series steps, so
 * the figure is live data, not garbage waiting), its store's bytes, the version, a count of
 * callbacks kept in luisa.state across reloads, the plans compiled by this version. */
static const char script_text[] =
  "-- soak.lua, version %d, written by t/soak.c: windows, steering, region moves, luisa.state.\n"
  "local luisa = require \"luisa\"\n"
  "local U, V = luisa.array \"U\", luisa.array \"V\"\n"
  "local VERSION = %d\n"
  "local W = luisa.window(V, 3)\n"
  "local zoom = luisa.region(V, { 0, 16 }, { 0, 16 })\n"
  "local stats = { vmean = V:mean(), dv = (V - V:prev(1)):abs():max(),\n"
  "                d2 = (W[0] - 2 * W[1] + W[2]):abs():max(), z = zoom:mean(), umin = U:min() }\n"
  "if VERSION == 2 then stats.ustd, stats.vrow = U:std(), V:max(1) end\n"
  "luisa.every(10, stats, function(step, r)\n"
  "  luisa.state.calls = (luisa.state.calls or 0) + 1\n"
  "  if r.dv ~= nil and not (r.dv >= 0) then error(\"V - V:prev(1) is \" .. tostring(r.dv)) end\n"
  "  luisa.set(\"feed\", 0.0535 + 0.0005 * (math.floor(step / 10) %% 4))\n"
  "  if step %% 100 == 0 then\n"
  "    local o = math.floor(step / 100) %% 4 * 8\n"
  "    luisa.move(zoom, { o, o + 16 }, { o, o + 16 })\n"
  "  end\n"
  "  if step %% 500 == 0 then collectgarbage(\"collect\") end\n"
  "  luisa.set(\"lua_heap_kib\", collectgarbage(\"count\"))\n"
  "  luisa.set(\"store_bytes\", luisa.stats().bytes_held)\n"
  "  luisa.set(\"version\", VERSION)\n"
  "  luisa.set(\"calls\", luisa.state.calls)\n"
  "  luisa.set(\"plans\", luisa.stats().plans)\n"
  "end)\n";

static int rank, size, n, rows, row0;   /* grid n x n; this rank's rows [row0, row0 + rows) */
static double feed = 0.0545, heap_kib, store_bytes, version, calls, plans;

static int write_script(const char *path, int v)
{
  FILE *f = fopen(path, "w");
  if (!f)
    return 0;
  int ok = fprintf(f, script_text, v, v) > 0;
  return fclose(f) == 0 && ok;
}

static double rss_mib(void)
{
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f && fscanf(f, "%ld %ld", &pages, &resident) != 2)
    resident = 0;
  if (f)
    fclose(f);
  return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1 << 20);
}

/* Ghost rows from the neighbours (periodic), ghost columns from this rank's own edges. */
static void halo(double *a)
{
  int s = n + 2, up = (rank + size - 1) % size, down = (rank + 1) % size;
  MPI_Sendrecv(a + s, s, MPI_DOUBLE, up, 0, a + (rows + 1) * s, s, MPI_DOUBLE, down, 0, MPI_COMM_WORLD,
               MPI_STATUS_IGNORE);
  MPI_Sendrecv(a + rows * s, s, MPI_DOUBLE, down, 1, a, s, MPI_DOUBLE, up, 1, MPI_COMM_WORLD,
               MPI_STATUS_IGNORE);
  for (int i = 0; i < rows + 2; i++) {
    a[i * s] = a[i * s + n];
    a[i * s + n + 1] = a[i * s + 1];
  }
}

static void update(const double *u, const double *v, double *un, double *vn)
{
  int s = n + 2;
  for (int i = 1; i <= rows; i++)
    for (int j = 1; j <= n; j++) {
      int c = i * s + j;
      double lu = u[c - s] + u[c + s] + u[c - 1] + u[c + 1] - 4.0 * u[c];
      double lv = v[c - s] + v[c + s] + v[c - 1] + v[c + 1] - 4.0 * v[c];
      double uvv = u[c] * v[c] * v[c];
      un[c] = u[c] + DU * lu - uvv + feed * (1.0 - u[c]);
      vn[c] = v[c] + DV * lv + uvv - (feed + KILL) * v[c];
    }
}

typedef struct point {
  int step;
  double rss[2], heap, store, version, calls, plans, feed;
} point;

int main(int argc, char **argv)
{
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int steps = argc > 1 ? atoi(argv[1]) : 10000;
  n = argc > 2 ? atoi(argv[2]) : 64;
  if (size != 2 || steps < 2 * EVERY || n < 16 || n % size) {
    if (rank == 0)
      fprintf(stderr, "soak: run on 2 ranks; STEPS >= %d, N >= 16 and even\n", 2 * EVERY);
    MPI_Finalize();
    return 2;
  }
  rows = n / size;
  row0 = rank * rows;

  /* The script lives in a directory of its own on rank 0; the others only need its path. */
  char dir[64] = "/tmp/luisa-soak-XXXXXX", path[128];
  int made = rank != 0 || mkdtemp(dir) != NULL;
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  snprintf(path, sizeof path, "%s/soak.lua", dir);
  if (rank == 0)
    made = made && write_script(path, 1);
  MPI_Bcast(&made, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (!made) {
    if (rank == 0)
      fprintf(stderr, "soak: cannot write the script in %s\n", dir);
    MPI_Finalize();
    return 2;
  }

  luisa_options o = luisa_options_default();
  o.script = path;
  luisa *lz;
  int st = luisa_init(MPI_COMM_WORLD, &o, &lz), bad_status = 0;
  if (st != LUISA_OK) {
    if (rank == 0)
      fprintf(stderr, "soak: luisa_init returned %d: %s\n", st, lz ? luisa_error(lz) : "");
    MPI_Finalize();
    return 1;
  }
  int64_t shape[2] = { n, n }, off[2] = { row0, 0 }, shp[2] = { rows, n };
  luisa_layout layout = { .order = LUISA_ORDER_C, .alloc_shape = { rows + 2, n + 2 }, .start = { 1, 1 } };
  size_t cells = (size_t)(rows + 2) * (size_t)(n + 2);
  double *u = malloc(cells * sizeof *u), *v = malloc(cells * sizeof *v);
  double *un = malloc(cells * sizeof *un), *vn = malloc(cells * sizeof *vn);
  if (!u || !v || !un || !vn) {
    fprintf(stderr, "soak: out of memory\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int declared = luisa_array(lz, "U", LUISA_F64, 2, shape) == LUISA_OK
              && luisa_array(lz, "V", LUISA_F64, 2, shape) == LUISA_OK
              && luisa_chunk(lz, "U", off, shp, &layout) == LUISA_OK
              && luisa_chunk(lz, "V", off, shp, &layout) == LUISA_OK
              && luisa_param_f64(lz, "feed", &feed, 0.05, 0.06, "feed rate") == LUISA_OK
              && luisa_param_f64(lz, "lua_heap_kib", &heap_kib, 0, 1e12, "rank 0's Lua heap") == LUISA_OK
              && luisa_param_f64(lz, "store_bytes", &store_bytes, 0, 1e15, "rank 0's store") == LUISA_OK
              && luisa_param_f64(lz, "version", &version, 0, 10, "the script's version") == LUISA_OK
              && luisa_param_f64(lz, "calls", &calls, 0, 1e12, "callbacks, kept in luisa.state") == LUISA_OK
              && luisa_param_f64(lz, "plans", &plans, 0, 1e12, "plans this version compiled") == LUISA_OK;
  if (!declared) {
    fprintf(stderr, "soak[%d]: a declaration was refused: %s\n", rank, luisa_error(lz));
    MPI_Abort(MPI_COMM_WORLD, 2);
  }

  /* U = 1, V = 0 but for a square of side n/8 in the middle: U = 0.5, V = 0.25 (+ a ripple). */
  int s = n + 2, h = n / 16;
  for (int i = 1; i <= rows; i++)
    for (int j = 1; j <= n; j++) {
      int gy = row0 + i - 1, gx = j - 1, inside = abs(2 * gy + 1 - n) < 2 * h && abs(2 * gx + 1 - n) < 2 * h;
      u[i * s + j] = inside ? 0.5 + 0.01 * sin(gx + 3.0 * gy) : 1.0;
      v[i * s + j] = inside ? 0.25 + 0.01 * cos(2.0 * gx + gy) : 0.0;
    }

  static point series[MAXPOINTS];
  int npoints = 0;
  double t0 = MPI_Wtime();
  if (rank == 0)
    printf("soak: %d steps, %dx%d on %d ranks, script %s, a reload every %d steps\n", steps, n, n, size, path,
           EVERY);
  for (int step = 1; step <= steps; step++) {
    halo(u);
    halo(v);
    if (luisa_publish(lz, "U", 0, u) != LUISA_OK || luisa_publish(lz, "V", 0, v) != LUISA_OK)
      bad_status++;
    st = luisa_step(lz, step);
    if (st != LUISA_OK) {
      if (bad_status++ < 5 && rank == 0)
        fprintf(stderr, "soak: step %d: status %d: %s\n", step, st, luisa_error(lz));
    }
    update(u, v, un, vn);
    double *t = u;
    u = un, un = t;
    t = v, v = vn, vn = t;
    if (step % EVERY == 0) {
      double rss = rss_mib(), both[2];
      MPI_Gather(&rss, 1, MPI_DOUBLE, both, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
      if (rank == 0 && npoints < MAXPOINTS) {
        point *p = &series[npoints++];
        *p = (point){ step, { both[0], both[1] }, heap_kib, store_bytes, version, calls, plans, feed };
        printf("step %6d  rss %6.1f %6.1f MiB  lua heap %7.1f KiB  store %7.0f B  version %.0f  calls %5.0f"
               "  plans %2.0f  feed %.4f  %5.1f s\n", step, both[0], both[1], heap_kib, store_bytes, version,
               calls, plans, feed, MPI_Wtime() - t0);
        fflush(stdout);
        /* The other version, and a reload request: carried out at the end of the next step. */
        if (step < steps && (!write_script(path, (step / EVERY) % 2 ? 2 : 1) || luisa_reload(lz) != LUISA_OK)) {
          fprintf(stderr, "soak: cannot rewrite %s or request a reload: %s\n", path, luisa_error(lz));
          bad_status++;
        }
      }
    }
  }
  double seconds = MPI_Wtime() - t0;
  MPI_Allreduce(MPI_IN_PLACE, &bad_status, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);

  /* The verdict, from step 2 * EVERY on (the first version has warmed up by then): RSS within
   * 10% + 2 MiB of its figure at that step on each rank, the live Lua heap within 10% + 64 KiB,
   * the store's bytes equal and nonzero; the versions alternating, the callbacks counted across
   * every reload, the steered feed what the script set at the last callback, the region moves
 * compiling the plan again. */
  int failed = bad_status != 0;
  if (rank == 0) {
    const point *ref = &series[1], *last = &series[npoints - 1];
    double rss_bound[2], heap_max = 0, rss_max[2] = { 0, 0 };
    for (int r = 0; r < 2; r++)
      rss_bound[r] = ref->rss[r] * 1.1 + 2.0;
    double heap_bound = ref->heap * 1.1 + 64;
    for (int k = 1; k < npoints; k++) {
      const point *p = &series[k];
      int want_version = (p->step / EVERY) % 2 ? 1 : 2;
      double want_feed = 0.0535 + 0.0005 * (double)((p->step / 10) % 4);
      const char *why = NULL;
      if (p->rss[0] > rss_bound[0] || p->rss[1] > rss_bound[1])
        why = "RSS grew";
      else if (p->heap > heap_bound)
        why = "the Lua heap grew";
      else if (p->store != ref->store || p->store <= 0)
        why = "the store's bytes changed";
      else if (p->version != want_version)
        why = "the version did not alternate";
      else if (p->calls != p->step / 10)
        why = "luisa.state lost callbacks";
      else if (p->feed != want_feed)
        why = "feed is not what the script set";
      else if (p->plans < 4)   /* the first compile, and 3 or 4 of the moves at 100, 200, 300, 400 */
        why = "the region moves did not compile the plan again";
      if (why) {
        printf("soak: step %d: %s\n", p->step, why);
        failed = 1;
      }
      for (int r = 0; r < 2; r++)
        rss_max[r] = fmax(rss_max[r], p->rss[r]);
      heap_max = fmax(heap_max, p->heap);
    }
    printf("soak: %s: %d steps in %.1f s (%.0f us per step), %d reloads; from step %d to %d: RSS %.1f -> %.1f"
           " MiB (max %.1f) on rank 0, %.1f -> %.1f MiB (max %.1f) on rank 1; live Lua heap %.1f -> %.1f KiB"
           " (max %.1f); store %.0f -> %.0f bytes; %d bad statuses\n",
           failed ? "FAIL" : "PASS", steps, seconds, seconds * 1e6 / steps, steps / EVERY - 1, ref->step,
           last->step, ref->rss[0], last->rss[0], rss_max[0], ref->rss[1], last->rss[1], rss_max[1], ref->heap,
           last->heap, heap_max, ref->store, last->store, bad_status);
    unlink(path);
    rmdir(dir);
  }
  MPI_Bcast(&failed, 1, MPI_INT, 0, MPI_COMM_WORLD);
  luisa_finalize(lz);
  free(u);
  free(v);
  free(un);
  free(vn);
  MPI_Finalize();
  return failed;
}
