-- slowdown.lua: benchmark 7 (bench/slowdown.c): a heavy analysis of the
-- Gray-Scott fields at every luisa_step (the driver calls it every few
-- steps): laplacians, std and histograms of U and V; rank 0 hands some back,
-- and in ranks mode the bytes its analytics rank received.
local luisa = require "luisa"
local ffi = require "ffi"
ffi.cdef "extern double bench_out[8];"
local out = ffi.C.bench_out

local U, V = luisa.array "U", luisa.array "V"
luisa.every(1, {
  ulap = U:laplacian():std(), vlap = V:laplacian():std(),
  ustd = U:std(), vstd = V:std(),
  uhist = U:histogram(64, { 0, 1 }), vhist = V:histogram(64, { 0, 1 }),
}, function(step, r)
  local bins = 0
  for b = 1, #r.vhist do bins = bins + (b - 1) * r.vhist[b] end
  out[0], out[1], out[2], out[3] = r.vlap, r.ustd, bins, step
  local s = luisa.stats()   -- ranks mode: what this analytics rank received so far
  out[4], out[5], out[6] = s.transit_raw, s.transit_wire, s.transit_seconds
end)
