-- period.lua: callback 1 (line 8) runs every 2 steps on rank 0 and every 3
-- elsewhere: disabled on every rank at the first step; callback 2 goes on.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

luisa.every(luisa.rank == 0 and 2 or 3, { s = A:sum() }, function(step, r) put(step, "div", r.s) end)
luisa.every(1, { m = A:max() }, function(step, r) put(step, "maxA", r.m) end)
