-- shape_mismatch.lua: A (8x6) + C (4x6) on line 8 combines two shapes: that
-- callback is disabled at the first step, the one on C alone goes on.
local luisa = require "luisa"
local A, C = luisa.array "A", luisa.array "C"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

local bad = A + C
luisa.every(1, { s = bad:sum() }, function(step, r) put(step, "AplusC", r.s) end)
luisa.every(1, { s = C:sum() }, function(step, r) put(step, "sumC", r.s) end)
