/* options.c: luisa_options, their defaults, the environment's overrides
 * (LUISA_*), and the check of every field before a context exists. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "codec.h"
#include "options.h"

luisa_options luisa_options_default(void)
{
  luisa_options o;
  memset(&o, 0, sizeof o);
  o.script = NULL;
  o.mode = LUISA_MODE_INLINE;
  o.log_level = LUISA_LOG_WARN;
  o.reload_signal = SIGUSR1;
  o.lua_bytes = LU_LUA_BYTES_DEFAULT;
  o.step_budget_s = LU_STEP_BUDGET_DEFAULT;
  o.trusted = 0;
  o.output_dir = NULL;
  o.timeout_s = 0;
  o.max_lag = 1;
  o.cpuset = NULL;
  o.analytics_ranks = 0;
  o.compress_level = 0;
  o.store_bytes = 0;
  o.spill_dir = NULL;
  return o;
}

/* A number from the environment: all of the text, finite. A byte count may
 * end in K, M or G (powers of 1024). */
static int env_number(const char *name, const char *text, int bytes, double *out, char *why, size_t cap)
{
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  double scale = 1;
  if (bytes && end != text && *end && !end[1]) {
    const char *units = "KMG";
    const char *u = strchr(units, *end);
    if (u && *u) {
      scale = pow(1024, (double)(u - units + 1));
      end++;
    }
  }
  if (end == text || *end || errno || !isfinite(v)) {
    snprintf(why, cap, "the environment's %s is \"%s\": expected a number%s", name, text,
             bytes ? " of bytes (K, M and G suffixes allowed)" : "");
    return 0;
  }
  *out = v * scale;
  return 1;
}

/* The environment overrides the caller's options, so a run changes its
 * script, limits or trust without recompiling. */
