/* tap.h: the Test Anything Protocol for the C tests, in a few macros.
 * In MPI tests only rank 0 prints; tap_rank says which rank this is. */
#ifndef LUISA_TAP_H
#define LUISA_TAP_H
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count, tap_failed, tap_rank;

/* An expression, so it can stand inside conditions. */
#define tap_print(...) ((void)(tap_rank == 0 ? (printf(__VA_ARGS__), fflush(stdout)) : 0))

/* ok(cond, "what", ...) */
#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
static inline int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
static inline int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
  char what[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  tap_count++;
  if (!pass)
    tap_failed++;
  tap_print("%sok %d - %s\n", pass ? "" : "not ", tap_count, what);
  if (!pass)
    tap_print("#   failed at %s:%d\n", file, line);
  return pass;
}

/* Status check that shows both codes and the engine's sentence. */
#define is_status(got, want, lz, ...) \
  (ok((got) == (want), __VA_ARGS__) || (tap_print("#   got status %d, expected %d: %s\n", \
                                                  (int)(got), (int)(want), luisa_error(lz)), 0))

/* The sentence contains every given fragment. */
#define error_mentions(lz, ...) tap_mentions(luisa_error(lz), (const char *[]){ __VA_ARGS__, NULL })
static inline int tap_mentions(const char *text, const char **frags)
{
  for (; *frags; frags++)
    if (!strstr(text, *frags)) {
      tap_print("#   \"%s\" missing from: %s\n", *frags, text);
      return 0;
    }
  return 1;
}

/* MPI for a test: with the thread level thread mode needs, so that every
 * test can run in any mode (LUISA_MODE). */
static inline void tap_mpi_init(int *argc, char ***argv)
{
  int provided;
  MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
}

/* Prints text (lines of a log, say) as TAP comment lines after head. */
static inline void tap_note(const char *head, const char *text)
{
  tap_print("#   %s%s", head, *text ? "" : "(empty)");
  for (const char *p = text; *p; p++)
    if (*p == '\n' && p[1])
      tap_print("\n#     ");
    else if (*p != '\n')
      tap_print("%c", *p);
  tap_print("\n");
}

/* The steps luisa_step(t) reports behind, as the environment sets the
 * mode (the suite runs in thread mode too): luisa_step(t) returns the
 * status of step t - lag. max_lag defaults to 1. */
static inline int tap_lag(void)
{
  const char *mode = getenv("LUISA_MODE"), *lag = getenv("LUISA_MAX_LAG");
  if (!mode || strcmp(mode, "thread"))
    return 0;
  return lag && *lag ? atoi(lag) : 1;
}

/* Lines of a log starting with `head`, leaving out thread mode's placement
 * warning (an unpinned analytics thread on a machine without a free PU), so
 * that a test counts the same lines in every mode. */
static inline int tap_log_lines(const char *text, const char *head)
{
  int n = 0;
  for (const char *p = text; (p = strstr(p, head)); p++)
    if (p == text || p[-1] == '\n') {
      const char *end = strchr(p, '\n');
      const char *placement = strstr(p, "runs unpinned");
      n += !placement || (end && placement > end);
    }
  return n;
}

static inline int tap_done(void)
{
  tap_print("1..%d\n", tap_count);
  return tap_failed ? 1 : 0;
}
#endif
