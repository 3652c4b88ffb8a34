/* bundle.c: the sources of one script version: the script and the modules
 * it requires from its directory. Rank 0 reads them from its file system
 * and broadcasts them, so every rank runs byte-identical code even where
 * the other nodes cannot see the file. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "context.h"
#include "error.h"
#include "bundle.h"

#define BUNDLE_MAX ((size_t)64 << 20)   /* scripts are small: a larger file is a mistake */

void bundle_free(lu_bundle *b)
{
  for (int i = 0; i < b->n; i++) {
    free(b->src[i].name);
    free(b->src[i].path);
    free(b->src[i].text);
  }
  free(b->src);
  memset(b, 0, sizeof *b);
}

/* Takes ownership of text. Returns 0 when out of memory (text freed). */
int bundle_add(lu_bundle *b, const char *name, const char *path, char *text, size_t len)
{
  if (b->n == b->cap) {
    int cap = b->cap ? 2 * b->cap : 4;
    lu_source *grown = realloc(b->src, (size_t)cap * sizeof *grown);
    if (!grown) {
      free(text);
      return 0;
    }
    b->src = grown;
    b->cap = cap;
  }
  lu_source *s = &b->src[b->n];
  s->name = strdup(name);
  s->path = strdup(path);
  s->text = text;
  s->len = len;
  if (!s->name || !s->path) {
    free(s->name);
    free(s->path);
    free(text);
    return 0;
  }
  b->n++;
  return 1;
}

const lu_source *bundle_find(const lu_bundle *b, const char *name)
{
  for (int i = 1; i < b->n; i++)
    if (!strcmp(b->src[i].name, name))
      return &b->src[i];
  return NULL;
}

/* The whole file into *text (NUL terminated); 0 and why in msg on failure,
 * naming the path: "cannot open PATH: No such file or directory",
 * "cannot read PATH: Is a directory", ... Only regular files: a FIFO would
 * block rank 0 in a collective call (opened without blocking, then refused). */
int bundle_read_file(const char *path, char **text, size_t *len, char *msg, size_t cap)
{
  *text = NULL;
  *len = 0;
  if (!path || !path[0]) {
    snprintf(msg, cap, "cannot open \"\": the path is empty");
    return 0;
  }
  int fd = open(path, O_RDONLY | O_NONBLOCK);   /* O_NONBLOCK does nothing to a regular file */
  FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
  if (!f) {
    snprintf(msg, cap, "cannot open %s: %s", path, strerror(errno));
    if (fd >= 0)
      close(fd);
    return 0;
  }
  struct stat st;
  int known = fstat(fd, &st) == 0;
  if (!known || !S_ISREG(st.st_mode)) {
    const char *why = !known ? strerror(errno) : S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file";
    snprintf(msg, cap, "cannot read %s: %s", path, why);
    fclose(f);
    return 0;
  }
  size_t n = 0, size = 4096;
  char *buf = malloc(size);
  int read_errno = 0;
  for (;;) {
    if (!buf)
      break;
    errno = 0;
    n += fread(buf + n, 1, size - n - 1, f);
    if (ferror(f))
      read_errno = errno;
    if (n < size - 1 || size > BUNDLE_MAX)
      break;
    char *grown = realloc(buf, 2 * size);
    if (!grown) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = grown;
    size *= 2;
  }
  int failed = ferror(f);
  fclose(f);
  if (!buf || failed || size > BUNDLE_MAX) {
    snprintf(msg, cap, "cannot read %s: %s", path,
             !buf ? "out of memory" : failed ? (read_errno ? strerror(read_errno) : "read error")
                                             : "larger than 64 MiB");
    free(buf);
    return 0;
  }
  buf[n] = '\0';
  *text = buf;
  *len = n;
  return 1;
}

/* FNV-1a of n bytes, going on from h (LU_FNV_START for a new hash). */
uint64_t bundle_fnv(uint64_t h, const void *bytes, size_t n)
{
  const unsigned char *p = bytes;
  for (size_t k = 0; k < n; k++)
    h = (h ^ p[k]) * 1099511628211ULL;
  return h;
}

