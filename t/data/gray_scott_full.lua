-- gray_scott_full.lua: the statistics of examples/gray-scott at full
-- precision, for t/020-gray-scott.t to compare with the solver's own check.
local luisa = require "luisa"
local U, V = luisa.array "U", luisa.array "V"
luisa.every(10, { umean = U:mean(), umin = U:min(), umax = U:max(),
                  vmean = V:mean(), vmin = V:min(), vmax = V:max() },
  function(step, r)
    print(string.format("%d U %.17g %.17g %.17g V %.17g %.17g %.17g", step,
                        r.umean, r.umin, r.umax, r.vmean, r.vmin, r.vmax))
  end)
