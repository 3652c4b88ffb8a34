/* exec_ranks.c: the ranks executor, on a simulation rank. The analysis
 * runs on dedicated analytics ranks (serve.c): luisa_step packs the
 * published chunks the plan reads into buffers of the engine's, sends them
 * to this rank's analytics rank without waiting, and takes back the answer
 * for the step max_lag calls earlier (status, steering, assignments, the
 * schedule luisa_wants follows). Once sent, a chunk is the analytics
 * rank's: this rank keeps nothing of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "context.h"
#include "array.h"
#include "codec.h"
#include "decomp.h"
#include "error.h"
#include "exec.h"
#include "log.h"
#include "reload.h"
#include "route.h"
#include "schedule.h"
#include "slot.h"
#include "split.h"
#include "steer.h"
#include "wire.h"

typedef struct lu_outbox {
  lu_wire head, data;          /* pooled: kept from call to call */
  MPI_Request *requests;
  int nrequests, cap;
} lu_outbox;

typedef struct lu_ranks {
  int ana;                     /* this rank's analytics rank, in link */
  int lag, nslots;
  lu_slot *slots;              /* call k in slots[k % nslots] */
  lu_outbox *out;              /* alike */
  lu_wire reply, scratch;
  lu_value *values;
  int off;                     /* no traffic any more */
  int64_t reported;
  int64_t waits;
  double waited_s;
  int64_t raw, sent;           /* bytes of chunks sent, raw and on the wire */
  lu_codec *codec;
  lu_schedule schedule;
} lu_ranks;

