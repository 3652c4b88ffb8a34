/* serve.c: an analytics rank in ranks mode. It declares what its
 * simulation ranks declared, receives their chunks each call into buffers
 * it owns, runs the analysis over the analytics ranks (analysis.h) and
 * answers each simulation rank: status, steering, assignments, schedule.
 * It returns when every simulation rank has said it sends no more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "analysis.h"
#include "array.h"
#include "codec.h"
#include "error.h"
#include "log.h"
#include "schedule.h"
#include "serve.h"
#include "split.h"
#include "steer.h"
#include "wire.h"

typedef struct lu_origin {
  int mine, chunk;             /* which of this rank's simulation ranks, its chunk number */
  int array, local;            /* here */
} lu_origin;

typedef struct lu_server {
  luisa *lz;
  const lu_split *sp;
  int nmine;
  int *mine, *live;            /* simulation ranks (indices in sp), still sending */
  int nflat, *base;            /* chunks here, flat; per array its first */
  lu_origin *origin;           /* per flat chunk */
  void **bufs;                 /* per flat chunk, its elements in C order */
  unsigned char *arrived;      /* per flat chunk, this call */
  int **flat_of, **counts_of;  /* per simulation rank: its chunks' flat indices; chunks per array */
  lu_value *mirror, *values;
  lu_wire head, scratch, *replies;
  MPI_Request *sending;        /* per simulation rank, its last reply */
  lu_codec *codec;             /* opened at the first compressed chunk */
  lu_schedule schedule;
  lu_change *changes;
  int changes_cap;
  char corrupt[LU_ERR_MAX];
} lu_server;

static size_t flat_bytes(const lu_server *s, int k)
{
  return (size_t)s->lz->arrays[s->origin[k].array].chunks[s->origin[k].local].bytes;
}

static void free_server(lu_server *s)
{
  for (int i = 0; s->sending && i < s->nmine; i++)
    MPI_Wait(&s->sending[i], MPI_STATUS_IGNORE);
  for (int k = 0; s->bufs && k < s->nflat; k++)
    memory_free(&s->lz->memory, LU_USE_TRANSFER, s->bufs[k], flat_bytes(s, k));
  for (int i = 0; i < s->nmine; i++) {
    if (s->flat_of)
      free(s->flat_of[i]);
    if (s->counts_of)
      free(s->counts_of[i]);
    if (s->replies)
      wire_free(&s->replies[i]);
  }
  free(s->mine);
  free(s->live);
  free(s->base);
  free(s->origin);
  free(s->bufs);
  free(s->arrived);
  free(s->flat_of);
  free(s->counts_of);
  free(s->mirror);
  free(s->values);
  free(s->replies);
  free(s->sending);
  free(s->changes);
  wire_free(&s->head);
  wire_free(&s->scratch);
  codec_close(s->codec);
  schedule_free(&s->schedule);
}

static int nomem(lu_server *s, const char *what)
{
  return error_set(s->lz, LUISA_ERR_NOMEM, "luisa_init (analytics rank %d): out of memory for %s", s->lz->rank, what);
}

/* The chunks each simulation rank of this one declared, declared here in
 * C order with buffers of their own. */
