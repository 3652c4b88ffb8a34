/* wire.h: what simulation and analytics ranks send each other in ranks
 * mode. Both sides run the same build on the same kind of machine, so
 * fixed parts travel as structs (MPI_BYTE). Not installed. */
#ifndef LUISA_WIRE_H
#define LUISA_WIRE_H

#include "context.h"
#include "steer.h"

/* A growing buffer written from the front and read from the front. A
 * write that cannot grow it, or a read past its end, marks it bad. */
typedef struct lu_wire {
  char *buf;
  size_t len, cap, at;
  int bad;
  lu_memory *mem;              /* counts buf when set (chunk data) */
  lu_use use;
} lu_wire;

void wire_reset(lu_wire *w);
void wire_free(lu_wire *w);
/* Room for n bytes to receive into: len becomes n, reading starts over. */
int wire_room(lu_wire *w, size_t n);
void wire_put(lu_wire *w, const void *p, size_t n);
void wire_i32(lu_wire *w, int32_t v);
void wire_text(lu_wire *w, const char *s);
int wire_take(lu_wire *w, void *p, size_t n);
int32_t wire_take_i32(lu_wire *w);
const char *wire_take_text(lu_wire *w);     /* "" if bad */
const void *wire_view(lu_wire *w, size_t n); /* the next n bytes in place, or NULL */

/* Point-to-point tags on the link communicator. */
enum { WIRE_TAG_DECL = 7000, WIRE_TAG_CHUNKS, WIRE_TAG_HEAD, WIRE_TAG_DATA, WIRE_TAG_REPLY };

/* Each luisa_step call: a head, its parameter values, what follows (one
 * WIRE_TAG_DATA message per chunk sent, in order). A head of kind
 * WIRE_END says the simulation rank sends no more. */
enum { WIRE_STEP = 1, WIRE_END = 2 };
typedef struct lu_head {
  int64_t call, step;
  int32_t kind, reload, nsent, nparams;
} lu_head;
typedef struct lu_sent {
  int32_t array, chunk;        /* the simulation rank's own numbers */
  int32_t packed;              /* a zstd frame (codec.h) of the raw bytes */
  int32_t unused;
  int64_t raw, bytes;          /* the chunk's elements, C order; on the wire */
} lu_sent;

/* What the analysis of one call says back to each of its simulation ranks:
 * then err (errlen bytes), the changes for the simulation, the writes (in
 * the simulation rank's chunk numbers) and their data, packed in order. */
typedef struct lu_reply {
  int64_t call;
  int32_t status, errlen, nchanges, nwrites;
  int64_t data_bytes;
  int32_t off;                 /* analytics are off for good: send no more */
  int32_t unused;
} lu_reply;

/* The arrays and parameters every analytics rank declares as the
 * simulation did, with the parameters' values now. */
void wire_declarations(lu_wire *w, const luisa *lz);
/* Declares them in inner, each parameter bound to (*mirror)[i], allocated
 * here. LUISA_OK, or an error with a sentence in inner. */
int wire_declare(luisa *inner, lu_wire *w, lu_value **mirror);

#endif