static double now_s(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static lu_ranks *state(const luisa *lz)
{
  return lz->exec_state;
}

static void free_ranks(luisa *lz, lu_ranks *t)
{
  if (!t)
    return;
  for (int k = 0; t->slots && k < t->nslots; k++)
    slot_free(lz, &t->slots[k]);
  for (int k = 0; t->out && k < t->nslots; k++) {
    wire_free(&t->out[k].head);
    wire_free(&t->out[k].data);
    free(t->out[k].requests);
  }
  free(t->slots);
  free(t->out);
  free(t->values);
  wire_free(&t->reply);
  wire_free(&t->scratch);
  codec_close(t->codec);
  schedule_free(&t->schedule);
  free(t);
}

/* Collective over the job: the analytics ranks say whether the script
 * loaded there (serve.c sends the same). */
static int ranks_open(luisa *lz)
{
  lu_ranks *t = calloc(1, sizeof *t);
  char why[256] = "";
  int ok = t != NULL;
  if (t) {
    t->lag = lz->opts.max_lag;
    t->nslots = t->lag + 2;
    t->slots = calloc((size_t)t->nslots, sizeof *t->slots);
    t->out = calloc((size_t)t->nslots, sizeof *t->out);
    ok = t->slots && t->out && reload_open(lz) == LUISA_OK;
    for (int k = 0; ok && k < t->nslots; k++)
      t->out[k].data.mem = &lz->memory, t->out[k].data.use = LU_USE_COPY;
    t->scratch.mem = &lz->memory, t->scratch.use = LU_USE_COPY;
    if (ok && lz->opts.compress_level)
      ok = codec_open(lz->opts.compress_level, &t->codec, why, sizeof why) == LUISA_OK;
  }
  lz->exec_state = t;
  struct { int status; char err[LU_ERR_MAX]; } loaded = { LUISA_OK, "" };
  if (MPI_Bcast(&loaded, (int)sizeof loaded, MPI_BYTE, lz->split->ana_link[0], lz->split->link) != MPI_SUCCESS)
    return error_set(lz, LUISA_ERR_MPI, "luisa_init: MPI_Bcast of the script's load from the analytics failed");
  if (!ok)
    return error_set(lz, LUISA_ERR_NOMEM, "luisa_init: out of memory for the ranks mode%s%s", *why ? ": " : "",
                     why);
  if (loaded.status != LUISA_OK) {
    t->off = 1;
    snprintf(lz->err, sizeof lz->err, "%s", loaded.err);
  }
  return loaded.status;
}

/* Borrowed until luisa_step packs it (or handed over). */
static int ranks_publish(luisa *lz, int a, int chunk, const void *data, luisa_release_fn *release, void *user)
{
  lu_ranks *t = state(lz);
  return slot_put(lz, t->slots, t->nslots, &t->slots[(lz->steps + 1) % t->nslots], a, chunk, data, release, user);
}

/* A chunk's bytes as they travel: its whole buffer, or packed. */
static size_t travel_bytes(const lu_array *a, const lu_chunk *ch)
{
  return array_whole_buffer(a, ch) ? (size_t)ch->bytes
                                   : (size_t)array_volume(LUISA_MAX_DIMS, ch->shape) * array_dtype_size(a->dtype);
}

/* What one call's chunks take in flight: packed, or in zstd frames with
 * the scratch they are packed into first. */
static int64_t call_bytes(const luisa *lz, const lu_ranks *t)
{
  int64_t need = 0, biggest = 0;
  for (int a = 0; a < lz->narrays; a++)
    for (int c = 0; c < lz->arrays[a].nchunks; c++) {
      int64_t raw = (int64_t)travel_bytes(&lz->arrays[a], &lz->arrays[a].chunks[c]);
      need += t->codec ? (int64_t)codec_bound((size_t)raw) : raw;
      biggest = raw > biggest ? raw : biggest;
    }
  return need + (t->codec ? biggest : 0);
}

/* opts.store_bytes must hold one call in flight on every simulation rank,
 * or the analytics are refused on all, told once. Collective over them. */
static int budget_check(luisa *lz, const lu_ranks *t)
{
  int64_t need = call_bytes(lz, t), limit = lz->memory.limit;
  int short_of = limit && need > limit;
  int64_t mine[2] = { short_of ? need : 0, short_of ? -(int64_t)lz->rank : INT64_MIN }, worst[2];
  if (MPI_Allreduce(mine, worst, 2, MPI_INT64_T, MPI_MAX, lz->comm) != MPI_SUCCESS)
    return error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Allreduce of the memory budget failed");
  if (!worst[0])
    return LUISA_OK;
  if (lz->rank == 0)
    log_write(lz, LUISA_LOG_ERROR, "analytics are off: opts.store_bytes cannot hold one step's chunks in flight "
              "(up to %lld bytes, first short on simulation rank %lld)", (long long)worst[0], (long long)-worst[1]);
  return error_set(lz, LUISA_WARN_SCRIPT, "luisa_step: analytics are off: opts.store_bytes (LUISA_STORE_BYTES) "
                   "cannot hold one step's chunks in flight: they need up to %lld bytes on a simulation rank (the "
                   "first short of it is rank %lld): raise it to at least that", (long long)worst[0],
                   (long long)-worst[1]);
}

/* The first call: the declarations checked among the simulation ranks, as
 * inline; the route planned; the analytics told what to declare. */
static int first_call(luisa *lz)
{
  lu_ranks *t = state(lz);
  const lu_split *sp = lz->split;
  lz->began = 1;
  int status = decomp_check(lz);
  if (status == LUISA_OK)
    status = steer_check(lz);
  lz->declarations_ok = status == LUISA_OK;
  int64_t mine = 0, *bytes = malloc((size_t)sp->nsim * sizeof *bytes);
  int *ana_of = malloc((size_t)sp->nsim * sizeof *ana_of), ok = bytes && ana_of, all = 0;
  for (int a = 0; a < lz->narrays; a++)
    for (int c = 0; c < lz->arrays[a].nchunks; c++)
      mine += array_volume(LUISA_MAX_DIMS, lz->arrays[a].chunks[c].shape) *
              (int64_t)array_dtype_size(lz->arrays[a].dtype);
  char why[256] = "";
  if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, lz->comm) != MPI_SUCCESS ||
      (all && MPI_Allgather(&mine, 1, MPI_INT64_T, bytes, 1, MPI_INT64_T, lz->comm) != MPI_SUCCESS))
    status = status == LUISA_OK ? error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI failed planning the route") : status;
  else if (!all)
    status = status == LUISA_OK ? error_set(lz, LUISA_ERR_NOMEM, "luisa_step: out of memory on some simulation "
                                            "rank planning the route") : status;
  else if (route_plan(sp->nsim, sp->sim_node, bytes, sp->nana, sp->ana_node, ana_of, why, sizeof why) != LUISA_OK)
    status = status == LUISA_OK ? error_set(lz, LUISA_ERR_NOMEM, "luisa_step: %s", why) : status;
  if (status == LUISA_OK)
    status = budget_check(lz, t);
  /* Every analytics rank learns the route and the declarations, or that there are none. */
  lu_wire w = { 0 };
  if (status == LUISA_OK && lz->rank == 0) {
    wire_put(&w, ana_of, (size_t)sp->nsim * sizeof *ana_of);
    wire_declarations(&w, lz);
    char text[4096];
    route_describe(sp->nsim, bytes, sp->nana, sp->ana_node, ana_of, text, sizeof text);
    log_write(lz, LUISA_LOG_INFO, "ranks mode (max_lag %d), %d simulation ranks to %d analytics ranks:\n%s",
              t->lag, sp->nsim, sp->nana, text);
  }
  int64_t head[2] = { status == LUISA_OK && !w.bad, (int64_t)w.len };
  if (MPI_Bcast(head, 2, MPI_INT64_T, sp->sim_link[0], sp->link) != MPI_SUCCESS)
    status = error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Bcast of the declarations to the analytics failed");
  for (int j = 0; head[0] && lz->rank == 0 && j < sp->nana; j++)
    MPI_Send(w.buf, (int)w.len, MPI_BYTE, sp->ana_link[j], WIRE_TAG_DECL, sp->link);
  wire_free(&w);
  if (status == LUISA_OK && !head[0])
    status = error_set(lz, LUISA_ERR_NOMEM, "luisa_step: out of memory on simulation rank 0 for the declarations");
  if (status == LUISA_OK) {
    t->ana = sp->ana_link[ana_of[lz->rank]];
    for (int a = 0; a < lz->narrays; a++)
      for (int c = 0; c < lz->arrays[a].nchunks; c++) {
        const lu_chunk *ch = &lz->arrays[a].chunks[c];
        wire_i32(&w, a);
        wire_i32(&w, c);
        wire_put(&w, ch->offset, sizeof ch->offset);
        wire_put(&w, ch->shape, sizeof ch->shape);
        wire_i32(&w, array_whole_buffer(&lz->arrays[a], ch));   /* then its buffer's strides travel too */
        wire_put(&w, ch->stride, sizeof ch->stride);
        wire_put(&w, &ch->first, sizeof ch->first);
        wire_put(&w, &ch->bytes, sizeof ch->bytes);
      }
    if (MPI_Send(w.buf, (int)w.len, MPI_BYTE, t->ana, WIRE_TAG_CHUNKS, sp->link) != MPI_SUCCESS)
      status = error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Send of the chunks to the analytics failed");
    wire_free(&w);
  }
  free(bytes);
  free(ana_of);
  if (status != LUISA_OK)
    t->off = 1;
  return status;
}

