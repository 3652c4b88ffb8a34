-- stats.lua: mean and max of the heat field u every 10 steps, printed by the
-- root rank (the default script of examples/heat2d/heat2d.c).
local luisa = require "luisa"
local u = luisa.array "u"

-- obs is never read here, so luisa_wants tells the simulation to skip it.
luisa.every(10, { mean = u:mean(), max = u:max() }, function(step, r)
  print(string.format("step %4d  u mean %.9f  max %.9f  dt %.6g", step, r.mean, r.max, luisa.param.dt))
end)
