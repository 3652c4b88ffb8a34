-- A loop that catches every error it meets, the budget's included.
local h = require "healthy"
h.luisa.every(1, { max = h.A:max() }, function(step)
  if step == 1 then
    while true do pcall(function() while true do end end) end
  end
end)
