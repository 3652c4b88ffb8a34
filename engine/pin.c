/* pin.c: which processing units (PUs) each rank's analytics thread runs on,
 * decided from the bindings of the node's ranks (hwloc), and applied by it. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hwloc.h>
#include "luisa.h"
#include "pin.h"
#include "say.h"

#define MSG_MAX 512     /* a refusal's sentence, as broadcast to the other ranks */
#define LIST_MAX 256    /* a PU list quoted in a sentence */
#define QUOTE_MAX 64    /* characters of a cpuset quoted in a sentence */
#define WORD_BITS (CHAR_BIT * (unsigned)sizeof(unsigned long))

struct lu_pin {
  hwloc_topology_t topo;          /* NULL when unpinned */
  hwloc_bitmap_t set;             /* NULL when unpinned */
};

/* What pin_plan works with, all allocated before its collectives, so that
 * no rank leaves between two collectives the others make. */
typedef struct work {
  hwloc_topology_t topo;
  int loaded;                     /* topo was initialised: destroy it */
  hwloc_const_bitmap_t all;       /* the machine's PUs, allowed or not */
  hwloc_const_bitmap_t allowed;   /* those this process may use */
  hwloc_bitmap_t bound, list, used, free, chosen;
  int explicit_list, unbound, pinned;
  unsigned nr;                    /* unsigned longs in a bitmap of every PU */
  unsigned long *masks;           /* nr for the PUs the node's ranks use, then 1 if one is unbound */
  lu_pin *pin;
} work;

/* "PU" or "PUs", to go before a list. */
static const char *pus(hwloc_const_bitmap_t set)
{
  return hwloc_bitmap_weight(set) == 1 ? "PU" : "PUs";
}

/* set as a list ("0-3,8"), cut with "..." when too long. */
static const char *listed(char buf[LIST_MAX], hwloc_const_bitmap_t set)
{
  int n = hwloc_bitmap_list_snprintf(buf, LIST_MAX, set);
  if (n < 0)
    snprintf(buf, LIST_MAX, "?");
  else if (n >= LIST_MAX)
    memcpy(buf + LIST_MAX - 4, "...", 4);
  return buf;
}

