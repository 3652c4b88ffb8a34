/* exec_inline.c: the inline executor. The analysis runs inside luisa_step
 * on the simulation's thread, reading the published memory in place (zero
 * copy); its steering changes apply when luisa_step returns. */
#include <stdlib.h>
#include "context.h"
#include "analysis.h"
#include "array.h"
#include "error.h"
#include "exec.h"
#include "plan.h"
#include "slot.h"
#include "steer.h"

/* In place; a handed-over buffer is kept in a slot, made at the first
 * one, until the step ends. */
static int inline_publish(luisa *lz, int a, int chunk, const void *data, luisa_release_fn *release, void *user)
{
  lu_slot *slot = lz->exec_state;
  if (release && !slot) {
    RETURN_IF(!(slot = calloc(1, sizeof *slot)), lz, LUISA_ERR_NOMEM, "luisa_publish_handover(\"%s\", chunk %d): "
              "out of memory", lz->arrays[a].name, chunk);
    lz->exec_state = slot;
  }
  if (release)
    FORWARD_IF_ERROR(slot_put(lz, slot, 1, slot, a, chunk, data, release, user));
  else if (slot)
    slot_drop(slot, a, chunk);
  lz->arrays[a].published[chunk] = data;
  return LUISA_OK;
}

static int inline_step(luisa *lz, int64_t step)
{
  steer_observe(lz, NULL);
  int status = analysis_step(lz, step, lz->steps, 0);
  array_forget_published(lz);
  if (lz->exec_state)
    slot_release(lz->exec_state);
  if (steer_apply_due(lz, lz->steps) == LUISA_STOP && status < LUISA_ERR_FIRST)
    status = LUISA_STOP;
  return status;
}

static int inline_wants(const luisa *lz, int a, int chunk, int64_t step)
{
  return plan_wants(lz, a, chunk, step);
}

static void inline_progress(luisa *lz, luisa_progress *out)
{
  out->steps = out->analysed = lz->steps;
  out->waits = 0;
  out->waited_s = 0;
}

static void inline_close(luisa *lz)
{
  analysis_close(lz);
  if (lz->exec_state)
    slot_free(lz, lz->exec_state);
  free(lz->exec_state);
  lz->exec_state = NULL;
}

const lu_executor exec_inline = {
  "inline", analysis_open, inline_publish, inline_step, inline_wants, inline_progress, inline_close,
};
