/* decomp.h: the collective check of every declaration. Not installed. */
#ifndef LUISA_DECOMP_H
#define LUISA_DECOMP_H

#include "context.h"

int decomp_check(luisa *lz);

#endif