static int adopt_chunks(lu_server *s)
{
  luisa *lz = s->lz;
  const lu_split *sp = s->sp;
  int ntotal = 0, cap = 0;
  lu_origin *seen = NULL;
  s->flat_of = calloc((size_t)s->nmine + 1, sizeof *s->flat_of);
  s->counts_of = calloc((size_t)s->nmine + 1, sizeof *s->counts_of);
  if (!s->flat_of || !s->counts_of)
    return nomem(s, "the simulation ranks' chunks");
  lu_wire w = { 0 };
  for (int i = 0; i < s->nmine; i++) {
    MPI_Status st;
    int bytes = 0, from = sp->sim_link[s->mine[i]];
    MPI_Probe(from, WIRE_TAG_CHUNKS, sp->link, &st);
    MPI_Get_count(&st, MPI_BYTE, &bytes);
    if (!wire_room(&w, (size_t)bytes))
      return wire_free(&w), free(seen), nomem(s, "the simulation ranks' chunks");
    MPI_Recv(w.buf, bytes, MPI_BYTE, from, WIRE_TAG_CHUNKS, sp->link, MPI_STATUS_IGNORE);
    s->counts_of[i] = calloc((size_t)lz->narrays + 1, sizeof **s->counts_of);
    if (!s->counts_of[i])
      return wire_free(&w), free(seen), nomem(s, "the simulation ranks' chunks");
    while (w.at < w.len && !w.bad) {
      int a = wire_take_i32(&w), c = wire_take_i32(&w);
      int64_t offset[LUISA_MAX_DIMS], shape[LUISA_MAX_DIMS];
      int64_t stride[LUISA_MAX_DIMS], first = 0, buffer = 0;
      wire_take(&w, offset, sizeof offset);
      wire_take(&w, shape, sizeof shape);
      int whole = wire_take_i32(&w);   /* it arrives as the simulation's whole buffer, in its layout */
      wire_take(&w, stride, sizeof stride);
      wire_take(&w, &first, sizeof first);
      wire_take(&w, &buffer, sizeof buffer);
      if (w.bad || a < 0 || a >= lz->narrays)
        break;
      const char *name = lz->arrays[a].name;
      int status = whole ? array_chunk_strided(lz, name, offset, shape, stride, first, buffer)
                         : luisa_chunk(lz, name, offset, shape, NULL);
      if (status != LUISA_OK)
        return wire_free(&w), free(seen), status;
      if (ntotal == cap) {
        cap = cap ? 2 * cap : 16;
        lu_origin *grown = realloc(seen, (size_t)cap * sizeof *grown);
        if (!grown)
          return wire_free(&w), free(seen), nomem(s, "the simulation ranks' chunks");
        seen = grown;
      }
      seen[ntotal++] = (lu_origin){ i, c, a, lz->arrays[a].nchunks - 1 };
      s->counts_of[i][a]++;
    }
    RETURN_IF(w.bad, lz, LUISA_ERR_DATA, "luisa_init (analytics rank %d): simulation rank %d's chunks arrived cut",
              lz->rank, s->mine[i]);
  }
  wire_free(&w);
  s->nflat = ntotal;
  s->base = calloc((size_t)lz->narrays + 1, sizeof *s->base);
  s->origin = calloc((size_t)ntotal + 1, sizeof *s->origin);
  s->bufs = calloc((size_t)ntotal + 1, sizeof *s->bufs);
  s->arrived = calloc((size_t)ntotal + 1, 1);
  if (!s->base || !s->origin || !s->bufs || !s->arrived)
    return free(seen), nomem(s, "the chunks' buffers");
  for (int a = 0, at = 0; a < lz->narrays; at += lz->arrays[a].nchunks, a++) {
    s->base[a] = at;
    if (!(lz->arrays[a].origin = calloc(2 * (size_t)lz->arrays[a].nchunks + 1, sizeof(int))))
      return free(seen), nomem(s, "the chunks' origins");
  }
  for (int i = 0; i < s->nmine; i++) {
    int n = 0;
    for (int a = 0; a < lz->narrays; a++)
      n += s->counts_of[i][a];
    if (!(s->flat_of[i] = calloc((size_t)n + 1, sizeof **s->flat_of)))
      return free(seen), nomem(s, "the chunks' buffers");
  }
  /* In the order each simulation rank listed them: array by array, chunk by chunk. */
  int *filled = calloc((size_t)s->nmine + 1, sizeof *filled);
  for (int k = 0; filled && k < ntotal; k++) {
    const lu_origin *o = &seen[k];
    int flat = s->base[o->array] + o->local;
    s->origin[flat] = *o;
    lz->arrays[o->array].origin[2 * o->local] = s->mine[o->mine];   /* for messages naming it */
    lz->arrays[o->array].origin[2 * o->local + 1] = o->chunk;
    s->flat_of[o->mine][filled[o->mine]++] = flat;
    if (!(s->bufs[flat] = memory_alloc(&lz->memory, LU_USE_TRANSFER, flat_bytes(s, flat))))
      break;
  }
  int ok = filled != NULL;
  for (int k = 0; ok && k < ntotal; k++)
    ok = s->bufs[k] != NULL;
  free(filled);
  free(seen);
  return ok ? LUISA_OK : nomem(s, "the chunks' buffers");
}

