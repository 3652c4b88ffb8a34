-- wants.lua: I is read every 3 steps only, T every step, for t/052-ranks.t
-- (case wants): luisa_wants follows the plan on the simulation ranks.
local luisa = require "luisa"
local T, I = luisa.array "T", luisa.array "I"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
luisa.every(3, { s = I:sum() }, function(step, r) out:write(string.format("%d I %a\n", step, r.s)); out:flush() end)
luisa.every(1, { s = T:sum() }, function(step, r) out:write(string.format("%d T %a\n", step, r.s)); out:flush() end)
