-- period.lua: callbacks every 2 and every 3 steps must run at exactly the
-- multiples of their period.
local luisa = require "luisa"
local A, B = luisa.array "A", luisa.array "B"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

luisa.every(2, { s = A:sum() }, function(step, r) put(step, "sumA", r.s) end)
luisa.every(3, { m = B:max() }, function(step, r) put(step, "maxB", r.m) end)
