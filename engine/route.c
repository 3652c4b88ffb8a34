/* route.c: which analytics rank receives each simulation rank's chunks in
 * transit mode: node first, then balanced by bytes, largest first (LPT). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "luisa.h"
#include "route.h"
#include "say.h"

typedef struct sim { int node, i; int64_t bytes; } sim;
typedef struct ana { int node, j; } ana;

static int cmp_int(int a, int b) { return (a > b) - (a < b); }

/* Largest first; equal bytes, lowest index: a total order, so qsort's lack
 * of stability cannot make two ranks' plans differ. */
static int by_bytes(const void *pa, const void *pb)
{
  const sim *a = pa, *b = pb;
  if (a->bytes != b->bytes)
    return a->bytes > b->bytes ? -1 : 1;
  return cmp_int(a->i, b->i);
}

static int by_node_bytes(const void *pa, const void *pb)
{
  const sim *a = pa, *b = pb;
  return a->node != b->node ? cmp_int(a->node, b->node) : by_bytes(pa, pb);
}

static int by_node(const void *pa, const void *pb)
{
  const ana *a = pa, *b = pb;
  return a->node != b->node ? cmp_int(a->node, b->node) : cmp_int(a->j, b->j);
}

/* The candidate with the fewest bytes, then the fewest ranks; the list is
 * in ascending j, so a strict comparison keeps the lowest j on ties. */
static int least(const ana *cand, int n, const int64_t *load, const int *count)
{
  int best = cand[0].j;
  for (int k = 1; k < n; k++) {
    int j = cand[k].j;
    if (load[j] < load[best] || (load[j] == load[best] && count[j] < count[best]))
      best = j;
  }
  return best;
}

static void place(const sim *s, const ana *cand, int n, int64_t *load, int *count, int *ana_of_sim)
{
  int j = least(cand, n, load, count);
  load[j] += s->bytes;          /* <= the total, checked not to overflow */
  count[j]++;
  ana_of_sim[s->i] = j;
}

int route_plan(int nsim, const int *sim_node, const int64_t *sim_bytes, int nana,
               const int *ana_node, int *ana_of_sim, char *why, size_t cap)
{
  if (nsim < 1)
    return lu_say(why, cap, LUISA_ERR_ARG, "route_plan: nsim is %d: at least 1 simulation rank is needed", nsim);
  if (nana < 1)
    return lu_say(why, cap, LUISA_ERR_ARG, "route_plan: nana is %d: at least 1 analytics rank is needed", nana);
  const char *null = !sim_node ? "sim_node" : !sim_bytes ? "sim_bytes" : !ana_node ? "ana_node"
                   : !ana_of_sim ? "ana_of_sim" : NULL;
  if (null)
    return lu_say(why, cap, LUISA_ERR_ARG, "route_plan: %s is NULL: an array of %d is needed", null,
                  ana_node || !sim_node || !sim_bytes ? nsim : nana);
  int64_t total = 0;
  for (int i = 0; i < nsim; i++) {
    if (sim_bytes[i] < 0)
      return lu_say(why, cap, LUISA_ERR_ARG, "route_plan: sim_bytes[%d] is %lld: bytes per step must be >= 0",
                    i, (long long)sim_bytes[i]);
    if (sim_bytes[i] > INT64_MAX - total)
      return lu_say(why, cap, LUISA_ERR_ARG, "route_plan: sim_bytes summed to sim_bytes[%d] exceed INT64_MAX "
                    "(%lld): bytes per step too large to balance", i, (long long)INT64_MAX);
    total += sim_bytes[i];
  }

  sim *s = calloc((size_t)nsim, sizeof *s);
  ana *a = calloc((size_t)nana, sizeof *a);
  int64_t *load = calloc((size_t)nana, sizeof *load);
  int *count = calloc((size_t)nana, sizeof *count);
  if (!s || !a || !load || !count) {
    free(s), free(a), free(load), free(count);
    return lu_say(why, cap, LUISA_ERR_NOMEM, "route_plan: out of memory planning %d simulation ranks onto %d "
                  "analytics ranks", nsim, nana);
  }
  for (int i = 0; i < nsim; i++)
    s[i] = (sim){ sim_node[i], i, sim_bytes[i] };
  for (int j = 0; j < nana; j++)
    a[j] = (ana){ ana_node[j], j };
  qsort(s, (size_t)nsim, sizeof *s, by_node_bytes);
  qsort(a, (size_t)nana, sizeof *a, by_node);

  /* Rule 1, node by node; the spill moves to the front of s (k <= r: it
   * only overwrites entries already read). */
  int spill = 0;
  for (int r = 0, end; r < nsim; r = end) {
    for (end = r + 1; end < nsim && s[end].node == s[r].node; end++)
      ;
    int lo = 0, hi = nana;      /* the first analytics rank with node >= s[r].node */
    while (lo < hi) {
      int mid = lo + (hi - lo) / 2;
      if (a[mid].node < s[r].node)
        lo = mid + 1;
      else
        hi = mid;
    }
    int n = 0;
    while (lo + n < nana && a[lo + n].node == s[r].node)
      n++;
    for (int k = r; k < end; k++)
      if (n)
        place(&s[k], a + lo, n, load, count, ana_of_sim);
      else
        s[spill++] = s[k];
  }
  /* Rule 2: the spill, largest first onto every analytics rank, in j order. */
  if (spill) {
    qsort(s, (size_t)spill, sizeof *s, by_bytes);
    for (int j = 0; j < nana; j++)
      a[j] = (ana){ ana_node[j], j };
    for (int k = 0; k < spill; k++)
      place(&s[k], a, nana, load, count, ana_of_sim);
  }
  free(s), free(a), free(load), free(count);
  return LUISA_OK;
}

