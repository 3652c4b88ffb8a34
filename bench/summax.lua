-- summax.lua: benchmark 3 (bench/chunks.c): the global sum and max of T
-- every step, over however many chunks the driver declared.
local luisa = require "luisa"
local ffi = require "ffi"
ffi.cdef "extern double bench_out[8];"
local out = ffi.C.bench_out

local T = luisa.array "T"
luisa.every(1, { sum = T:sum(), max = T:max() }, function(step, r)
  out[0], out[1], out[2] = r.sum, r.max, step
end)
