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

-- Bad arguments, each call alone on a line marked "-- bad:" with the message it must raise after
-- "t/data/fetch.lua:LINE: " (t/019-fetch.t reads them); written by the root at step 1 as
-- "err MESSAGE". Then the largest k allowed gives nil, as no statistic keeps 1000 steps.
local bad = {
  function() local _ = luisa.fetch("A", { 0 / 0, 1 }, { 1, 1 }) end,          -- bad: luisa.fetch("A"): the offset on axis 0 must be a whole number, got nan
  function() local _ = luisa.fetch("A", { 2, 1.5 }, { 1, 1 }) end,            -- bad: luisa.fetch("A"): the offset on axis 1 must be a whole number, got 1.5
  function() local _ = luisa.fetch("A", { math.huge, 0 }, { 1, 1 }) end,      -- bad: luisa.fetch("A"): the offset on axis 0 must be a whole number, got inf
  function() local _ = luisa.fetch("A", { 0, -math.huge }, { 1, 1 }) end,     -- bad: luisa.fetch("A"): the offset on axis 1 must be a whole number, got -inf
  function() local _ = luisa.fetch("A", { "2", 0 }, { 1, 1 }) end,            -- bad: luisa.fetch("A"): the offset on axis 0 must be a whole number, got "2"
  function() local _ = luisa.fetch("A", { 0, 0 }, { 1, 0 / 0 }) end,          -- bad: luisa.fetch("A"): the shape on axis 1 must be a whole number >= 1, got nan
  function() local _ = luisa.fetch("A", { 0, 0 }, { 2.5, 1 }) end,            -- bad: luisa.fetch("A"): the shape on axis 0 must be a whole number >= 1, got 2.5
  function() local _ = luisa.fetch("A", { 0, 0 }, { 0, 1 }) end,              -- bad: luisa.fetch("A"): the shape on axis 0 must be a whole number >= 1, got 0
  function() local _ = luisa.fetch("A", { 0, 0 }, { 1, math.huge }) end,      -- bad: luisa.fetch("A"): the shape on axis 1 must be a whole number >= 1, got inf
  function() local _ = luisa.fetch("A", { 0, 0 }, { 1, true }) end,           -- bad: luisa.fetch("A"): the shape on axis 1 must be a whole number >= 1, got true
  function() local _ = luisa.fetch("A", { 0, 0 }, { 2 ^ 40, 1 }) end,         -- bad: luisa.fetch("A"): the box at [0, 0] of shape [1099511627776, 1] is outside the array's shape [17, 13]
  function() local _ = luisa.fetch("A", { -1, 0 }, { 1, 1 }) end,             -- bad: luisa.fetch("A"): the box at [-1, 0] of shape [1, 1] is outside the array's shape [17, 13]
  function() local _ = luisa.fetch("A", { 1 }, { 1, 1 }) end,                 -- bad: luisa.fetch("A", offset, shape): offset and shape need 2 numbers each
  function() local _ = luisa.fetch("A", { 0, 0 }, { 1, 1 }, 0 / 0) end,       -- bad: luisa.fetch: k must be a whole number from 0 to 1000, got nan
  function() local _ = luisa.fetch("A", { 0, 0 }, { 1, 1 }, 2 ^ 40) end,      -- bad: luisa.fetch: k must be a whole number from 0 to 1000, got 1099511627776
  function() local _ = luisa.fetch("A", { 0, 0 }, { 1, 1 }, 1001) end,        -- bad: luisa.fetch: k must be a whole number from 0 to 1000, got 1001
  function() local _ = luisa.fetch("A", { 0, 0 }, { 1, 1 }, math.huge) end,   -- bad: luisa.fetch: k must be a whole number from 0 to 1000, got inf
  function() local _ = luisa.fetch("A", { 0, 0 }, { 1, 1 }, 0.5) end,         -- bad: luisa.fetch: k must be a whole number from 0 to 1000, got 0.5
}
luisa.every(1, { s = A:sum() }, function(step)
  if step ~= 1 then return end
  for _, f in ipairs(bad) do
    local ok, e = pcall(f)
    out:write("err ", ok and "(no error)" or tostring(e), "\n")
  end
  out:write(string.format("k1000 %s\n", tostring(luisa.fetch("A", { 0, 0 }, { 1, 1 }, 1000))))
  out:flush()
end)
