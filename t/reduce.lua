-- reduce.lua: every statistic t/reduce.c checks, written by the root to
-- $LUISA_TEST_OUT as "step name value" lines.
local luisa = require "luisa"
local A, B = luisa.array "A", luisa.array "B"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))

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
}, function(step, r)
  for k, v in pairs(r) do out:write(string.format("%d %s %.17g\n", step, k, v)) end
  out:flush()
end)
