-- A callback that allocates without bound at step 1: stopped near the cap,
-- its memory given back, the healthy callback unharmed.
local h = require "healthy"
h.luisa.every(1, { max = h.A:max() }, function(step)
  if step == 1 then
    local t = {}
    while true do t[#t + 1] = { step, step } end
  end
end)
