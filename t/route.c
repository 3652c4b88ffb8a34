/* route.c: engine/route.c's in transit plan (t/033-route.t): assignments
 * worked out by hand, the balance and locality properties on random cases,
 * refusals, and the init log's text. One process, no MPI. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luisa.h"
#include "route.h"
#include "tap.h"

#define WHY 512
#define MiB ((int64_t)1 << 20)
#define N(a) ((int)(sizeof(a) / sizeof *(a)))
#define mentions(why, ...) tap_mentions((why), (const char *[]){ __VA_ARGS__, NULL })

/* The Makefile links with -Wl,--wrap=calloc, so route_plan's scratch can be refused. */
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
static int refuse_calloc;
void *__wrap_calloc(size_t n, size_t size)
{
  return refuse_calloc ? NULL : __real_calloc(n, size);
}

static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint64_t next(void)      /* xorshift64* */
{
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545F4914F6CDD1Du;
}

static int same(const int *got, const int *want, int n)
{
  for (int i = 0; i < n; i++)
    if (got[i] != want[i]) {
      tap_print("#   ana_of_sim[%d] is %d, expected %d\n", i, got[i], want[i]);
      return 0;
    }
  return 1;
}

/* route_plan on the given arrays must give want (nsim entries). */
#define plan_is(sim_node, sim_bytes, ana_node, ...) \
  plan_is_((sim_node), (sim_bytes), N(sim_node), (ana_node), N(ana_node), (const int[]){ __VA_ARGS__ })
static int plan_is_(const int *sim_node, const int64_t *sim_bytes, int nsim, const int *ana_node, int nana,
                    const int *want)
{
  int got[64];
  char why[WHY] = "";
  int rc = route_plan(nsim, sim_node, sim_bytes, nana, ana_node, got, why, sizeof why);
  if (rc != LUISA_OK) {
    tap_print("#   status %d: %s\n", rc, why);
    return 0;
  }
  return same(got, want, nsim);
}

static void by_hand(void)
{
  { /* sorted 1 (40), 3 (30), 2 (20), 0 (10): 1->0, 3->1, 2->1 (30 < 40), 0->0 (40 < 50) */
    int sn[] = { 0, 0, 0, 0 }, an[] = { 0, 0 };
    int64_t sb[] = { 10, 40, 20, 30 };
    ok(plan_is(sn, sb, an, 0, 0, 1, 1), "1 node, 4 simulation ranks onto 2: largest first, 50 bytes each");
  }
  { /* node 0's ranks to analytics rank 1, node 1's to 0, though 10 bytes against 3 */
    int sn[] = { 0, 0, 1, 1, 1 }, an[] = { 1, 0 };
    int64_t sb[] = { 5, 5, 1, 1, 1 };
    ok(plan_is(sn, sb, an, 1, 1, 0, 0, 0), "2 nodes with an analytics rank each: no rank leaves its node");
  }
  { /* node 0 -> 0 (20), node 1 -> 1 (2); node 2 spills: 4 (7) -> 1 (9), 5 (3) -> 1 (12 < 20) */
    int sn[] = { 0, 0, 1, 1, 2, 2 }, an[] = { 0, 1 };
    int64_t sb[] = { 10, 10, 1, 1, 7, 3 };
    ok(plan_is(sn, sb, an, 0, 0, 1, 1, 1, 1), "a node without analytics ranks spills onto the least loaded");
  }
  { /* all spill: 0 (3) -> 0, 1 (2) -> 1, 2 (1) -> 1 (2 < 3) */
    int sn[] = { 5, 5, 5 }, an[] = { 0, 1 };
    int64_t sb[] = { 3, 2, 1 };
    ok(plan_is(sn, sb, an, 0, 1, 1), "no simulation rank shares a node with an analytics rank: all spill");
  }
  { /* node 0 holds 40 bytes on analytics rank 0: the spill, 2 x 10, goes to the empty 1 and 2 */
    int sn[] = { 0, 0, 9, 9 }, an[] = { 0, 1, 2 };
    int64_t sb[] = { 20, 20, 10, 10 };
    ok(plan_is(sn, sb, an, 0, 0, 1, 2), "the spill counts the loads of the ranks placed on their node");
  }
  { /* node ids need not be small, sorted or non-negative */
    int sn[] = { 7, -3, 7, -3 }, an[] = { -3, 7 };
    int64_t sb[] = { 1, 2, 3, 4 };
    ok(plan_is(sn, sb, an, 1, 0, 1, 0), "node ids -3 and 7, unsorted");
  }
  { /* 2 (100) -> 0, then the four 1-byte ranks all onto 1 */
    int sn[] = { 0, 0, 0, 0, 0 }, an[] = { 0, 0 };
    int64_t sb[] = { 1, 1, 100, 1, 1 };
    ok(plan_is(sn, sb, an, 1, 1, 0, 1, 1), "one big rank alone on an analytics rank, the small ones on the other");
  }
  { /* no bytes: by count, then lowest index */
    int sn[] = { 0, 0, 0, 0, 0, 0, 0 }, an[] = { 0, 0, 0 };
    int64_t sb[7] = { 0 };
    ok(plan_is(sn, sb, an, 0, 1, 2, 0, 1, 2, 0), "all bytes 0: 7 ranks round robin onto 3, 3-2-2");
  }
  { /* equal bytes behave as none */
    int sn[] = { 0, 0, 0, 0 }, an[] = { 0, 0 };
    int64_t sb[] = { 8, 8, 8, 8 };
    ok(plan_is(sn, sb, an, 0, 1, 0, 1), "equal bytes: alternate, lowest index first");
  }
  { /* 1 (7) -> 0, 0 (5) -> 1; 2 has none */
    int sn[] = { 0, 0 }, an[] = { 0, 0, 0 };
    int64_t sb[] = { 5, 7 };
    ok(plan_is(sn, sb, an, 1, 0), "nsim < nana: 2 onto 3, the last analytics rank left without one");
  }
  { /* 2 (9) -> 0, 0 (4) -> 1, 1 (0) -> 2 */
    int sn[] = { 0, 0, 0 }, an[] = { 0, 0, 0 };
    int64_t sb[] = { 4, 0, 9 };
    ok(plan_is(sn, sb, an, 1, 2, 0), "nana == nsim on 1 node: one each");
  }
  { /* node first wins over coverage: node 1's second analytics rank stays without one */
    int sn[] = { 0, 0, 1 }, an[] = { 0, 1, 1 };
    int64_t sb[] = { 1, 1, 1 };
    ok(plan_is(sn, sb, an, 0, 0, 1), "nana == nsim over 2 nodes: node 0's 2 ranks share its 1 analytics rank");
  }
  { /* 1 simulation rank, 1 analytics rank elsewhere */
    int sn[] = { 3 }, an[] = { 4 };
    int64_t sb[] = { 0 };
    ok(plan_is(sn, sb, an, 0), "1 onto 1, on different nodes");
  }
}

