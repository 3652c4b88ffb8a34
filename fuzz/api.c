/* api.c: libFuzzer target for the C API's argument and layout checks: the
 * input is a sequence of luisa_array / luisa_chunk / luisa_param_* /
 * luisa_publish / luisa_wants / luisa_step calls with arbitrary values, on
 * MPI_COMM_SELF, under a script summing A and B. The invariant: no sanitizer
 * report, and every status is a documented code. */
#include "fuzz.h"

enum { MAXCHUNKS = 64, MAXBUF = 1 << 20 };

static const char *const names[] = { "A", "B", "C", "", "1A", "A-B", "dt",
                                     "a_name_of_exactly_sixty_three_characters_which_is_the_limit_ok_",
                                     "a_name_of_sixty_four_characters_which_is_one_more_than_the_limit",
                                     NULL };
static char script[256];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fz_start(argc, argv);
  static const char text[] = "local luisa = require 'luisa'\n"
                             "luisa.every(1, { a = luisa.array('A'):sum(), b = luisa.array('B'):max() },\n"
                             "  function(step, r) luisa.state.s = r.a end)\n";
  snprintf(script, sizeof script, "%s/api.lua", fz_dir());
  fz_write(script, text, sizeof text - 1);
  return 0;
}

/* What the harness knows of the declarations the engine accepted, so that
 * every buffer it publishes really is as large as the layout says. */
typedef struct arr {
  int declared;
  luisa_dtype dtype;
  int ndim;
  int nchunks;
  int64_t bytes[MAXCHUNKS];   /* the buffer a chunk's layout describes; -1 too large to make */
} arr;

static size_t dtype_size(luisa_dtype t)
{
  return t == LUISA_F64 || t == LUISA_I64 ? 8 : 4;
}

