-- store_stats.lua: a window of three versions of U, and this rank's store
-- figures every step, for t/014-store.t.
local luisa = require "luisa"
local W = luisa.window(luisa.array "U", 3)
luisa.every(1, { change = (W[0] - W[2]):abs():max(), area = luisa.array("V"):gt(0.2):sum() },
  function(step, r)
    local s = luisa.stats()
    print(string.format("%d %d %d %d %d %s", step, s.objects, s.bytes_held, s.plans, s.kernels,
                        r.change and "ready" or "pending"))
  end)
