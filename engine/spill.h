/* spill.h: window versions kept on local disk as zstd files while the
 * memory budget has no room for them. Not installed. */
#ifndef LUISA_SPILL_H
#define LUISA_SPILL_H

#include <stddef.h>
#include <stdint.h>
#include "memory.h"

typedef struct lu_spill lu_spill;

/* Files go to dir (made if missing), named after the process and rank. */
int spill_open(lu_spill **out, const char *dir, int rank, lu_memory *mem, char *why, size_t cap);
/* Room to compress `bytes` of frame, made now: counted from the start. */
int spill_frame(lu_spill *sp, size_t bytes);
/* data[0..bytes) written as one file; *id names it from now on. */
int spill_write(lu_spill *sp, const void *data, size_t bytes, int64_t *id, char *why, size_t cap);
/* File id read back into data[0..bytes), checked; the file stays. */
int spill_read(lu_spill *sp, int64_t id, void *data, size_t bytes, char *why, size_t cap);
void spill_remove(lu_spill *sp, int64_t id);
/* Removes what is left, and the directory if it made it and it is empty. */
void spill_close(lu_spill *sp);

#endif
