/* steer.c: steerable simulation parameters, registered from C, read and
 * changed by scripts; every change lands on every rank at the same step. */
#include <limits.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "array.h"
#include "error.h"
#include "log.h"
#include "transport.h"
#include "steer.h"

static const char *const type_names[] = { "f64", "i64", "bool", "string" };

lu_param *steer_find(luisa *lz, const char *name)
{
  for (int i = 0; i < lz->nparams; i++)
    if (strcmp(lz->params[i].name, name) == 0)
      return &lz->params[i];
  return NULL;
}

/* What a parameter owns; for one half registered (not counted in
 * nparams), what add() and its caller copied so far. */
static void drop(lu_param *p)
{
  for (int k = 0; k < p->nallowed; k++)
    free(p->allowed[k]);
  free(p->allowed);
  free(p->description);
  p->allowed = NULL;
  p->description = NULL;
  p->nallowed = 0;
}

static int add(luisa *lz, const char *name, int type, void *var, const char *description, lu_param **out)
{
  if (!lz)
    return LUISA_ERR_ARG;
  FORWARD_IF_ERROR(array_check_name(lz, "luisa_param", name));
  RETURN_IF(lz->stepped, lz, LUISA_ERR_ORDER,
            "luisa_param(\"%s\"): parameters must be registered before the first luisa_step", name);
  RETURN_IF(steer_find(lz, name), lz, LUISA_ERR_NAME, "luisa_param: \"%s\" is already registered", name);
  RETURN_IF(!var, lz, LUISA_ERR_ARG, "luisa_param(\"%s\"): var is NULL", name);
  if (lz->nparams == lz->params_cap) {
    int cap = lz->params_cap ? 2 * lz->params_cap : 8;
    lu_param *grown = lz->params_cap <= INT_MAX / 2 ? realloc(lz->params, (size_t)cap * sizeof *grown) : NULL;
    RETURN_IF(!grown, lz, LUISA_ERR_NOMEM, "luisa_param(\"%s\"): out of memory", name);
    lz->params = grown;
    lz->params_cap = cap;
  }
  lu_param *p = &lz->params[lz->nparams];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->type = type;
  p->var = var;
  if (description && !(p->description = strdup(description)))
    return error_set(lz, LUISA_ERR_NOMEM, "luisa_param(\"%s\"): out of memory", name);
  *out = p;
  return LUISA_OK;
}

int luisa_param_f64(luisa *lz, const char *name, double *var, double min, double max, const char *description)
{
  if (lz && var && !(min <= max))   /* NaN bounds too */
    return error_set(lz, LUISA_ERR_ARG, "luisa_param_f64(\"%s\"): min %g is not <= max %g: expected two numbers, "
                     "not NaN, with min <= max", name ? name : "", min, max);
  RETURN_IF(lz && var && !(*var >= min && *var <= max), lz, LUISA_ERR_ARG,
            "luisa_param_f64(\"%s\"): the current value %g is outside [%g, %g]", name ? name : "", *var, min, max);
  lu_param *p;
  FORWARD_IF_ERROR(add(lz, name, PARAM_F64, var, description, &p));
  p->min = min, p->max = max;
  lz->nparams++;
  return LUISA_OK;
}

int luisa_param_i64(luisa *lz, const char *name, int64_t *var, int64_t min, int64_t max, const char *description)
{
  RETURN_IF(lz && var && min > max, lz, LUISA_ERR_ARG, "luisa_param_i64(\"%s\"): min %lld is not <= max %lld",
            name ? name : "", (long long)min, (long long)max);
  RETURN_IF(lz && var && (*var < min || *var > max), lz, LUISA_ERR_ARG,
            "luisa_param_i64(\"%s\"): the current value %lld is outside [%lld, %lld]", name ? name : "",
            (long long)*var, (long long)min, (long long)max);
  lu_param *p;
  FORWARD_IF_ERROR(add(lz, name, PARAM_I64, var, description, &p));
  p->imin = min, p->imax = max;
  lz->nparams++;
  return LUISA_OK;
}

