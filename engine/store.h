/* store.h: earlier versions of chunks, kept for windows. Not installed. */
#ifndef LUISA_STORE_H
#define LUISA_STORE_H

#include "context.h"

int store_window(luisa *lz, lu_array *a, int depth);
const void **store_table(luisa *lz, lu_array *a, int version);
int store_versions(const luisa *lz, const lu_array *a);
int store_versions_kept(const luisa *lz, const lu_array *a);
int store_capture(luisa *lz, int64_t step);
void store_trim(luisa *lz, lu_array *a, int depth);
const void *store_version(luisa *lz, const lu_array *a, int version, int chunk, lu_chunk *layout);
/* With opts.spill_dir and a budget, window versions may be on disk:
 * store_restore brings back what a kernel is about to read. */
int store_spilling(const luisa *lz);
void store_restore(luisa *lz, const int *arrays, const int *versions, int n);
void store_stats(const luisa *lz, int64_t *objects, int64_t *bytes_held);
void store_free(luisa *lz);

#endif
