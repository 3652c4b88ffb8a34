/* bundle.h: a script version's sources. Not installed. */
#ifndef LUISA_BUNDLE_H
#define LUISA_BUNDLE_H

#include "context.h"

/* The sources of a script version: src[0] is the script, then the modules
 * it required from its directory, in load order (bundle.c). */
typedef struct lu_source {
  char *name, *path, *text;       /* name: the module's ("" for the script) */
  size_t len;
} lu_source;

typedef struct lu_bundle {
  lu_source *src;
  int n, cap;
} lu_bundle;

int bundle_add(lu_bundle *b, const char *name, const char *path, char *text, size_t len);
const lu_source *bundle_find(const lu_bundle *b, const char *name);
int bundle_read_file(const char *path, char **text, size_t *len, char *msg, size_t cap);
#define LU_FNV_START 1469598103934665603ULL
uint64_t bundle_fnv(uint64_t h, const void *bytes, size_t n);
uint64_t bundle_hash(const lu_bundle *b);
int bundle_bcast(luisa *lz, lu_bundle *b);
void bundle_free(lu_bundle *b);

#endif
