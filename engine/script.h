/* script.h: one loaded script version: its Lua host, its compiled plan,
 * its sources. Shared by the files that work on it (version.c makes and
 * frees it, plan.c compiles it, round.c runs it, core.c serves its Lua
 * side). Not installed. */
#ifndef LUISA_SCRIPT_H
#define LUISA_SCRIPT_H

#include "context.h"
#include "bundle.h"
#include "exchange.h"
#include "host.h"
#include "transport.h"

typedef struct lu_callback {
  int every;
  int enabled;
  lu_reduction *reduction;
  lu_exchange *exchange;       /* planned transfers before its kernels, or NULL */
  unsigned char **reads;       /* per array, per local chunk: read by this callback */
  int assigns;                 /* writes into a simulation array (luisa.assign) */
  int fires;                   /* a trigger's check: its round waits for the root's word */
  int target;                  /* that array, or -1 */
  int nwrites;
  lu_write *writes;            /* what it writes on this rank */
  char *failure;               /* this rank's message for the current step */
  int stopped;                 /* it ran past its time budget this step */
  int diverged;                /* its fingerprint differs between ranks: failure says where */
} lu_callback;

/* Due at step by its own period (callbacks fired by triggers have none). */
static inline int lu_due_by_period(const lu_callback *cb, int64_t step)
{
  return cb->enabled && cb->every > 0 && step % cb->every == 0;
}

/* What compiling the plan makes: a recompile builds another beside it. */
typedef struct lu_compiled {
  int ncallbacks;
  lu_callback *callbacks;
  lu_reduction **reductions;   /* every one made, freed with the plan */
  lu_exchange **exchanges;     /* per reduction, or NULL */
  int nreductions, reductions_cap;
  lu_reduction **due;
  int *due_ids;                /* scratch list of callbacks */
  int *round_ids;              /* a step's due and fired callbacks, 2 x ncallbacks */
  int *control;                /* the root's word after its callbacks, and scratch (round.c) */
  uint64_t *fingerprints;      /* per callback, of what it computes; 0 if it did not compile */
  char **wheres;               /* per callback, file:line of its registration */
  char **diverged;             /* per callback, why it differs between ranks, or NULL */
  int off;                     /* the script called luisa.off() */
  uint64_t digest;             /* of the plan every rank agreed on, see plan_seal */
} lu_compiled;

struct lu_script {
  lu_host *host;
  lu_compiled c;
  int delivering;              /* callbacks are running: 1 the others wait for them, 2 they went on */
  int steers;                  /* 0 not looked yet, 1 + whether its sources name steering or fetch (round.c) */
  int word_pending;            /* the root's word is on its way to every rank (round.c) */
  MPI_Request word;
  int64_t word_step;           /* the step whose callbacks it is about */
  lu_bundle bundle;            /* the sources this script was loaded from */
  int *depths;                 /* per array, the window this script asked for */
  int recompile;               /* a region moved: compile again at the end of the step */
};

#endif
