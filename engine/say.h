/* say.h: the sentence of a refusal, for modules that report into a
 * caller's buffer (why, cap) rather than a context's error. Not installed. */
#ifndef LUISA_SAY_H
#define LUISA_SAY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Writes the sentence into buf (if any room) and returns status. */
static inline int lu_say(char *buf, size_t cap, int status, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
static inline int lu_say(char *buf, size_t cap, int status, const char *fmt, ...)
{
  if (buf && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
  }
  return status;
}

#endif
