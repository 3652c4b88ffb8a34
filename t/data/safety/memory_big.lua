-- One allocation larger than the cap, at step 1.
local h = require "healthy"
h.luisa.every(1, { max = h.A:max() }, function(step)
  if step == 1 then
    local s = string.rep("x", 2 ^ 30)
    return #s
  end
end)
