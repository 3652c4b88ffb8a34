-- rank_error.lua: fails to load on rank 1 only (line 12); every rank must then
-- turn analytics off. On one rank it loads and its callback runs.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))

luisa.every(1, { s = A:sum() }, function(step, r)
  out:write(string.format("%d sumA %.17g\n", step, r.s))
  out:flush()
end)

if luisa.rank == 1 then error("cannot load here") end
