-- A callback that never returns at step 1: stopped by the budget, disabled.
local h = require "healthy"
h.luisa.every(1, { max = h.A:max() }, function(step)
  if step == 1 then
    while true do end
  end
end)
