/* analysis.h: what the analysis does, whatever the mode: loading the
 * script, one step's work, the end. Executors decide where and when it
 * runs. Not installed. */
#ifndef LUISA_ANALYSIS_H
#define LUISA_ANALYSIS_H

#include "context.h"

/* Loads opts.script on every rank (none: analytics off). Collective. */
int analysis_open(luisa *lz);
/* The analysis of the call-th luisa_step (numbered step): at the first,
 * the collective check of declarations and the plan's compile; then the
 * round, the store's capture, a reload at the step's end. Steering changes
 * it decides apply after step call + lag. Collective. */
int analysis_step(luisa *lz, int64_t step, int64_t call, int lag);
/* The summary, then everything the analysis holds. Collective. */
void analysis_close(luisa *lz);

#endif
