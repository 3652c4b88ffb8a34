-- collectives.lua: three callbacks every step, a gather among them, that
-- only read their results (t/037-collectives.t): a step costs one
-- all-reduce. The root's first callback spins 0.3 s at step 5.
local luisa = require "luisa"
local T = luisa.array "T"
local M = {}
function M.spin(step)
  if step == 5 then
    local t = os.clock()
    while os.clock() - t < 0.3 do end
  end
end
luisa.every(1, { m = T:mean(), x = T:max() }, function(step) M.spin(step) end)
luisa.every(1, { g = T:coarsen(2):gather() }, function() end)
luisa.every(1, { s = T:diff(0):std() }, function() end)
return M
