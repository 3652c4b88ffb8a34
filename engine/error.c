/* error.c: status texts and the per-context last-error sentence.
 * Every refused call goes through error_set so luisa_error() explains it. */
#include <stdio.h>
#include "context.h"
#include "error.h"

/* Set by an analytics thread for itself: what it says goes to the
 * context's analysis buffer, never into the simulation thread's. */
static _Thread_local int on_analysis_thread;

void error_analysis_thread(void)
{
  on_analysis_thread = 1;
}

char *error_buffer(luisa *lz)
{
  return on_analysis_thread ? lz->analysis_err : lz->err;
}

int error_set(luisa *lz, int status, const char *fmt, ...)
{
  if (lz) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_buffer(lz), LU_ERR_MAX, fmt, ap);
    va_end(ap);
  }
  return status;
}

const char *luisa_error(const luisa *lz)
{
  return lz ? lz->err : "no luisa context (NULL handle)";
}

const char *luisa_status_string(int status)
{
  switch (status) {
#define STATUS_CASE(name, num, text) case num: return text;
    LUISA_STATUS_LIST(STATUS_CASE)
#undef STATUS_CASE
  }
  return "unknown status code";
}

/* " on rank N" when there is more than one rank to tell apart. */
const char *error_on_rank(char *buf, size_t cap, const luisa *lz, int rank)
{
  if (lz->size == 1)
    buf[0] = '\0';
  else
    snprintf(buf, cap, " on rank %d", rank);
  return buf;
}

/* "rank 3" or "ranks 0-2, 5": the ranks r with of[r] == value (runs of
 * three or more as ranges). Returns how many. */
int error_ranks(char *text, size_t cap, const int *of, int size, int value)
{
  int n = 0;
  for (int r = 0; r < size; r++)
    n += of[r] == value;
  size_t len = (size_t)snprintf(text, cap, "%s", n == 1 ? "rank " : "ranks ");
  for (int r = 0, listed = 0; r < size && len < cap; r++) {
    if (of[r] != value)
      continue;
    int last = r;
    while (last + 1 < size && of[last + 1] == value)
      last++;
    if (last - r >= 2)
      len += (size_t)snprintf(text + len, cap - len, "%s%d-%d", listed ? ", " : "", r, last);
    else
      for (int k = r; k <= last && len < cap; k++)
        len += (size_t)snprintf(text + len, cap - len, "%s%d", listed || k > r ? ", " : "", k);
    listed = 1;
    r = last;
  }
  return n;
}
