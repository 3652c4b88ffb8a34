-- scaled.lua: callback 1 (line 9) sums A on rank 0 and A * 1000 elsewhere,
-- which combined would give a wrong number: disabled on every rank.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

local e = luisa.rank == 0 and A or A * 1000
luisa.every(1, { s = e:sum() }, function(step, r) put(step, "div", r.s) end)
luisa.every(1, { m = A:max() }, function(step, r) put(step, "maxA", r.m) end)
