/* context.c: the life of a luisa context: init, the step boundary, finalize.
 * The other engine files do the work; this one orders it. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "array.h"
#include "deadline.h"
#include "decomp.h"
#include "error.h"
#include "exec.h"
#include "log.h"
#include "options.h"
#include "reload.h"
#include "serve.h"
#include "split.h"
#include "steer.h"
#include "store.h"
#include "transport.h"

/* Refusals before a context exists can only be told on stderr. The
 * sentence of a context made and dropped may begin "luisa_init: " already:
 * said once. */
static int refuse(int status, const char *what)
{
  static const char head[] = "luisa_init: ";
  if (!strncmp(what, head, sizeof head - 1))
    what += sizeof head - 1;
  fprintf(stderr, "luisa_init: %s\n", what);
  return status;
}

/* opts->script set on some ranks only: the ranks that have one would wait
 * in its broadcast for those that do not. Every rank refuses, saying which
 * ranks set it. Collective. */
static int refuse_script(MPI_Comm comm, int has)
{
  int size, rank;
  MPI_Comm_size(comm, &size);
  MPI_Comm_rank(comm, &rank);
  int *all = malloc((size_t)size * sizeof *all);
  char set[512] = "some ranks", unset[512] = "others", what[1280];
  if (all && MPI_Allgather(&has, 1, MPI_INT, all, 1, MPI_INT, comm) == MPI_SUCCESS) {
    error_ranks(set, sizeof set, all, size, 1);
    error_ranks(unset, sizeof unset, all, size, 0);
  }
  free(all);
  snprintf(what, sizeof what, "opts->script (or LUISA_SCRIPT) is set on %s but not on %s: set it on every rank "
           "or on none (rank 0 reads the script for all)", set, unset);
  return refuse(LUISA_ERR_ARG, what);
}

