/* log.c: messages to stderr, filtered by the context's log level.
 * Each line names the rank so interleaved output from mpirun stays readable. */
#include <stdio.h>
#include "context.h"
#include "log.h"
#include "split.h"

static const char *const level_names[] = { "error", "warning", "info", "debug" };

void log_write(const luisa *lz, luisa_log_level level, const char *fmt, ...)
{
  if (level > lz->opts.log_level)
    return;
  char line[LU_ERR_MAX + 128];
  int n = snprintf(line, sizeof line, "luisa[%s%d] %s: ", lz->split && lz->split->serving ? "analytics " : "",
                   lz->rank, level_names[level]);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s\n", line);   /* one call: lines from ranks do not mix */
}
