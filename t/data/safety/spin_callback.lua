-- A callback that never returns at step 2: stopped by the budget, disabled.
local h = require "healthy"
h.luisa.every(1, { max = h.A:max() }, function(step)
  if step == 2 then
    while true do end
  end
end)