/* Appends to text[0..cap) as snprintf would, counting in *len what did not fit. */
static void put(char *text, size_t cap, size_t *len, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
static void put(char *text, size_t cap, size_t *len, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = *len < cap ? vsnprintf(text + *len, cap - *len, fmt, ap) : vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n > 0)
    *len += (size_t)n;
}

static void put_bytes(char *text, size_t cap, size_t *len, int64_t b)
{
  static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
  int u = 0;
  int64_t scale = 1;
  while (u < 6 && b / scale >= 1024)
    scale *= 1024, u++;
  if (b % scale == 0)
    put(text, cap, len, "%lld %s/step", (long long)(b / scale), unit[u]);
  else
    put(text, cap, len, "%.1f %s/step", (double)b / (double)scale, unit[u]);
}

size_t route_describe(int nsim, const int64_t *sim_bytes, int nana, const int *ana_node,
                      const int *ana_of_sim, char *text, size_t cap)
{
  size_t len = 0;
  if (text && cap)
    text[0] = '\0';
  if (nsim < 1 || nana < 1 || !sim_bytes || !ana_node || !ana_of_sim || (!text && cap))
    return 0;
  for (int j = 0; j < nana; j++) {
    int n = 0;
    int64_t bytes = 0;
    for (int i = 0; i < nsim; i++)
      if (ana_of_sim[i] == j) {
        n++;
        bytes = sim_bytes[i] > INT64_MAX - bytes ? INT64_MAX : bytes + sim_bytes[i];
      }
    put(text, cap, &len, "analytics rank %d (node %d): ", j, ana_node[j]);
    if (!n) {
      put(text, cap, &len, "no simulation rank\n");
      continue;
    }
    put(text, cap, &len, "simulation rank%s ", n == 1 ? "" : "s");
    /* Runs of 3 or more consecutive ranks as "a-b", as error_ranks does. */
    for (int i = 0, listed = 0; i < nsim; i++) {
      if (ana_of_sim[i] != j)
        continue;
      int last = i;
      while (last + 1 < nsim && ana_of_sim[last + 1] == j)
        last++;
      if (last - i >= 2)
        put(text, cap, &len, "%s%d-%d", listed++ ? ", " : "", i, last);
      else
        for (int k = i; k <= last; k++)
          put(text, cap, &len, "%s%d", listed++ ? ", " : "", k);
      i = last;
    }
    put(text, cap, &len, ", ");
    put_bytes(text, cap, &len, bytes);
    put(text, cap, &len, "\n");
  }
  if (len >= cap && cap >= 4) {
    text[cap - 4] = text[cap - 3] = text[cap - 2] = '.';
    text[cap - 1] = '\0';
  }
  return len;
}
