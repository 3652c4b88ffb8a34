/* luisa_fortran.c: the C side of the Fortran binding (bindings/luisa.f90):
 * what Fortran cannot do itself, and a build-time check of what it assumes. */
#include <stddef.h>
#include "luisa.h"

/* luisa.f90 repeats these numbers and the layout of luisa_layout by hand
 * (Fortran cannot read a C header): a change here must be made there. */
_Static_assert(LUISA_OK == 0 && LUISA_WARN_SCRIPT == 1 && LUISA_SERVED == 3 && LUISA_ERR_ARG == 16 &&
               LUISA_ERR_NOMEM == 17 && LUISA_ERR_MPI == 18 && LUISA_ERR_ORDER == 19 &&
               LUISA_ERR_NAME == 20 && LUISA_ERR_CHUNK == 21 && LUISA_ERR_STEP == 22 &&
               LUISA_ERR_LUA == 23 && LUISA_ERR_TIMEOUT == 24 && LUISA_ERR_MODE == 25 && LUISA_ERR_DATA == 26 &&
               LUISA_ERR_FIRST == 16,
               "status codes differ from luisa.f90");
_Static_assert(LUISA_F64 == 1 && LUISA_F32 == 2 && LUISA_I64 == 3 && LUISA_I32 == 4,
               "dtypes differ from luisa.f90");
_Static_assert(LUISA_ORDER_C == 0 && LUISA_ORDER_F == 1 && LUISA_LOG_ERROR == 0 &&
               LUISA_LOG_WARN == 1 && LUISA_LOG_INFO == 2 && LUISA_LOG_DEBUG == 3,
               "orders or log levels differ from luisa.f90");
_Static_assert(LUISA_MAX_DIMS == 4, "luisa.f90 assumes 4 axes at most");
_Static_assert(sizeof(luisa_order) == sizeof(int) && sizeof(luisa_dtype) == sizeof(int),
               "luisa.f90 passes enums as integer(c_int)");
_Static_assert(offsetof(luisa_layout, alloc_shape) == 8 && offsetof(luisa_layout, start) == 40 &&
               sizeof(luisa_layout) == 72, "luisa_layout differs from type layout_c in luisa.f90");
_Static_assert(sizeof(MPI_Fint) == sizeof(int), "luisa.f90 passes MPI_Fint as integer(c_int)");

/* luisa_init from Fortran: the communicator arrives as a Fortran handle and
 * the options are built here, from luisa_options_default(), so that fields
 * added to luisa_options later keep their defaults without a change in
 * luisa.f90. script "" means no analytics; log_level is used when has_level is
 * set (a bad value is the engine's to refuse). */
int luisa_fortran_init(MPI_Fint comm, const char *script, int has_level, int log_level, luisa **out)
{
  luisa_options opts = luisa_options_default();
  opts.script = script && *script ? script : NULL;
  if (has_level)
    opts.log_level = (luisa_log_level)log_level;
  return luisa_init(MPI_Comm_f2c(comm), &opts, out);
}
