-- unpublished.lua: a callback on A (line 8), whose chunk the last rank skips
-- at step 2, and one on B: the step fails, neither callback is disabled.
local luisa = require "luisa"
local A, B = luisa.array "A", luisa.array "B"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

luisa.every(1, { s = A:sum() }, function(step, r) put(step, "sumA", r.s) end)
luisa.every(1, { m = B:max() }, function(step, r) put(step, "maxB", r.m) end)
