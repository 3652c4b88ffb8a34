-- reduce.lua: every statistic t/reduce.c checks, written by the root to
-- $LUISA_TEST_OUT as "step name value" lines.
local luisa = require "luisa"
local A, B = luisa.array "A", luisa.array "B"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local shape = {}
for extent in os.getenv("LUISA_TEST_SHAPE"):gmatch("%d+") do shape[#shape + 1] = tonumber(extent) end

local W = luisa.window(A, 3)

local function linear(index)   -- 0-based global index table -> C-order linear index
  local l = 0
  for d = 1, #shape do l = l * shape[d] + index[d] end
  return l
end

luisa.every(1, {
  sum = A:sum(), mean = A:mean(), min = A:min(), max = A:max(), count = A:count(),
  absdiff = (A * 2 - 1):abs():sum(),
  pos = A:gt(0):sum(),
  ab = (A - B):max(),
  mix = (A * B + 3):min(),
  sq = A:abs():sqrt():sum(),
  ex = (A / 1000):exp():mean(),
  neg = (-A):max(),
  le = A:le(B):sum(),
  var = A:var(), std = A:std(), norm = A:norm(),
  amin = A:argmin(), amax = A:argmax(),
  wh = luisa.where(A:gt(B), A, B):sum(),
  f32 = A:cast("f32"):sum(),
  i32 = (A / 3):cast("i32"):sum(),
  sin = (A / 100):sin():sum(),
  mm = luisa.minimum(A, B):sum(),
  bstd = B:std(),
  hist = A:histogram(8, { -100, 100 }),
  dprev = (A - A:prev()):abs():max(),
  mid = (W[0] - 2 * W[1] + W[2]):sum(),
}, function(step, r)
  r.dprev, r.mid = r.dprev or 1e308, r.mid or 1e308   -- nil until the steps they need exist
  r.amin, r.amax = r.amin and linear(r.amin) or -1, r.amax and linear(r.amax) or -1   -- nil: no number
  for b, count in ipairs(r.hist) do r["hist" .. b] = count end
  r.hist = nil
  for k, v in pairs(r) do out:write(string.format("%d %s %.17g\n", step, k, v)) end
  out:flush()
end)
