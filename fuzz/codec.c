/* codec.c: libFuzzer target for engine/codec.c, which reads bytes that
 * came over the network or back from disk. The first byte picks the case:
 *   even: the rest is taken as a frame, decompressed into a buffer of
 *         exactly the expected size (the next two bytes): it must decode or
 *         be refused with LUISA_ERR_DATA and a sentence, and never touch
 *         memory outside the buffers (ASan watches);
 *   odd:  the rest is compressed at a level the input picks, decompressed
 *         back bit for bit, then one byte of the frame is changed: that
 *         frame must be refused, or decode to the very same data.
 * Any disagreement aborts. */
#include "fuzz.h"
#include "codec.h"

static lu_codec *codec[3];   /* levels 1, 3, 9, made once */
static const int levels[3] = { 1, 3, 9 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fz_start(argc, argv);   /* replay.c finalizes MPI */
  char why[256];
  for (int k = 0; k < 3; k++)
    if (codec_open(levels[k], &codec[k], why, sizeof why) != LUISA_OK) {
      fprintf(stderr, "codec: codec_open(%d): %s\n", levels[k], why);
      abort();
    }
  return 0;
}

static void disagree(const char *what, const char *why)
{
  fprintf(stderr, "codec: %s (%s)\n", what, why);
  abort();
}

/* Exact-size heap copies, so a read or write past either end is caught. */
static void *copy_of(const void *p, size_t n)
{
  void *q = malloc(n ? n : 1);
  if (!q)
    abort();
  if (n)
    memcpy(q, p, n);
  return q;
}

static void decode_hostile(lu_codec *c, const uint8_t *data, size_t size)
{
  if (size < 2)
    return;
  size_t expected = (size_t)data[0] | (size_t)data[1] << 8;
  uint8_t *frame = copy_of(data + 2, size - 2), *out = malloc(expected ? expected : 1);
  char why[512] = "";
  if (!out)
    abort();
  int st = codec_decompress(c, out, expected, frame, size - 2, why, sizeof why);
  if (st != LUISA_OK && (st != LUISA_ERR_DATA || !why[0]))
    disagree("a bad frame was refused without LUISA_ERR_DATA and a sentence", why);
  free(frame);
  free(out);
}

static void round_trip(lu_codec *c, const uint8_t *data, size_t size)
{
  if (size < 2)
    return;
  size_t at = (size_t)data[0] | (size_t)data[1] << 8;
  const uint8_t *raw = data + 2;
  size_t n = size - 2, bound = codec_bound(n), packed = 0;
  uint8_t *src = copy_of(raw, n), *frame = malloc(bound), *back = malloc(n ? n : 1);
  char why[512] = "";
  if (!frame || !back)
    abort();
  if (codec_compress(c, frame, bound, src, n, &packed, why, sizeof why) != LUISA_OK)
    disagree("compressing into codec_bound bytes failed", why);
  uint8_t *exact = copy_of(frame, packed);
  if (codec_decompress(c, back, n, exact, packed, why, sizeof why) != LUISA_OK || (n && memcmp(back, raw, n)))
    disagree("a frame did not decode to the data it was made of", why);
  exact[at % packed] ^= (uint8_t)(data[1] | 1);
  int st = codec_decompress(c, back, n, exact, packed, why, sizeof why);
  if (st == LUISA_OK ? n && memcmp(back, raw, n) : st != LUISA_ERR_DATA || !why[0])
    disagree(st == LUISA_OK ? "a changed frame decoded to other data" : "a changed frame was refused without "
             "LUISA_ERR_DATA and a sentence", why);
  free(src);
  free(frame);
  free(back);
  free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  lu_codec *c = codec[(data[0] >> 1) % 3];
  if (data[0] & 1)
    round_trip(c, data + 1, size - 1);
  else
    decode_hostile(c, data + 1, size - 1);
  return 0;
}
