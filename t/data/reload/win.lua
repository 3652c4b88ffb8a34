-- win.lua: the step-to-step change of T through a window of one step, and
-- what the store holds, for t/026-reload.t (also its reload-leak case).
local luisa = require "luisa"
local T = luisa.array "T"
local out = assert(io.open(os.getenv("LUISA_TEST_OUT"), "a"))
luisa.state.loads = (luisa.state.loads or 0) + 1
luisa.every(1, { d = (T - T:prev(1)):sum() }, function(step, r)
  local s = luisa.stats()
  out:write(string.format("%d W %s %d %d %d %.0f\n", step, tostring(r.d), s.objects, s.bytes_held,
                          luisa.state.loads, collectgarbage("count") * 1024))
  out:flush()
end)
