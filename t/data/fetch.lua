-- fetch.lua: luisa.fetch of boxes spanning several chunks and ranks, now
-- and one step ago, against gathers of the same slices, for t/019-fetch.t.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))

local function same(f, g)
  if not f or not g or f.n ~= g.n then return false end
  for k = 0, f.n - 1 do if f.data[k] ~= g.data[k] then return false end end
  return true
end

luisa.every(1, { box = A[{ { 2, 13 }, { 1, 12 } }]:gather(), whole = A:gather(),
                 before = A:prev(1)[{ { 2, 13 }, { 1, 12 } }]:gather(),
                 corner = A[{ { 16, 17 }, { 12, 13 } }]:gather() },
  function(step, r)
    local f = luisa.fetch("A", { 2, 1 }, { 11, 11 })
    local w = luisa.fetch("A", { 0, 0 }, { 17, 13 })
    local c = luisa.fetch("A", { 16, 12 }, { 1, 1 })
    local p = luisa.fetch("A", { 2, 1 }, { 11, 11 }, 1)
    out:write(string.format("%d box %s whole %s corner %s before %s at %s\n", step, tostring(same(f, r.box)),
      tostring(same(w, r.whole)), tostring(same(c, r.corner)),
      step == 1 and tostring(p == nil and r.before == nil) or tostring(same(p, r.before)),
      tostring(f:at(3, 4) == r.whole:at(5, 5))))
    out:flush()
  end)