int luisa_param_bool(luisa *lz, const char *name, int *var, const char *description)
{
  RETURN_IF(lz && var && *var != 0 && *var != 1, lz, LUISA_ERR_ARG,
            "luisa_param_bool(\"%s\"): the current value %d is not 0 or 1", name ? name : "", *var);
  lu_param *p;
  FORWARD_IF_ERROR(add(lz, name, PARAM_BOOL, var, description, &p));
  lz->nparams++;
  return LUISA_OK;
}

int luisa_param_string(luisa *lz, const char *name, char *var, size_t cap, const char *const *allowed,
                       const char *description)
{
  RETURN_IF(lz && (!allowed || !allowed[0]), lz, LUISA_ERR_ARG,
            "luisa_param_string(\"%s\"): allowed must list at least one value", name ? name : "");
  RETURN_IF(lz && (cap < 2 || cap > LU_VALUE_MAX), lz, LUISA_ERR_ARG,
            "luisa_param_string(\"%s\"): cap is %zu, expected 2 to %d", name ? name : "", cap, LU_VALUE_MAX);
  int n = 0, current = 0;
  for (; lz && allowed && allowed[n]; n++) {
    RETURN_IF(strlen(allowed[n]) >= cap, lz, LUISA_ERR_ARG,
              "luisa_param_string(\"%s\"): allowed value \"%s\" does not fit in %zu bytes", name ? name : "",
              allowed[n], cap);
    current |= var && strcmp(var, allowed[n]) == 0;
  }
  RETURN_IF(lz && var && !current, lz, LUISA_ERR_ARG,
            "luisa_param_string(\"%s\"): the current value \"%.*s\" is not an allowed value", name ? name : "",
            (int)cap, var);
  lu_param *p;
  FORWARD_IF_ERROR(add(lz, name, PARAM_STRING, var, description, &p));
  p->cap = cap;
  p->allowed = calloc((size_t)n, sizeof *p->allowed);
  for (int k = 0; p->allowed && k < n; k++) {
    if (!(p->allowed[k] = strdup(allowed[k]))) {
      drop(p);
      return error_set(lz, LUISA_ERR_NOMEM, "luisa_param_string(\"%s\"): out of memory", name);
    }
    p->nallowed = k + 1;
  }
  if (!p->allowed) {
    drop(p);
    return error_set(lz, LUISA_ERR_NOMEM, "luisa_param_string(\"%s\"): out of memory", name);
  }
  lz->nparams++;
  return LUISA_OK;
}

/* The current value as text, for logs and messages. */
static const char *value_text(const lu_param *p, char *buf, size_t cap)
{
  switch (p->type) {
  case PARAM_F64: {   /* the shortest text that reads back exactly */
    double v = *(double *)p->var;
    for (int digits = 15; digits <= 17; digits++) {
      snprintf(buf, cap, "%.*g", digits, v);
      if (strtod(buf, NULL) == v)
        break;
    }
    break;
  }
  case PARAM_I64: snprintf(buf, cap, "%lld", (long long)*(int64_t *)p->var); break;
  case PARAM_BOOL: snprintf(buf, cap, "%s", *(int *)p->var ? "true" : "false"); break;
  default: snprintf(buf, cap, "%s", (char *)p->var); break;
  }
  return buf;
}

/* Every rank must register the same parameters: compared by a hash of their
 * text, which rank 0 broadcasts. Collective. */
