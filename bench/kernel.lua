-- kernel.lua: benchmark 1 (bench/kernel.c): one fused elementwise chain and
-- its sum every step; rank 0 hands the result to the C driver.
local luisa = require "luisa"
local ffi = require "ffi"
ffi.cdef "extern double bench_out[8];"
local out = ffi.C.bench_out

local T = luisa.array "T"
luisa.every(1, { s = ((T - 1) * 2):abs():sum() }, function(step, r)
  out[0], out[1] = r.s, step
end)
