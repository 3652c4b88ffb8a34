-- error({}): the message says what was raised, not a table's address.
local h = require "healthy"
h.luisa.every(1, { max = h.A:max() }, function(step)
  if step == 1 then error({}) end
end)
