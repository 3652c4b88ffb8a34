/* exec_inline.c: the inline executor. The analysis runs inside luisa_step
 * on the simulation's thread, reading the published memory in place (zero
 * copy); its steering changes apply when luisa_step returns. */
#include "context.h"
#include "analysis.h"
#include "array.h"
#include "exec.h"
#include "plan.h"
#include "steer.h"

static int inline_publish(luisa *lz, lu_array *a, int chunk, const void *data)
{
  (void)lz;
  a->published[chunk] = data;
  return LUISA_OK;
}

static int inline_step(luisa *lz, int64_t step)
{
  int status = analysis_step(lz, step, lz->steps, 0);
  array_forget_published(lz);
  if (steer_apply_due(lz, lz->steps) == LUISA_STOP && status < LUISA_ERR_FIRST)
    status = LUISA_STOP;
  return status;
}

static int inline_wants(const luisa *lz, int a, int chunk, int64_t step)
{
  return plan_wants(lz, a, chunk, step);
}

const lu_executor exec_inline = {
  "inline", analysis_open, inline_publish, inline_step, inline_wants, analysis_close,
};