int steer_check(luisa *lz)
{
  uint64_t h = 1469598103934665603ull;
  char line[512];
  for (int i = 0; i < lz->nparams; i++) {
    lu_param *p = &lz->params[i];
    int n = snprintf(line, sizeof line, "%s %s %.17g %.17g %lld %lld %zu;", p->name, type_names[p->type], p->min,
                     p->max, (long long)p->imin, (long long)p->imax, p->cap);
    for (int k = 0; k < p->nallowed; k++)
      n += snprintf(line + n, sizeof line - (size_t)n, "%s,", p->allowed[k]);
    for (const char *c = line; *c; c++)
      h = (h ^ (unsigned char)*c) * 1099511628211ull;
  }
  uint64_t root = h;
  RETURN_IF(MPI_Bcast(&root, 1, MPI_UINT64_T, 0, lz->comm) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
            "luisa_step: MPI_Bcast of the parameters failed");
  char msg[LU_ERR_MAX];
  snprintf(msg, sizeof msg, "rank %d registers %d steerable parameters that differ from rank 0's: every rank "
           "must register the same parameters, with the same types and bounds", lz->rank, lz->nparams);
  return transport_check(lz, root != h, msg, sizeof msg, LUISA_ERR_NAME);
}

/* Whether the double d is a whole number in [lo, hi], then *v. Compared as
 * integers: a double is an int64 iff it is whole and -2^63 <= d < 2^63
 * ((double)INT64_MAX rounds up to 2^63, so it cannot bound the test, nor
 * can (double)hi anywhere above 2^53). NaN fails the first test. */
static int whole_in(double d, int64_t lo, int64_t hi, int64_t *v)
{
  if (!(d >= -0x1p63 && d < 0x1p63) || d != floor(d))
    return 0;
  *v = (int64_t)d;
  return *v >= lo && *v <= hi;
}

/* A script's number for messages: NaN has no sign worth printing. */
static const char *number_text(double d, char *buf, size_t cap)
{
  snprintf(buf, cap, isnan(d) ? "nan" : "%.17g", d);
  return buf;
}

/* A script's value for p, checked; on the root, queued for the end of the
 * step. Returns NULL, or why it was refused. */
const char *steer_request(luisa *lz, lu_param *p, int is_number, double number, int is_bool, int boolean,
                          const char *text, char *why, size_t cap)
{
  lu_change c;
  char num[32];
  memset(&c, 0, sizeof c);
  c.kind = CHANGE_PARAM;
  c.target = (int32_t)(p - lz->params);
  switch (p->type) {
  case PARAM_F64:
    if (!is_number)
      snprintf(why, cap, "luisa.set(\"%s\"): expected a number in [%g, %g]", p->name, p->min, p->max);
    else if (!(number >= p->min && number <= p->max))
      snprintf(why, cap, "luisa.set(\"%s\"): %s is outside [%g, %g]", p->name, number_text(number, num, sizeof num),
               p->min, p->max);
    else {
      c.f = number;
      break;
    }
    return why;
  case PARAM_I64:
    if (!is_number)
      snprintf(why, cap, "luisa.set(\"%s\"): expected a whole number in [%lld, %lld]", p->name,
               (long long)p->imin, (long long)p->imax);
    else if (!whole_in(number, p->imin, p->imax, &c.i))
      snprintf(why, cap, "luisa.set(\"%s\"): %s is refused: expected a whole number in [%lld, %lld]",
               p->name, number_text(number, num, sizeof num), (long long)p->imin, (long long)p->imax);
    else
      break;
    return why;
  case PARAM_BOOL:
    if (!is_bool) {
      snprintf(why, cap, "luisa.set(\"%s\"): expected true or false", p->name);
      return why;
    }
    c.i = boolean;
    break;
  default: {
    int ok = 0;
    for (int k = 0; text && k < p->nallowed; k++)
      ok |= strcmp(text, p->allowed[k]) == 0;
    if (!ok) {
      int n = snprintf(why, cap, "luisa.set(\"%s\"): expected one of", p->name);
      for (int k = 0; k < p->nallowed && (size_t)n < cap; k++)
        n += snprintf(why + n, cap - (size_t)n, " \"%s\"", p->allowed[k]);
      return why;
    }
    snprintf(c.s, sizeof c.s, "%s", text);
  }
  }
  return steer_queue(lz, &c) == LUISA_OK ? NULL : "out of memory queueing a change";
}