/* The flat chunk simulation rank i calls (array a, chunk c), or -1. */
static int flat_index(const lu_server *s, int i, int a, int c)
{
  if (a < 0 || a >= s->lz->narrays || c < 0 || c >= s->counts_of[i][a])
    return -1;
  int k = c;
  for (int b = 0; b < a; b++)
    k += s->counts_of[i][b];
  return s->flat_of[i][k];
}

/* One simulation rank's head and chunks for the coming call. */
static void receive(lu_server *s, int i, lu_head *h, int *reload, int first)
{
  luisa *lz = s->lz;
  int from = s->sp->sim_link[s->mine[i]], bytes = 0;
  MPI_Status st;
  MPI_Probe(from, WIRE_TAG_HEAD, s->sp->link, &st);
  MPI_Get_count(&st, MPI_BYTE, &bytes);
  if (!wire_room(&s->head, (size_t)bytes)) {   /* cannot happen twice: heads are small */
    MPI_Recv(NULL, 0, MPI_BYTE, from, WIRE_TAG_HEAD, s->sp->link, MPI_STATUS_IGNORE);
    h->kind = WIRE_END;
    return;
  }
  MPI_Recv(s->head.buf, bytes, MPI_BYTE, from, WIRE_TAG_HEAD, s->sp->link, MPI_STATUS_IGNORE);
  wire_take(&s->head, h, sizeof *h);
  if (h->kind != WIRE_STEP)
    return;
  *reload |= h->reload;
  const lu_value *v = wire_view(&s->head, (size_t)h->nparams * sizeof *v);
  if (first && v && h->nparams == lz->nparams)
    memcpy(s->values, v, (size_t)h->nparams * sizeof *v);
  for (int k = 0; k < h->nsent; k++) {
    lu_sent e = { 0 };
    wire_take(&s->head, &e, sizeof e);
    int flat = s->head.bad ? -1 : flat_index(s, i, e.array, e.chunk);
    const lu_array *a = flat >= 0 ? &lz->arrays[s->origin[flat].array] : NULL;
    size_t raw = a ? flat_bytes(s, flat) : 0;
    char why[512] = "";
    int direct = a && !e.packed && (size_t)e.bytes == raw;
    if (!direct && !wire_room(&s->scratch, (size_t)(e.bytes > 0 ? e.bytes : 0)))
      snprintf(why, sizeof why, "out of memory for %lld bytes", (long long)e.bytes);
    MPI_Recv(direct ? s->bufs[flat] : s->scratch.buf, *why ? 0 : (int)e.bytes, MPI_BYTE, from, WIRE_TAG_DATA,
             s->sp->link, MPI_STATUS_IGNORE);
    if (!*why && !a)
      snprintf(why, sizeof why, "it is not a chunk that rank declared");
    else if (!*why && !direct && !e.packed)
      snprintf(why, sizeof why, "%lld bytes arrived, %zu expected", (long long)e.bytes, raw);
    else if (!*why && e.packed && !s->codec && codec_open(1, &s->codec, why, sizeof why) != LUISA_OK)
      ;
    else if (!*why && e.packed) {
      lu_codec_stats before, after;
      codec_stats(s->codec, &before);
      codec_decompress(s->codec, s->bufs[flat], raw, s->scratch.buf, (size_t)e.bytes, why, sizeof why);
      codec_stats(s->codec, &after);
      lz->transit_s += after.decompress.seconds - before.decompress.seconds;
    }
    if (!*why) {
      lz->transit_raw += (int64_t)raw;
      lz->transit_wire += e.bytes;
    }
    if (*why && !*s->corrupt)
      snprintf(s->corrupt, sizeof s->corrupt, "step %lld: chunk %d of array \"%s\" from simulation rank %d arrived "
               "corrupt at analytics rank %d: %s", (long long)h->step, e.chunk, a ? a->name : "?", s->mine[i],
               lz->rank, why);
    else if (!*why)
      s->arrived[flat] = 1;
  }
}

