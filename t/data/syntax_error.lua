-- syntax_error.lua: LuaJIT cannot parse this script (a comma is missing on
-- line 6): luisa_init reports file:line, analytics stay off.
local luisa = require "luisa"
local A = luisa.array "A"

luisa.every(1, { sum = A:sum() } function(step, r)
  print(step, r.sum)
end)
