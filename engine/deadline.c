/* deadline.c: opts.timeout_s on the engine's waits for other ranks. Waits
 * poll; a rank stalled past the deadline asks every rank where it is, on a
 * communicator of its own, and gives up with a report instead of hanging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "error.h"
#include "log.h"
#include "transport.h"
#include "deadline.h"

/* Queries are empty messages; answers are {stepped, step, phase}. Every rank
 * keeps a receive posted for the next query and answers it at each
 * luisa_step entry and while it waits, so no rank ever blocks on one. */
enum { TAG_ASK = 1, TAG_ANSWER = 2, ANSWER_WORDS = 3, ANSWER_SLOTS = 16, MAX_GROUPS = 8 };

typedef struct lu_answer {
  int64_t v[ANSWER_WORDS];
  MPI_Request request;
} lu_answer;

struct lu_deadline {
  MPI_Comm comm;                /* a duplicate: queries never meet the engine's collectives */
  MPI_Request ask;              /* the receive posted for the next query */
  int stepped;
  int due;                      /* analysis is due at step */
  int64_t step;                 /* of the luisa_step this rank is in, or was last in */
  int phase;                    /* lu_wait */
  lu_answer answers[ANSWER_SLOTS];
};

/* Answers are sent from memory that must outlive them: what MPI may still
 * use after a timeout is kept here, reachable, until the process ends. */
static void **kept;
static int nkept;

void deadline_keep(void *memory)
{
  void **grown = realloc(kept, (size_t)(nkept + 1) * sizeof *grown);
  if (grown) {   /* else lost: still never freed while MPI may use it */
    kept = grown;
    kept[nkept++] = memory;
  }
}

/* Collective over lz->comm: called on every rank when any rank set a
 * timeout (luisa_init agrees on it), so ranks without one answer too. */
int deadline_open(luisa *lz, int any_timeout)
{
  if (!any_timeout)
    return LUISA_OK;
  lu_deadline *d = calloc(1, sizeof *d);
  RETURN_IF(!d, lz, LUISA_ERR_NOMEM, "luisa_init: out of memory");
  if (MPI_Comm_dup(lz->comm, &d->comm) != MPI_SUCCESS) {
    free(d);
    return error_set(lz, LUISA_ERR_MPI, "luisa_init: MPI_Comm_dup for the timeout's queries failed");
  }
  MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
  for (int k = 0; k < ANSWER_SLOTS; k++)
    d->answers[k].request = MPI_REQUEST_NULL;
  if (MPI_Irecv(NULL, 0, MPI_BYTE, MPI_ANY_SOURCE, TAG_ASK, d->comm, &d->ask) != MPI_SUCCESS)
    d->ask = MPI_REQUEST_NULL;
  d->phase = LU_PHASE_ENTRY;
  lz->deadline = d;
  return LUISA_OK;
}

static const char *phase_text(int phase)
{
  static const char *const text[LU_PHASES] = {
    "entering luisa_step", "waiting for planned transfers", "waiting for the reductions",
    "waiting for the root's verdict", "waiting for reload requests", "in luisa_finalize"
  };
  return phase >= 0 && phase < LU_PHASES ? text[phase] : "?";
}

/* What an answer says besides the phases of a wait. At a step's entry a
 * rank says whether anything is due: with nothing due it makes no
 * collective at that step. */
enum { SAYS_OFF = LU_PHASES, SAYS_IDLE, SAYS_DUE };

static const char *answer_text(const int64_t *v)
{
  if (!v[0])
    return "before its first luisa_step";
  switch (v[2]) {
  case SAYS_OFF: return "analytics off";
  case SAYS_IDLE: return "no analysis due";
  case SAYS_DUE: return "about to analyse";
  default: return phase_text((int)v[2]);
  }
}

/* Answer every query that came, with {stepped, step, phase}; a query whose
 * answer finds no free slot (16 sent and not delivered) goes unanswered. */
