-- budget_map.lua: benchmark 6 (bench/budget.c): a plain Lua loop over each
-- block (luisa.map), its sum handed back through a steerable parameter so
-- the script runs sandboxed as well as trusted.
local luisa = require "luisa"
local T = luisa.array "T"
local function block_sum(data, shape)
  local s = 0
  for i = 0, shape[1] - 1 do s = s + data[i] end
  return s
end
luisa.every(1, { s = luisa.map(T, block_sum, "sum") }, function(_, r) luisa.set("result", r.s) end)
