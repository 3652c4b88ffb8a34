/* pin.c: engine/pin.c's placement of the analytics thread, against the
 * bindings the launcher gave (t/031-pin.t runs each case under mpirun).
 * Expected sets come from the kernel (sched_getaffinity) and hwloc's PU
 * objects, not from pin.c's cpusets. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hwloc.h>
#include <mpi.h>
#include "luisa.h"
#include "pin.h"
#include "tap.h"

#define WORDS 16                        /* PU sets as masks: up to 1024 PUs */
typedef struct pus { uint64_t w[WORDS]; } pus;

static int rank, size;
static hwloc_topology_t topo;
static pus machine, bound;              /* PUs this process may use; the launcher's binding */

static int has(const pus *s, int i) { return (int)(s->w[i / 64] >> (i % 64) & 1); }
static void add(pus *s, int i) { s->w[i / 64] |= (uint64_t)1 << (i % 64); }
static int count(const pus *s)
{
  int n = 0;
  for (int i = 0; i < 64 * WORDS; i++)
    n += has(s, i);
  return n;
}
static int nth(const pus *s, int k)
{
  for (int i = 0; i < 64 * WORDS; i++)
    if (has(s, i) && k-- == 0)
      return i;
  return -1;
}
static int same(const pus *a, const pus *b) { return !memcmp(a, b, sizeof *a); }
static pus one(int i) { pus s = { { 0 } }; add(&s, i); return s; }

/* "0-2,5", as taskset -c prints. */
static const char *list(const pus *s, char *buf)
{
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < 64 * WORDS; i++) {
    if (!has(s, i))
      continue;
    int j = i;
    while (j + 1 < 64 * WORDS && has(s, j + 1))
      j++;
    n += (size_t)sprintf(buf + n, n ? ",%d" : "%d", i);
    if (j > i)
      n += (size_t)sprintf(buf + n, "-%d", j);
    i = j;
  }
  return buf;
}
static const char *word(const pus *s) { return count(s) == 1 ? "PU" : "PUs"; }

static pus from_cpuset(const cpu_set_t *c)
{
  pus s = { { 0 } };
  for (int i = 0; i < 64 * WORDS && i < CPU_SETSIZE; i++)
    if (CPU_ISSET(i, c))
      add(&s, i);
  return s;
}

static pus my_binding(void)
{
  cpu_set_t c;
  CPU_ZERO(&c);
  if (sched_getaffinity(0, sizeof c, &c) != 0)
    perror("sched_getaffinity");
  return from_cpuset(&c);
}

/* The PUs of every rank of the run, all on this machine. */
static pus everyones(const pus *mine)
{
  pus u;
  MPI_Allreduce(mine->w, u.w, WORDS, MPI_UINT64_T, MPI_BOR, MPI_COMM_WORLD);
  return u;
}

