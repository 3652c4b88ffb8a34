-- stop.lua: luisa.stop at step 4, for t/052-ranks.t (case stop): the
-- simulation gets LUISA_STOP from luisa_step(4 + max_lag).
local luisa = require "luisa"
local T = luisa.array "T"
luisa.every(1, { s = T:sum() }, function(step)
  if step == 4 then luisa.stop("enough at step 4") end
end)