/* The answer to simulation rank i for this call. */
static int reply(lu_server *s, int i, int64_t call, int status, const char *err, int nchanges, int off)
{
  luisa *lz = s->lz;
  lu_wire *w = &s->replies[i];
  MPI_Wait(&s->sending[i], MPI_STATUS_IGNORE);
  wire_reset(w);
  int nwrites = 0;
  int64_t data = 0;
  for (int k = 0; k < lz->nwritten; k++) {
    const lu_write *wr = &lz->written[k];
    int flat = s->base[wr->array] + wr->chunk;
    if (s->origin[flat].mine == i) {
      nwrites++;
      data += array_volume(LUISA_MAX_DIMS, wr->n) * (int64_t)array_dtype_size(lz->arrays[wr->array].dtype);
    }
  }
  size_t errlen = strlen(err);
  lu_reply r = { call, status, (int32_t)errlen, nchanges, nwrites, data, off, 0 };
  wire_put(w, &r, sizeof r);
  wire_put(w, err, errlen);
  wire_put(w, s->changes, (size_t)nchanges * sizeof *s->changes);
  for (int k = 0; k < lz->nwritten; k++) {
    lu_write wr = lz->written[k];
    int flat = s->base[wr.array] + wr.chunk;
    if (s->origin[flat].mine == i) {
      wr.chunk = s->origin[flat].chunk;
      wire_put(w, &wr, sizeof wr);
    }
  }
  int64_t ones[LUISA_MAX_DIMS] = { 1, 1, 1, 1 };
  for (int k = 0; k < lz->nwritten && !w->bad; k++) {
    const lu_write *wr = &lz->written[k];
    int flat = s->base[wr->array] + wr->chunk;
    if (s->origin[flat].mine != i)
      continue;
    const lu_array *a = &lz->arrays[wr->array];
    const lu_chunk *ch = &a->chunks[wr->chunk];
    size_t bytes = (size_t)array_volume(LUISA_MAX_DIMS, wr->n) * array_dtype_size(a->dtype);
    int64_t lo[LUISA_MAX_DIMS];
    for (int d = 0; d < LUISA_MAX_DIMS; d++)
      lo[d] = ch->offset[d] + wr->lo[d];
    if (!wire_room(&s->scratch, bytes)) {
      w->bad = 1;
      break;
    }
    array_pack(a, ch, s->bufs[flat], lo, wr->n, ones, s->scratch.buf);
    wire_put(w, s->scratch.buf, bytes);
  }
  if (s->flat_of && s->flat_of[i] && s->counts_of[i])
    schedule_put(&s->schedule, s->flat_of[i], s->counts_of[i], lz->narrays, w);
  else
    wire_i32(w, 0);   /* no schedule: everything is wanted */
  if (w->bad) {   /* the simulation rank still hears, in a reply that needs no memory */
    struct { lu_reply r; char err[160]; } small = { { call, LUISA_ERR_NOMEM, 0, 0, 0, 0, 0, 0 }, "" };
    small.r.errlen = snprintf(small.err, sizeof small.err, "luisa_step: out of memory on analytics rank %d for "
                              "the reply of call %lld", lz->rank, (long long)call);
    wire_reset(w);
    wire_put(w, &small, sizeof small.r + (size_t)small.r.errlen);
    MPI_Send(&small, (int)(sizeof small.r + (size_t)small.r.errlen), MPI_BYTE, s->sp->sim_link[s->mine[i]],
             WIRE_TAG_REPLY, s->sp->link);
    return LUISA_ERR_NOMEM;
  }
  MPI_Isend(w->buf, (int)w->len, MPI_BYTE, s->sp->sim_link[s->mine[i]], WIRE_TAG_REPLY, s->sp->link,
            &s->sending[i]);
  return LUISA_OK;
}

