-- gradient.lua: gradient along each axis, gathered and reduced, against
-- numpy.gradient's rule computed here in plain Lua from the gathered array,
-- for t/018-gradient.t. Writes "step check ok|bad detail" lines.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))

-- numpy.gradient of the gathered array along axis (1-based), unit spacing.
local function gradient(a, axis)
  local shape, n = a.shape, a.n
  local stride = 1
  for d = #shape, axis + 1, -1 do stride = stride * shape[d] end
  local g = {}
  for k = 0, n - 1 do
    local i = math.floor(k / stride) % shape[axis]
    local len = shape[axis]
    if i == 0 then g[k] = a.data[k + stride] - a.data[k]
    elseif i == len - 1 then g[k] = a.data[k] - a.data[k - stride]
    else g[k] = (a.data[k + stride] - a.data[k - stride]) / 2 end
  end
  return g
end

local stats = { a = A:gather() }
for axis = 0, 1 do
  stats["g" .. axis] = A:gradient(axis):gather()
  stats["s" .. axis] = A:gradient(axis):sum()
  stats["m" .. axis] = A:gradient(axis):max()
  stats["i" .. axis] = A:gradient(axis):argmin()
end
luisa.every(1, stats, function(step, r)
  for axis = 0, 1 do
    local want = gradient(r.a, axis + 1)
    local got, bad, sum, max, min, at = r["g" .. axis], 0, 0, -math.huge, math.huge, nil
    for k = 0, r.a.n - 1 do
      if got.data[k] ~= want[k] then bad = bad + 1 end
      sum, max = sum + want[k], math.max(max, want[k])
      if want[k] < min then min, at = want[k], k end
    end
    local i = r["i" .. axis]
    local put = function(name, ok, detail)
      out:write(string.format("%d %s%d %s %s\n", step, name, axis, ok and "ok" or "bad", detail or ""))
    end
    put("gather", bad == 0, bad .. " elements differ")
    put("sum", math.abs(r["s" .. axis] - sum) <= 1e-12 * math.abs(sum), r["s" .. axis] .. " vs " .. sum)
    put("max", r["m" .. axis] == max, r["m" .. axis] .. " vs " .. max)
    put("argmin", i[1] * r.a.shape[2] + i[2] == at, (i[1] * r.a.shape[2] + i[2]) .. " vs " .. at)
  end
  out:flush()
end)
