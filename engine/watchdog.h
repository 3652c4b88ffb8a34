/* watchdog.h: a thread that calls fire(ud) when an armed deadline passes,
 * so a Lua loop that never returns can be stopped from outside. Not installed. */
#ifndef LUISA_WATCHDOG_H
#define LUISA_WATCHDOG_H

typedef struct lu_watchdog lu_watchdog;

/* period: the deadline armed each time, in seconds (> 0). fire runs on the
 * watchdog's thread with its lock held, at most once per arming. */
lu_watchdog *watchdog_new(double period, void (*fire)(void *ud), void *ud);
void watchdog_arm(lu_watchdog *w);
/* Disarms; returns 1 if fire ran since the last arming. After it returns,
 * fire does not run until the next arming. */
int watchdog_disarm(lu_watchdog *w);
void watchdog_free(lu_watchdog *w);

#endif
