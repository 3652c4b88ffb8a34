-- patterns.lua: benchmark 10 (bench/patterns.c): one reduction of T every
-- step, chosen by LUISA_BENCH_REDUCTION; rank 0 hands the result over:
-- out[0] the value (argmax: its row, out[4] its column; -1 if nil), out[1]
-- the step, W1's max and std in out[2], out[3]; a histogram's counts go to
-- bench_hist.
local luisa = require "luisa"
local ffi = require "ffi"
ffi.cdef "extern double bench_out[8]; extern double bench_hist[64];"
local out, hist = ffi.C.bench_out, ffi.C.bench_hist

local T = luisa.array "T"
local which = os.getenv("LUISA_BENCH_REDUCTION") or "sum"
local reductions = {
  sum = { v = T:sum() }, min = { v = T:min() }, max = { v = T:max() }, argmax = { v = T:argmax() },
  histogram = { v = T:histogram(64, { -1, 3 }) },
  w1 = { v = T:mean(), max = T:max(), dstd = T:diff(0):std() },
}
luisa.every(1, assert(reductions[which], which), function(step, r)
  local v, col = r.v, 0
  if which == "argmax" then
    v, col = v and v[1] or -1, v and v[2] or -1
  elseif which == "histogram" then
    for b = 1, 64 do hist[b - 1] = v[b] end
    v = #v
  end
  out[0], out[1], out[2], out[3], out[4] = v, step, r.max or 0, r.dstd or 0, col
end)
