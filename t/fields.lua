-- fields.lua: axis reductions, gathers and coarsening, alone and with stencils, slices and windows,
-- written by the root to $LUISA_TEST_OUT for t/fields.c as "step name value" lines.
local luisa = require "luisa"
local A, B, V = luisa.array "A", luisa.array "B", luisa.array "V"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local shape = {}
for extent in os.getenv("LUISA_TEST_SHAPE"):gmatch("%d+") do shape[#shape + 1] = tonumber(extent) end
local D = #shape

-- The first D entries of a list written for three axes: one list serves 2D and 3D.
local function axes(t)
  local r = {}
  for d = 1, D do r[d] = t[d] end
  return r
end

local function line(step, name, v) out:write(string.format("%d %s %.17g\n", step, name, v)) end

-- One result: a number; nil (not yet) as name.nil; an array as its n, number of axes and shape,
-- then every element in C order read from data (name.k) and through at() (name.at.k).
local function put(step, name, v)
  if v == nil then return line(step, name .. ".nil", 1) end
  if type(v) == "number" then return line(step, name, v) end
  line(step, name .. ".n", v.n)
  line(step, name .. ".nd", #v.shape)
  for d, extent in ipairs(v.shape) do line(step, name .. ".shape." .. d - 1, extent) end
  local idx = {}
  for k = 0, v.n - 1 do
    local rest = k
    for d = #v.shape, 1, -1 do
      idx[d] = rest % v.shape[d]
      rest = (rest - idx[d]) / v.shape[d]
    end
    line(step, name .. "." .. k, v.data[k])
    line(step, name .. ".at." .. k, v:at(unpack(idx, 1, #v.shape)))
  end
end

-- Registers stats to run every step; the callback writes each key (missing ones as nil) and
-- flags keys it did not ask for, so t/fields.c sees them as unexpected.
local function every(stats, after)
  local keys = {}
  for k in pairs(stats) do keys[#keys + 1] = k end
  table.sort(keys)
  luisa.every(1, stats, function(step, r)
    for _, k in ipairs(keys) do put(step, k, r[k]) end
    for k in pairs(r) do if not stats[k] then line(step, "extra." .. tostring(k), 1) end end
    if after then after(step, r) end
    out:flush()
  end)
end

-- Along each axis, beside whole-array reductions; V is 1-D, so its results have shape {1}.
local along = { tot = A:sum(), amax = A:max(), bsum = B:sum(D - 1), bmin0 = B:min(0),
                vsum = V:sum(0), vmean = V:mean(0), vmin = V:min(0), vmax = V:max(0) }
for d = 0, D - 1 do
  along["sum" .. d], along["mean" .. d] = A:sum(d), A:mean(d)
  along["min" .. d], along["max" .. d] = A:min(d), A:max(d)
end
every(along)

-- Gathers of whole, sliced and coarsened arrays (the Python spelling beside each).
local f23, f321 = axes { 2, 3, 2 }, axes { 3, 2, 1 }
every {
  g = A:gather(),
  gsl = A[{ { 1, -1 }, { 0, nil, 2 } }]:gather(),                 -- A[1:-1, ::2]
  gc2 = A:coarsen(2):gather(),
  gc23 = A:coarsen(f23):gather(),
  gbc3 = B:coarsen(3):gather(),
  gd = A:diff(0):coarsen(2):gather(),
  gsc = A[{ { 1 }, { 2 } }]:coarsen(2):gather(),                   -- A[1:, 2:], blocks off the grid
  gcs = A:coarsen(2)[{ { 0, nil, 2 } }]:gather(),                 -- coarsened[::2]
  gv = V:coarsen(3):gather(),
  gab = (A - 2 * B)[{ { 0, nil, 3 }, { 1, -1 } }]:gather(),        -- (A - 2B)[::3, 1:-1]
}

-- Coarsened arrays reduced, whole or along an axis; A and B are decomposed differently.
every {
  c23sum = A:coarsen(f23):sum(),
  c2mean = A:coarsen(2):mean(), c2min = A:coarsen(2):min(), c2max = A:coarsen(2):max(),
  cab = (A:coarsen(2) - B:coarsen(2)):max(),
  c3s1 = A:coarsen(3):sum(1),
  c2m0 = A:coarsen(2):max(0),
  c2meanl = A:coarsen(2):mean(D - 1),
  cbmin = B:coarsen(f321):min(0),
}

-- Axis reductions of stencils, slices and of arrays combined across decompositions.
every {
  d0s1 = A:diff(0):sum(1),
  d1m0 = A:diff(1):max(0),
  lapmean0 = A:laplacian():mean(0),
  lapmin = A:laplacian():min(D - 1),
  sls0 = A[{ { 1, -1 }, { 0, nil, 2 } }]:sum(0),
  abmin = (A - B):min(D - 1),
  abs1 = (A * B):sum(1),
}

-- Windows: each of these is nil until the steps it reads exist. Left out of the run with bad
-- callbacks, whose statuses must depend on those alone (every other run checks windows).
if not os.getenv("LUISA_TEST_ERRORS") then
  local W = luisa.window(A, 3)
  every {
    dp = (A - A:prev()):max(0),
    dps = (A - A:prev()):sum(),
    w1g = W[1][{ { 0, nil, 2 } }]:gather(),                        -- A:prev(1)[::2]
    wbc = (A:coarsen(2) - B:prev():coarsen(2)):max(),
    kp = A:coarsen(2):prev():gather(),
    w2s1 = (W[0] - 2 * W[1] + W[2]):sum(1),
    w2g = W[2]:coarsen(2):gather(),
    wb = (B:prev(2) - A):min(0),
  }
end

-- An array delivered to a callback is a copy: kept one step, it still holds that step's values.
local kept
every({ kc = A:coarsen(2):gather() }, function(step, r)
  put(step, "keep", kept)
  kept = r.kc
end)

-- Bad uses, each alone on a line marked "-- bad:" in its own callback (t/015-fields.t): each must
-- fail at the first step naming its line, while the callbacks above go on.
if os.getenv("LUISA_TEST_ERRORS") then
  local function never() end
  local big = axes { 2, 2, 2 }
  big[D] = shape[D] + 1
  luisa.every(1, { s = A:sum(D) }, never)                                  -- bad: sum along axis D of D axes
  luisa.every(1, { s = A:min(-1) }, never)                                 -- bad: min along axis -1
  luisa.every(1, { s = A:coarsen(2):mean(D) }, never)                      -- bad: mean along axis D of a coarsened array
  luisa.every(1, { s = V:max(1) }, never)                                  -- bad: max along axis 1 of a 1-D array
  luisa.every(1, { s = (A - A:prev()):max(D + 1) }, never)                 -- bad: axis D+1 of a window, before it is full
  luisa.every(1, { s = A:coarsen(shape[1] + 1):gather() }, never)          -- bad: factor beyond axis 0
  luisa.every(1, { s = A:coarsen(big):sum() }, never)                      -- bad: factor beyond the last axis
  luisa.every(1, { s = A:diff(0):coarsen(shape[1]):sum() }, never)         -- bad: factor n0 on diff(0)'s n0-1
  luisa.every(1, { s = A:coarsen({ 2 }):sum() }, never)                    -- bad: one factor for D axes
  luisa.every(1, { s = A:coarsen({ 2, 2, 2, 2 }):max() }, never)           -- bad: four factors for D axes
  luisa.every(1, { s = V:coarsen({ 1, 1 }):gather() }, never)              -- bad: two factors for a 1-D array
end
