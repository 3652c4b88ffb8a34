-- stats.lua: in situ statistics of the Gray-Scott fields U and V, printed by
-- the root rank every 10 steps (run by examples/gray-scott/gray_scott.c).
local luisa = require "luisa"
local U, V = luisa.array "U", luisa.array "V"

-- Every rank runs this file, so nothing is printed at load: only the
-- callback prints, and it runs on the root rank with plain numbers.
luisa.every(10, { umean = U:mean(), umin = U:min(), umax = U:max(),
                  vmean = V:mean(), vmin = V:min(), vmax = V:max(),
                  vcells = V:gt(0.2):sum() },   -- area of the pattern
  function(step, r)
    print(string.format("step %5d  U mean %.6f min %.6f max %.6f  "
                        .. "V mean %.6f min %.6f max %.6f  V>0.2 %d cells",
                        step, r.umean, r.umin, r.umax,
                        r.vmean, r.vmin, r.vmax, r.vcells))
  end)
