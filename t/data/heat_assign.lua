-- heat_assign.lua: overwrites u with obs at every step and ends the run at
-- step 30, for t/025-heat2d.t: after the run u must equal obs exactly.
local luisa = require "luisa"
luisa.assign("u", luisa.array "obs", 1)
luisa.every(30, { n = luisa.array("u"):count() }, function(step)
  if step > 0 then luisa.stop("assigned until step " .. step) end   -- every(30) is due at 0 too
end)