int steer_queue(luisa *lz, const void *change)
{
  const lu_change *c = change;
  for (int k = 0; k < lz->npending; k++)   /* the last request of a step wins */
    if (((lu_change *)lz->pending)[k].kind == c->kind && c->kind != CHANGE_STOP
        && ((lu_change *)lz->pending)[k].target == c->target) {
      ((lu_change *)lz->pending)[k] = *c;
      return LUISA_OK;
    }
  lu_change *grown = realloc(lz->pending, (size_t)(lz->npending + 1) * sizeof *grown);
  RETURN_IF(!grown, lz, LUISA_ERR_NOMEM, "out of memory");
  grown[lz->npending++] = *c;
  lz->pending = grown;
  return LUISA_OK;
}

/* luisa.stop(reason) on the root. */
int steer_stop(luisa *lz, const char *reason)
{
  lu_change c;
  memset(&c, 0, sizeof c);
  c.kind = CHANGE_STOP;
  snprintf(c.s, sizeof c.s, "%s", reason ? reason : "");
  return steer_queue(lz, &c);
}

/* A callback's new period, on the root, applied on every rank like a
 * parameter change. */
int steer_period(luisa *lz, int callback, int every)
{
  lu_change c;
  memset(&c, 0, sizeof c);
  c.kind = CHANGE_PERIOD;
  c.target = callback;
  c.i = every;
  return steer_queue(lz, &c);
}

/* A region's new ranges (text made by the script), likewise. */
int steer_region(luisa *lz, int region, const char *ranges)
{
  lu_change c;
  memset(&c, 0, sizeof c);
  c.kind = CHANGE_REGION;
  c.target = region;
  RETURN_IF(strlen(ranges) >= sizeof c.s, lz, LUISA_ERR_ARG, "the ranges %s are too long", ranges);
  snprintf(c.s, sizeof c.s, "%s", ranges);
  return steer_queue(lz, &c);
}

/* How many changes the root queued this step (meaningful on the root). */
int steer_pending(const luisa *lz)
{
  return lz->npending;
}

/* The history of changes, for the finalize summary (rank 0 keeps it). */
static void remember(luisa *lz, int64_t step, const char *name, const char *old, const char *new)
{
  char line[2 * LU_VALUE_MAX + LU_NAME_MAX + 48];
  int n = snprintf(line, sizeof line, "%s%lld: %s %s -> %s", lz->history_len ? "; " : "", (long long)step, name,
                   old, new);
  char *grown = realloc(lz->history, lz->history_len + (size_t)n + 1);
  if (!grown)
    return;   /* the log line was written: the summary only loses its copy */
  memcpy(grown + lz->history_len, line, (size_t)n + 1);
  lz->history = grown;
  lz->history_len += (size_t)n;
}

/* The changes made so far, as "step: name old -> new; ..." ("" if none). */
const char *steer_history(const luisa *lz)
{
  return lz->history ? lz->history : "";
}

/* A parameter's change or a stop, on this rank. LUISA_STOP if a stop. */
static int apply(luisa *lz, const lu_change *c)
{
  if (c->kind == CHANGE_STOP) {
    snprintf(lz->stop_reason, sizeof lz->stop_reason, "%.*s", (int)sizeof lz->stop_reason - 1, c->s);
    if (lz->rank == 0)
      log_write(lz, LUISA_LOG_INFO, "step %lld: the script asks to stop: %s", (long long)c->decided, c->s);
    return LUISA_STOP;
  }
  lu_param *p = &lz->params[c->target];
  char old[LU_VALUE_MAX + 8], new[LU_VALUE_MAX + 8];
  value_text(p, old, sizeof old);
  switch (p->type) {
  case PARAM_F64: *(double *)p->var = c->f; break;
  case PARAM_I64: *(int64_t *)p->var = c->i; break;
  case PARAM_BOOL: *(int *)p->var = (int)c->i; break;
  default: snprintf((char *)p->var, p->cap, "%s", c->s); break;
  }
  value_text(p, new, sizeof new);
  lz->nchanges++;
  if (lz->rank == 0) {
    log_write(lz, LUISA_LOG_INFO, "step %lld: %s %s -> %s", (long long)c->decided, p->name, old, new);
    remember(lz, c->decided, p->name, old, new);
  }
  return LUISA_OK;
}

