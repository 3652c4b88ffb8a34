-- wants.lua: reads part of A every 3 steps, B every 2, and C's previous
-- step every step, for t/023-wants.t.
local luisa = require "luisa"
local A, B, C = luisa.array "A", luisa.array "B", luisa.array "C"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
luisa.every(3, { s = A[{ { 0, 6 } }]:sum() }, function(step, r) out:write(string.format("%d s %.17g\n", step, r.s)) out:flush() end)
luisa.every(2, { m = B:max() }, function(step, r) out:write(string.format("%d m %.17g\n", step, r.m)) out:flush() end)
luisa.every(5, { d = (C - C:prev()):max() }, function(step, r)
  out:write(string.format("%d d %s\n", step, tostring(r.d))) out:flush()
end)