/* A handed-over chunk that travels as its whole buffer, uncompressed, is
 * sent from that very buffer: no copy. It is given back once its call is
 * reported, its send completed by then. */
static const void *sent_in_place(const lu_ranks *t, const lu_array *a, const lu_chunk *ch, const lu_slot_chunk *k)
{
  return !t->codec && k->handed && array_whole_buffer(a, ch) ? k->handed : NULL;
}

/* Backpressure: past opts.store_bytes, the earlier calls' sends are waited
 * for, oldest first, and their buffers freed. One call alone always fits
 * (budget_check). */
static void make_room(luisa *lz, lu_ranks *t, int64_t call, size_t more)
{
  if (!more || memory_fits(&lz->memory, more))
    return;
  double start = now_s();
  for (int k = 1; k < t->nslots && !memory_fits(&lz->memory, more); k++) {
    lu_outbox *old = &t->out[(call + k) % t->nslots];   /* call - nslots + k */
    MPI_Waitall(old->nrequests, old->requests, MPI_STATUSES_IGNORE);
    old->nrequests = 0;
    wire_free(&old->data);
  }
  memory_waited(&lz->memory, now_s() - start);
}

/* The chunks of call k the plan may read, packed (and compressed) into the
 * outbox, sent with the head. */
static int send_call(luisa *lz, int64_t call, int64_t step)
{
  lu_ranks *t = state(lz);
  lu_slot *s = &t->slots[call % t->nslots];
  lu_outbox *o = &t->out[call % t->nslots];
  MPI_Waitall(o->nrequests, o->requests, MPI_STATUSES_IGNORE);   /* of call k - nslots: reported long ago */
  o->nrequests = 0;
  wire_reset(&o->head);
  wire_reset(&o->data);
  size_t room = 0, biggest = 0;
  int n = 0;
  for (int a = 0; a < s->narrays; a++)
    for (int c = 0; c < s->nchunks[a]; c++)
      if (s->chunks[a][c].data && schedule_wants(&t->schedule, a, c, step, call)) {
        size_t raw = travel_bytes(&lz->arrays[a], &lz->arrays[a].chunks[c]);
        if (!sent_in_place(t, &lz->arrays[a], &lz->arrays[a].chunks[c], &s->chunks[a][c]))
          room += t->codec ? codec_bound(raw) : raw;
        biggest = raw > biggest ? raw : biggest;
        n++;
      }
  if (lz->nparams && !t->values && !(t->values = calloc((size_t)lz->nparams, sizeof *t->values)))
    return error_set(lz, LUISA_ERR_NOMEM, "luisa_step(%lld): out of memory for the parameters", (long long)step);
  if (n + 1 > o->cap) {
    MPI_Request *grown = realloc(o->requests, (size_t)(n + 1) * sizeof *grown);
    RETURN_IF(!grown, lz, LUISA_ERR_NOMEM, "luisa_step(%lld): out of memory for %d sends", (long long)step, n + 1);
    o->requests = grown;
    o->cap = n + 1;
  }
  make_room(lz, t, call, (room > o->data.cap ? room - o->data.cap : 0) +
            (t->codec && biggest > t->scratch.cap ? biggest - t->scratch.cap : 0));
  RETURN_IF(!wire_room(&o->data, room) || (t->codec && !wire_room(&t->scratch, biggest)), lz, LUISA_ERR_NOMEM,
            "luisa_step(%lld): out of memory for the %zu bytes of the step's chunks", (long long)step, room);
  steer_capture(lz, t->values);
  lu_head h = { call, step, WIRE_STEP, reload_take_local(lz), n, lz->nparams };
  wire_put(&o->head, &h, sizeof h);
  wire_put(&o->head, t->values, (size_t)lz->nparams * sizeof *t->values);
  size_t at = 0;
  int64_t ones[LUISA_MAX_DIMS] = { 1, 1, 1, 1 };
  for (int a = 0; a < s->narrays; a++)   /* everything that may fail first: then only sends */
    for (int c = 0; c < s->nchunks[a]; c++) {
      const lu_chunk *ch = &lz->arrays[a].chunks[c];
      if (!s->chunks[a][c].data || !schedule_wants(&t->schedule, a, c, step, call))
        continue;
      size_t raw = travel_bytes(&lz->arrays[a], ch);
      lu_sent e = { a, c, t->codec != NULL, 0, (int64_t)raw, (int64_t)raw };
      if (sent_in_place(t, &lz->arrays[a], ch, &s->chunks[a][c])) {
        wire_put(&o->head, &e, sizeof e);
        continue;
      }
      char *dst = o->data.buf + at, *plain = t->codec ? t->scratch.buf : dst;   /* compressed from scratch */
      if (array_whole_buffer(&lz->arrays[a], ch))
        memcpy(plain, s->chunks[a][c].data, raw);
      else
        array_pack(&lz->arrays[a], ch, s->chunks[a][c].data, ch->offset, ch->shape, ones, plain);
      if (t->codec) {
        size_t size;
        char why[256];
        if (codec_compress(t->codec, dst, codec_bound(raw), t->scratch.buf, raw, &size, why, sizeof why) != LUISA_OK)
          return error_set(lz, LUISA_ERR_NOMEM, "luisa_step(%lld): chunk %d of \"%s\": %s", (long long)step, c,
                           lz->arrays[a].name, why);
        e.bytes = (int64_t)size;
      }
      wire_put(&o->head, &e, sizeof e);
      at += (size_t)e.bytes;
    }
  RETURN_IF(o->head.bad, lz, LUISA_ERR_NOMEM, "luisa_step(%lld): out of memory for the step's head", (long long)step);
  /* The head first: the analytics rank reads it, then the chunks in its order. */
  MPI_Isend(o->head.buf, (int)o->head.len, MPI_BYTE, t->ana, WIRE_TAG_HEAD, lz->split->link, &o->requests[0]);
  o->nrequests = 1;
  const lu_sent *sent = (const lu_sent *)(o->head.buf + sizeof h + (size_t)lz->nparams * sizeof *t->values);
  at = 0;
  for (int k = 0; k < n; k++) {
    const lu_array *a = &lz->arrays[sent[k].array];
    const void *from = sent_in_place(t, a, &a->chunks[sent[k].chunk], &s->chunks[sent[k].array][sent[k].chunk]);
    MPI_Isend(from ? from : o->data.buf + at, (int)sent[k].bytes, MPI_BYTE, t->ana, WIRE_TAG_DATA,
              lz->split->link, &o->requests[o->nrequests++]);
    at += from ? 0 : (size_t)sent[k].bytes;
    t->raw += sent[k].raw;
    t->sent += sent[k].bytes;
  }
  return LUISA_OK;
}

