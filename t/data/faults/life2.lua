-- life2.lua: the reloaded script of the fault-injection life: keeps the
-- window on T, drops the stencil, adds a trigger, steers dt again.
local luisa = require "luisa"
local T, U = luisa.array "T", luisa.array "U"
luisa.state.loads = (luisa.state.loads or 0) + 1
luisa.every(1, { d = (T - T:prev(1)):max(), u = U:sum() }, function(step)
  if step == 6 then luisa.set("dt", luisa.param.dt * 1.5) end
end)
luisa.trigger {
  check = { mean = T:mean() },
  when = function(c) return c.mean > 0 end,
  stats = { lap = U:laplacian():max(), n = T:gt(1):count() },
  run = function(step, r) luisa.state.last = step end,
}