/* A condition over every rank, as one assertion printed by rank 0. */
static int all(int mine)
{
  int every;
  MPI_Allreduce(&mine, &every, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return every;
}

#define check(cond, ...) ok(all(cond), __VA_ARGS__)
#define say(...) (printf("#   rank %d: ", rank), printf(__VA_ARGS__), printf("\n"), fflush(stdout))

/* What the analytics thread sees once it called pin_self. */
typedef struct probe {
  const lu_pin *p;
  int self;
  char why[256], hw[256];
  pus kernel;
} probe;

static void *thread(void *arg)
{
  probe *q = arg;
  q->self = pin_self(q->p, q->why, sizeof q->why);
  hwloc_bitmap_t b = hwloc_bitmap_alloc();
  snprintf(q->hw, sizeof q->hw, "?");
  if (b && hwloc_get_cpubind(topo, b, HWLOC_CPUBIND_THREAD) == 0)
    hwloc_bitmap_list_snprintf(q->hw, sizeof q->hw, b);
  hwloc_bitmap_free(b);
  cpu_set_t c;
  CPU_ZERO(&c);
  if (pthread_getaffinity_np(pthread_self(), sizeof c, &c) == 0)
    q->kernel = from_cpuset(&c);
  return NULL;
}

/* Runs an analytics thread on p: 1 if pin_self succeeded and both hwloc
 * and the kernel say the thread runs on exactly want. */
static int thread_on(const lu_pin *p, const pus *want)
{
  probe q = { .p = p };
  pthread_t t;
  char w[1024], k[1024];
  if (pthread_create(&t, NULL, thread, &q) != 0 || pthread_join(t, NULL) != 0)
    return say("pthread_create failed"), 0;
  list(want, w);
  int good = q.self == 0 && !strcmp(q.hw, w) && same(&q.kernel, want);
  if (!good)
    say("pin_self %d (%s); thread on %s by hwloc, %s by the kernel; expected %s", q.self, q.why, q.hw,
        list(&q.kernel, k), w);
  return good;
}

/* pin_plan(cpuset) succeeded and chose want (unpinned: an empty want). */
static lu_pin *plan_ok(const char *cpuset, const pus *want, const char *placement_want, int *good)
{
  lu_pin *p = NULL;
  char placement[512], why[512], got[256], w[1024];
  int st = pin_plan(MPI_COMM_WORLD, cpuset, &p, placement, sizeof placement, why, sizeof why);
  int pinned = st == LUISA_OK ? pin_pinned(p, got, sizeof got) : -1;
  list(want, w);
  *good = st == LUISA_OK && p && pinned == (count(want) > 0) && !strcmp(got, w) &&
          (!placement_want || !strcmp(placement, placement_want));
  if (!*good)
    say("pin_plan(\"%s\"): status %d (%s), pinned %d on \"%s\" (expected \"%s\"), placement:\n#     %s%s%s",
        cpuset ? cpuset : "NULL", st, why, pinned, st == LUISA_OK ? got : "", w, placement,
        placement_want ? "\n#   expected:\n#     " : "", placement_want ? placement_want : "");
  return p;
}

/* pin_plan(cpuset) is refused with LUISA_ERR_ARG, why containing every fragment. */
static int refused(const char *cpuset, const char **frags)
{
  lu_pin *p = (lu_pin *)&p;
  char placement[512] = "x", why[512];
  int st = pin_plan(MPI_COMM_WORLD, cpuset, &p, placement, sizeof placement, why, sizeof why);
  int good = st == LUISA_ERR_ARG && !p && !placement[0];
  for (; *frags; frags++)
    if (!strstr(why, *frags)) {
      good = 0;
      say("\"%s\" missing", *frags);
    }
  if (!good)
    say("pin_plan(\"%s\"): status %d, out %p, placement \"%s\", why: %s", cpuset, st, (void *)p, placement, why);
  pin_free(st == LUISA_OK ? p : NULL);
  return good;
}

/* "(the simulation is bound to PU 0)" and its variants, as pin.c words them. */
static const char *beside(const pus *chosen, const pus *used, int nlocal, char *buf)
{
  char u[1024];
  int shared = 0;
  for (int i = 0; i < 64 * WORDS; i++)
    shared |= has(chosen, i) && has(used, i);
  if (nlocal == 1)
    sprintf(buf, "%s bound to %s %s", shared ? "shared with the simulation, which is" : "the simulation is",
            word(used), list(used, u));
  else
    sprintf(buf, "%s %d ranks on this node are bound to %s %s",
            shared ? "shared with the simulation, whose" : "the simulation's", nlocal, word(used), list(used, u));
  return buf;
}

/* One rank bound to one core: auto takes the first PU it does not use. */
static void bound_alone(void)
{
  char a[1024], b[1024], want[2048], ctx[1024];
  int good;
  ok(size == 1 && count(&bound) < count(&machine), "one rank, bound by the launcher to %s %s of %s",
     word(&bound), list(&bound, a), list(&machine, b));
  pus free = machine;
  for (int i = 0; i < 64 * WORDS; i++)
    if (has(&bound, i))
      free.w[i / 64] &= ~((uint64_t)1 << (i % 64));
  pus want_set = one(nth(&free, 0));
  snprintf(want, sizeof want, "analytics thread on PU %d (%s)", nth(&free, 0), beside(&want_set, &bound, 1, ctx));
  lu_pin *p = plan_ok("auto", &want_set, want, &good);
  ok(good, "auto: PU %s, the first the simulation does not use; placement says so", list(&want_set, a));
  ok(thread_on(p, &want_set), "pin_self binds the analytics thread there (hwloc and the kernel agree)");
  pus now = my_binding();
  ok(same(&now, &bound), "the simulation's thread keeps its binding (%s)", list(&now, a));
  pin_free(p);
  p = plan_ok(NULL, &want_set, want, &good);
  pin_free(p);
  int null_ok = good;
  p = plan_ok("", &want_set, want, &good);
  pin_free(p);
  ok(null_ok && good, "a NULL or empty cpuset means auto");

  /* The machine's last PU, named. */
  int last = nth(&machine, count(&machine) - 1);
  char cpuset[64];
  snprintf(cpuset, sizeof cpuset, "%d", last);
  pus last_set = one(last);
  snprintf(want, sizeof want, "analytics thread on PU %d, as cpuset \"%s\" asks (%s)", last, cpuset,
           beside(&last_set, &bound, 1, ctx));
  p = plan_ok(cpuset, &last_set, want, &good);
  ok(good, "cpuset \"%s\", the last PU: chosen, placement says so", cpuset);
  ok(thread_on(p, &last_set), "pin_self binds the analytics thread to PU %d", last);
  pin_free(p);

  /* A list as long as the node's ranks (one): its first PU, shared with the simulation if so. */
  int first = nth(&machine, 0);
  snprintf(cpuset, sizeof cpuset, "%d-%d", first, last);
  pus first_set = one(first);
  snprintf(want, sizeof want, "analytics thread on PU %d, as cpuset \"%s\" asks (%s)", first, cpuset,
           beside(&first_set, &bound, 1, ctx));
  p = plan_ok(cpuset, &first_set, want, &good);
  ok(good, "cpuset \"%s\" on one rank: its first PU, %d", cpuset, first);
  ok(thread_on(p, &first_set), "pin_self binds the analytics thread to PU %d", first);
  pin_free(p);

  ok(pin_self(NULL, NULL, 0) == 0 && pin_pinned(NULL, a, sizeof a) == 0 && !a[0] && (pin_free(NULL), 1),
     "pin_self(NULL) does nothing, pin_pinned(NULL) is 0 and \"\", pin_free(NULL) is harmless");
}

/* Refusals, alike on every rank. */
static void bad_lists(void)
{
  char all_pus[1024], frag[1200];
  list(&machine, all_pus);
  snprintf(frag, sizeof frag, "which this machine does not have (its PUs are %s)", all_pus);
  const char *syntax = "is not \"auto\" nor a list of processing units such as \"1\", \"2-3\" or \"1,5\"";
  check(refused("banana", (const char *[]){ "cpuset \"banana\" ", syntax, "(at character 1)", NULL }),
     "\"banana\" is refused on every rank, naming it");
  check((nth(&machine, count(&machine) - 1) < 999) &
        refused("999", (const char *[]){ "cpuset \"999\" names PU 999, ", frag, NULL }),
     "\"999\": no such PU, refused naming it and the machine's PUs");
  check(refused(" ", (const char *[]){ "cpuset \" \" is blank", NULL }), "\" \": blank, refused");
  check(refused(" 1", (const char *[]){ "cpuset \" 1\" ", syntax, "(at character 1)", NULL }),
     "\" 1\": spaces are not part of a list");
  check(refused("-1", (const char *[]){ "cpuset \"-1\" ", syntax, "(at character 1)", NULL }),
     "\"-1\": refused");
  check(refused("1-0", (const char *[]){ "cpuset \"1-0\" has a range that runs backwards (1-0)", NULL }),
     "\"1-0\": a backwards range, refused");
  check(refused("0,", (const char *[]){ "cpuset \"0,\" ", syntax, "(at character 3)", NULL }),
     "\"0,\": a trailing comma, refused");
  check(refused("0-", (const char *[]){ "cpuset \"0-\" ", syntax, "(at character 3)", NULL }),
     "\"0-\": an open range, refused");
  check(refused("99999999999999999999999", (const char *[]){ "names PU 99999999999999999999999, ", frag, NULL }),
     "a PU number past any integer: refused as no such PU");
}

/* The launcher bound nobody: the thread runs unpinned, and pin_self leaves it be. */
static void unbound(void)
{
  char a[1024], want[1024];
  int good;
  ok(all(same(&bound, &machine)), "%d rank%s, not bound by the launcher (%s)", size, size > 1 ? "s" : "",
     list(&bound, a));
  snprintf(want, sizeof want, "the simulation is not bound to processing units (it may run on %s %s): "
           "the analytics thread runs unpinned, sharing them", word(&machine), list(&machine, a));
  pus none = { { 0 } };
  lu_pin *p = plan_ok("auto", &none, want, &good);
  check(good, "auto: unpinned, placement says the simulation is not bound");
  check(thread_on(p, &machine), "pin_self does nothing: the thread may run on every PU");
  pin_free(p);
}

/* Ranks each bound to one core (maybe the same): auto takes the PUs free of
 * them all if there is one for each rank, else leaves the threads unpinned. */
static void bound_ranks(void)
{
  char a[1024], b[1024], want[2048], ctx[1024];
  int good;
  pus used = everyones(&bound);
  check(count(&bound) < count(&machine), "%d ranks, each bound by the launcher (this one to %s)", size,
        list(&bound, a));
  pus free = machine;
  for (int i = 0; i < 64 * WORDS; i++)
    if (has(&used, i))
      free.w[i / 64] &= ~((uint64_t)1 << (i % 64));
  pus none = { { 0 } }, want_set = count(&free) >= size ? one(nth(&free, rank)) : none;
  if (count(&free) == 0)
    snprintf(want, sizeof want, "no free processing unit (the simulation's ranks use %s %s): "
             "the analytics thread runs unpinned, sharing them", word(&used), list(&used, a));
  else if (count(&free) < size)
    snprintf(want, sizeof want, "%d free processing unit%s (%s %s) for the %d ranks on this node "
             "(the simulation's ranks use %s %s): the analytics thread runs unpinned, sharing them",
             count(&free), count(&free) == 1 ? "" : "s", word(&free), list(&free, a), size, word(&used),
             list(&used, b));
  else
    snprintf(want, sizeof want, "analytics thread on PU %d (%s)", nth(&free, rank),
             beside(&want_set, &used, size, ctx));
  lu_pin *p = plan_ok("auto", &want_set, want, &good);
  check(good, "auto with %d free PUs for %d ranks: %s", count(&free), size,
        count(&free) >= size ? "a free PU each" : "fewer than one each: unpinned, placement says so");
  pin_free(p);

  /* A one-PU list, shorter than the node's ranks: every thread on all of it. */
  int last = nth(&machine, count(&machine) - 1);
  char cpuset[64];
  snprintf(cpuset, sizeof cpuset, "%d", last);
  pus last_set = one(last);
  snprintf(want, sizeof want, "analytics thread on PU %d, the whole of cpuset \"%s\": it has fewer PUs than the "
           "%d ranks on this node (%s)", last, cpuset, size, beside(&last_set, &used, size, ctx));
  p = plan_ok(cpuset, &last_set, want, &good);
  check(good, "cpuset \"%s\" for %d ranks: every thread on PU %d, placement says why", cpuset, size, last);
  check(thread_on(p, &last_set), "pin_self binds every rank's thread to PU %d", last);
  pin_free(p);

  /* Every PU: one each, in rank order, if there are enough; else all of them. */
  snprintf(cpuset, sizeof cpuset, "%d-%d", nth(&machine, 0), last);
  int each = count(&machine) >= size;
  pus mine = each ? one(nth(&machine, rank)) : machine;
  if (each)
    snprintf(want, sizeof want, "analytics thread on PU %d, as cpuset \"%s\" asks (%s)", nth(&machine, rank),
             cpuset, beside(&mine, &used, size, ctx));
  else
    snprintf(want, sizeof want, "analytics thread on %s %s, the whole of cpuset \"%s\": it has fewer PUs than "
             "the %d ranks on this node (%s)", word(&mine), list(&mine, a), cpuset, size,
             beside(&mine, &used, size, ctx));
  p = plan_ok(cpuset, &mine, want, &good);
  check(good, "cpuset \"%s\" for %d ranks: %s", cpuset, size,
        each ? "rank i takes its i-th PU" : "every thread on all of it");
  check(thread_on(p, &mine), "pin_self binds each rank's thread there");
  pin_free(p);
}

/* A bad cpuset on one rank only: every rank refuses, naming it. */
static void bad_on_one(int bad_rank, const char *bad, const char *fragment)
{
  char why[512], placement[512], want[256];
  lu_pin *p = (lu_pin *)&p;
  int st = pin_plan(MPI_COMM_WORLD, rank == bad_rank ? bad : "auto", &p, placement, sizeof placement, why,
                    sizeof why);
  check(st == LUISA_ERR_ARG && !p && !placement[0], "\"%s\" on rank %d only: every rank refuses", bad, bad_rank);
  snprintf(want, sizeof want, "cpuset \"%s\" %s", bad, fragment);
  char prefix[32];
  snprintf(prefix, sizeof prefix, "rank %d: ", bad_rank);
  int says = rank == bad_rank ? !strncmp(why, want, strlen(want))
                              : !strncmp(why, prefix, strlen(prefix)) && !strncmp(why + strlen(prefix), want, strlen(want));
  if (!says)
    say("why: %s", why);
  check(says, "rank %d names the value, the others name rank %d and its value", bad_rank, bad_rank);
  if (st == LUISA_OK)
    pin_free(p);
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  const char *what = argc > 2 ? argv[1] : "";
  tap_count = argc > 2 ? atoi(argv[2]) - 1 : 0;
  if (hwloc_topology_init(&topo) != 0 || hwloc_topology_load(topo) != 0) {
    ok(0, "hwloc loads the topology");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  for (hwloc_obj_t pu = NULL; (pu = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PU, pu));)
    if (pu->os_index < 64 * WORDS)
      add(&machine, (int)pu->os_index);
  bound = my_binding();
  if (!strcmp(what, "alone")) {
    bound_alone();
  } else if (!strcmp(what, "unbound")) {
    unbound();
  } else if (!strcmp(what, "ranks")) {
    bound_ranks();
  } else if (!strcmp(what, "bad")) {
    bad_lists();
  } else if (!strcmp(what, "bad_on_one")) {
    bad_on_one(1, "banana", "is not \"auto\" nor a list");
    bad_on_one(0, "999", "names PU 999, which this machine does not have");
    bad_on_one(size - 1, "1-0", "has a range that runs backwards");
  } else {
    ok(0, "usage: pin alone | unbound | ranks | bad | bad_on_one FIRST");
  }
  hwloc_topology_destroy(topo);
  MPI_Finalize();
  return tap_failed != 0;
}
