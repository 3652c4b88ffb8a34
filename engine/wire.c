/* wire.c: the buffers that carry ranks mode's messages, and the one message
 * with structure, the declarations every analytics rank repeats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "error.h"
#include "steer.h"
#include "wire.h"

void wire_reset(lu_wire *w)
{
  w->len = w->at = 0;
  w->bad = 0;
}

void wire_free(lu_wire *w)
{
  if (w->mem)
    memory_free(w->mem, w->use, w->buf, w->cap);
  else
    free(w->buf);
  lu_memory *mem = w->mem;
  lu_use use = w->use;
  memset(w, 0, sizeof *w);
  w->mem = mem, w->use = use;
}

static int grow(lu_wire *w, size_t need)
{
  if (need <= w->cap)
    return 1;
  size_t cap = w->cap ? w->cap : 256;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : 2 * cap;
  char *grown = w->mem ? memory_realloc(w->mem, w->use, w->buf, w->cap, cap) : realloc(w->buf, cap);
  if (!grown)
    return 0;
  w->buf = grown;
  w->cap = cap;
  return 1;
}

int wire_room(lu_wire *w, size_t n)
{
  wire_reset(w);
  if (!grow(w, n ? n : 1))
    return w->bad = 1, 0;
  w->len = n;
  return 1;
}

void wire_put(lu_wire *w, const void *p, size_t n)
{
  if (w->bad || n == 0)
    return;
  if (n > SIZE_MAX - w->len || !grow(w, w->len + n)) {
    w->bad = 1;
    return;
  }
  memcpy(w->buf + w->len, p, n);
  w->len += n;
}

void wire_i32(lu_wire *w, int32_t v)
{
  wire_put(w, &v, sizeof v);
}

void wire_text(lu_wire *w, const char *s)
{
  size_t n = strlen(s);
  wire_i32(w, n > INT32_MAX - 1 ? INT32_MAX - 1 : (int32_t)n);
  wire_put(w, s, n);
  wire_put(w, "", 1);
}

const void *wire_view(lu_wire *w, size_t n)
{
  if (w->bad || n > w->len - w->at) {
    w->bad = 1;
    return NULL;
  }
  const void *p = w->buf + w->at;
  w->at += n;
  return p;
}

int wire_take(lu_wire *w, void *p, size_t n)
{
  const void *from = wire_view(w, n);
  if (from && n)
    memcpy(p, from, n);
  return from != NULL;
}

int32_t wire_take_i32(lu_wire *w)
{
  int32_t v = 0;
  wire_take(w, &v, sizeof v);
  return v;
}

const char *wire_take_text(lu_wire *w)
{
  int32_t n = wire_take_i32(w);
  const char *s = n >= 0 ? wire_view(w, (size_t)n + 1) : NULL;
  return s && s[n] == '\0' ? s : (w->bad = 1, "");
}

void wire_declarations(lu_wire *w, const luisa *lz)
{
  wire_i32(w, lz->narrays);
  for (int i = 0; i < lz->narrays; i++) {
    const lu_array *a = &lz->arrays[i];
    wire_text(w, a->name);
    wire_i32(w, (int32_t)a->dtype);
    wire_i32(w, a->ndim);
    wire_i32(w, a->writable);
    wire_put(w, a->shape, sizeof a->shape);
  }
  lu_value *now = calloc((size_t)(lz->nparams ? lz->nparams : 1), sizeof *now);
  if (!now) {
    w->bad = 1;
    return;
  }
  steer_capture(lz, now);
  wire_i32(w, lz->nparams);
  for (int i = 0; i < lz->nparams; i++) {
    const lu_param *p = &lz->params[i];
    wire_text(w, p->name);
    wire_text(w, p->description ? p->description : "");
    wire_i32(w, p->type);
    wire_put(w, &p->min, sizeof p->min);
    wire_put(w, &p->max, sizeof p->max);
    wire_put(w, &p->imin, sizeof p->imin);
    wire_put(w, &p->imax, sizeof p->imax);
    wire_i32(w, (int32_t)p->cap);
    wire_i32(w, p->nallowed);
    for (int k = 0; k < p->nallowed; k++)
      wire_text(w, p->allowed[k]);
    wire_put(w, &now[i], sizeof now[i]);
  }
  free(now);
}

static int declare_param(luisa *inner, lu_wire *w, lu_value *v)
{
  char name[LU_NAME_MAX], description[1024];
  snprintf(name, sizeof name, "%s", wire_take_text(w));
  snprintf(description, sizeof description, "%s", wire_take_text(w));
  int type = wire_take_i32(w);
  double min = 0, max = 0;
  int64_t imin = 0, imax = 0;
  wire_take(w, &min, sizeof min);
  wire_take(w, &max, sizeof max);
  wire_take(w, &imin, sizeof imin);
  wire_take(w, &imax, sizeof imax);
  int cap = wire_take_i32(w), nallowed = wire_take_i32(w);
  if (w->bad || nallowed < 0 || nallowed > 1 << 20)
    return error_set(inner, LUISA_ERR_DATA, "luisa_init: the declarations of parameter \"%s\" arrived cut", name);
  const char **allowed = calloc((size_t)nallowed + 1, sizeof *allowed);
  if (!allowed)
    return error_set(inner, LUISA_ERR_NOMEM, "luisa_init: out of memory for parameter \"%s\"", name);
  for (int k = 0; k < nallowed; k++)
    allowed[k] = wire_take_text(w);
  int status = wire_take(w, v, sizeof *v) ? LUISA_OK : LUISA_ERR_DATA;
  if (status == LUISA_OK) {
    switch (type) {
    case PARAM_F64: status = luisa_param_f64(inner, name, &v->f, min, max, description); break;
    case PARAM_I64: status = luisa_param_i64(inner, name, &v->i, imin, imax, description); break;
    case PARAM_BOOL: status = luisa_param_bool(inner, name, &v->b, description); break;
    default: status = luisa_param_string(inner, name, v->s, (size_t)cap, allowed, description); break;
    }
  } else {
    error_set(inner, status, "luisa_init: the declarations of parameter \"%s\" arrived cut", name);
  }
  free(allowed);
  return status;
}

int wire_declare(luisa *inner, lu_wire *w, lu_value **mirror)
{
  *mirror = NULL;
  int narrays = wire_take_i32(w);
  for (int i = 0; i < narrays && !w->bad; i++) {
    char name[LU_NAME_MAX];
    snprintf(name, sizeof name, "%s", wire_take_text(w));
    int dtype = wire_take_i32(w), ndim = wire_take_i32(w), writable = wire_take_i32(w);
    int64_t shape[LUISA_MAX_DIMS];
    if (!wire_take(w, shape, sizeof shape))
      break;
    FORWARD_IF_ERROR(luisa_array(inner, name, (luisa_dtype)dtype, ndim, shape));
    if (writable)
      FORWARD_IF_ERROR(luisa_field_writable(inner, name));
  }
  int nparams = w->bad ? 0 : wire_take_i32(w);
  RETURN_IF(w->bad || nparams < 0, inner, LUISA_ERR_DATA, "luisa_init: the simulation's declarations arrived cut");
  lu_value *v = calloc((size_t)nparams + 1, sizeof *v);
  RETURN_IF(!v, inner, LUISA_ERR_NOMEM, "luisa_init: out of memory for %d parameters", nparams);
  *mirror = v;
  for (int i = 0; i < nparams; i++)
    FORWARD_IF_ERROR(declare_param(inner, w, &v[i]));
  return LUISA_OK;
}
