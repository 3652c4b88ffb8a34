/* watchdog.c: one thread per budget, asleep nearly always. Arming is a
 * lock and a clock read: the thread is never woken for it. It sleeps one
 * period at a time, so a deadline armed while it sleeps is still met on
 * time: it wakes before the deadline and waits for the rest. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include "watchdog.h"

struct lu_watchdog {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  double period;
  void (*fire)(void *ud);
  void *ud;
  int armed, fired, quit;
  struct timespec deadline;
};

static struct timespec later(struct timespec t, double seconds)
{
  long long ns = (long long)(seconds * 1e9);
  t.tv_sec += (time_t)(ns / 1000000000LL);
  t.tv_nsec += (long)(ns % 1000000000LL);
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

static int before(struct timespec a, struct timespec b)
{
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

static void *watch(void *arg)
{
  lu_watchdog *w = arg;
  pthread_mutex_lock(&w->lock);
  while (!w->quit) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (w->armed && !w->fired && !before(now, w->deadline)) {
      w->fired = 1;
      w->fire(w->ud);
    }
    struct timespec until = w->armed && !w->fired ? w->deadline : later(now, w->period);
    pthread_cond_timedwait(&w->wake, &w->lock, &until);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

lu_watchdog *watchdog_new(double period, void (*fire)(void *ud), void *ud)
{
  lu_watchdog *w = calloc(1, sizeof *w);
  if (!w)
    return NULL;
  w->period = period;
  w->fire = fire;
  w->ud = ud;
  pthread_condattr_t attr;
  int made = pthread_condattr_init(&attr) == 0;
  made = made && pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0;
  made = made && pthread_cond_init(&w->wake, &attr) == 0;
  if (made)
    pthread_condattr_destroy(&attr);
  if (!made || pthread_mutex_init(&w->lock, NULL) != 0) {
    free(w);
    return NULL;
  }
  if (pthread_create(&w->thread, NULL, watch, w) != 0) {
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
    return NULL;
  }
  return w;
}

void watchdog_arm(lu_watchdog *w)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  pthread_mutex_lock(&w->lock);
  w->deadline = later(now, w->period);
  w->armed = 1;
  w->fired = 0;
  pthread_mutex_unlock(&w->lock);
}

int watchdog_disarm(lu_watchdog *w)
{
  pthread_mutex_lock(&w->lock);
  int fired = w->fired;
  w->armed = 0;
  w->fired = 0;
  pthread_mutex_unlock(&w->lock);
  return fired;
}

void watchdog_free(lu_watchdog *w)
{
  if (!w)
    return;
  pthread_mutex_lock(&w->lock);
  w->quit = 1;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->wake);
  pthread_mutex_destroy(&w->lock);
  free(w);
}
