-- unknown_array.lua: a callback on an array the simulation never declares
-- (line 5), disabled at the first step, beside a valid one that goes on.
local luisa = require "luisa"
local A, B = luisa.array "A", luisa.array "B"
local X = luisa.array "nosuch"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

luisa.every(1, { s = X:sum() }, function(step, r) put(step, "nosuch", r.s) end)
luisa.every(1, { s = A:sum(), m = B:max() }, function(step, r)
  put(step, "sumA", r.s)
  put(step, "maxB", r.m)
end)
