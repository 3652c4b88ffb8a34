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
#include "steer.h"
#include "store.h"
#include "transport.h"

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
  lz->exec = &exec_inline;
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
  return lz->exec->open(lz);
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
  array_free_all(lz);
  free(lz->script_path);
  free((char *)lz->opts.output_dir);
  free(lz);
}

int luisa_step(luisa *lz, int64_t step)
{
  if (!lz)
    return LUISA_ERR_ARG;
  RETURN_IF(lz->stepped && step <= lz->last_step, lz, LUISA_ERR_STEP,
            "luisa_step: step %lld does not follow step %lld: step numbers must increase",
            (long long)step, (long long)lz->last_step);
  lz->err_told = 0;
  lz->last_step = step;
  lz->steps++;
  return lz->exec->step(lz, step);
}

int luisa_publish(luisa *lz, const char *name, int chunk, const void *data)
{
  if (!lz)
    return LUISA_ERR_ARG;
  RETURN_IF(!name, lz, LUISA_ERR_ARG, "luisa_publish: name is NULL");
  lu_array *a = array_find(lz, name);
  RETURN_IF(!a, lz, LUISA_ERR_NAME, "luisa_publish: no array \"%s\" is declared", name);
  RETURN_IF(a->nchunks == 0, lz, LUISA_ERR_ARG,
            "luisa_publish(\"%s\"): rank %d declared no chunk of this array", name, lz->rank);
  RETURN_IF(chunk < 0 || chunk >= a->nchunks, lz, LUISA_ERR_ARG,
            "luisa_publish(\"%s\"): chunk %d does not exist on rank %d: expected 0 to %d",
            name, chunk, lz->rank, a->nchunks - 1);
  RETURN_IF(!data, lz, LUISA_ERR_ARG, "luisa_publish(\"%s\", chunk %d): data is NULL", name, chunk);
  return lz->exec->publish(lz, a, chunk, data);
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
