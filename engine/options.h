/* options.h: luisa_options: defaults, the environment, the checks. Not installed. */
#ifndef LUISA_OPTIONS_H
#define LUISA_OPTIONS_H

#include "context.h"

int options_resolve(const luisa_options *given, luisa_options *o, char *why, size_t cap);

#endif
