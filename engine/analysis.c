/* analysis.c: what the analysis does, whatever the mode: the first step's
 * checks and compile, each step's round and capture, the reload at a
 * step's end, halting for good. It runs where its executor puts it. */
#include <string.h>
#include "context.h"
#include "analysis.h"
#include "deadline.h"
#include "decomp.h"
#include "error.h"
#include "log.h"
#include "plan.h"
#include "reload.h"
#include "round.h"
#include "steer.h"
#include "store.h"
#include "version.h"

int analysis_open(luisa *lz)
{
  if (!lz->script_path)
    return LUISA_OK;
  char msg[LU_ERR_MAX];
  int status = version_open(lz, lz->script_path, msg, sizeof msg);
  if (status == LUISA_WARN_SCRIPT) {
    if (lz->rank == 0)
      log_write(lz, LUISA_LOG_ERROR, "script not loaded, analytics are off: %s", msg);
    return error_set(lz, status, "luisa_init: the script %s did not load, analytics are off: %s",
                     lz->script_path, msg);
  }
  return status;
}

/* The first step: check declarations everywhere, then compile the plan. */
static int first_step(luisa *lz, int64_t step)
{
  int status = decomp_check(lz);   /* logs what it finds */
  if (status == LUISA_OK)
    status = steer_check(lz);
  if (status != LUISA_OK) {
    version_close(lz);
    return status;
  }
  lz->declarations_ok = 1;
  if (!lz->script)
    return LUISA_OK;
  int unusable;
  status = plan_compile(lz, step, &unusable);
  if (unusable && status != LUISA_ERR_MPI)
    version_close(lz);
  return status;
}

/* Reload requests are gathered by a nonblocking all-reduce posted at the
 * end of one step and completed at the end of the next, so they never make
 * a rank wait; the reload is made at the end of the analysis `lag` calls
 * later and switches every rank to the new script from the next call, its
 * luisa_wants included. */
static int reload_at_step_end(luisa *lz, int64_t step, int64_t call, int lag)
{
  int due, status = LUISA_OK;
  FORWARD_IF_ERROR(reload_poll(lz, &due));
  if (due && !lz->reload_at)   /* like a steering change: after the (call + lag)-th step */
    lz->reload_at = call + lag;
  if (lz->reload_at && call >= lz->reload_at) {
    int raised = 0;   /* the word on this step's callbacks, about the old script */
    lz->reload_at = 0;
    FORWARD_IF_ERROR(round_settle(lz, call + lag, &raised));
    status = version_reload(lz, step);
    if (raised && status == LUISA_OK) {
      lz->script_failures++;
      status = LUISA_WARN_SCRIPT;
    }
  }
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
  if (how == LU_HALT_AGREED)
    round_settle(lz, INT64_MAX, NULL);   /* no step comes to apply its changes */
  if (how == LU_HALT_AGREED && lz->reload) {
    char why[LU_ERR_MAX];
    int due;
    memcpy(why, error_buffer(lz), sizeof why);
    if (reload_poll(lz, &due) == LUISA_OK)   /* else it timed out: cut, and says so */
      memcpy(error_buffer(lz), why, sizeof why);
  }
  if (lz->halted != LU_HALT_CUT)
    lz->halted = how;
  reload_close(lz);
  if (lz->halted == LU_HALT_CUT)
    version_abandon(lz);
  version_close(lz);
  store_free(lz);
}

int analysis_step(luisa *lz, int64_t step, int64_t call, int lag)
{
  deadline_poll(lz, step, plan_due(lz, step));   /* one MPI_Test, when some rank set a timeout */
  lz->err_told = 0;
  if (lz->halted)
    return LUISA_OK;
  int status = LUISA_OK;
  if (!lz->began) {
    lz->began = 1;
    status = first_step(lz, step);
    lz->err_told = status != LUISA_OK;   /* its warning is this step's first failure */
  }
  if (lz->script && status < LUISA_ERR_FIRST) {
    int step_status = round_step(lz, step, call, lag);
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
    int reloaded = reload_at_step_end(lz, step, call, lag);
    if (reloaded >= LUISA_ERR_FIRST || status == LUISA_OK)
      status = reloaded;
  }
  if (status == LUISA_ERR_STEP || lz->halted)
    halt(lz, lz->halted ? lz->halted : LU_HALT_AGREED);
  return status;
}

void analysis_close(luisa *lz)
{
  if (lz->halted != LU_HALT_CUT)
    round_settle(lz, INT64_MAX, NULL);
  version_summary(lz);
  memory_summary(lz);
  reload_close(lz);   /* may time out: then lz->comm is left alone */
  if (lz->halted == LU_HALT_CUT)
    version_abandon(lz);
  version_close(lz);
  store_free(lz);
}
