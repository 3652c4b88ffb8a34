-- every_huge_period.lua: a period of 2^32 (line 9) must fail the load, not
-- wrap to 0 in C and divide by zero at the first step (it once did).
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

luisa.every(1, { s = A:sum() }, function(step, r) put(step, "sumA", r.s) end)
luisa.every(2^32, { s = A:sum() }, function(step, r) put(step, "never", r.s) end)
