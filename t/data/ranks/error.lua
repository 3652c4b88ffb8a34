-- error.lua: a callback that raises at step 3 (line 6), for t/052-ranks.t
-- (case errors): luisa_step(3 + max_lag) says so on every simulation rank.
local luisa = require "luisa"
local T = luisa.array "T"
luisa.every(1, { s = T:sum() }, function(step)
  if step == 3 then error("raised at step 3") end
end)
