-- every_stats.lua: luisa.every with stats that are not a table (line 9)
-- fails the load at that line; the valid callback before it never runs.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

luisa.every(1, { s = A:sum() }, function(step, r) put(step, "sumA", r.s) end)
luisa.every(1, "sum", function(step, r) put(step, "never", r.s) end)
