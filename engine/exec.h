/* exec.h: the executor seam. How analytics run beside the simulation is an
 * executor, chosen by opts.mode at luisa_init; the public calls (context.c)
 * reach the analysis only through it. Inline is one (exec_inline.c); the
 * asynchronous modes are others, running the same analysis (analysis.h)
 * elsewhere. Not installed. */
#ifndef LUISA_EXEC_H
#define LUISA_EXEC_H

#include "context.h"

struct lu_executor {
  const char *name;
  /* After the context exists: loads the script (opts.script). Collective. */
  int (*open)(luisa *lz);
  /* This step's data of one chunk, arguments checked; handed over when
   * release is given (luisa_publish_handover). */
  int (*publish)(luisa *lz, int a, int chunk, const void *data, luisa_release_fn *release, void *user);
  /* The step boundary: the step's analysis, or its hand-off. Collective. */
  int (*step)(luisa *lz, int64_t step);
  /* Whether the analysis at step reads the chunk (< 0: any) of array a. */
  int (*wants)(const luisa *lz, int a, int chunk, int64_t step);
  /* How far the analysis is (luisa_get_progress). */
  void (*progress)(luisa *lz, luisa_progress *out);
  /* Drains what is pending and frees the executor's part. Collective. */
  void (*close)(luisa *lz);
};

extern const lu_executor exec_inline;
extern const lu_executor exec_thread;
extern const lu_executor exec_ranks;

#endif