/* The calls' agreement among the analytics ranks: whether any simulation
 * rank still sends, the step range, reload requests, corrupt data, and
 * the lowest analytics rank whose simulation ranks sent (its parameters
 * count). One all-reduce. */
enum { AGREE_LIVE, AGREE_LOW, AGREE_HIGH, AGREE_RELOAD, AGREE_CORRUPT, AGREE_FIRST, AGREE_N };

static int analyse(lu_server *s, int64_t call, int64_t step, int reload, char *err, size_t cap)
{
  luisa *lz = s->lz;
  steer_observe(lz, s->values);
  for (int k = 0; k < s->nflat; k++)
    lz->arrays[s->origin[k].array].published[s->origin[k].local] = s->arrived[k] ? s->bufs[k] : NULL;
  if (reload)
    atomic_store(&lz->reload_granted, 1);
  lz->stepped = 1;
  lz->last_step = step;
  lz->steps = call;
  int status = analysis_step(lz, step, call, lz->opts.max_lag);
  snprintf(err, cap, "%s", status == LUISA_OK ? "" : error_buffer(lz));
  int64_t until = steer_plan_pending(lz);
  schedule_take(lz, &s->schedule, lz->reload_at && lz->reload_at < until ? lz->reload_at : until);
  array_forget_published(lz);
  return status;
}

/* Analytics off for good: each simulation rank hears it in the answer to
 * its next call, then what it still sends is taken and dropped until it
 * says it sends no more. Needs no other analytics rank. */
static void drain(lu_server *s, int status, const char *why)
{
  luisa *lz = s->lz;
  for (int i = 0; i < s->nmine; i++) {
    int from = s->sp->sim_link[s->mine[i]], told = 0;
    while (s->live[i]) {
      MPI_Status st;
      int bytes = 0;
      MPI_Probe(from, WIRE_TAG_HEAD, s->sp->link, &st);
      MPI_Get_count(&st, MPI_BYTE, &bytes);
      lu_head h = { 0 };
      if (!wire_room(&s->head, (size_t)bytes)) {
        MPI_Recv(&h, 0, MPI_BYTE, from, WIRE_TAG_HEAD, s->sp->link, MPI_STATUS_IGNORE);   /* truncated: ends */
        s->live[i] = 0;
        continue;
      }
      MPI_Recv(s->head.buf, bytes, MPI_BYTE, from, WIRE_TAG_HEAD, s->sp->link, MPI_STATUS_IGNORE);
      wire_take(&s->head, &h, sizeof h);
      if (h.kind != WIRE_STEP) {
        s->live[i] = 0;
        continue;
      }
      wire_view(&s->head, (size_t)h.nparams * sizeof(lu_value));
      for (int k = 0; k < h.nsent; k++) {
        lu_sent e = { 0 };
        wire_take(&s->head, &e, sizeof e);
        int fits = wire_room(&s->scratch, (size_t)(e.bytes > 0 ? e.bytes : 0));
        MPI_Recv(fits ? s->scratch.buf : NULL, fits ? (int)e.bytes : 0, MPI_BYTE, from, WIRE_TAG_DATA, s->sp->link,
                 MPI_STATUS_IGNORE);
      }
      if (!told++) {
        lz->nwritten = 0;
        reply(s, i, h.call, status, why, 0, 1);
      }
    }
  }
}

