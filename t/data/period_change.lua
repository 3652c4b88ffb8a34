-- period_change.lua: a callback every 4 steps is switched to every 2 at
-- step 8 by another callback, for t/023-wants.t.
local luisa = require "luisa"
local A, B = luisa.array "A", luisa.array "B"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local slow = luisa.every(4, { m = B:max() }, function(step) out:write(string.format("%d ran\n", step)); out:flush() end)
luisa.every(1, { s = A:sum() }, function(step) if step == 8 then luisa.period(slow, 2) end end)