static void serve(luisa *lz, lu_deadline *d)
{
  for (;;) {
    int asked = 0;
    MPI_Status st;
    if (d->ask == MPI_REQUEST_NULL || MPI_Test(&d->ask, &asked, &st) != MPI_SUCCESS || !asked)
      return;
    lu_answer *a = NULL;
    for (int k = 0; k < ANSWER_SLOTS && !a; k++) {
      int sent = 1;
      if (d->answers[k].request != MPI_REQUEST_NULL)
        MPI_Test(&d->answers[k].request, &sent, MPI_STATUS_IGNORE);
      if (sent)
        a = &d->answers[k];
    }
    if (a) {
      a->v[0] = d->stepped;
      a->v[1] = d->step;
      a->v[2] = lz->halted ? SAYS_OFF : d->phase != LU_PHASE_ENTRY ? d->phase
                : d->due ? SAYS_DUE : SAYS_IDLE;
      if (MPI_Isend(a->v, ANSWER_WORDS, MPI_INT64_T, st.MPI_SOURCE, TAG_ANSWER, d->comm, &a->request) != MPI_SUCCESS)
        a->request = MPI_REQUEST_NULL;
    }
    if (MPI_Irecv(NULL, 0, MPI_BYTE, MPI_ANY_SOURCE, TAG_ASK, d->comm, &d->ask) != MPI_SUCCESS)
      d->ask = MPI_REQUEST_NULL;
  }
}

/* At each luisa_step entry: one MPI_Test when a deadline exists. */
void deadline_poll(luisa *lz, int64_t step, int due)
{
  lu_deadline *d = lz->deadline;
  if (!d)
    return;
  d->stepped = 1;
  d->step = step;
  d->due = due;
  d->phase = LU_PHASE_ENTRY;
  serve(lz, d);
}

double deadline_start(luisa *lz, int phase)
{
  if (!lz->deadline)
    return 0;
  lz->deadline->phase = phase;
  return MPI_Wtime();
}

/* The report of a stalled rank: every other rank asked, a short grace for
 * the answers, then who is where, grouped. */
static int stall(luisa *lz, lu_deadline *d)
{
  int size = lz->size, me = lz->rank, nkey = 0;
  int64_t (*got)[ANSWER_WORDS] = calloc((size_t)size, sizeof *got);
  MPI_Request *rq = malloc((size_t)size * sizeof *rq);
  int *group = malloc((size_t)size * sizeof *group), *index = malloc((size_t)size * sizeof *index);
  char report[LU_ERR_MAX - 512] = "", ranks[1024];
  size_t len = 0;
  if (got && rq && group && index) {
    for (int r = 0; r < size; r++) {
      rq[r] = MPI_REQUEST_NULL;
      if (r != me && MPI_Irecv(got[r], ANSWER_WORDS, MPI_INT64_T, r, TAG_ANSWER, d->comm, &rq[r]) != MPI_SUCCESS)
        rq[r] = MPI_REQUEST_NULL;
    }
    for (int r = 0; r < size; r++) {
      MPI_Request q;
      if (r != me && MPI_Isend(NULL, 0, MPI_BYTE, r, TAG_ASK, d->comm, &q) == MPI_SUCCESS)
        MPI_Request_free(&q);
    }
    double grace = lz->opts.timeout_s / 4, t0 = MPI_Wtime();
    grace = grace < 0.1 ? 0.1 : grace > 1 ? 1 : grace;
    int pending = size - 1, done;
    while (pending > 0 && MPI_Wtime() - t0 < grace) {
      if (MPI_Testsome(size, rq, &done, index, MPI_STATUSES_IGNORE) == MPI_SUCCESS && done != MPI_UNDEFINED)
        pending -= done;
      serve(lz, d);   /* the others ask too */
    }
    /* group: -1 unanswered, -2 this rank and those where it is, else a key */
    int64_t keys[MAX_GROUPS][ANSWER_WORDS];
    for (int r = 0; r < size; r++) {
      int answered = r != me && rq[r] == MPI_REQUEST_NULL, cancelled = 0;
      if (r != me && !answered) {
        MPI_Status st;
        MPI_Cancel(&rq[r]);
        MPI_Wait(&rq[r], &st);
        MPI_Test_cancelled(&st, &cancelled);
        answered = !cancelled;
      }
      group[r] = r == me ? -2 : !answered ? -1 : -3;
      if (group[r] == -3 && got[r][0] && got[r][1] == d->step && got[r][2] == d->phase)
        group[r] = -2;
      for (int k = 0; k < nkey && group[r] == -3; k++)
        if (!memcmp(keys[k], got[r], sizeof keys[k]))
          group[r] = k;
      if (group[r] == -3 && nkey < MAX_GROUPS) {
        memcpy(keys[nkey], got[r], sizeof keys[nkey]);
        group[r] = nkey++;
      }
    }
    if (error_ranks(ranks, sizeof ranks, group, size, -1))
      len += (size_t)snprintf(report + len, sizeof report - len, "; %s did not answer (computing outside luisa, "
                              "finished, or gone)", ranks);
    for (int k = 0; k < nkey && len < sizeof report; k++) {
      int n = error_ranks(ranks, sizeof ranks, group, size, k);
      len += (size_t)snprintf(report + len, sizeof report - len, "; %s %s ", ranks, n > 1 ? "are" : "is");
      if (keys[k][0] && len < sizeof report)
        len += (size_t)snprintf(report + len, sizeof report - len, "at step %lld (%s)", (long long)keys[k][1],
                                answer_text(keys[k]));
      else if (len < sizeof report)
        len += (size_t)snprintf(report + len, sizeof report - len, "%s", answer_text(keys[k]));
    }
    group[me] = -4;
    int n = error_ranks(ranks, sizeof ranks, group, size, -2);
    if (n && len < sizeof report)
      len += (size_t)snprintf(report + len, sizeof report - len, "; %s %s there too", ranks, n > 1 ? "wait" : "waits");
    if ((n = error_ranks(ranks, sizeof ranks, group, size, -3)) && len < sizeof report)   /* past MAX_GROUPS */
      snprintf(report + len, sizeof report - len, "; %d more elsewhere", n);
  }
  free(got);
  free(rq);
  free(group);
  free(index);
  lz->halted = LU_HALT_CUT;   /* after the grace: meanwhile it told others where it waits */
  char fn[64];
  snprintf(fn, sizeof fn, d->phase == LU_PHASE_FINALIZE ? "luisa_finalize after step %lld" : "luisa_step(%lld)",
           (long long)d->step);
  error_set(lz, LUISA_ERR_TIMEOUT, "%s: no progress in %g s %s (opts.timeout_s, LUISA_TIMEOUT)%s; analytics are off "
            "on this rank", fn, lz->opts.timeout_s, phase_text(d->phase), report);
  log_write(lz, LUISA_LOG_ERROR, "%s", error_buffer(lz));
  return LUISA_ERR_TIMEOUT;
}