static int64_t buffer_bytes(const arr *a, const int64_t *shape, const luisa_layout *l)
{
  int64_t n = (int64_t)dtype_size(a->dtype);
  for (int d = 0; d < a->ndim; d++) {
    int64_t e = l && l->alloc_shape[d] ? l->alloc_shape[d] : shape[d];
    if (e < 1 || e > MAXBUF || n > MAXBUF / e)
      return -1;
    n *= e;
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fz f = { data, size };
  luisa_options o = luisa_options_default();
  o.script = (fz_u8(&f) & 7) ? script : NULL;
  o.log_level = LUISA_LOG_ERROR;
  o.reload_signal = 0;
  luisa *lz = NULL;
  int s = luisa_init(MPI_COMM_SELF, &o, &lz);
  fz_documented(s);
  if (!lz)
    abort();   /* nothing here should keep a context from being made */
  arr arrays[3] = { { 0 } };
  void *bufs[64];
  int nbufs = 0, nsteps = 0;
  double f64[4];
  int64_t i64[4];
  int bools[4];
  char strs[4][80];
  int nparams = 0;
  int64_t step = 0;
  for (int op = 0; f.n && op < 64; op++) {
    uint8_t kind = fz_u8(&f) % 10, ni = fz_u8(&f) % (sizeof names / sizeof *names);
    const char *name = names[ni];
    arr *a = ni < 3 ? &arrays[ni] : NULL;
    switch (kind) {
    case 0: {   /* luisa_array */
      luisa_dtype t = (luisa_dtype)(fz_u8(&f) % 6);
      int ndim = (int)(fz_u8(&f) % 7) - 1;
      int64_t shape[LUISA_MAX_DIMS + 2];
      for (int d = 0; d < LUISA_MAX_DIMS + 2; d++)
        shape[d] = fz_i64(&f);
      s = luisa_array(lz, name, t, ndim, (fz_u8(&f) & 15) ? shape : NULL);
      if (s == LUISA_OK && a && !a->declared)
        *a = (arr){ 1, t, ndim, 0, { 0 } };
      break;
    }
    case 1:
    case 2: {   /* luisa_chunk, with a layout or not */
      int64_t off[LUISA_MAX_DIMS], shape[LUISA_MAX_DIMS];
      for (int d = 0; d < LUISA_MAX_DIMS; d++) {
        off[d] = fz_i64(&f);
        shape[d] = fz_i64(&f);
      }
      luisa_layout l = { (luisa_order)(fz_u8(&f) % 3), { 0 }, { 0 } };
      for (int d = 0; d < LUISA_MAX_DIMS; d++) {
        l.alloc_shape[d] = fz_i64(&f);
        l.start[d] = fz_i64(&f);
      }
      const luisa_layout *lp = kind == 2 ? &l : NULL;
      s = luisa_chunk(lz, name, (fz_u8(&f) & 15) ? off : NULL, shape, lp);
      if (s == LUISA_OK && a && a->declared && a->nchunks < MAXCHUNKS) {
        a->bytes[a->nchunks] = buffer_bytes(a, shape, lp);
        a->nchunks++;
      }
      break;
    }
    case 3: {   /* luisa_publish: a real buffer for a known chunk, else what must be refused */
      int chunk = (int)(int8_t)fz_u8(&f);
      if (a && a->declared && chunk >= 0 && chunk < a->nchunks) {
        if (a->bytes[chunk] < 0 || nbufs == 64)
          break;
        void *b = calloc(1, (size_t)a->bytes[chunk]);
        bufs[nbufs++] = b;
        s = luisa_publish(lz, name, chunk, b);
      } else {
        static double dummy;   /* never read: the call must refuse */
        s = luisa_publish(lz, name, chunk < 0 || !a ? chunk : chunk + MAXCHUNKS, (fz_u8(&f) & 1) ? &dummy : NULL);
        if (s == LUISA_OK)
          abort();
      }
      break;
    }
    case 4: {   /* luisa_wants */
      int w = -1;
      s = luisa_wants(lz, name, (int)(int8_t)fz_u8(&f), fz_i64(&f), (fz_u8(&f) & 15) ? &w : NULL);
      if (s == LUISA_OK && w != 0 && w != 1)
        abort();
      break;
    }
    case 5:
    case 6: {   /* steerable parameters; their variables live until finalize */
      if (nparams == 4)
        break;
      int k = nparams++;
      uint8_t type = fz_u8(&f) % 4;
      if (type == 0) {
        f64[k] = fz_f64(&f);
        double lo = fz_f64(&f), hi = fz_f64(&f);
        s = luisa_param_f64(lz, name, (fz_u8(&f) & 15) ? &f64[k] : NULL, lo, hi, (fz_u8(&f) & 1) ? "d" : NULL);
      } else if (type == 1) {
        i64[k] = fz_i64(&f);
        int64_t lo = fz_i64(&f), hi = fz_i64(&f);
        s = luisa_param_i64(lz, name, &i64[k], lo, hi, NULL);
      } else if (type == 2) {
        bools[k] = (int)fz_i64(&f);
        s = luisa_param_bool(lz, name, &bools[k], "b");
      } else {
        static const char *const values[] = { "fast", "slow", "", "a_value_longer_than_sixteen_bytes", NULL };
        const char *allowed[5];
        int n = fz_u8(&f) % 5;
        for (int v = 0; v < n; v++)
          allowed[v] = values[fz_u8(&f) % 4];
        allowed[n] = NULL;
        memset(strs[k], 0, sizeof strs[k]);
        snprintf(strs[k], sizeof strs[k], "%s", values[fz_u8(&f) % 4]);
        size_t cap = fz_u8(&f) % sizeof strs[k];   /* never more than the buffer holds */
        s = luisa_param_string(lz, name, strs[k], cap, (fz_u8(&f) & 15) ? allowed : NULL, NULL);
      }
      break;
    }
    case 7:
      s = luisa_field_writable(lz, name);
      break;
    case 8:
      s = luisa_reload(lz);
      break;
    case 9:   /* a step, then the published buffers may go */
      if (nsteps == 3)
        break;
      nsteps++;
      step = (fz_u8(&f) & 7) && step < INT64_MAX ? step + 1 : fz_i64(&f);
      s = luisa_step(lz, step);
      for (int b = 0; b < nbufs; b++)
        free(bufs[b]);
      nbufs = 0;
      break;
    }
    fz_documented(s);
    if (!luisa_error(lz))
      abort();
  }
  fz_documented(luisa_step(lz, step < INT64_MAX ? step + 1 : step));
  luisa_finalize(lz);
  for (int b = 0; b < nbufs; b++)
    free(bufs[b]);
  return 0;
}