static int apply_environment(luisa_options *o, char *why, size_t cap)
{
  const char *v;
  double x;
  if ((v = getenv("LUISA_SCRIPT")))
    o->script = *v ? v : NULL;
  if ((v = getenv("LUISA_MODE"))) {
    if (strcmp(v, "inline") != 0 && strcmp(v, "thread") != 0 && strcmp(v, "ranks") != 0) {
      snprintf(why, cap, "the environment's LUISA_MODE is \"%s\": expected inline, thread or ranks", v);
      return 0;
    }
    o->mode = *v == 'i' ? LUISA_MODE_INLINE : *v == 't' ? LUISA_MODE_THREAD : LUISA_MODE_RANKS;
  }
  if ((v = getenv("LUISA_ANALYTICS_RANKS"))) {
    size_t n = strlen(v);
    int per_node = n > 5 && !strcmp(v + n - 5, "/node");
    char number[32];
    snprintf(number, sizeof number, "%.*s", per_node ? (int)(n - 5) : (int)n, v);
    if (!env_number("LUISA_ANALYTICS_RANKS", number, 0, &x, why, cap) || x != floor(x) || x < 1 ||
        x > LU_ANALYTICS_MAX) {
      snprintf(why, cap, "the environment's LUISA_ANALYTICS_RANKS is \"%s\": expected a number of ranks, 1 to %d, "
               "or ranks per node as \"1/node\"", v, LU_ANALYTICS_MAX);
      return 0;
    }
    o->analytics_ranks = per_node ? -(int)x : (int)x;
  }
  if ((v = getenv("LUISA_COMPRESS"))) {
    if (!env_number("LUISA_COMPRESS", v, 0, &x, why, cap))
      return 0;
    o->compress_level = x == floor(x) && fabs(x) < 1000 ? (int)x : 1000;
  }
  if ((v = getenv("LUISA_MAX_LAG"))) {
    if (!env_number("LUISA_MAX_LAG", v, 0, &x, why, cap))
      return 0;
    o->max_lag = x >= 0 && x <= LU_MAX_LAG && x == floor(x) ? (int)x : -1;
  }
  if ((v = getenv("LUISA_CPUSET")))
    o->cpuset = *v ? v : NULL;
  if ((v = getenv("LUISA_LOG_LEVEL"))) {
    static const char *const levels[] = { "error", "warning", "info", "debug" };
    int found = 0;
    for (int l = 0; l < 4; l++)
      if (!strcmp(v, levels[l]))
        o->log_level = (luisa_log_level)l, found = 1;
    if (!found) {
      snprintf(why, cap, "the environment's LUISA_LOG_LEVEL is \"%s\": expected error, warning, info or debug", v);
      return 0;
    }
  }
  if ((v = getenv("LUISA_RELOAD_SIGNAL"))) {
    if (!env_number("LUISA_RELOAD_SIGNAL", v, 0, &x, why, cap))
      return 0;
    o->reload_signal = x >= -1 && x <= 65 && x == floor(x) ? (int)x : -1;
  }
  if ((v = getenv("LUISA_LUA_BYTES"))) {
    if (!env_number("LUISA_LUA_BYTES", v, 1, &x, why, cap))
      return 0;
    o->lua_bytes = x >= 0 && x < 0x1p62 ? (int64_t)x : -1;
  }
  if ((v = getenv("LUISA_STORE_BYTES"))) {
    if (!env_number("LUISA_STORE_BYTES", v, 1, &x, why, cap))
      return 0;
    o->store_bytes = x >= 0 && x < 0x1p62 ? (int64_t)x : -1;
  }
  if ((v = getenv("LUISA_SPILL_DIR")))
    o->spill_dir = *v ? v : NULL;
  if ((v = getenv("LUISA_STEP_BUDGET"))) {
    if (!env_number("LUISA_STEP_BUDGET", v, 0, &x, why, cap))
      return 0;
    o->step_budget_s = x;
  }
  if ((v = getenv("LUISA_TIMEOUT"))) {
    if (!env_number("LUISA_TIMEOUT", v, 0, &x, why, cap))
      return 0;
    o->timeout_s = x;
  }
  if ((v = getenv("LUISA_TRUSTED"))) {
    if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
      snprintf(why, cap, "the environment's LUISA_TRUSTED is \"%s\": expected 0 or 1", v);
      return 0;
    }
    o->trusted = *v == '1';
  }
  if ((v = getenv("LUISA_OUTPUT_DIR")))
    o->output_dir = *v ? v : NULL;
  return 1;
}

/* The options a context runs with: the caller's (or the defaults), the
 * environment's overrides, every field checked. Returns LUISA_OK, or
 * LUISA_ERR_ARG with why naming the field and what it expects. */