/* Inside a wait begun at `start`: answer queries; past the deadline, the
 * report and LUISA_ERR_TIMEOUT (the rank is cut off: lz->halted). */
int deadline_check(luisa *lz, double start)
{
  lu_deadline *d = lz->deadline;
  if (!d)
    return LUISA_OK;
  serve(lz, d);
  if (lz->opts.timeout_s > 0 && MPI_Wtime() - start > lz->opts.timeout_s)
    return stall(lz, d);
  return LUISA_OK;
}

/* MPI_Waitall, or a polling loop under the deadline when one exists. */
int deadline_wait(luisa *lz, int n, MPI_Request *requests, int phase, const char *what)
{
  if (!lz->deadline) {
    RETURN_IF(MPI_Waitall(n, requests, MPI_STATUSES_IGNORE) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
              "luisa_step: MPI_Waitall on %s failed", what);
    return LUISA_OK;
  }
  double start = 0;
  for (int polls = 0;; polls++) {
    int done = 0;
    RETURN_IF(MPI_Testall(n, requests, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
              "luisa_step: MPI_Testall on %s failed", what);
    if (done)
      return LUISA_OK;
    if (!polls)   /* the clock starts only when the requests are not done at once */
      start = deadline_start(lz, phase);
    FORWARD_IF_ERROR(deadline_check(lz, start));
  }
}

/* Late answers and queries are drained; an answer still in flight keeps
 * its memory. */
void deadline_close(luisa *lz)
{
  lu_deadline *d = lz->deadline;
  if (!d)
    return;
  lz->deadline = NULL;
  if (d->ask != MPI_REQUEST_NULL) {
    MPI_Cancel(&d->ask);
    MPI_Wait(&d->ask, MPI_STATUS_IGNORE);
  }
  int in_flight = 0;
  for (int k = 0; k < ANSWER_SLOTS; k++) {
    int sent = 1;
    if (d->answers[k].request != MPI_REQUEST_NULL)
      MPI_Test(&d->answers[k].request, &sent, MPI_STATUS_IGNORE);
    in_flight |= !sent;
  }
  for (int tag = TAG_ASK; tag <= TAG_ANSWER; tag++) {
    int waiting = 1;
    MPI_Status st;
    int64_t sink[ANSWER_WORDS];
    while (MPI_Iprobe(MPI_ANY_SOURCE, tag, d->comm, &waiting, &st) == MPI_SUCCESS && waiting)
      MPI_Recv(sink, ANSWER_WORDS, MPI_INT64_T, st.MPI_SOURCE, tag, d->comm, MPI_STATUS_IGNORE);
  }
  MPI_Comm_free(&d->comm);
  if (in_flight)
    deadline_keep(d);
  else
    free(d);
}
