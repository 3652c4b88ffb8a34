/* schedule.c: a copy of the running plan's schedule for the simulation's
 * side. When unsure it answers "wanted" and "may assign": a chunk published
 * for nothing costs a copy, one missing would fail the analysis. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "script.h"
#include "schedule.h"
#include "store.h"
#include "wire.h"

static int grow(void **p, size_t *cap, size_t need, size_t each)
{
  if (need <= *cap)
    return 1;
  void *grown = realloc(*p, need * each);
  if (!grown)
    return 0;
  *p = grown;
  *cap = need;
  return 1;
}

void schedule_take(const luisa *lz, lu_schedule *s, int64_t until)
{
  const lu_script *sc = lz->script;
  s->known = 0;
  s->until = until;
  if (!lz->began)
    return;
  int n = sc && lz->declarations_ok ? sc->c.ncallbacks : 0, nflat = 0;
  for (int a = 0; a < lz->narrays; a++)
    nflat += lz->arrays[a].nchunks;
  size_t ncb = (size_t)n + 1, na = (size_t)lz->narrays + 1;
  if (!grow((void **)&s->every, &s->caps[0], ncb, sizeof *s->every) ||
      !grow((void **)&s->enabled, &s->caps[1], ncb, 1) || !grow((void **)&s->assigns, &s->caps[2], ncb, sizeof *s->assigns) ||
      !grow((void **)&s->kept, &s->caps[3], na, 1) || !grow((void **)&s->base, &s->caps[4], na, sizeof(int)) ||
      !grow((void **)&s->nchunks, &s->caps[5], na, sizeof(int)) ||
      !grow((void **)&s->reads, &s->caps[6], (size_t)n * (size_t)nflat + 1, 1))
    return;
  s->ncallbacks = n;
  s->nflat = nflat;
  for (int a = 0, at = 0; a < lz->narrays; at += lz->arrays[a].nchunks, a++) {
    s->base[a] = at;
    s->nchunks[a] = lz->arrays[a].nchunks;
    s->kept[a] = sc && store_versions_kept(lz, &lz->arrays[a]) > 0;
  }
  for (int i = 0; i < n; i++) {
    const lu_callback *cb = &sc->c.callbacks[i];
    s->every[i] = cb->every;
    s->enabled[i] = (unsigned char)cb->enabled;
    s->assigns[i] = cb->assigns && cb->target >= 0 ? cb->target + 1 : 0;
    for (int a = 0; a < lz->narrays; a++)
      for (int c = 0; c < lz->arrays[a].nchunks; c++)
        s->reads[(size_t)i * (size_t)nflat + (size_t)(s->base[a] + c)] = cb->reads && cb->reads[a] && cb->reads[a][c];
  }
  s->known = 1;
}

static int due(const lu_schedule *s, int i, int64_t step, int any_due)
{
  return s->enabled[i] && (s->every[i] > 0 ? step % s->every[i] == 0 : any_due);
}

static int any_due(const lu_schedule *s, int64_t step)
{
  for (int i = 0; i < s->ncallbacks; i++)
    if (s->enabled[i] && s->every[i] > 0 && step % s->every[i] == 0)
      return 1;
  return 0;
}

int schedule_wants(const lu_schedule *s, int a, int chunk, int64_t step, int64_t call)
{
  if (!s->known || call > s->until || s->kept[a])
    return 1;
  for (int i = 0; i < s->ncallbacks; i++)   /* its buffer receives what they wrote max_lag steps ago */
    if (s->enabled[i] && s->assigns[i] == a + 1)
      return 1;
  int any = any_due(s, step), lo = chunk < 0 ? 0 : chunk, hi = chunk < 0 ? s->nchunks[a] : chunk + 1;
  for (int i = 0; i < s->ncallbacks; i++) {
    const unsigned char *r = s->reads + (size_t)i * (size_t)s->nflat + (size_t)s->base[a];
    for (int c = lo; c < hi && due(s, i, step, any); c++)
      if (r[c])
        return 1;
  }
  return 0;
}

void schedule_put(const lu_schedule *s, const int *flat, const int *counts, int narrays, lu_wire *w)
{
  int known = s->known, n = known ? s->ncallbacks : 0, nflat = 0;
  for (int a = 0; a < narrays; a++)
    nflat += counts[a];
  wire_i32(w, known);
  wire_put(w, &s->until, sizeof s->until);
  wire_i32(w, n);
  wire_i32(w, narrays);
  wire_put(w, counts, (size_t)narrays * sizeof *counts);
  if (!known)
    return;
  wire_put(w, s->every, (size_t)n * sizeof *s->every);
  wire_put(w, s->enabled, (size_t)n);
  wire_put(w, s->assigns, (size_t)n * sizeof *s->assigns);
  wire_put(w, s->kept, (size_t)narrays);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < nflat; k++)
      wire_put(w, &s->reads[(size_t)i * (size_t)s->nflat + (size_t)flat[k]], 1);
}

void schedule_get(lu_schedule *s, const luisa *lz, lu_wire *w)
{
  s->known = 0;
  int known = wire_take_i32(w);
  int64_t until = 0;
  wire_take(w, &until, sizeof until);
  int n = wire_take_i32(w), narrays = wire_take_i32(w), nflat = 0;
  if (w->bad || !known || narrays != lz->narrays || n < 0)
    return;
  for (int a = 0; a < narrays; a++) {
    int count = wire_take_i32(w);
    if (count != lz->arrays[a].nchunks)
      return;
    nflat += count;
  }
  size_t ncb = (size_t)n + 1, na = (size_t)narrays + 1;
  if (!grow((void **)&s->every, &s->caps[0], ncb, sizeof *s->every) ||
      !grow((void **)&s->enabled, &s->caps[1], ncb, 1) || !grow((void **)&s->assigns, &s->caps[2], ncb, sizeof *s->assigns) ||
      !grow((void **)&s->kept, &s->caps[3], na, 1) || !grow((void **)&s->base, &s->caps[4], na, sizeof(int)) ||
      !grow((void **)&s->nchunks, &s->caps[5], na, sizeof(int)) ||
      !grow((void **)&s->reads, &s->caps[6], (size_t)n * (size_t)nflat + 1, 1))
    return;
  wire_take(w, s->every, (size_t)n * sizeof *s->every);
  wire_take(w, s->enabled, (size_t)n);
  wire_take(w, s->assigns, (size_t)n * sizeof *s->assigns);
  wire_take(w, s->kept, (size_t)narrays);
  wire_take(w, s->reads, (size_t)n * (size_t)nflat);
  for (int a = 0, at = 0; a < narrays; at += lz->arrays[a].nchunks, a++) {
    s->base[a] = at;
    s->nchunks[a] = lz->arrays[a].nchunks;
  }
  s->ncallbacks = n;
  s->nflat = nflat;
  s->until = until;
  s->known = !w->bad;
}

void schedule_free(lu_schedule *s)
{
  free(s->every);
  free(s->enabled);
  free(s->assigns);
  free(s->kept);
  free(s->base);
  free(s->nchunks);
  free(s->reads);
  memset(s, 0, sizeof *s);
}