static int serve_calls(lu_server *s)
{
  luisa *lz = s->lz;
  int halted = 0;
  char err[LU_ERR_MAX];
  for (;;) {
    int reload = 0, first = 1;
    int64_t call = 0, step = 0, mine[AGREE_N] = { 0, INT64_MIN, INT64_MIN, 0, 0, INT64_MIN }, all[AGREE_N];
    memset(s->arrived, 0, (size_t)s->nflat);
    s->corrupt[0] = '\0';
    for (int i = 0; i < s->nmine; i++) {
      if (!s->live[i])
        continue;
      lu_head h = { 0 };
      receive(s, i, &h, &reload, first);
      if (h.kind != WIRE_STEP) {
        s->live[i] = 0;
        continue;
      }
      first = 0;
      call = h.call;
      mine[AGREE_LIVE] = 1;
      mine[AGREE_LOW] = mine[AGREE_LOW] == INT64_MIN || -h.step > mine[AGREE_LOW] ? -h.step : mine[AGREE_LOW];
      mine[AGREE_HIGH] = h.step > mine[AGREE_HIGH] ? h.step : mine[AGREE_HIGH];
      mine[AGREE_FIRST] = -lz->rank;
    }
    mine[AGREE_RELOAD] = reload;
    mine[AGREE_CORRUPT] = s->corrupt[0] != '\0';
    if (MPI_Allreduce(mine, all, AGREE_N, MPI_INT64_T, MPI_MAX, lz->comm) != MPI_SUCCESS)
      return error_set(lz, LUISA_ERR_MPI, "analytics rank %d: MPI_Allreduce of a call's agreement failed", lz->rank);
    if (!all[AGREE_LIVE])
      return LUISA_OK;
    step = -all[AGREE_LOW];
    if (lz->nparams && MPI_Bcast(s->values, lz->nparams * (int)sizeof *s->values, MPI_BYTE,
                                 (int)-all[AGREE_FIRST], lz->comm) != MPI_SUCCESS)
      return error_set(lz, LUISA_ERR_MPI, "analytics rank %d: MPI_Bcast of the parameters failed", lz->rank);
    int status;
    lz->nwritten = 0;
    if (all[AGREE_HIGH] != step) {
      status = LUISA_ERR_STEP;
      snprintf(err, sizeof err, "luisa_step: the simulation ranks passed different step numbers (from %lld to "
               "%lld) at their call %lld: analytics are off for the rest of the run", (long long)step,
               (long long)all[AGREE_HIGH], (long long)call);
      if (lz->rank == 0)
        log_write(lz, LUISA_LOG_ERROR, "%s", err);
      halted = 1;   /* told in this call's answer: off */
    } else if (all[AGREE_CORRUPT]) {
      status = LUISA_ERR_DATA;
      snprintf(err, sizeof err, "%s", s->corrupt[0] ? s->corrupt : "step data arrived corrupt at another analytics "
               "rank (its log says which)");
      snprintf(err + strlen(err), sizeof err - strlen(err), ": step %lld is not analysed", (long long)step);
      if (s->corrupt[0])
        log_write(lz, LUISA_LOG_ERROR, "%s", err);
    } else {
      status = analyse(s, call, step, (int)all[AGREE_RELOAD], err, sizeof err);
    }
    int n = steer_take_simulation(lz, s->changes, s->changes_cap);
    while (n == s->changes_cap && n > 0) {   /* more may wait: grow and take the rest */
      lu_change *grown = realloc(s->changes, 2 * (size_t)s->changes_cap * sizeof *grown);
      if (!grown)
        break;
      s->changes = grown;
      s->changes_cap *= 2;
      n += steer_take_simulation(lz, s->changes + n, s->changes_cap - n);
    }
    for (int i = 0; i < s->nmine; i++)
      if (s->live[i])
        reply(s, i, call, status, err, n, halted);
    if (halted) {
      drain(s, LUISA_OK, "");   /* their answers were sent: what follows is dropped */
      return LUISA_OK;
    }
  }
}

