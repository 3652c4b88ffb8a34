-- late_error.lua: the callback of line 8 raises an error at step 3 only (line
-- 10) and must then be disabled; the callback of line 12 keeps reporting.
local luisa = require "luisa"
local A, B, C = luisa.array "A", luisa.array "B", luisa.array "C"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

luisa.every(1, { s = A:sum() }, function(step, r)
  put(step, "lateA", r.s)   -- the trace of every call
  if step == 3 then error("late") end
end)
luisa.every(1, { m = B:max(), c = C:sum() }, function(step, r)
  put(step, "maxB", r.m)
  put(step, "sumC", r.c)
end)