/* The root's n queued changes, decided at `step`, to every rank, where
 * they wait in order: the plan's own (periods, regions) for the analysis
 * (steer_take_plan), the others for the simulation (steer_apply_due),
 * after its `after`-th luisa_step. Room for them is agreed first, so that
 * every rank keeps them or every rank drops them. Collective among ranks
 * that agreed n > 0. */
int steer_receive(luisa *lz, int64_t step, int n, int64_t after)
{
  /* Only this side grows the queue; the simulation's side (steer_apply_due)
   * takes from it under the lock, so the room made here stays. */
  pthread_mutex_lock(&lz->changes_lock);
  size_t need = (size_t)lz->narrived + (size_t)n;
  int ok = n > 0, all;
  if (ok && need > lz->arrived_cap) {
    lu_change *grown = realloc(lz->arrived, need * sizeof *grown);
    ok = grown != NULL;
    if (grown) {
      lz->arrived = grown;
      lz->arrived_cap = need;
    }
  }
  pthread_mutex_unlock(&lz->changes_lock);
  RETURN_IF(MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, lz->comm) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
            "luisa_step: MPI_Allreduce before the parameter changes failed");
  int queued = lz->npending;
  lz->npending = 0;
  RETURN_IF(!all, lz, LUISA_ERR_NOMEM, "luisa_step(%lld): out of memory on some rank for %d steering changes: "
            "they are dropped on every rank", (long long)step, n);
  enum { BATCH = 16 };   /* through the stack: the queue may move under the lock meanwhile */
  lu_change c[BATCH];
  for (int done = 0; done < n; done += BATCH) {
    int m = n - done < BATCH ? n - done : BATCH;
    if (lz->rank == 0 && done + m <= queued)
      memcpy(c, (lu_change *)lz->pending + done, (size_t)m * sizeof *c);
    RETURN_IF(MPI_Bcast(c, m * (int)sizeof *c, MPI_BYTE, 0, lz->comm) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
              "luisa_step: MPI_Bcast of parameter changes failed");
    pthread_mutex_lock(&lz->changes_lock);
    for (int k = 0; k < m; k++) {
      c[k].decided = step;
      c[k].after = after;
      lz->arrived[lz->narrived++] = c[k];
    }
    pthread_mutex_unlock(&lz->changes_lock);
  }
  return LUISA_OK;
}

static int of_plan(const lu_change *c)
{
  return c->kind == CHANGE_PERIOD || c->kind == CHANGE_REGION;
}

/* The arrived changes due by the `call`-th step: of the plan, the first
 * goes to *first (returns whether there was one); of the simulation,
 * every one is applied (returns LUISA_STOP if one was a stop). The others
 * stay, in order. */
static int drain(luisa *lz, int64_t call, int plan, lu_change *first)
{
  pthread_mutex_lock(&lz->changes_lock);
  lu_change *c = lz->arrived;
  int kept = 0, status = LUISA_OK, found = 0;
  for (int k = 0; k < lz->narrived; k++) {
    int mine = of_plan(&c[k]) == plan && c[k].after <= call && !(plan && found);
    if (mine && plan) {
      *first = c[k];
      found = 1;
    } else if (mine && apply(lz, &c[k]) == LUISA_STOP) {
      status = LUISA_STOP;
    }
    if (!mine)
      c[kept++] = c[k];
  }
  lz->narrived = kept;
  pthread_mutex_unlock(&lz->changes_lock);
  return plan ? found : status;
}

int64_t steer_plan_pending(luisa *lz)
{
  int64_t first = INT64_MAX;
  pthread_mutex_lock(&lz->changes_lock);
  for (int k = 0; k < lz->narrived; k++)
    if (of_plan(&lz->arrived[k]) && lz->arrived[k].after < first)
      first = lz->arrived[k].after;
  pthread_mutex_unlock(&lz->changes_lock);
  return first;
}

