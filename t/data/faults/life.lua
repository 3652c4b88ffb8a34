-- life.lua: the first script of the fault-injection life (t/faults/life.c):
-- reductions, a window (T:prev), a stencil, a fetch, steering and luisa.state.
local luisa = require "luisa"
local T, U = luisa.array "T", luisa.array "U"
luisa.state.loads = (luisa.state.loads or 0) + 1
luisa.every(1, { s = T:sum(), m = U:max(), d = (T - T:prev()):abs():max(), g = U:gradient(0):sum() },
  function(step, r)
    if step == 2 then luisa.set("dt", luisa.param.dt / 2) end
    if step == 3 then luisa.set("n", luisa.param.n + 1); luisa.set("mode", "slow") end
  end)
luisa.every(2, { lo = U:min(), mean = T:mean(), at = U:argmax() }, function(step)
  local f = luisa.fetch("T", { 1, 0 }, { 3, 2 })
  if f.n ~= 6 then error("fetch gave " .. f.n .. " elements") end
  luisa.set("flag", step % 4 == 0)
end)
