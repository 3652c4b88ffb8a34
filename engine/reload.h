/* reload.h: when every rank reloads the script. Not installed. */
#ifndef LUISA_RELOAD_H
#define LUISA_RELOAD_H

#include "context.h"
#include "bundle.h"

int reload_open(luisa *lz);
int reload_poll(luisa *lz, int *due);
int reload_post(luisa *lz);
/* Ranks mode, on a simulation rank: whether luisa_reload() or the signal
 * asked for a reload since the last call (which forgets it). */
int reload_take_local(luisa *lz);
void reload_watch(luisa *lz, const lu_bundle *b, uint64_t running);
void reload_record(luisa *lz, int64_t step, uint64_t version, const char *error);
uint64_t reload_version(const luisa *lz);
void reload_summary(const luisa *lz);
void reload_close(luisa *lz);

#endif
