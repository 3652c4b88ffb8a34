-- load_error.lua: raises an error while loading (line 12), after registering
-- a valid callback that must never run: analytics are off on every rank.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))

luisa.every(1, { s = A:sum() }, function(step, r)
  out:write(string.format("%d sumA %.17g\n", step, r.s))
  out:flush()
end)

error("boom")
