-- window.lua: T and T three steps ago, 20 ms a step (trusted, for FFI's
-- usleep), for t/053-memory.t. Rank 0 writes "step sum lagged held peak
-- waits spilled" lines: the results exactly, then the memory the engine
-- holds, the times the budget held the simulation back, the files spilled.
local luisa = require "luisa"
local ffi = require "ffi"
ffi.cdef "int usleep(unsigned int usec);"
local T = luisa.array "T"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
luisa.every(1, { now = T:sum(), lagged = (T + T:prev(3)):sum() }, function(step, r)
  ffi.C.usleep(20000)
  local s = luisa.stats()
  out:write(string.format("%d %a %s %d %d %d %d\n", step, r.now, r.lagged and string.format("%a", r.lagged) or "-",
                          s.memory_held, s.memory_peak, s.memory_waits, s.spill_files))
  out:flush()
end)
