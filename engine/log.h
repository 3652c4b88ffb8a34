/* log.h: log lines, by level and rank. Not installed. */
#ifndef LUISA_LOG_H
#define LUISA_LOG_H

#include "context.h"

void log_write(const luisa *lz, luisa_log_level level, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

#endif
