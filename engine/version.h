/* version.h: script versions, loaded, reloaded and freed on every rank
 * together. Not installed. */
#ifndef LUISA_VERSION_H
#define LUISA_VERSION_H

#include "context.h"

/* Load the script on every rank; all keep it (lz->script) or all drop it.
 * LUISA_WARN_SCRIPT with msg when it does not load. Collective. */
int version_open(luisa *lz, const char *path, char *msg, size_t cap);
/* Load and compile the current sources beside the running version; all
 * ranks switch to it or all keep the old one. Collective. */
int version_reload(luisa *lz, int64_t step);
void version_summary(luisa *lz);
/* After a timeout: the Lua state goes, what MPI may still write into stays. */
void version_abandon(luisa *lz);
void version_close(luisa *lz);

#endif