/* Random cases: nodes 0..nodes-1, analytics ranks on the first ana_nodes of
 * them; checks locality, coverage, the LPT bound within each node and for
 * the spill, and determinism. */
static void random_case(int nsim, int nodes, int ana_nodes, int64_t max_bytes)
{
  int *sn = malloc(sizeof(int) * (size_t)nsim), *got = malloc(sizeof(int) * (size_t)nsim);
  int *again = malloc(sizeof(int) * (size_t)nsim);
  int64_t *sb = malloc(sizeof(int64_t) * (size_t)nsim);
  int an[64], nana = 0;
  for (int n = 0; n < ana_nodes; n++)
    for (int k = 1 + (int)(next() % 4); k > 0 && nana < 64; k--)
      an[nana++] = n;
  for (int i = 0; i < nsim; i++) {
    sn[i] = (int)(next() % (uint64_t)nodes);
    sb[i] = max_bytes ? (int64_t)(next() % (uint64_t)max_bytes) : 0;
  }
  char why[WHY] = "";
  int rc = route_plan(nsim, sn, sb, nana, an, got, why, sizeof why);
  int rc2 = route_plan(nsim, sn, sb, nana, an, again, why, sizeof why);
  ok(rc == LUISA_OK && rc2 == LUISA_OK && same(again, got, nsim),
     "%d ranks, %d nodes, %d analytics ranks on %d: the same plan twice", nsim, nodes, nana, ana_nodes);

  int64_t load[64] = { 0 }, big[64] = { 0 }, spill_big = 0;
  int count[64] = { 0 }, local = 1, range = 1;
  for (int i = 0; i < nsim; i++) {
    if (got[i] < 0 || got[i] >= nana) {
      range = 0;
      continue;
    }
    load[got[i]] += sb[i];
    count[got[i]]++;
    if (sn[i] < ana_nodes) {
      local &= an[got[i]] == sn[i];
      if (sb[i] > big[sn[i]])
        big[sn[i]] = sb[i];
    } else if (sb[i] > spill_big)
      spill_big = sb[i];
  }
  ok(range && local, "every rank on an analytics node stays on it, every plan in 0..%d", nana - 1);
  if (nodes == ana_nodes) {     /* no spill: LPT's bound within each node */
    int bound = 1, cover = 1;
    for (int n = 0; n < nodes; n++) {
      int64_t lo = INT64_MAX, hi = -1;
      int sims = 0, anas = 0, empty = 0;
      for (int i = 0; i < nsim; i++)
        sims += sn[i] == n;
      for (int j = 0; j < nana; j++)
        if (an[j] == n) {
          anas++;
          empty += !count[j];
          lo = load[j] < lo ? load[j] : lo;
          hi = load[j] > hi ? load[j] : hi;
        }
      if (hi > lo + big[n]) {
        tap_print("#   node %d: loads %lld..%lld, largest rank %lld\n", n, (long long)lo, (long long)hi,
                  (long long)big[n]);
        bound = 0;
      }
      cover &= sims >= anas ? !empty : empty == anas - sims;
    }
    ok(bound, "within each node, max load <= min load + the node's largest rank");
    ok(cover, "each analytics rank has a simulation rank when its node has enough");
  } else {                      /* a rank given spill ends within the largest spill of the least loaded */
    int64_t lo = INT64_MAX;
    for (int j = 0; j < nana; j++)
      lo = load[j] < lo ? load[j] : lo;
    int bound = 1;
    for (int i = 0; i < nsim; i++)
      if (sn[i] >= ana_nodes && load[got[i]] > lo + spill_big) {
        tap_print("#   analytics rank %d: %lld bytes, least %lld, largest spill %lld\n", got[i],
                  (long long)load[got[i]], (long long)lo, (long long)spill_big);
        bound = 0;
      }
    ok(bound, "each analytics rank given spill holds <= min load + the largest spilled rank");
  }
  free(sn), free(got), free(again), free(sb);
}

