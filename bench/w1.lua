-- w1.lua: benchmark 4 (bench/w1.c), the issue's workload W1: global mean,
-- max and the std of the axis-0 difference every step; rank 0 hands them over.
local luisa = require "luisa"
local ffi = require "ffi"
ffi.cdef "extern double bench_out[8];"
local out = ffi.C.bench_out

local T = luisa.array "T"
luisa.every(1, { mean = T:mean(), max = T:max(), dstd = T:diff(0):std() }, function(step, r)
  out[0], out[1], out[2], out[3] = r.mean, r.max, r.dstd, step
end)