int luisa_init(MPI_Comm comm, const luisa_options *opts, luisa **out)
{
  if (!out)
    return refuse(LUISA_ERR_ARG, "out is NULL: expected the address of a luisa pointer");
  *out = NULL;
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized)
    return refuse(LUISA_ERR_ORDER, "MPI is not initialised: call MPI_Init first");
  if (comm == MPI_COMM_NULL)
    return refuse(LUISA_ERR_ARG, "comm is MPI_COMM_NULL: expected the simulation's communicator");
  luisa_options o;
  char why[256];
  int checked = options_resolve(opts, &o, why, sizeof why), ok = checked == LUISA_OK;
  /* What the context needs is allocated first, so that a rank out of
   * memory is told in the same agreement: no rank is ever left alone in the
   * collective calls below. */
  luisa *lz = ok ? calloc(1, sizeof *lz) : NULL;
  char *path = ok && o.script ? strdup(o.script) : NULL, *out_dir = ok ? strdup(o.output_dir) : NULL;
  char *cpuset = ok ? strdup(o.cpuset) : NULL, *spill = ok && o.spill_dir ? strdup(o.spill_dir) : NULL;
  int made = !ok || (lz && (!o.script || path) && out_dir && cpuset && (!o.spill_dir || spill)), rank, level = MPI_THREAD_SINGLE;
  MPI_Comm_rank(comm, &rank);
  MPI_Query_thread(&level);
  /* The environment may differ between ranks: all refuse or none. Agreed
   * by one minimum: the options' check, whether a script is set (min and
   * max), whether a timeout is (max), the lowest rank out of memory, the
   * mode and max_lag (min and max), whether MPI's thread level serves the
   * mode. */
  int threads_ok = !ok || o.mode != LUISA_MODE_THREAD || level >= MPI_THREAD_MULTIPLE;
  int lag = o.mode == LUISA_MODE_INLINE ? 0 : o.max_lag;   /* inline has none */
  int serve = ok && o.mode == LUISA_MODE_RANKS ? o.analytics_ranks : 0;
  int mine[12] = { ok, ok && o.script, -(ok && o.script), -(ok && o.timeout_s > 0), made ? INT_MAX : rank,
                   ok ? (int)o.mode : INT_MAX, ok ? -(int)o.mode : INT_MIN + 1, ok ? lag : INT_MAX,
                   ok ? -lag : INT_MIN + 1, threads_ok, ok ? serve : INT_MAX, ok ? -serve : INT_MIN + 1 }, all[12];
  int rc = MPI_Allreduce(mine, all, 12, MPI_INT, MPI_MIN, comm);
  int differ = all[5] != -all[6] || all[7] != -all[8] || all[10] != -all[11];
  if (rc != MPI_SUCCESS || !ok || !all[0] || all[1] != -all[2] || all[4] != INT_MAX || differ || !all[9]) {
    char what[512];
    free(lz);
    free(path);
    free(out_dir);
    free(cpuset);
    free(spill);
    if (rc != MPI_SUCCESS)
      return refuse(LUISA_ERR_MPI, "MPI_Allreduce of the options check failed");
    if (!ok)
      return refuse(checked, why);
    if (!all[0])
      return refuse(LUISA_ERR_ARG, "another rank refused its options (its stderr says which and why)");
    if (all[1] != -all[2])
      return refuse_script(comm, o.script != NULL);
    if (all[4] != INT_MAX) {
      snprintf(what, sizeof what, "out of memory on rank %d making the context", all[4]);
      return refuse(LUISA_ERR_NOMEM, what);
    }
    if (differ) {
      int k = all[5] != -all[6] ? 5 : all[7] != -all[8] ? 7 : 10;
      snprintf(what, sizeof what, "the ranks ask for different %s (%s, from %d to %d): set the same on every rank",
               k == 5 ? "modes" : k == 7 ? "lags" : "numbers of analytics ranks", k == 5 ? "opts->mode or LUISA_MODE" :
               k == 7 ? "opts->max_lag or LUISA_MAX_LAG" : "opts->analytics_ranks or LUISA_ANALYTICS_RANKS", all[k],
               -all[k + 1]);
      return refuse(LUISA_ERR_ARG, what);
    }
    static const char *const levels[] = { "MPI_THREAD_SINGLE", "MPI_THREAD_FUNNELED", "MPI_THREAD_SERIALIZED" };
    const char *got = level == MPI_THREAD_SINGLE ? levels[0] : level == MPI_THREAD_FUNNELED ? levels[1] : levels[2];
    if (threads_ok)
      snprintf(what, sizeof what, "the thread mode (opts->mode or LUISA_MODE) needs MPI_THREAD_MULTIPLE, and MPI "
               "was initialised with a lower thread level on another rank: start MPI with MPI_Init_thread(&argc, "
               "&argv, MPI_THREAD_MULTIPLE, &provided) and check provided, or run inline");
    else
      snprintf(what, sizeof what, "the thread mode (opts->mode or LUISA_MODE) needs MPI_THREAD_MULTIPLE, and MPI "
               "provides %s (MPI_Init, or MPI_Init_thread asking less): start MPI with MPI_Init_thread(&argc, "
               "&argv, MPI_THREAD_MULTIPLE, &provided) and check provided, or run inline", got);
    return refuse(LUISA_ERR_MODE, what);
  }
  /* Ranks mode: the context is made over this rank's kind of ranks. */
  lu_split *split = NULL;
  if (o.mode == LUISA_MODE_RANKS && path) {
    char what[512];
    int divided = split_open(comm, o.analytics_ranks, &split, what, sizeof what);
    if (divided != LUISA_OK) {
      free(lz);
      free(path);
      free(out_dir);
      free(cpuset);
      free(spill);
      return refuse(divided, what);
    }
  }
  lz->split = split;
  lz->user_comm = comm;
  lz->opts = o;
  pthread_mutex_init(&lz->changes_lock, NULL);
  lz->script_path = path;
  lz->opts.script = path;
  lz->opts.output_dir = out_dir;
  lz->opts.cpuset = cpuset;
  lz->opts.spill_dir = spill;
  memory_init(&lz->memory, o.store_bytes, spill != NULL);
  lz->exec = o.mode == LUISA_MODE_THREAD && path ? &exec_thread : split && !split->serving ? &exec_ranks :
             &exec_inline;   /* an analytics rank runs its analysis in place, serve.c feeding it */
  lz->reduce_op = MPI_OP_NULL;
  lz->halted = LU_RUNNING;
  atomic_init(&lz->reload_granted, lz->exec == &exec_inline && !split ? -1 : 0);
  if (MPI_Comm_dup(split ? split->own : comm, &lz->comm) != MPI_SUCCESS) {
    split_close(split);
    free(path);
    free(out_dir);
    free(cpuset);
    free(spill);
    pthread_mutex_destroy(&lz->changes_lock);
    free(lz);
    return refuse(LUISA_ERR_MPI, "MPI_Comm_dup failed");
  }
  MPI_Comm_set_errhandler(lz->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(lz->comm, &lz->rank);
  MPI_Comm_size(lz->comm, &lz->size);
  int status = transport_open(lz);
  if (status == LUISA_OK && path)   /* collective: every rank has a script here, or none */
    status = deadline_open(lz, all[3] < 0);
  if (status != LUISA_OK) {
    char text[LU_ERR_MAX];
    snprintf(text, sizeof text, "%s", error_buffer(lz));
    luisa_finalize(lz);
    return refuse(status, text);
  }
  status = lz->exec->open(lz);
  if (split && split->serving)   /* until the simulation finalizes */
    status = serve_run(lz, status);
  if (status >= LUISA_ERR_FIRST) {   /* every rank: a context without its executor is no use */
    char text[LU_ERR_MAX];
    snprintf(text, sizeof text, "%s", lz->err);
    luisa_finalize(lz);
    return refuse(status, text);
  }
  *out = lz;
  return status;
}

