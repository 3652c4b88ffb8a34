-- sneaks.lua: a script that only reads its results, but at step 5 its
-- callback reaches steering by a name built at run time: refused, since
-- the other ranks did not wait (t/037-collectives.t).
local luisa = require "luisa"
local T = luisa.array "T"
local spin = require("collectives").spin
local hidden = "s" .. "et"
luisa.every(1, { m = T:mean(), x = T:max() }, function(step)
  spin(step)
  if step == 5 then luisa[hidden]("dt", 0.25) end
end)