static void end_traffic(luisa *lz)
{
  lu_ranks *t = state(lz);
  lu_head h = { lz->steps + 1, 0, WIRE_END, 0, 0, 0 };
  MPI_Send(&h, (int)sizeof h, MPI_BYTE, t->ana, WIRE_TAG_HEAD, lz->split->link);
  t->off = 1;
}

/* The reply for call k - lag: its assignments land in what call k published. */
static int take_reply(luisa *lz, int64_t report, int64_t call, int64_t step, int land)
{
  lu_ranks *t = state(lz);
  MPI_Status st;
  int bytes = 0;
  double start = now_s();
  int flag = 0;
  MPI_Iprobe(t->ana, WIRE_TAG_REPLY, lz->split->link, &flag, &st);
  if (!flag)
    t->waits++;
  if (!flag && lz->opts.timeout_s > 0) {   /* polled, so that a deadline can pass */
    struct timespec nap = { 0, 100000 };
    while (!flag && now_s() - start < lz->opts.timeout_s) {
      nanosleep(&nap, NULL);
      MPI_Iprobe(t->ana, WIRE_TAG_REPLY, lz->split->link, &flag, &st);
    }
    if (!flag) {   /* the analytics rank hears that this one sends no more */
      end_traffic(lz);
      return error_set(lz, LUISA_ERR_TIMEOUT, "luisa_step(%lld): analytics rank %d did not answer for call %lld "
                       "within opts.timeout_s (%g s): analytics are off on this rank", (long long)step, t->ana,
                       (long long)report, lz->opts.timeout_s);
    }
  }
  RETURN_IF(!flag && MPI_Probe(t->ana, WIRE_TAG_REPLY, lz->split->link, &st) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
            "luisa_step(%lld): MPI_Probe for the analytics' reply failed", (long long)step);
  MPI_Get_count(&st, MPI_BYTE, &bytes);
  RETURN_IF(!wire_room(&t->reply, (size_t)bytes), lz, LUISA_ERR_NOMEM, "luisa_step(%lld): out of memory for the "
            "analytics' reply (%d bytes)", (long long)step, bytes);
  MPI_Recv(t->reply.buf, bytes, MPI_BYTE, t->ana, WIRE_TAG_REPLY, lz->split->link, MPI_STATUS_IGNORE);
  if (!flag)
    t->waited_s += now_s() - start;
  lu_wire *w = &t->reply;
  lu_reply r;
  wire_take(w, &r, sizeof r);
  const char *err = wire_view(w, (size_t)(r.errlen > 0 ? r.errlen : 0));
  const lu_change *changes = wire_view(w, (size_t)(r.nchanges > 0 ? r.nchanges : 0) * sizeof(lu_change));
  const lu_write *writes = wire_view(w, (size_t)(r.nwrites > 0 ? r.nwrites : 0) * sizeof(lu_write));
  const char *data = wire_view(w, (size_t)(r.data_bytes > 0 ? r.data_bytes : 0));
  RETURN_IF(w->bad || r.call != report, lz, LUISA_ERR_DATA, "luisa_step(%lld): the analytics' reply for call %lld "
            "is cut or out of order", (long long)step, (long long)report);
  if (r.status != LUISA_OK)
    snprintf(lz->err, sizeof lz->err, "%.*s", r.errlen, err);
  if (r.nchanges && steer_arrive(lz, changes, r.nchanges) != LUISA_OK)
    log_write(lz, LUISA_LOG_ERROR, "step %lld: out of memory for %d steering changes: they are dropped on this rank",
              (long long)step, r.nchanges);
  const lu_slot *to = &t->slots[call % t->nslots];
  int skipped = 0;
  for (int k = 0; k < r.nwrites && land; k++) {
    const lu_write *wr = &writes[k];
    if (wr->array < 0 || wr->array >= lz->narrays || wr->chunk < 0 || wr->chunk >= lz->arrays[wr->array].nchunks)
      break;   /* not this rank's: the build differs (never with one build) */
    const lu_array *a = &lz->arrays[wr->array];
    const lu_slot_chunk *dst = wr->array < to->narrays && wr->chunk < to->nchunks[wr->array] ?
                               &to->chunks[wr->array][wr->chunk] : NULL;
    if (dst && dst->own)
      array_unpack(a, &a->chunks[wr->chunk], wr->lo, wr->n, data, dst->own);
    else
      skipped++;
    data += (size_t)array_volume(LUISA_MAX_DIMS, wr->n) * array_dtype_size(a->dtype);
  }
  if (skipped && lz->rank == 0)
    log_write(lz, LUISA_LOG_WARN, "step %lld: %d boxes the assignments of call %lld wrote were dropped: their "
              "chunks were not published (by luisa_publish) at this step", (long long)step, skipped,
              (long long)report);
  schedule_get(&t->schedule, lz, w);
  t->reported = report;
  if (r.off)   /* the analytics are off for good */
    end_traffic(lz);
  lu_outbox *o = &t->out[report % t->nslots];   /* done: the reply says its chunks arrived */
  MPI_Waitall(o->nrequests, o->requests, MPI_STATUSES_IGNORE);
  o->nrequests = 0;
  slot_release(&t->slots[report % t->nslots]);
  return r.status;
}