static int mpi_failed(char *msg, const char *call, int rc)
{
  char text[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
    snprintf(text, sizeof text, "error %d", rc);
  return lu_say(msg, MSG_MAX, LUISA_ERR_MPI, "%s failed while placing the analytics thread: %s", call, text);
}

/* Digits at *c, as a number that stops growing past 10^8 (no such PU anyway). */
static int number(const char **c, unsigned long *v)
{
  const char *s = *c;
  for (*v = 0; **c >= '0' && **c <= '9'; (*c)++)
    if (*v < 100000000UL)
      *v = *v * 10 + (unsigned long)(**c - '0');
  return *c > s;
}

static int syntax(const char *s, const char *at, char *msg)
{
  return lu_say(msg, MSG_MAX, LUISA_ERR_ARG,
             "cpuset \"%.*s\" is not \"auto\" nor a list of processing units such as \"1\", \"2-3\" or \"1,5\" "
             "(at character %d)", QUOTE_MAX, s, (int)(at - s) + 1);
}

/* An explicit cpuset into w->list: every PU in it exists and may be used. */
static int parse(work *w, const char *s, char *msg)
{
  if (!s[strspn(s, " \t\n\r\f\v")])
    return lu_say(msg, MSG_MAX, LUISA_ERR_ARG,
               "cpuset \"%.*s\" is blank: leave it empty or say \"auto\" to choose automatically, "
               "or list processing units such as \"1\", \"2-3\" or \"1,5\"", QUOTE_MAX, s);
  char text[LIST_MAX];
  unsigned long last = (unsigned long)hwloc_bitmap_last(w->all);
  for (const char *c = s;; c++) {
    const char *range = c, *hi_digits;
    unsigned long lo, hi;
    if (!number(&c, &lo))
      return syntax(s, c, msg);
    hi = lo;
    hi_digits = range;
    if (*c == '-') {
      hi_digits = ++c;
      if (!number(&c, &hi))
        return syntax(s, c, msg);
    }
    if (*c && *c != ',')
      return syntax(s, c, msg);
    if (hi < lo)
      return lu_say(msg, MSG_MAX, LUISA_ERR_ARG, "cpuset \"%.*s\" has a range that runs backwards (%.*s)",
                 QUOTE_MAX, s, (int)(c - range), range);
    if (hi > last)
      return lu_say(msg, MSG_MAX, LUISA_ERR_ARG,
                 "cpuset \"%.*s\" names PU %.*s, which this machine does not have (its PUs are %s)",
                 QUOTE_MAX, s, (int)strspn(hi > lo ? hi_digits : range, "0123456789"),
                 hi > lo ? hi_digits : range, listed(text, w->all));
    for (unsigned long pu = lo; pu <= hi; pu++) {
      if (!hwloc_bitmap_isset(w->all, (unsigned)pu))
        return lu_say(msg, MSG_MAX, LUISA_ERR_ARG,
                   "cpuset \"%.*s\" names PU %lu, which this machine does not have (its PUs are %s)",
                   QUOTE_MAX, s, pu, listed(text, w->all));
      if (!hwloc_bitmap_isset(w->allowed, (unsigned)pu))
        return lu_say(msg, MSG_MAX, LUISA_ERR_ARG,
                   "cpuset \"%.*s\" names PU %lu, which this process may not use (it may use %s %s)",
                   QUOTE_MAX, s, pu, pus(w->allowed), listed(text, w->allowed));
    }
    if (hwloc_bitmap_set_range(w->list, (unsigned)lo, (int)hi) != 0)
      return lu_say(msg, MSG_MAX, LUISA_ERR_NOMEM, "out of memory reading cpuset \"%.*s\"", QUOTE_MAX, s);
    if (!*c)
      return LUISA_OK;
  }
}

/* This rank's part, before any collective: the topology, the cpuset, the
 * simulation's binding, and everything the rest needs. */
static int prepare(work *w, const char *cpuset, char *msg)
{
  static const char nomem[] = "out of memory placing the analytics thread";
  w->explicit_list = cpuset && *cpuset && strcmp(cpuset, "auto") != 0;
  if (!(w->pin = calloc(1, sizeof *w->pin)))
    return lu_say(msg, MSG_MAX, LUISA_ERR_NOMEM, "%s", nomem);
  if (hwloc_topology_init(&w->topo) != 0)
    return lu_say(msg, MSG_MAX, errno == ENOMEM ? LUISA_ERR_NOMEM : LUISA_ERR_ARG,
               "hwloc could not start reading this machine's topology: %s", strerror(errno));
  w->loaded = 1;
  /* Disallowed PUs are kept, so a cpuset naming one is told why it cannot have it. */
  if (hwloc_topology_set_flags(w->topo, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED) != 0 ||
      hwloc_topology_load(w->topo) != 0)
    return lu_say(msg, MSG_MAX, errno == ENOMEM ? LUISA_ERR_NOMEM : LUISA_ERR_ARG,
               "hwloc could not read this machine's topology (%s): see the HWLOC_* environment variables",
               strerror(errno));
  w->all = hwloc_topology_get_topology_cpuset(w->topo);
  w->allowed = hwloc_topology_get_allowed_cpuset(w->topo);
  int last = hwloc_bitmap_last(w->all);
  if (last < 0 || hwloc_bitmap_iszero(w->allowed))
    return lu_say(msg, MSG_MAX, LUISA_ERR_ARG, "hwloc found no processing unit this process may use");
  /* The same on every rank of a node: they read the same machine. */
  w->nr = (unsigned)last / WORD_BITS + 1;
  w->bound = hwloc_bitmap_alloc();
  w->list = hwloc_bitmap_alloc();
  w->used = hwloc_bitmap_alloc();
  w->free = hwloc_bitmap_alloc();
  w->chosen = hwloc_bitmap_alloc();
  w->masks = calloc(w->nr + 1, sizeof *w->masks);
  if (!w->bound || !w->list || !w->used || !w->free || !w->chosen || !w->masks)
    return lu_say(msg, MSG_MAX, LUISA_ERR_NOMEM, "%s", nomem);
  if (w->explicit_list) {
    int st = parse(w, cpuset, msg);
    if (st != LUISA_OK)
      return st;
  }
  /* PROCESS: every thread of the simulation, OpenMP's included. A binding
   * that cannot be read is taken as none: unpinned, never on a used PU. */
  if (hwloc_get_cpubind(w->topo, w->bound, HWLOC_CPUBIND_PROCESS) != 0 || hwloc_bitmap_iszero(w->bound))
    if (hwloc_bitmap_copy(w->bound, w->allowed) != 0)
      return lu_say(msg, MSG_MAX, LUISA_ERR_NOMEM, "%s", nomem);
  w->unbound = hwloc_bitmap_isincluded(w->allowed, w->bound);
  if (hwloc_bitmap_to_ulongs(w->bound, w->nr, w->masks) != 0)
    return lu_say(msg, MSG_MAX, LUISA_ERR_NOMEM, "%s", nomem);
  w->masks[w->nr] = (unsigned long)w->unbound;
  return LUISA_OK;
}

/* The status of the lowest rank whose st is not LUISA_OK, on every rank,
 * with its sentence (mine on a rank that failed alike, else prefixed with
 * the rank). One MPI_Allreduce; one MPI_Bcast only on failure. */
static int agree(MPI_Comm comm, int rank, int st, const char *mine, char *why, size_t wcap)
{
  long long key = st == LUISA_OK ? LLONG_MAX : (long long)rank * 256 + st, first;
  int rc = MPI_Allreduce(&key, &first, 1, MPI_LONG_LONG, MPI_MIN, comm);
  if (rc != MPI_SUCCESS) {
    char text[MSG_MAX];
    return lu_say(why, wcap, mpi_failed(text, "MPI_Allreduce", rc), "%s", text);
  }
  if (first == LLONG_MAX)
    return LUISA_OK;
  int from = (int)(first / 256), status = (int)(first % 256);
  char msg[MSG_MAX];
  snprintf(msg, sizeof msg, "%s", rank == from ? mine : "");
  rc = MPI_Bcast(msg, MSG_MAX, MPI_CHAR, from, comm);
  if (rc != MPI_SUCCESS)
    return lu_say(why, wcap, mpi_failed(msg, "MPI_Bcast", rc), "%s", msg);
  msg[MSG_MAX - 1] = '\0';
  if (st == status)
    return lu_say(why, wcap, status, "%s", mine);
  return lu_say(why, wcap, status, "rank %d: %s", from, msg);
}

/* The i-th PU of set into w->chosen. */
static int nth(work *w, hwloc_const_bitmap_t set, int i)
{
  int pu = hwloc_bitmap_first(set);
  while (i-- > 0)
    pu = hwloc_bitmap_next(set, pu);
  return hwloc_bitmap_only(w->chosen, (unsigned)pu);
}

/* Where the simulation runs, beside a chosen set, for the placement sentence. */
static void beside(char *buf, size_t cap, const work *w, int nsize, int any_unbound)
{
  char used[LIST_MAX];
  const char *shared = hwloc_bitmap_intersects(w->chosen, w->used) ? "shared with the simulation, " : "";
  if (any_unbound)
    snprintf(buf, cap, "%s is not bound to processing units",
             w->unbound ? "the simulation" : "a simulation rank on this node");
  else if (nsize == 1)
    snprintf(buf, cap, "%s%s bound to %s %s", shared, *shared ? "which is" : "the simulation is",
             pus(w->used), listed(used, w->used));
  else
    snprintf(buf, cap, "%s%s %d ranks on this node are bound to %s %s", shared,
             *shared ? "whose" : "the simulation's", nsize, pus(w->used), listed(used, w->used));
}

/* From the PUs the node's ranks use (w->masks, reduced): w->chosen and the
 * placement sentence. Local. */
static int decide(work *w, int nrank, int nsize, const char *cpuset, char *placement, size_t pcap, char *msg)
{
  static const char nomem[] = "out of memory placing the analytics thread";
  static const char unpinned[] = "the analytics thread runs unpinned, sharing them";
  char a[LIST_MAX], b[LIST_MAX], ctx[2 * LIST_MAX];
  int any_unbound = w->masks[w->nr] != 0;
  if (hwloc_bitmap_from_ulongs(w->used, w->nr, w->masks) != 0)
    return lu_say(msg, MSG_MAX, LUISA_ERR_NOMEM, "%s", nomem);
  if (w->explicit_list) {
    int n = hwloc_bitmap_weight(w->list);
    if ((n >= nsize ? nth(w, w->list, nrank) : hwloc_bitmap_copy(w->chosen, w->list)) != 0)
      return lu_say(msg, MSG_MAX, LUISA_ERR_NOMEM, "%s", nomem);
    w->pinned = 1;
    beside(ctx, sizeof ctx, w, nsize, any_unbound);
    if (n >= nsize)
      return lu_say(placement, pcap, LUISA_OK, "analytics thread on %s %s, as cpuset \"%.*s\" asks (%s)",
                 pus(w->chosen), listed(a, w->chosen), QUOTE_MAX, cpuset, ctx);
    return lu_say(placement, pcap, LUISA_OK,
               "analytics thread on %s %s, the whole of cpuset \"%.*s\": it has fewer PUs than the %d ranks "
               "on this node (%s)", pus(w->chosen), listed(a, w->chosen), QUOTE_MAX, cpuset, nsize, ctx);
  }
  if (any_unbound)
    return lu_say(placement, pcap, LUISA_OK, "%s is not bound to processing units (it may run on %s %s): %s",
               w->unbound ? "the simulation" : "a simulation rank on this node", pus(w->allowed),
               listed(a, w->allowed), unpinned);
  if (hwloc_bitmap_andnot(w->free, w->allowed, w->used) != 0)
    return lu_say(msg, MSG_MAX, LUISA_ERR_NOMEM, "%s", nomem);
  int nfree = hwloc_bitmap_weight(w->free);
  const char *who = nsize == 1 ? "the simulation uses" : "the simulation's ranks use";
  if (nfree == 0)
    return lu_say(placement, pcap, LUISA_OK, "no free processing unit (%s %s %s): %s", who, pus(w->used),
               listed(a, w->used), unpinned);
  if (nfree < nsize)
    return lu_say(placement, pcap, LUISA_OK,
               "%d free processing unit%s (%s %s) for the %d ranks on this node (%s %s %s): %s", nfree,
               nfree == 1 ? "" : "s", pus(w->free), listed(a, w->free), nsize, who, pus(w->used),
               listed(b, w->used), unpinned);
  if (nth(w, w->free, nrank) != 0)
    return lu_say(msg, MSG_MAX, LUISA_ERR_NOMEM, "%s", nomem);
  w->pinned = 1;
  beside(ctx, sizeof ctx, w, nsize, 0);
  return lu_say(placement, pcap, LUISA_OK, "analytics thread on PU %s (%s)", listed(a, w->chosen), ctx);
}

/* The PUs every rank of the node uses, gathered as one bitwise or, then the choice. */
static int place(work *w, MPI_Comm node, const char *cpuset, char *placement, size_t pcap, char *msg)
{
  int nrank, nsize, rc;
  if ((rc = MPI_Comm_rank(node, &nrank)) != MPI_SUCCESS)
    return mpi_failed(msg, "MPI_Comm_rank", rc);
  if ((rc = MPI_Comm_size(node, &nsize)) != MPI_SUCCESS)
    return mpi_failed(msg, "MPI_Comm_size", rc);
  rc = MPI_Allreduce(MPI_IN_PLACE, w->masks, (int)w->nr + 1, MPI_UNSIGNED_LONG, MPI_BOR, node);
  if (rc != MPI_SUCCESS)
    return mpi_failed(msg, "MPI_Allreduce", rc);
  return decide(w, nrank, nsize, cpuset, placement, pcap, msg);
}

static void work_free(work *w)
{
  hwloc_bitmap_free(w->bound);
  hwloc_bitmap_free(w->list);
  hwloc_bitmap_free(w->used);
  hwloc_bitmap_free(w->free);
  hwloc_bitmap_free(w->chosen);
  free(w->masks);
  if (w->loaded)
    hwloc_topology_destroy(w->topo);
  pin_free(w->pin);
}

int pin_plan(MPI_Comm comm, const char *cpuset, lu_pin **out, char *placement, size_t pcap,
             char *why, size_t wcap)
{
  lu_say(placement, pcap, 0, "%s", "");
  lu_say(why, wcap, 0, "%s", "");
  if (out)
    *out = NULL;
  int rank, rc = MPI_Comm_rank(comm, &rank);
  char mine[MSG_MAX] = "";
  if (rc != MPI_SUCCESS)
    return lu_say(why, wcap, mpi_failed(mine, "MPI_Comm_rank", rc), "%s", mine);
  work w = { 0 };
  int st = out ? prepare(&w, cpuset, mine) : lu_say(mine, MSG_MAX, LUISA_ERR_ARG, "pin_plan: out is NULL");
  /* Ranks sharing memory are those of one node: they share its PUs. */
  MPI_Comm node = MPI_COMM_NULL;
  rc = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  if (rc != MPI_SUCCESS) {
    node = MPI_COMM_NULL;
    if (st == LUISA_OK)
      st = mpi_failed(mine, "MPI_Comm_split_type", rc);
  }
  st = agree(comm, rank, st, mine, why, wcap);
  if (st == LUISA_OK) {
    st = place(&w, node, cpuset, placement, pcap, mine);
    if ((rc = MPI_Comm_free(&node)) != MPI_SUCCESS && st == LUISA_OK)
      st = mpi_failed(mine, "MPI_Comm_free", rc);
    /* Every rank pins, or none does. */
    st = agree(comm, rank, st, mine, why, wcap);
  } else if (node != MPI_COMM_NULL) {
    MPI_Comm_free(&node);       /* already failing: its status adds nothing */
  }
  if (st != LUISA_OK) {
    lu_say(placement, pcap, 0, "%s", "");
  } else {
    if (w.pinned) {
      w.pin->topo = w.topo;
      w.pin->set = w.chosen;
      w.loaded = 0;
      w.chosen = NULL;
    }
    *out = w.pin;
    w.pin = NULL;
  }
  work_free(&w);
  return st;
}

int pin_self(const lu_pin *p, char *why, size_t cap)
{
  if (!p || !p->set)
    return 0;
  if (hwloc_set_cpubind(p->topo, p->set, HWLOC_CPUBIND_THREAD) == 0)
    return 0;
  int e = errno;
  char list[LIST_MAX], text[128];
  if (strerror_r(e, text, sizeof text) != 0)
    snprintf(text, sizeof text, "error %d", e);
  return lu_say(why, cap, -1, "hwloc could not bind the analytics thread to %s %s: %s", pus(p->set),
             listed(list, p->set), text);
}

int pin_pinned(const lu_pin *p, char *list, size_t cap)
{
  int pinned = p && p->set;
  if (list && cap) {
    list[0] = '\0';
    if (pinned && hwloc_bitmap_list_snprintf(list, cap, p->set) < 0)
      list[0] = '\0';
  }
  return pinned;
}

void pin_free(lu_pin *p)
{
  if (!p)
    return;
  hwloc_bitmap_free(p->set);
  if (p->topo)
    hwloc_topology_destroy(p->topo);
  free(p);
}