int steer_take_plan(luisa *lz, int64_t call, lu_change *out)
{
  return drain(lz, call, 1, out);
}

int steer_apply_due(luisa *lz, int64_t call)
{
  return drain(lz, call, 0, NULL);
}

int steer_take_simulation(luisa *lz, lu_change *out, int max)
{
  pthread_mutex_lock(&lz->changes_lock);
  int kept = 0, n = 0;
  for (int k = 0; k < lz->narrived; k++) {
    if (!of_plan(&lz->arrived[k]) && n < max)
      out[n++] = lz->arrived[k];
    else
      lz->arrived[kept++] = lz->arrived[k];
  }
  lz->narrived = kept;
  pthread_mutex_unlock(&lz->changes_lock);
  return n;
}

int steer_arrive(luisa *lz, const lu_change *c, int n)
{
  pthread_mutex_lock(&lz->changes_lock);
  size_t need = (size_t)lz->narrived + (size_t)n;
  if (need > lz->arrived_cap) {
    lu_change *grown = realloc(lz->arrived, need * sizeof *grown);
    if (!grown) {
      pthread_mutex_unlock(&lz->changes_lock);
      return LUISA_ERR_NOMEM;
    }
    lz->arrived = grown;
    lz->arrived_cap = need;
  }
  memcpy(lz->arrived + lz->narrived, c, (size_t)n * sizeof *c);
  lz->narrived += n;
  pthread_mutex_unlock(&lz->changes_lock);
  return LUISA_OK;
}

static void capture(const lu_param *p, lu_value *v)
{
  switch (p->type) {
  case PARAM_F64: v->f = *(double *)p->var; break;
  case PARAM_I64: v->i = *(int64_t *)p->var; break;
  case PARAM_BOOL: v->b = *(int *)p->var; break;
  default: snprintf(v->s, sizeof v->s, "%.*s", (int)p->cap, (const char *)p->var); break;
  }
}

void steer_capture(const luisa *lz, lu_value *v)
{
  for (int k = 0; k < lz->nparams; k++)
    capture(&lz->params[k], &v[k]);
}

void steer_observe(luisa *lz, const lu_value *v)
{
  for (int k = 0; k < lz->nparams; k++)
    if (v)
      lz->params[k].seen = v[k];
    else
      capture(&lz->params[k], &lz->params[k].seen);
}

/* The value of p for a script: pushes nothing, fills one of the outputs. */
int steer_value(const lu_param *p, double *number, int *boolean, const char **text)
{
  switch (p->type) {
  case PARAM_F64: *number = p->seen.f; return 0;
  case PARAM_I64: *number = (double)p->seen.i; return 0;
  case PARAM_BOOL: *boolean = p->seen.b; return 1;
  default: *text = p->seen.s; return 2;
  }
}

/* Bounds for scripts: {min, max} or the allowed values. An i64's bounds
 * (like its value, steer_value) become doubles: exact within 2^53, rounded
 * to nearest beyond (INT64_MAX reads 2^63). Only what scripts read is
 * rounded: steer_request checks a value against the int64 bounds. */
void steer_bounds(const lu_param *p, double *min, double *max, int *nallowed, char *const **allowed)
{
  *min = p->type == PARAM_I64 ? (double)p->imin : p->min;
  *max = p->type == PARAM_I64 ? (double)p->imax : p->max;
  *nallowed = p->nallowed;
  *allowed = p->allowed;
}

const char *steer_name(const luisa *lz, int i)
{
  return lz->params[i].name;
}

const char *steer_type(const lu_param *p)
{
  return type_names[p->type];
}

void steer_free(luisa *lz)
{
  for (int i = 0; i < lz->nparams; i++)
    drop(&lz->params[i]);
  free(lz->params);
  free(lz->pending);
  free(lz->arrived);
  lz->arrived = NULL;
  lz->narrived = 0;
  lz->arrived_cap = 0;
  free(lz->history);
  lz->history = NULL;
  lz->history_len = 0;
  lz->params = NULL;
  lz->pending = NULL;
  lz->nparams = lz->npending = 0;
}