static int ranks_step(luisa *lz, int64_t step)
{
  lu_ranks *t = state(lz);
  int64_t call = lz->steps;
  int status = LUISA_OK;
  if (!t->off && !lz->began)
    status = first_call(lz);
  lz->began = 1;
  t->slots[call % t->nslots].step = step;   /* named when its buffers are handed over again too soon */
  if (t->off) {
    slot_release(&t->slots[call % t->nslots]);
    return status;
  }
  status = send_call(lz, call, step);
  if (status != LUISA_OK) {   /* this rank alone: its analytics rank hears it ended */
    end_traffic(lz);
    return status;
  }
  int64_t report = call - t->lag;
  if (report >= 1) {
    status = take_reply(lz, report, call, step, 1);
  }
  if (steer_apply_due(lz, call) == LUISA_STOP && status < LUISA_ERR_FIRST)
    status = LUISA_STOP;
  return status;
}

static int ranks_wants(const luisa *lz, int a, int chunk, int64_t step)
{
  const lu_ranks *t = state(lz);
  if (t->off && lz->began)
    return 0;
  return schedule_wants(&t->schedule, a, chunk, step, lz->steps + 1);
}

static void ranks_progress(luisa *lz, luisa_progress *out)
{
  const lu_ranks *t = state(lz);
  out->steps = lz->steps;
  out->analysed = t->off ? lz->steps : t->reported;
  out->waits = t->waits;
  out->waited_s = t->waited_s;
}

