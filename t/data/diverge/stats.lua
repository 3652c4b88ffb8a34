-- stats.lua: callback 1 (line 10) reduces one statistic on rank 0, two
-- elsewhere: disabled on every rank at the first step; callback 2 goes on.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

local stats = { s = A:sum() }
if luisa.rank > 0 then stats.m = A:max() end
luisa.every(1, stats, function(step, r) put(step, "div", r.s) end)
luisa.every(1, { m = A:max() }, function(step, r) put(step, "maxA", r.m) end)
