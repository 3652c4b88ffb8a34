-- budget_stats.lua: benchmark 6 (bench/budget.c): a fused sum and a
-- callback doing a little Lua work of its own, as most callbacks do.
local luisa = require "luisa"
local T = luisa.array "T"
local seen = {}
luisa.every(1, { s = T:sum(), m = T:max() }, function(step, r)
  local x = 0
  for i = 1, 100 do x = x + i * r.m end
  seen[step % 8] = x
  luisa.set("result", r.s)
end)