/* The hash of every source's path (with its NUL) and text, in load order:
 * the version. */
uint64_t bundle_hash(const lu_bundle *b)
{
  uint64_t h = LU_FNV_START;
  for (int i = 0; i < b->n; i++) {
    h = bundle_fnv(h, b->src[i].path, strlen(b->src[i].path) + 1);
    h = bundle_fnv(h, b->src[i].text, b->src[i].len);
  }
  return h;
}

/* Rank 0's bundle to every rank; the others' is replaced. Collective.
 * A failure other than LUISA_ERR_MPI leaves this rank without the sources.
 * Modules past the 63rd are not sent: other ranks read them from the path.
 * Wire format: n, then per source the lengths of name, path, text, then
 * all the bytes. */
int bundle_bcast(luisa *lz, lu_bundle *b)
{
  int64_t head[1 + 3 * 64] = { 0 };   /* a script and up to 63 modules beside it */
  size_t total = 0;
  if (lz->rank == 0) {
    head[0] = b->n < 64 ? b->n : 64;
    for (int i = 0; i < head[0]; i++) {
      head[1 + 3 * i] = (int64_t)strlen(b->src[i].name);
      head[2 + 3 * i] = (int64_t)strlen(b->src[i].path);
      head[3 + 3 * i] = (int64_t)b->src[i].len;
    }
  }
  RETURN_IF(MPI_Bcast(head, 1 + 3 * 64, MPI_INT64_T, 0, lz->comm) != MPI_SUCCESS, lz, LUISA_ERR_MPI,
            "luisa_step: MPI_Bcast of the script's sources failed");
  for (int i = 0; i < head[0]; i++)
    total += (size_t)(head[1 + 3 * i] + head[2 + 3 * i] + head[3 + 3 * i]);
  RETURN_IF(total > INT_MAX, lz, LUISA_ERR_ARG, "the script and its modules are larger than 2 GiB");
  char *wire = malloc(total ? total : 1);
  int ok = wire != NULL, all_ok;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, lz->comm);
  if (!all_ok) {
    free(wire);
    return error_set(lz, LUISA_ERR_NOMEM, "luisa_step: out of memory receiving the script's sources");
  }
  char *p = wire;
  for (int i = 0; lz->rank == 0 && i < head[0]; i++) {
    memcpy(p, b->src[i].name, (size_t)head[1 + 3 * i]);
    p += head[1 + 3 * i];
    memcpy(p, b->src[i].path, (size_t)head[2 + 3 * i]);
    p += head[2 + 3 * i];
    memcpy(p, b->src[i].text, (size_t)head[3 + 3 * i]);
    p += head[3 + 3 * i];
  }
  if (total && MPI_Bcast(wire, (int)total, MPI_BYTE, 0, lz->comm) != MPI_SUCCESS) {
    free(wire);
    return error_set(lz, LUISA_ERR_MPI, "luisa_step: MPI_Bcast of the script's sources failed");
  }
  int status = LUISA_OK;
  if (lz->rank != 0) {
    bundle_free(b);
    p = wire;
    for (int i = 0; i < head[0] && status == LUISA_OK; i++) {
      size_t nl = (size_t)head[1 + 3 * i], pl = (size_t)head[2 + 3 * i], tl = (size_t)head[3 + 3 * i];
      char *name = strndup(p, nl), *path = strndup(p + nl, pl), *text = malloc(tl + 1);
      if (text) {
        memcpy(text, p + nl + pl, tl);
        text[tl] = '\0';
      }
      if (!name || !path || !text) {
        free(text);
        text = NULL;
      }
      if (!text || !bundle_add(b, name, path, text, tl))
        status = error_set(lz, LUISA_ERR_NOMEM, "luisa_step: out of memory receiving the script's sources");
      free(name);
      free(path);
      p += nl + pl + tl;
    }
  }
  free(wire);
  return status;
}
