/* site.h: where an injected allocation failure came from, for reports. */
#ifndef LUISA_SITE_H
#define LUISA_SITE_H
#include <stddef.h>
void site_describe(void *const *frames, int n, char *out, size_t cap, char *fn, size_t fcap);
int site_known(const char *path, const char *fn, const char *symptom, char *why, size_t cap);
#endif
