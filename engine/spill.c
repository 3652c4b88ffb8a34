/* spill.c: one file per spilled version of a chunk, a zstd frame with a
 * checksum (codec.c), in a directory of the user's choosing. Files live
 * until the version is released, so a version read back and dropped again
 * costs no second write. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "luisa.h"
#include "codec.h"
#include "say.h"
#include "spill.h"

enum { SPILL_LEVEL = 1 };       /* fastest of zstd's ordinary levels: disks are slower */

struct lu_spill {
  char *dir;
  int made_dir;
  long pid;
  int rank;
  int64_t next, live;
  lu_codec *codec;
  lu_memory *mem;
  void *frame;                 /* the scratch a frame is made in and read into */
  size_t frame_cap;
};

static void path_of(const lu_spill *sp, int64_t id, char *path, size_t cap)
{
  snprintf(path, cap, "%s/luisa-spill-%ld-r%d-%lld.zst", sp->dir, sp->pid, sp->rank, (long long)id);
}

int spill_open(lu_spill **out, const char *dir, int rank, lu_memory *mem, char *why, size_t cap)
{
  *out = NULL;
  lu_spill *sp = calloc(1, sizeof *sp);
  if (!sp || !(sp->dir = strdup(dir))) {
    free(sp);
    return lu_say(why, cap, LUISA_ERR_NOMEM, "out of memory opening the spill directory");
  }
  sp->pid = (long)getpid();
  sp->rank = rank;
  sp->mem = mem;
  sp->next = 1;
  if (mkdir(dir, 0700) == 0)
    sp->made_dir = 1;
  else if (errno != EEXIST) {
    int e = errno;
    spill_close(sp);
    return lu_say(why, cap, LUISA_ERR_ARG, "opts.spill_dir %s cannot be made: %s", dir, strerror(e));
  }
  int status = codec_open(SPILL_LEVEL, &sp->codec, why, cap);
  if (status != LUISA_OK) {
    spill_close(sp);
    return status;
  }
  *out = sp;
  return LUISA_OK;
}

int spill_frame(lu_spill *sp, size_t bytes)
{
  if (bytes <= sp->frame_cap)
    return 1;
  void *grown = memory_realloc(sp->mem, LU_USE_STORE, sp->frame, sp->frame_cap, bytes);
  if (!grown)
    return 0;
  sp->frame = grown;
  sp->frame_cap = bytes;
  return 1;
}

int spill_write(lu_spill *sp, const void *data, size_t bytes, int64_t *id, char *why, size_t cap)
{
  size_t bound = codec_bound(bytes), size = 0;
  if (!bound || !spill_frame(sp, bound))
    return lu_say(why, cap, LUISA_ERR_NOMEM, "out of memory compressing %zu bytes to spill", bytes);
  int status = codec_compress(sp->codec, sp->frame, bound, data, bytes, &size, why, cap);
  if (status != LUISA_OK)
    return status;
  char path[4200];
  path_of(sp, sp->next, path, sizeof path);
  FILE *f = fopen(path, "wb");
  int written = f && fwrite(sp->frame, 1, size, f) == size;
  int e = errno;
  if (f && fclose(f) != 0 && written)
    written = 0, e = errno;
  if (!written) {
    if (f)
      remove(path);
    return lu_say(why, cap, LUISA_ERR_DATA, "cannot write %s: %s", path, strerror(e));
  }
  *id = sp->next++;
  sp->live++;
  atomic_fetch_add(&sp->mem->spilled, (int64_t)bytes);
  atomic_fetch_add(&sp->mem->spill_files, 1);
  return LUISA_OK;
}

int spill_read(lu_spill *sp, int64_t id, void *data, size_t bytes, char *why, size_t cap)
{
  char path[4200];
  path_of(sp, id, path, sizeof path);
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (!f || fstat(fileno(f), &st) != 0) {
    int e = errno;
    if (f)
      fclose(f);
    return lu_say(why, cap, LUISA_ERR_DATA, "cannot read %s back: %s", path, strerror(e));
  }
  size_t size = (size_t)st.st_size;
  int got = spill_frame(sp, size ? size : 1) && fread(sp->frame, 1, size, f) == size;
  fclose(f);
  if (!got)
    return lu_say(why, cap, LUISA_ERR_DATA, "cannot read the %zu bytes of %s back", size, path);
  int status = codec_decompress(sp->codec, data, bytes, sp->frame, size, why, cap);
  if (status == LUISA_OK)
    atomic_fetch_add(&sp->mem->restored, 1);
  return status;
}

void spill_remove(lu_spill *sp, int64_t id)
{
  char path[4200];
  path_of(sp, id, path, sizeof path);
  if (remove(path) == 0)
    sp->live--;
}

void spill_close(lu_spill *sp)
{
  if (!sp)
    return;
  for (int64_t id = 1; sp->live > 0 && id < sp->next; id++)   /* the store removes its own; these are strays */
    spill_remove(sp, id);
  if (sp->made_dir)
    rmdir(sp->dir);
  memory_free(sp->mem, LU_USE_STORE, sp->frame, sp->frame_cap);
  codec_close(sp->codec);
  free(sp->dir);
  free(sp);
}