void luisa_finalize(luisa *lz)
{
  if (!lz)
    return;
  if (lz->exec)
    lz->exec->close(lz);   /* may time out: then lz->comm is left alone below */
  deadline_close(lz);
  steer_free(lz);
  if (lz->halted != LU_HALT_CUT) {   /* a request that cannot be cancelled may be pending on it */
    transport_close(lz);
    if (lz->comm != MPI_COMM_NULL)
      MPI_Comm_free(&lz->comm);
  }
  split_close(lz->split);
  array_free_all(lz);
  free(lz->written);
  pthread_mutex_destroy(&lz->changes_lock);
  free(lz->script_path);
  free((char *)lz->opts.output_dir);
  free((char *)lz->opts.cpuset);
  free((char *)lz->opts.spill_dir);
  free(lz);
}

MPI_Comm luisa_comm(const luisa *lz)
{
  if (!lz)
    return MPI_COMM_NULL;
  if (lz->split)
    return lz->split->serving ? MPI_COMM_NULL : lz->split->own;
  return lz->user_comm;
}

int luisa_step(luisa *lz, int64_t step)
{
  if (!lz)
    return LUISA_ERR_ARG;
  RETURN_IF(lz->stepped && step <= lz->last_step, lz, LUISA_ERR_STEP,
            "luisa_step: step %lld does not follow step %lld: step numbers must increase",
            (long long)step, (long long)lz->last_step);
  lz->stepped = 1;
  lz->last_step = step;
  lz->steps++;
  return lz->exec->step(lz, step);
}

static int publish(luisa *lz, const char *fn, const char *name, int chunk, const void *data,
                   luisa_release_fn *release, void *user)
{
  RETURN_IF(!name, lz, LUISA_ERR_ARG, "%s: name is NULL", fn);
  lu_array *a = array_find(lz, name);
  RETURN_IF(!a, lz, LUISA_ERR_NAME, "%s: no array \"%s\" is declared", fn, name);
  RETURN_IF(a->nchunks == 0, lz, LUISA_ERR_ARG, "%s(\"%s\"): rank %d declared no chunk of this array", fn, name,
            lz->rank);
  RETURN_IF(chunk < 0 || chunk >= a->nchunks, lz, LUISA_ERR_ARG,
            "%s(\"%s\"): chunk %d does not exist on rank %d: expected 0 to %d", fn, name, chunk, lz->rank,
            a->nchunks - 1);
  RETURN_IF(!data, lz, LUISA_ERR_ARG, "%s(\"%s\", chunk %d): data is NULL", fn, name, chunk);
  return lz->exec->publish(lz, (int)(a - lz->arrays), chunk, data, release, user);
}

int luisa_publish(luisa *lz, const char *name, int chunk, const void *data)
{
  return lz ? publish(lz, "luisa_publish", name, chunk, data, NULL, NULL) : LUISA_ERR_ARG;
}

int luisa_publish_handover(luisa *lz, const char *name, int chunk, void *data, luisa_release_fn *release,
                           void *user)
{
  if (!lz)
    return LUISA_ERR_ARG;
  RETURN_IF(!release, lz, LUISA_ERR_ARG, "luisa_publish_handover(\"%s\", chunk %d): release is NULL: expected "
            "the function that gives the buffer back", name ? name : "", chunk);
  return publish(lz, "luisa_publish_handover", name, chunk, data, release, user);
}

int luisa_get_progress(luisa *lz, luisa_progress *out)
{
  if (!lz)
    return LUISA_ERR_ARG;
  RETURN_IF(!out, lz, LUISA_ERR_ARG, "luisa_get_progress: out is NULL");
  lz->exec->progress(lz, out);
  return LUISA_OK;
}

int luisa_wants(luisa *lz, const char *name, int chunk, int64_t step, int *wanted)
{
  if (wanted)
    *wanted = 1;
  if (!lz)
    return LUISA_ERR_ARG;
  RETURN_IF(!wanted, lz, LUISA_ERR_ARG, "luisa_wants: wanted is NULL");
  *wanted = 1;
  RETURN_IF(!name, lz, LUISA_ERR_ARG, "luisa_wants: name is NULL");
  lu_array *a = array_find(lz, name);
  RETURN_IF(!a, lz, LUISA_ERR_NAME, "luisa_wants: no array \"%s\" is declared", name);
  RETURN_IF(chunk >= a->nchunks, lz, LUISA_ERR_ARG, "luisa_wants(\"%s\"): chunk %d does not exist on rank %d: "
            "expected -1 (any) or 0 to %d", name, chunk, lz->rank, a->nchunks - 1);
  *wanted = lz->exec->wants(lz, (int)(a - lz->arrays), chunk, step);
  return LUISA_OK;
}