int serve_run(luisa *lz, int loaded)
{
  const lu_split *sp = lz->split;
  struct { int status; char err[LU_ERR_MAX]; } load = { loaded, "" };
  if (loaded != LUISA_OK)
    snprintf(load.err, sizeof load.err, "%s", lz->err);
  if (MPI_Bcast(&load, (int)sizeof load, MPI_BYTE, sp->ana_link[0], sp->link) != MPI_SUCCESS)
    return error_set(lz, LUISA_ERR_MPI, "luisa_init: MPI_Bcast of the script's load failed");
  if (load.status != LUISA_OK)   /* the simulation ranks hear the same */
    return loaded >= LUISA_ERR_FIRST ? loaded : LUISA_SERVED;
  int64_t head[2];
  if (MPI_Bcast(head, 2, MPI_INT64_T, sp->sim_link[0], sp->link) != MPI_SUCCESS)
    return error_set(lz, LUISA_ERR_MPI, "analytics rank %d: MPI_Bcast of the declarations failed", lz->rank);
  if (!head[0])   /* no step, or the declarations did not pass: analytics are off */
    return LUISA_SERVED;
  lu_server s = { .lz = lz, .sp = sp, .scratch = { .mem = &lz->memory, .use = LU_USE_TRANSFER } };
  lu_wire w = { 0 };
  int status = wire_room(&w, (size_t)head[1]) ? LUISA_OK : nomem(&s, "the declarations");
  MPI_Recv(status == LUISA_OK ? w.buf : NULL, status == LUISA_OK ? (int)head[1] : 0, MPI_BYTE, sp->sim_link[0],
           WIRE_TAG_DECL, sp->link, MPI_STATUS_IGNORE);
  const int *ana_of = status == LUISA_OK ? wire_view(&w, (size_t)sp->nsim * sizeof(int)) : NULL;
  if (status == LUISA_OK)
    status = wire_declare(lz, &w, &s.mirror);
  s.mine = calloc((size_t)sp->nsim, sizeof *s.mine);
  s.live = calloc((size_t)sp->nsim, sizeof *s.live);
  s.replies = calloc((size_t)sp->nsim, sizeof *s.replies);
  s.sending = malloc((size_t)sp->nsim * sizeof *s.sending);
  s.values = calloc((size_t)lz->nparams + 1, sizeof *s.values);
  s.changes_cap = 16;
  s.changes = malloc((size_t)s.changes_cap * sizeof *s.changes);
  if (status == LUISA_OK && (!s.mine || !s.live || !s.replies || !s.sending || !s.values || !s.changes))
    status = nomem(&s, "its simulation ranks");
  for (int i = 0; ana_of && s.mine && i < sp->nsim; i++)
    if (ana_of[i] == lz->rank) {
      s.sending[s.nmine] = MPI_REQUEST_NULL;
      s.live[s.nmine] = 1;
      s.mine[s.nmine++] = i;
    }
  wire_free(&w);
  if (status == LUISA_OK)
    status = adopt_chunks(&s);
  /* Agreed: the analysis' collectives need every analytics rank. */
  int ok = status == LUISA_OK, all = 0;
  if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, lz->comm) != MPI_SUCCESS)
    all = 0;
  if (all) {
    status = serve_calls(&s);
  } else {   /* the simulation ranks must still hear: one that never would wait for ever */
    char why[LU_ERR_MAX];
    snprintf(why, sizeof why, "luisa_step: analytics are off: %.3900s", ok ? "another analytics rank could not "
             "serve (its log says why)" : lz->err);
    log_write(lz, LUISA_LOG_ERROR, "analytics rank %d cannot serve: %s", lz->rank, ok ? why : lz->err);
    if (s.live && s.replies && s.sending && s.head.bad == 0)
      drain(&s, ok ? LUISA_ERR_MPI : status, why);
  }
  log_write(lz, LUISA_LOG_INFO, "summary: analytics rank %d served %d simulation ranks: %lld bytes of chunks "
            "received as %lld on the wire, %.3f s decompressing", lz->rank, s.nmine, (long long)lz->transit_raw,
            (long long)lz->transit_wire, lz->transit_s);
  free_server(&s);
  return status == LUISA_OK ? LUISA_SERVED : status;
}
