-- step0.lua: callback 1 (line 8) raises at step 0, the first analysed step;
-- luisa_error must tell it. Callback 2 goes on.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

luisa.every(1, { s = A:sum() }, function(step, r)
  if step == 0 then error("fails at step 0") end
  put(step, "div", r.s)
end)
luisa.every(1, { m = A:max() }, function(step, r) put(step, "maxA", r.m) end)
