-- slice.lua: callback 1 (line 9) sums rows 0-3 of A on rank 0 and rows 0-5
-- elsewhere (a rank-dependent shape): disabled on every rank.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(step, key, v) out:write(string.format("%d %s %.17g\n", step, key, v)); out:flush() end

local rows = luisa.rank == 0 and 4 or 6
luisa.every(1, { s = A[{ { 0, rows } }]:sum() }, function(step, r) put(step, "div", r.s) end)
luisa.every(1, { m = A:max() }, function(step, r) put(step, "maxA", r.m) end)
