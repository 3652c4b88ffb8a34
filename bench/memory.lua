-- memory.lua: benchmark 9 (bench/memory.c): T against T two steps ago,
-- every step, from an analysis slower than the simulation (it sleeps
-- LUISA_BENCH_SLOW_US). After each step the most memory the engine held
-- goes to bench_out: [0] largest memory_held seen, [1] memory_peak,
-- [2] memory_waits, [3] spill_files, [4] steps analysed, [5] the last sum.
local luisa = require "luisa"
local ffi = require "ffi"
ffi.cdef "extern double bench_out[8]; int usleep(unsigned int usec);"
local T = luisa.array "T"
local us = tonumber(os.getenv("LUISA_BENCH_SLOW_US") or "20000")
luisa.every(1, { d = (T - T:prev(2)):sum() }, function(step, r)
  ffi.C.usleep(us)
  local s, out = luisa.stats(), ffi.C.bench_out
  out[0] = math.max(out[0], s.memory_held)
  out[1], out[2], out[3] = s.memory_peak, s.memory_waits, s.spill_files
  out[4] = out[4] + 1
  out[5] = r.d or 0
end)
