-- nudge.lua: every 5 steps, nudges the heat field u toward the observation obs
-- and steers dt down where u is sharply curved, back up where it is smooth.
local luisa = require "luisa"
local u, obs = luisa.array "u", luisa.array "obs"

local every, gain = 5, 0.2
local sharp = 0.5          -- max |laplacian(u)| above which dt is halved
local dt0                  -- the simulation's initial dt, the ceiling of the restore:
                           -- read at the first callback, as parameters are
                           -- registered after the script is loaded

-- Both callbacks are due at the same steps: the statistics read u before
-- the assignment writes it (the engine writes after the step's analytics).
luisa.every(every, { mse = ((u - obs) * (u - obs)):mean(),   -- squared misfit, before nudging
                     curv = u:laplacian():abs():max() },     -- max is exact: same on any rank count
  function(step, r)
    dt0 = dt0 or luisa.param.dt
    local dt, action = luisa.param.dt, "hold"
    if r.curv > sharp then
      dt, action = math.max(luisa.bounds.dt[1], dt / 2), "dt/2"
    elseif r.curv < sharp / 4 and dt < dt0 then
      dt, action = math.min(dt0, dt * 2), "dt*2"
    end
    print(string.format("step %4d  misfit %.9f  max|lap u| %.6f  dt %-6.6g %s",
                        step, math.sqrt(r.mse), r.curv, dt, action))   -- dt: from the next step on
    if dt ~= luisa.param.dt then luisa.set("dt", dt) end   -- used from step + 1
  end)
luisa.assign("u", u + (obs - u) * gain, every)
