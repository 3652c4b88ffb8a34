/* array.h: declared arrays, their chunks and what was published. Not installed. */
#ifndef LUISA_ARRAY_H
#define LUISA_ARRAY_H

#include "context.h"

int array_check_name(luisa *lz, const char *fn, const char *name);
lu_array *array_find(luisa *lz, const char *name);
const char *array_dtype_name(luisa_dtype dtype);
size_t array_dtype_size(luisa_dtype dtype);
int64_t array_box_volume(const lu_array *a, int chunk, const int64_t *lo, const int64_t *count,
                         const int64_t *step);
int array_chunk_strided(luisa *lz, const char *name, const int64_t *offset, const int64_t *shape,
                        const int64_t *stride, int64_t first, int64_t bytes);
int array_whole_buffer(const lu_array *a, const lu_chunk *c);
void array_pack(const lu_array *a, const lu_chunk *layout, const void *src, const int64_t *lo,
                const int64_t *count, const int64_t *step, void *dst);
/* The inverse: count elements packed in C order from src, into the box at
 * lo (in the chunk's own coordinates) of the buffer dst that layout describes. */
void array_unpack(const lu_array *a, const lu_chunk *layout, const int64_t *lo, const int64_t *count,
                  const void *src, void *dst);
const char *array_format_index(char *buf, size_t cap, int ndim, const int64_t *v);
int64_t array_volume(int ndim, const int64_t *shape);
void array_forget_published(luisa *lz);
void array_free_all(luisa *lz);

#endif
