-- map.lua: luisa.map over an array and over an expression, beside the same
-- counts computed by reductions, for t/017-map.t.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function positives(p, shape, offset)
  local n = 1
  for d = 1, #shape do n = n * shape[d] end
  local c = 0
  for i = 0, n - 1 do if p[i] > 0 then c = c + 1 end end
  return c
end
local function first_row(p, shape, offset) return offset[1] end
local function total(p, shape)
  local n, s = 1, 0
  for d = 1, #shape do n = n * shape[d] end
  for i = 0, n - 1 do s = s + p[i] end
  return s
end
luisa.every(1, { m = luisa.map(A, positives), ref = A:gt(0):sum(), m2 = luisa.map(A:diff(1) * 2, positives),
                 ref2 = (A:diff(1) * 2):gt(0):sum(), fr = luisa.map(A, first_row, "max"),
                 lo = luisa.map(A, first_row, "min"), t = luisa.map(A:slice({1, -1}), total),
                 reft = A:slice({1, -1}):sum() },
  function(step, r)
    out:write(string.format("%d %d %d %d %d %d %d %.17g %.17g\n", step, r.m, r.ref, r.m2, r.ref2, r.fr, r.lo, r.t, r.reft))
    out:flush()
  end)