static void refusals(void)
{
  int sn[] = { 0, 0, 0 }, an[] = { 0 }, out[3];
  int64_t sb[] = { 1, 2, 3 };
  char why[WHY];
  int rc;
#define REFUSED(call, ...) \
  (strcpy(why, ""), rc = (call), ok(rc == LUISA_ERR_ARG && mentions(why, __VA_ARGS__), \
                                    #call " refused: %s", why))
  REFUSED(route_plan(0, sn, sb, 1, an, out, why, sizeof why), "nsim is 0", "at least 1");
  REFUSED(route_plan(-2, sn, sb, 1, an, out, why, sizeof why), "nsim is -2");
  REFUSED(route_plan(3, sn, sb, 0, an, out, why, sizeof why), "nana is 0", "analytics");
  REFUSED(route_plan(3, NULL, sb, 1, an, out, why, sizeof why), "sim_node is NULL", "array of 3");
  REFUSED(route_plan(3, sn, NULL, 1, an, out, why, sizeof why), "sim_bytes is NULL", "array of 3");
  REFUSED(route_plan(3, sn, sb, 1, NULL, out, why, sizeof why), "ana_node is NULL", "array of 1");
  REFUSED(route_plan(3, sn, sb, 1, an, NULL, why, sizeof why), "ana_of_sim is NULL", "array of 3");
  int64_t neg[] = { 1, 2, -5 };
  REFUSED(route_plan(3, sn, neg, 1, an, out, why, sizeof why), "sim_bytes[2] is -5", ">= 0");
  int64_t over[] = { INT64_MAX, 0, 1 };
  REFUSED(route_plan(3, sn, over, 1, an, out, why, sizeof why), "sim_bytes[2]", "INT64_MAX");
  int64_t halves[] = { INT64_MAX / 2 + 1, INT64_MAX / 2 + 1, 0 };
  REFUSED(route_plan(3, sn, halves, 1, an, out, why, sizeof why), "sim_bytes[1]", "INT64_MAX");
  ok(route_plan(0, sn, sb, 1, an, out, NULL, 0) == LUISA_ERR_ARG, "a refusal without a why buffer");
  int64_t full[] = { INT64_MAX - 5, 3, 2 };
  int an2[] = { 0, 0 };
  ok(route_plan(3, sn, full, 2, an2, out, why, sizeof why) == LUISA_OK && out[0] == 0 && out[1] == 1 &&
     out[2] == 1, "bytes summing to INT64_MAX exactly are planned");
  refuse_calloc = 1;
  strcpy(why, "");
  rc = route_plan(3, sn, sb, 1, an, out, why, sizeof why);
  refuse_calloc = 0;
  ok(rc == LUISA_ERR_NOMEM && mentions(why, "out of memory", "3 simulation ranks"),
     "a refused allocation: LUISA_ERR_NOMEM: %s", why);
}

/* The text as TAP comments, when a case failed. */
static void show(int pass, const char *text)
{
  if (pass)
    return;
  tap_print("#   got:\n");
  for (const char *p = text; *p;) {
    const char *end = strchr(p, '\n');
    int n = end ? (int)(end - p) : (int)strlen(p);
    tap_print("#     %.*s\n", n, p);
    p += n + (end != NULL);
  }
}

static void describe(void)
{
  char text[512];
  int an[] = { 1, 0 }, of[] = { 0, 0, 0, 0, 0, 0, 1 };
  int64_t sb[] = { 8 * MiB, 8 * MiB, 8 * MiB, 8 * MiB, 8 * MiB, 8 * MiB, 8 * MiB };
  const char *want = "analytics rank 0 (node 1): simulation ranks 0-5, 48 MiB/step\n"
                     "analytics rank 1 (node 0): simulation rank 6, 8 MiB/step\n";
  size_t len = route_describe(7, sb, 2, an, of, text, sizeof text);
  show(ok(len == strlen(want) && !strcmp(text, want), "a run of ranks and MiB"), text);

  int an4[] = { 0, 0, 2, 3 }, of8[] = { 0, 1, 0, 0, 2, 0, 0, 0 };
  int64_t k[] = { 1000, 1000, 1000, 1000, 0, 1000, 1000, 1000 };
  want = "analytics rank 0 (node 0): simulation ranks 0, 2, 3, 5-7, 5.9 KiB/step\n"
         "analytics rank 1 (node 0): simulation rank 1, 1000 B/step\n"
         "analytics rank 2 (node 2): simulation rank 4, 0 B/step\n"
         "analytics rank 3 (node 3): no simulation rank\n";
  len = route_describe(8, k, 4, an4, of8, text, sizeof text);
  show(ok(len == strlen(want) && !strcmp(text, want), "scattered ranks, KiB, bytes, none"), text);

  size_t whole = len;
  ok(route_describe(8, k, 4, an4, of8, NULL, 0) == whole, "text NULL, cap 0 measures: %zu", whole);
  char small[24];
  memset(small, 'x', sizeof small);
  len = route_describe(8, k, 4, an4, of8, small, 20);
  ok(len == whole && !strcmp(small, "analytics rank 0...") && small[20] == 'x',
     "cut at 20 bytes: \"%s\", nothing written past them", small);
  memset(small, 'x', sizeof small);
  len = route_describe(8, k, 4, an4, of8, small, 3);
  ok(len == whole && !strcmp(small, "an") && small[3] == 'x', "cut at 3 bytes: \"%s\"", small);
  len = route_describe(8, k, 4, an4, of8, small, 1);
  ok(len == whole && small[0] == '\0', "cut at 1 byte: empty");
  strcpy(text, "old");
  ok(route_describe(8, NULL, 4, an4, of8, text, sizeof text) == 0 && !text[0], "sim_bytes NULL: 0 and \"\"");
  strcpy(text, "old");
  ok(route_describe(0, k, 4, an4, of8, text, sizeof text) == 0 && !text[0], "nsim 0: 0 and \"\"");
  int bad[] = { 0, 9, -1 };
  int64_t b3[] = { 1, 1, 1 };
  want = "analytics rank 0 (node 0): simulation rank 0, 1 B/step\n";
  ok(route_describe(3, b3, 1, an4, bad, text, sizeof text) == strlen(want) && !strcmp(text, want),
     "ana_of_sim values out of range are not listed");
  int64_t g[] = { 3 * ((int64_t)1 << 30) + 512 * MiB };
  want = "analytics rank 0 (node 0): simulation rank 0, 3.5 GiB/step\n";
  route_describe(1, g, 1, an4, of, text, sizeof text);
  show(ok(!strcmp(text, want), "GiB with a decimal"), text);

  /* A plan made here, described: the line the init log would carry. */
  int sn[] = { 0, 0, 0, 0, 1, 1 }, an2[] = { 0, 1 }, out[6];
  int64_t sb6[] = { 16 * MiB, 16 * MiB, 16 * MiB, 16 * MiB, 16 * MiB, 16 * MiB };
  char why[WHY];
  want = "analytics rank 0 (node 0): simulation ranks 0-3, 64 MiB/step\n"
         "analytics rank 1 (node 1): simulation ranks 4, 5, 32 MiB/step\n";
  show(ok(route_plan(6, sn, sb6, 2, an2, out, why, sizeof why) == LUISA_OK &&
     route_describe(6, sb6, 2, an2, out, text, sizeof text) == strlen(want) && !strcmp(text, want),
     "plan then describe"), text);
}

int main(void)
{
  by_hand();
  random_case(300, 4, 4, 1 << 20);
  random_case(300, 4, 4, 0);
  random_case(40, 8, 8, 1000);          /* some nodes with fewer ranks than analytics ranks */
  random_case(500, 6, 3, 1 << 24);      /* half the nodes spill */
  random_case(50, 3, 1, 100);
  refusals();
  describe();
  return tap_done();
}
