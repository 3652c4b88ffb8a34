-- meanmax.lua: benchmark 2 (bench/overhead.c): the global mean and max of T
-- every step; rank 0 hands them to the C driver.
local luisa = require "luisa"
local ffi = require "ffi"
ffi.cdef "extern double bench_out[8];"
local out = ffi.C.bench_out

local T = luisa.array "T"
luisa.every(1, { mean = T:mean(), max = T:max() }, function(step, r)
  out[0], out[1], out[2] = r.mean, r.max, step
end)
