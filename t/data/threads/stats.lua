-- stats.lua: sum, min, max, mean and std of four fields (R rising, F
-- falling, C constant, Q with NaN), for t/050-threads.t (case same), which
-- compares what inline and thread mode write: rank 0 writes "step name
-- value" lines to $LUISA_TEST_OUT, in sorted order, every digit of each.
local luisa = require "luisa"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local stats, names = {}, {}
for _, a in ipairs { "R", "F", "C", "Q" } do
  local X = luisa.array(a)
  for _, kind in ipairs { "sum", "min", "max", "mean", "std" } do
    stats[a .. "_" .. kind] = X[kind](X)
    names[#names + 1] = a .. "_" .. kind
  end
end
table.sort(names)
luisa.every(1, stats, function(step, r)
  for _, name in ipairs(names) do out:write(string.format("%d %s %.17g\n", step, name, r[name])) end
  out:flush()
end)
