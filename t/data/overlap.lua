-- overlap.lua: T:diff(0):sum() on row slabs: every rank but the last
-- needs the next rank's first row, for its last row of differences only;
-- the other rows are computed while that row is on its way. Rank 0 writes
-- "step sum overlapped waited" (luisa.stats) to $LUISA_TEST_OUT
-- (t/037-collectives.t).
local luisa = require "luisa"
local T = luisa.array "T"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
luisa.every(1, { s = T:diff(0):sum() }, function(step, r)
  local s = luisa.stats()
  out:write(string.format("%d %.17g %d %d\n", step, r.s, s.overlapped, s.waited))
  out:flush()
end)
