-- handover.lua: the sum and maximum of H at every step, for t/050-threads.t
-- (case handover), where one chunk per rank is handed over: rank 0 writes
-- "step sum max" lines to $LUISA_TEST_OUT.
local luisa = require "luisa"
local H = luisa.array "H"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
luisa.every(1, { s = H:sum(), m = H:max() }, function(step, r)
  out:write(string.format("%d %.17g %.17g\n", step, r.s, r.m))
  out:flush()
end)