/* The analytics hear that no call follows; the replies still owed are
 * taken, what they report logged. Collective over the job (serve.c). */
static void ranks_close(luisa *lz)
{
  lu_ranks *t = state(lz);
  if (t && !lz->began && !t->off) {   /* no step ever: the analytics learn there is nothing */
    int64_t head[2] = { 0, 0 };
    MPI_Bcast(head, 2, MPI_INT64_T, lz->split->sim_link[0], lz->split->link);
  } else if (t && !t->off) {
    int64_t last = t->reported;
    end_traffic(lz);
    for (int64_t k = last + 1; k <= lz->steps; k++) {
      int status = take_reply(lz, k, lz->steps, lz->last_step, 0);
      if (status != LUISA_OK && lz->rank == 0)
        log_write(lz, LUISA_LOG_WARN, "call %lld, analysed after the simulation's last luisa_step: %s",
                  (long long)k, lz->err);
    }
  }
  if (t) {
    for (int k = 0; k < t->nslots; k++) {
      MPI_Waitall(t->out[k].nrequests, t->out[k].requests, MPI_STATUSES_IGNORE);
      t->out[k].nrequests = 0;
      slot_release(&t->slots[k]);
    }
    lu_codec_stats zs = { { 0 }, { 0 } };
    if (t->codec)
      codec_stats(t->codec, &zs);
    if (lz->rank == 0 && lz->began)
      log_write(lz, LUISA_LOG_INFO, "summary: ranks mode, max_lag %d: luisa_step waited for the analytics in %lld "
                "of %lld calls, %.3f s in all; rank 0 sent %lld bytes of chunks as %lld on the wire (%.3f s "
                "compressing)", t->lag, (long long)t->waits, (long long)lz->steps, t->waited_s, (long long)t->raw,
                (long long)t->sent, zs.compress.seconds);
  }
  memory_summary(lz);
  reload_close(lz);
  free_ranks(lz, t);
  lz->exec_state = NULL;
}

const lu_executor exec_ranks = {
  "ranks", ranks_open, ranks_publish, ranks_step, ranks_wants, ranks_progress, ranks_close,
};
