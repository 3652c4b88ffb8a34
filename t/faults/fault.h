/* fault.h: allocation failure injection for the engine, test builds only.
 * build/fault/libluisa.so links the engine with -Wl,--wrap=malloc,... so
 * only the engine's own calls come here (not LuaJIT's, nor Open MPI's). */
#ifndef LUISA_FAULT_H
#define LUISA_FAULT_H
#include <stddef.h>

#define FAULT_API __attribute__((visibility("default")))

/* Make allocation number n (1-based, counted from the last fault_reset)
 * fail; 0 never fails. The environment's LUISA_FAULT_AT sets it at the
 * first allocation. */
FAULT_API void fault_fail_at(long n);
/* Record the call stack of allocation n without refusing it, to name
 * the site of a refusal that killed an earlier run; 0: none. */
FAULT_API void fault_trace_at(long n);
/* Start counting again from 0; live blocks stay tracked. */
FAULT_API void fault_reset(void);
/* Allocations seen since the last fault_reset (failed ones included). */
FAULT_API long fault_count(void);
/* Whether the chosen allocation came and was refused. */
FAULT_API int fault_injected(void);
/* Blocks the engine holds, and their bytes. */
FAULT_API long fault_live(void);
FAULT_API size_t fault_live_bytes(void);
/* Frees of pointers the wrappers never handed out (made by libc, say). */
FAULT_API long fault_foreign_frees(void);
/* The call stack of the refused (or traced) allocation: up to cap return
 * addresses, innermost first, the wrappers' frames included; returns how
 * many. */
FAULT_API int fault_stack(void **frames, int cap);
#endif
