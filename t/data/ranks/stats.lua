-- stats.lua: luisa.stats()'s transit figures on the analysis' rank 0, for
-- t/052-ranks.t (case stats): "step raw wire" lines, T alone being read.
local luisa = require "luisa"
local T = luisa.array "T"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
luisa.every(1, { s = T:sum() }, function(step)
  local s = luisa.stats()
  out:write(string.format("%d %d %d %s\n", step, s.transit_raw, s.transit_wire, s.transit_seconds >= 0 and "t" or "f"))
  out:flush()
end)
