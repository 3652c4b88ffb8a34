-- bindings_stats.lua: sum, min, max and mean of the four arrays the binding
-- tests publish, written by the root to $LUISA_TEST_OUT as "step NAME_stat value".
local luisa = require "luisa"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))

local stats = {}
for _, name in ipairs { "U", "V", "I", "L" } do   -- f64, f32, i32, i64
  local X = luisa.array(name)
  stats[name .. "_sum"], stats[name .. "_min"] = X:sum(), X:min()
  stats[name .. "_max"], stats[name .. "_mean"] = X:max(), X:mean()
end

luisa.every(1, stats, function(step, r)
  for k, v in pairs(r) do out:write(string.format("%d %s %.17g\n", step, k, v)) end
  out:flush()
end)
