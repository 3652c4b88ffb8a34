-- assign.lua: nudges U toward V every 2 steps, for t/024-assign.t; the
-- statistic reads U in the same steps, before the assignment writes it.
local luisa = require "luisa"
local U, V = luisa.array "U", luisa.array "V"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
luisa.assign("U", U + (V - U) * 0.25, 2)
luisa.every(1, { s = U:sum() }, function(step, r) out:write(string.format("%d %.17g\n", step, r.s)); out:flush() end)
luisa.every(1, { s = U:sum() }, function() end)
if os.getenv("LUISA_TEST_BAD") then
  luisa.assign("V", V * 2)                       -- line 10: V is not writable
  luisa.assign("U", V:slice({ 0, 4 }))           -- line 11: wrong shape
end
