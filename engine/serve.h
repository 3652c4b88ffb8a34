/* serve.h: what an analytics rank does in ranks mode. Not installed. */
#ifndef LUISA_SERVE_H
#define LUISA_SERVE_H

#include "context.h"

/* Serves the simulation ranks the route gives this analytics rank until
 * every simulation rank has finalized. lz is the analytics ranks' context
 * (lz->split set), its script loaded with status `loaded`. Collective over
 * the job. Returns LUISA_SERVED, or an error after which this rank served
 * no more (said in lz). */
int serve_run(luisa *lz, int loaded);

#endif
