/* context.c: the life of a luisa context: init, the step boundary, finalize.
 * The other engine files do the work; this one orders it. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"

/* Refusals before a context exists can only be told on stderr. */
static int refuse(int status, const char *what)
{
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
    transport_ranks(set, sizeof set, all, size, 1);
    transport_ranks(unset, sizeof unset, all, size, 0);
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
  int made = !ok || (lz && (!o.script || path) && out_dir), rank;
  MPI_Comm_rank(comm, &rank);
  /* The environment may differ between ranks: all refuse or none. Agreed
   * by one minimum: the options' check, whether a script is set (min and
   * max), whether a timeout is (max), the lowest rank out of memory. */
  int mine[5] = { ok, ok && o.script, -(ok && o.script), -(ok && o.timeout_s > 0), made ? INT_MAX : rank }, all[5];
  int rc = MPI_Allreduce(mine, all, 5, MPI_INT, MPI_MIN, comm);
  if (rc != MPI_SUCCESS || !ok || !all[0] || all[1] != -all[2] || all[4] != INT_MAX) {
    char what[128];
    free(lz);
    free(path);
    free(out_dir);
    if (rc != MPI_SUCCESS)
      return refuse(LUISA_ERR_MPI, "MPI_Allreduce of the options check failed");
    if (!ok)
      return refuse(checked, why);
    if (!all[0])
      return refuse(LUISA_ERR_ARG, "another rank refused its options (its stderr says which and why)");
    if (all[1] != -all[2])
      return refuse_script(comm, o.script != NULL);
    snprintf(what, sizeof what, "out of memory on rank %d making the context", all[4]);
    return refuse(LUISA_ERR_NOMEM, what);
  }
  lz->opts = o;
  lz->script_path = path;
  lz->opts.script = path;
  lz->opts.output_dir = out_dir;
  lz->reduce_op = MPI_OP_NULL;
  lz->halted = LU_RUNNING;
  if (MPI_Comm_dup(comm, &lz->comm) != MPI_SUCCESS) {
    free(path);
    free(out_dir);
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
    snprintf(text, sizeof text, "%s", lz->err);
    luisa_finalize(lz);
    return refuse(status, text);
  }
  *out = lz;
  if (!path)
    return LUISA_OK;

  char msg[LU_ERR_MAX];
  status = script_open(lz, path, msg, sizeof msg);
  if (status == LUISA_WARN_SCRIPT) {
    if (lz->rank == 0)
      log_write(lz, LUISA_LOG_ERROR, "script not loaded, analytics are off: %s", msg);
    return error_set(lz, status, "luisa_init: the script %s did not load, analytics are off: %s", path, msg);
  }
  return status;
}

void luisa_finalize(luisa *lz)
{
  if (!lz)
    return;
  script_summary(lz);
  reload_close(lz);   /* may time out: then lz->comm is left alone below */
  if (lz->halted == LU_HALT_CUT)
    script_abandon(lz);
  script_close(lz);
  deadline_close(lz);
  store_free(lz);
  steer_free(lz);
  if (lz->halted != LU_HALT_CUT) {   /* a request that cannot be cancelled may be pending on it */
    transport_close(lz);
    if (lz->comm != MPI_COMM_NULL)
      MPI_Comm_free(&lz->comm);
  }
  array_free_all(lz);
  free(lz->script_path);
  free((char *)lz->opts.output_dir);
  free(lz);
}

/* The first step: check declarations everywhere, then compile the plan. */
static int first_step(luisa *lz, int64_t step)
{
  int status = decomp_check(lz);   /* logs what it finds */
  if (status == LUISA_OK)
    status = steer_check(lz);
  if (status != LUISA_OK) {
    script_close(lz);
    return status;
  }
  lz->declarations_ok = 1;
  return lz->script ? script_compile(lz, step) : LUISA_OK;
}

/* Reload requests are gathered by a nonblocking all-reduce posted at the
 * end of one step and completed at the end of the next, so they never make
 * a rank wait; a reload switches every rank to the new script for the step
 * after this one, its luisa_wants included. */
static int reload_at_step_end(luisa *lz, int64_t step)
{
  int due, status = LUISA_OK;
  FORWARD_IF_ERROR(reload_poll(lz, &due));
  if (due)
    status = script_reload(lz, step);
  FORWARD_IF_ERROR(status);
  FORWARD_IF_ERROR(reload_post(lz));
  return status;
}

/* Analytics off for the rest of the run (see lu_halt). Agreed: every rank
 * is at this same call, so each completes the reload requests all posted
 * at the previous step, then makes no collective again. Cut: this rank
 * timed out; what MPI may still write into is kept, lz->comm left alone. */
static void halt(luisa *lz, int how)
{
  if (how == LU_HALT_AGREED && lz->reload) {
    char why[LU_ERR_MAX];
    int due;
    memcpy(why, lz->err, sizeof why);
    if (reload_poll(lz, &due) == LUISA_OK)   /* else it timed out: cut, and says so */
      memcpy(lz->err, why, sizeof why);
  }
  if (lz->halted != LU_HALT_CUT)
    lz->halted = how;
  reload_close(lz);
  if (lz->halted == LU_HALT_CUT)
    script_abandon(lz);
  script_close(lz);
  store_free(lz);
}

int luisa_step(luisa *lz, int64_t step)
{
  if (!lz)
    return LUISA_ERR_ARG;
  RETURN_IF(lz->stepped && step <= lz->last_step, lz, LUISA_ERR_STEP,
            "luisa_step: step %lld does not follow step %lld: step numbers must increase",
            (long long)step, (long long)lz->last_step);
  deadline_poll(lz, step);   /* one MPI_Test, when some rank set a timeout */
  lz->err_told = 0;
  lz->last_step = step;
  lz->steps++;
  if (lz->halted) {
    array_forget_published(lz);
    return LUISA_OK;
  }
  int status = LUISA_OK;
  if (!lz->stepped) {
    lz->stepped = 1;
    status = first_step(lz, step);
    lz->err_told = status != LUISA_OK;   /* its warning is this step's first failure */
  }
  if (lz->script && status < LUISA_ERR_FIRST) {
    int step_status = script_step(lz, step);
    if (step_status != LUISA_OK)   /* else a first step's compile warning stands */
      status = step_status;
  }
  if (lz->store && status < LUISA_ERR_FIRST) {
    int kept = store_capture(lz, step);
    if (kept != LUISA_OK)
      status = kept;
  }
  /* Collective whatever this rank's status, unless the ranks are out of
   * step (every rank knows at this call) or this one timed out. */
  if (lz->reload && lz->declarations_ok && status != LUISA_ERR_STEP && !lz->halted) {
    int reloaded = reload_at_step_end(lz, step);
    if (reloaded >= LUISA_ERR_FIRST || status == LUISA_OK)
      status = reloaded;
  }
  if (status == LUISA_ERR_STEP || lz->halted)
    halt(lz, lz->halted ? lz->halted : LU_HALT_AGREED);
  array_forget_published(lz);
  return status;
}
