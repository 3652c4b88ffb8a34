-- sum.lua: the sum of A at every step, for the cases where the simulation
-- misuses luisa_step (different steps, a skipped call, an early finalize).
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

luisa.every(1, { s = A:sum() }, function(step, r) put(step, "sumA", r.s) end)
