-- every_lazy.lua: luisa.every with a stat that is the lazy array itself
-- (line 9) fails the load at that line; the valid callback before never runs.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

luisa.every(1, { s = A:sum() }, function(step, r) put(step, "sumA", r.s) end)
luisa.every(1, { s = A }, function(step, r) put(step, "never", r.s) end)
