/* exchange.h: transfers planned at compile time. Not installed. */
#ifndef LUISA_EXCHANGE_H
#define LUISA_EXCHANGE_H

#include "context.h"

lu_exchange *exchange_new(lu_memory *mem, int nsend, int nrecv);
void *exchange_message(lu_exchange *x, int is_send, int i, int peer, size_t bytes, int npieces);
int exchange_piece(lu_exchange *x, int i, int k, lu_array *array, int chunk, int version,
                   const int64_t *lo, const int64_t *count, const int64_t *step, size_t offset);
int exchange_commit(luisa *lz, lu_exchange *x, int tag);
int exchange_start(luisa *lz, lu_exchange *x, int *complete, char *msg, size_t cap);
int exchange_finish(luisa *lz, lu_exchange *x);
size_t exchange_bytes_sent(const lu_exchange *x);
void exchange_sizes(const lu_exchange *x, int size, int64_t *to, int64_t *from);
void exchange_free(lu_exchange *x);

#endif
