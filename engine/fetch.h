/* fetch.h: on-demand reads by the root. Not installed. */
#ifndef LUISA_FETCH_H
#define LUISA_FETCH_H

#include "context.h"

int fetch_serve_bcast(luisa *lz, int *v, int n);
int fetch_box(luisa *lz, lu_array *a, int version, int owner, int chunk, const int64_t *lo, const int64_t *count,
              double *out);

#endif
