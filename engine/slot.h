/* slot.h: the chunks published for one step, as an executor keeps them:
 * borrowed, copied into pooled buffers, or handed over. Not installed. */
#ifndef LUISA_SLOT_H
#define LUISA_SLOT_H

#include "context.h"

typedef struct lu_slot_chunk {
  void *copy;                  /* pooled: kept from step to step */
  size_t copy_cap;
  const void *data;            /* what the analysis reads; NULL: not published */
  void *own;                   /* the simulation's buffer as published, borrowed */
  void *handed;                /* handed over (luisa_publish_handover), or NULL */
  luisa_release_fn *release;
  void *user;
} lu_slot_chunk;

typedef struct lu_slot {
  int64_t step, call;
  int narrays;
  int *nchunks;                /* per array */
  lu_slot_chunk **chunks;      /* per array, per local chunk */
  lu_write *writes;            /* what its assignments wrote (into data) */
  int nwrites, writes_cap;
  int reload;                  /* a reload asked by the time of its luisa_step */
  int status;                  /* of its analysis */
  char *err;                   /* LU_ERR_MAX: the analysis' sentence when status is not LUISA_OK */
} lu_slot;

/* Chunk c of array a published in slot s of ring[0..nring): borrowed, or
 * handed over when release is given. A chunk published again releases what
 * it held. LUISA_ERR_ARG if another slot still holds data handed over as
 * the same chunk; LUISA_ERR_NOMEM if the slot cannot grow (nothing kept). */
int slot_put(luisa *lz, lu_slot *ring, int nring, lu_slot *s, int a, int c, const void *data,
             luisa_release_fn *release, void *user);
/* Chunk c of array a is published again, borrowed: what it held goes back. */
void slot_drop(lu_slot *s, int a, int c);
/* Every borrowed chunk copied into the pool, read from there from now on.
 * LUISA_ERR_NOMEM (those copied so far stay copied) if it cannot grow. */
int slot_copy(luisa *lz, lu_slot *s);
/* Keeps a copy of what the step's assignments wrote (lz->written). */
int slot_note_writes(lu_slot *s, const lu_write *w, int n);
/* Copies what slot `from`'s assignments wrote into the simulation's own
 * buffers published in slot `to`, box by box; a chunk `to` does not hold
 * borrowed is skipped and counted. Returns how many writes were skipped. */
int slot_write_back(luisa *lz, const lu_slot *from, const lu_slot *to);
/* What the analysis reads: every array's published pointers from the slot. */
void slot_show(luisa *lz, const lu_slot *s);
/* Gives handed buffers back and forgets what was published; the pool stays. */
void slot_release(lu_slot *s);
/* The bytes slot_copy would allocate now. */
size_t slot_copy_bytes(const luisa *lz, const lu_slot *s);
/* The pooled copies go back to the allocator; a chunk read from one is
 * forgotten (its step must be analysed, with no writes left to copy). */
void slot_unpool(luisa *lz, lu_slot *s);
void slot_free(luisa *lz, lu_slot *s);

#endif
