/* agree.h: that every rank runs the same analysis. Not installed. */
#ifndef LUISA_AGREE_H
#define LUISA_AGREE_H

#include "context.h"

#define AGREE_WHY "a script must build the same analysis on every rank (rank-dependent periods, " \
                  "statistics or shapes are refused)"
int agree_plan(luisa *lz, int n, const uint64_t *fingerprint, char *const *where, char **why);
double agree_digest(uint64_t plan, int callback, int64_t step);
int agree_steps(luisa *lz, int64_t step, char *msg, size_t cap);

#endif
