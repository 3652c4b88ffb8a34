-- An error object whose __tostring calls itself forever.
local h = require "healthy"
local mt = {}
mt.__tostring = function(e) return tostring(e) end
h.luisa.every(1, { max = h.A:max() }, function(step)
  if step == 1 then error(setmetatable({}, mt)) end
end)
