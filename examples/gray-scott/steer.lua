-- steer.lua: keeps the Gray-Scott pattern's area inside a target band by
-- steering the kill rate, and ends the run once it has stayed there.
local luisa = require "luisa"
local V = luisa.array "V"

local band = { 0.10, 0.14 }   -- fraction of the domain where V > 0.2
local settled, needed = 0, 20 -- checks in the band before stopping

luisa.every(20, { area = V:gt(0.2):mean(), vmax = V:max() }, function(step, r)
  local kill = luisa.param.kill
  local lo, hi = luisa.bounds.kill[1], luisa.bounds.kill[2]
  local action = "hold"
  if r.area < band[1] then       -- too little pattern: let V live longer
    kill, action = math.max(lo, kill - 0.0005), "kill-"
  elseif r.area > band[2] then   -- too much: let it decay faster
    kill, action = math.min(hi, kill + 0.0005), "kill+"
  end
  settled = action == "hold" and settled + 1 or 0
  print(string.format("step %5d  area %.4f  V max %.3f  kill %.4f  %s", step, r.area, r.vmax, kill, action))
  if kill ~= luisa.param.kill then luisa.set("kill", kill) end
  if settled >= needed then luisa.stop(string.format("area in [%.2f, %.2f] for %d checks", band[1], band[2], needed)) end
end)
