/* decl.c: libFuzzer target for the first step's declaration check: chunk
 * boxes of one small array on one rank (MPI_COMM_SELF), which may overlap,
 * leave holes or stick out. luisa_chunk must accept exactly the boxes
 * inside the array with a layout that holds them, and the first luisa_step
 * must return LUISA_OK exactly when the accepted ones tile the array, as
 * counted here cell by cell; any disagreement aborts. */
#include "fuzz.h"

enum { MAXCELLS = 6 * 6 * 6 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fz_start(argc, argv);
  return 0;
}

static void disagree(const char *what, int status, const luisa *lz)
{
  fprintf(stderr, "decl: %s (status %d: %s)\n", what, status, luisa_error(lz));
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fz f = { data, size };
  int ndim = fz_u8(&f) % 3 + 1;
  int64_t shape[LUISA_MAX_DIMS] = { 1, 1, 1, 1 };
  for (int d = 0; d < ndim; d++)
    shape[d] = fz_u8(&f) % 6 + 1;
  luisa_options o = luisa_options_default();
  o.log_level = LUISA_LOG_ERROR;
  o.reload_signal = 0;
  luisa *lz = NULL;
  if (luisa_init(MPI_COMM_SELF, &o, &lz) != LUISA_OK)
    abort();
  if (luisa_array(lz, "A", LUISA_F64, ndim, shape) != LUISA_OK)
    abort();
  unsigned char cover[MAXCELLS] = { 0 };
  int nchunks = fz_u8(&f) % 10;
  for (int k = 0; k < nchunks; k++) {
    int64_t off[LUISA_MAX_DIMS] = { 0 }, ext[LUISA_MAX_DIMS] = { 0 };
    luisa_layout l = { (luisa_order)(fz_u8(&f) & 1), { 0 }, { 0 } };
    int use_layout = fz_u8(&f) & 1, inside = 1, fits = 1;
    for (int d = 0; d < ndim; d++) {
      off[d] = (int64_t)(fz_u8(&f) % (shape[d] + 3)) - 1;
      ext[d] = (int64_t)(fz_u8(&f) % (shape[d] + 2));
      l.alloc_shape[d] = (int64_t)(fz_u8(&f) % 9);   /* 0: the chunk's own extent */
      l.start[d] = (int64_t)(fz_u8(&f) % 4) - (fz_u8(&f) == 255);
      inside = inside && off[d] >= 0 && ext[d] >= 1 && off[d] + ext[d] <= shape[d];
      int64_t alloc = l.alloc_shape[d] ? l.alloc_shape[d] : ext[d];
      fits = fits && (!use_layout || (l.start[d] >= 0 && l.start[d] + ext[d] <= alloc));
    }
    int s = luisa_chunk(lz, "A", off, ext, use_layout ? &l : NULL);
    if ((s == LUISA_OK) != (inside && fits))
      disagree(s == LUISA_OK ? "a chunk outside the array or its layout was accepted"
                             : "a chunk inside the array, with a layout that holds it, was refused", s, lz);
    if (s != LUISA_OK)
      continue;
    for (int64_t i = 0; i < shape[0] * shape[1] * shape[2]; i++) {
      int64_t p[3] = { i / (shape[1] * shape[2]), i / shape[2] % shape[1], i % shape[2] };
      int in = 1;
      for (int d = 0; d < ndim; d++)
        in = in && p[d] >= off[d] && p[d] < off[d] + ext[d];
      cover[i] += in;
    }
  }
  int tiles = 1;
  for (int64_t i = 0; i < shape[0] * shape[1] * shape[2]; i++)
    tiles = tiles && cover[i] == 1;
  int s = luisa_step(lz, 1);
  if ((s == LUISA_OK) != tiles || (!tiles && s != LUISA_ERR_CHUNK))
    disagree(tiles ? "chunks that tile the array were refused" : "chunks that do not tile the array passed", s, lz);
  luisa_finalize(lz);
  return 0;
}
