/* steer.h: steerable parameters and the changes scripts make. Not installed. */
#ifndef LUISA_STEER_H
#define LUISA_STEER_H

#include "context.h"

/* A change as it travels from the root to every rank. */
enum { CHANGE_PARAM, CHANGE_STOP, CHANGE_PERIOD, CHANGE_REGION };
typedef struct lu_change {
  int32_t kind;
  int32_t target;              /* the parameter, callback or region */
  double f;
  int64_t i;
  char s[192];                 /* a string's value, the stop reason, a region's ranges */
  int64_t decided;             /* the step whose analysis asked for it */
  int64_t after;               /* it applies after this many luisa_step calls */
} lu_change;

/* A parameter's value as the analysis of one step sees it. */
typedef union lu_value {
  double f;
  int64_t i;
  int b;
  char s[LU_VALUE_MAX];
} lu_value;

enum { PARAM_F64, PARAM_I64, PARAM_BOOL, PARAM_STRING };

struct lu_param {
  char name[LU_NAME_MAX];
  int type;
  void *var;
  double min, max;             /* f64 */
  int64_t imin, imax;          /* i64 */
  size_t cap;                  /* string */
  char **allowed;
  int nallowed;
  char *description;
  lu_value seen;               /* what this step's analysis reads (steer_observe) */
};

/* Every parameter's value now, into v[0..nparams): the simulation's side. */
void steer_capture(const luisa *lz, lu_value *v);
/* The values scripts read (luisa.param) in this step's analysis: v, or
 * when NULL the simulation's variables now. */
void steer_observe(luisa *lz, const lu_value *v);

lu_param *steer_find(luisa *lz, const char *name);
int steer_check(luisa *lz);
const char *steer_request(luisa *lz, lu_param *p, int is_number, double number, int is_bool, int boolean,
                          const char *text, char *why, size_t cap);
int steer_queue(luisa *lz, const void *change);
int steer_stop(luisa *lz, const char *reason);
int steer_period(luisa *lz, int callback, int every);
int steer_region(luisa *lz, int region, const char *ranges);
int steer_pending(const luisa *lz);
/* The root's n changes, decided at step, kept on every rank to apply
 * after the `after`-th luisa_step. Collective. */
int steer_receive(luisa *lz, int64_t step, int n, int64_t after);
/* The earliest call after which an arrived change of the plan applies
 * (INT64_MAX if none). */
int64_t steer_plan_pending(luisa *lz);
/* The next arrived change of the plan due by `call` (1, in *out), or 0. */
int steer_take_plan(luisa *lz, int64_t call, lu_change *out);
/* Applies the parameter changes and stops due by `call`, in order:
 * LUISA_STOP if one was a stop. On the simulation's side. */
int steer_apply_due(luisa *lz, int64_t call);
/* Ranks mode. The analytics' side takes up to max arrived changes meant
 * for the simulation (parameters, stops), to send them there; the
 * simulation's side queues the changes it receives. */
int steer_take_simulation(luisa *lz, lu_change *out, int max);
int steer_arrive(luisa *lz, const lu_change *c, int n);
int steer_value(const lu_param *p, double *number, int *boolean, const char **text);
void steer_bounds(const lu_param *p, double *min, double *max, int *nallowed, char *const **allowed);
const char *steer_type(const lu_param *p);
const char *steer_name(const luisa *lz, int i);
void steer_free(luisa *lz);
const char *steer_history(const luisa *lz);

#endif
