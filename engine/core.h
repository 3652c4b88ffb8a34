/* core.h: the luisa.core module the engine's Lua side calls. Not installed. */
#ifndef LUISA_CORE_H
#define LUISA_CORE_H

#include <lua.h>
#include "context.h"

/* package.loaded["luisa.core"], bound to lz, in the state L. */
void core_install(luisa *lz, lua_State *L);

#endif