int options_resolve(const luisa_options *given, luisa_options *o, char *why, size_t cap)
{
  *o = given ? *given : luisa_options_default();
  if (!apply_environment(o, why, cap))
    return LUISA_ERR_ARG;
  if (o->mode != LUISA_MODE_INLINE && o->mode != LUISA_MODE_THREAD && o->mode != LUISA_MODE_RANKS) {
    snprintf(why, cap, "opts->mode is %d: expected LUISA_MODE_INLINE (%d), LUISA_MODE_THREAD (%d) or "
             "LUISA_MODE_RANKS (%d)", (int)o->mode, (int)LUISA_MODE_INLINE, (int)LUISA_MODE_THREAD,
             (int)LUISA_MODE_RANKS);
    return LUISA_ERR_ARG;
  }
  if (o->analytics_ranks < -LU_ANALYTICS_MAX || o->analytics_ranks > LU_ANALYTICS_MAX) {
    snprintf(why, cap, "opts->analytics_ranks is %d: expected 1 to %d ranks in all, -1 to -%d per node, or 0 "
             "(one per node)", o->analytics_ranks, LU_ANALYTICS_MAX, LU_ANALYTICS_MAX);
    return LUISA_ERR_ARG;
  }
  char level_why[160];
  if (!codec_level_ok(o->compress_level, level_why, sizeof level_why)) {
    snprintf(why, cap, "opts->compress_level (or LUISA_COMPRESS) is %d: %s", o->compress_level, level_why);
    return LUISA_ERR_ARG;
  }
  if (o->max_lag < 0 || o->max_lag > LU_MAX_LAG) {
    snprintf(why, cap, "opts->max_lag is %d: expected 0 to %d steps", o->max_lag, LU_MAX_LAG);
    return LUISA_ERR_ARG;
  }
  if (o->cpuset && (!*o->cpuset || strlen(o->cpuset) >= 1024)) {
    snprintf(why, cap, "opts->cpuset is %s: expected \"auto\" or an hwloc list of processing units such as "
             "\"1\" or \"2-3\", or NULL for auto", *o->cpuset ? "too long" : "empty");
    return LUISA_ERR_ARG;
  }
  if (!o->cpuset)
    o->cpuset = "auto";
  if (o->log_level < LUISA_LOG_ERROR || o->log_level > LUISA_LOG_DEBUG) {
    snprintf(why, cap, "opts->log_level is %d: expected LUISA_LOG_ERROR (%d) to LUISA_LOG_DEBUG (%d)",
             (int)o->log_level, (int)LUISA_LOG_ERROR, (int)LUISA_LOG_DEBUG);
    return LUISA_ERR_ARG;
  }
  if (o->reload_signal < 0 || o->reload_signal > 64) {
    snprintf(why, cap, "opts->reload_signal is %d: expected a signal number, or 0 for none", o->reload_signal);
    return LUISA_ERR_ARG;
  }
  if (o->lua_bytes != 0 && (o->lua_bytes < LU_LUA_BYTES_MIN || o->lua_bytes > ((int64_t)1 << 46))) {
    snprintf(why, cap, "opts->lua_bytes is %lld: expected 0 (the default, %d MiB) or %d MiB to 64 TiB",
             (long long)o->lua_bytes, (int)(LU_LUA_BYTES_DEFAULT >> 20), (int)(LU_LUA_BYTES_MIN >> 20));
    return LUISA_ERR_ARG;
  }
  if (o->lua_bytes == 0)
    o->lua_bytes = LU_LUA_BYTES_DEFAULT;
  if (!(o->step_budget_s >= 0 && o->step_budget_s <= 1e6)) {
    snprintf(why, cap, "opts->step_budget_s is %g: expected seconds from 0 (no budget) to 1e6", o->step_budget_s);
    return LUISA_ERR_ARG;
  }
  if (!(o->timeout_s >= 0 && o->timeout_s <= 1e7)) {
    snprintf(why, cap, "opts->timeout_s is %g: expected seconds from 0 (wait forever) to 1e7", o->timeout_s);
    return LUISA_ERR_ARG;
  }
  if (o->trusted != 0 && o->trusted != 1) {
    snprintf(why, cap, "opts->trusted is %d: expected 0 (sandboxed scripts) or 1", o->trusted);
    return LUISA_ERR_ARG;
  }
  if (o->output_dir && (!*o->output_dir || strlen(o->output_dir) >= 4096)) {
    snprintf(why, cap, "opts->output_dir is %s: expected a directory path of 1 to 4095 characters, or NULL "
             "for luisa-out", *o->output_dir ? "too long" : "empty");
    return LUISA_ERR_ARG;
  }
  if (!o->output_dir)
    o->output_dir = "luisa-out";
  if (o->store_bytes < 0 || o->store_bytes > ((int64_t)1 << 60)) {
    snprintf(why, cap, "opts->store_bytes is %lld: expected 0 (no budget) to 1 EiB", (long long)o->store_bytes);
    return LUISA_ERR_ARG;
  }
  if (o->spill_dir && (!*o->spill_dir || strlen(o->spill_dir) >= 4000)) {
    snprintf(why, cap, "opts->spill_dir is %s: expected a directory path of 1 to 3999 characters, or NULL for no "
             "spill", *o->spill_dir ? "too long" : "empty");
    return LUISA_ERR_ARG;
  }
  return LUISA_OK;
}
