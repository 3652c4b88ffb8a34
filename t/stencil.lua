-- stencil.lua: diff, laplacian, stencil and slice statistics that t/stencil.c checks, in 2D or 3D,
-- written by the root to $LUISA_TEST_OUT as "step name value" lines (index tables as name.axis).
local luisa = require "luisa"
local A, B = luisa.array "A", luisa.array "B"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local shape = {}
for extent in os.getenv("LUISA_TEST_SHAPE"):gmatch("%d+") do shape[#shape + 1] = tonumber(extent) end
local D = #shape

-- Ranges for the first D axes of a list written for three: one list serves 2D and 3D.
local function axes(t)
  local r = {}
  for d = 1, D do r[d] = t[d] end
  return unpack(r, 1, D)
end

-- Weight k (C order) is ((5k) % 11 - 5) / 4, as t/stencil.c builds them: asymmetric, so a
-- flipped axis or offset shows.
local function weights(ext)
  local k = 0
  local function build(d)
    local t = {}
    for i = 1, ext[d] do
      if d == #ext then t[i] = ((5 * k) % 11 - 5) / 4; k = k + 1 else t[i] = build(d + 1) end
    end
    return t
  end
  return build(1)
end

local e3, e35 = {}, {}
for d = 1, D do e3[d], e35[d] = 3, 1 end
e35[1], e35[D] = 3, 5                  -- 3x5 in 2D, 3x1x5 in 3D
local w3, w35 = weights(e3), weights(e35)

-- The laplacian as weights, as the spec writes it in 2D.
local lapw = { { 0, 1, 0 }, { 1, -4, 1 }, { 0, 1, 0 } }
if D == 3 then
  lapw = { { { 0, 0, 0 }, { 0, 1, 0 }, { 0, 0, 0 } },
           { { 0, 1, 0 }, { 1, -6, 1 }, { 0, 1, 0 } },
           { { 0, 0, 0 }, { 0, 1, 0 }, { 0, 0, 0 } } }
end

local function report(step, r)
  local keys = {}
  for k in pairs(r) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = r[k]
    if type(v) == "table" then
      for i, x in ipairs(v) do out:write(string.format("%d %s.%d %.17g\n", step, k, i - 1, x)) end
    else
      out:write(string.format("%d %s %.17g\n", step, k, v))
    end
  end
  out:flush()
end

-- Forward differences on every axis.
local diffs = {}
for d = 0, D - 1 do
  local T = A:diff(d)
  diffs["d" .. d .. "_sum"], diffs["d" .. d .. "_min"], diffs["d" .. d .. "_max"] = T:sum(), T:min(), T:max()
  diffs["d" .. d .. "_amax"], diffs["d" .. d .. "_count"] = T:argmax(), T:count()
end
diffs.d0_mean, diffs.d0_var, diffs.d0_std = A:diff(0):mean(), A:diff(0):var(), A:diff(0):std()
diffs.d0_hist = A:diff(0):histogram(8, { -200, 200 })
diffs.d1_std = A:diff(1):std()
diffs["d" .. D - 1 .. "_amin"] = A:diff(D - 1):argmin()
luisa.every(1, diffs, report)

-- The laplacian, and the same as stencil weights.
local L = A:laplacian()
luisa.every(1, {
  lap_sum = L:sum(), lap_mean = L:mean(), lap_min = L:min(), lap_max = L:max(),
  lap_amin = L:argmin(), lap_count = L:count(), lap_norm = L:norm(), lap_std = L:std(),
  lapw_sum = A:stencil(lapw):sum(), lapw_max = A:stencil(lapw):max(),
}, report)

-- Asymmetric stencils, one on B (its own decomposition), one combined with the laplacian.
local S3, S35 = A:stencil(w3), A:stencil(w35)
luisa.every(1, {
  st3_sum = S3:sum(), st3_min = S3:min(), st3_max = S3:max(), st3_amax = S3:argmax(),
  st3_count = S3:count(),
  st35_sum = S35:sum(), st35_mean = S35:mean(), st35_min = S35:min(), st35_max = S35:max(),
  st35_amin = S35:argmin(), st35_count = S35:count(), st35_std = S35:std(),
  stB_sum = B:stencil(w35):sum(), stB_max = B:stencil(w35):max(),
  st3lap_max = (S3 - L):max(),
}, report)

-- Slices (the Python spelling in the comments; t/stencil.c uses it).
local s1 = A:slice(axes { { 1, -1, 2 }, { -5 }, { 1, nil, 2 } })              -- A[1:-1:2, -5:, 1::2]
local s2 = A[{ axes { { nil, nil, 3 }, 2, true } }]                           -- A[::3, 2:3, :]
local s3 = A:diff(D - 1):slice(axes { { 2 }, { 0, -1, 2 }, { 0, -1, 2 } })    -- diff[2:, 0:-1:2, 0:-1:2]
local s4 = A:slice(axes { { 0, -1 }, {}, {} }) - A:slice(axes { { 1 }, true, true })   -- A[0:-1] - A[1:]
local s5 = A:diff(0):slice(axes { {}, { 0, -1 }, {} }) * A:diff(1):slice(axes { { 0, -1 }, {}, {} })
local s6 = A:slice(axes { { 0, nil, 2 }, true, true }):diff(0)                  -- A[0::2]:diff(0)
local s7 = A:slice(axes { { 1 }, { 0, -1 }, { -6 } }):laplacian()              -- A[1:, 0:-1, -6:]
local s8 = (A * A - A * 3):slice(axes { { -7, -1, 3 }, { 1, nil, 2 }, { -3 } }) -- (..)[-7:-1:3, 1::2, -3:]
local s9 = S3[{ axes { { 1, -1, 2 }, { -4 }, {} } }]                          -- S3[1:-1:2, -4:, :]
luisa.every(1, {
  s1_sum = s1:sum(), s1_min = s1:min(), s1_max = s1:max(), s1_amax = s1:argmax(), s1_count = s1:count(),
  s2_sum = s2:sum(), s2_amin = s2:argmin(), s2_count = s2:count(),
  s3_sum = s3:sum(), s3_min = s3:min(), s3_amax = s3:argmax(),
  s4_sum = s4:sum(), s4_max = s4:max(), s4_amin = s4:argmin(),
  s5_sum = s5:sum(), s5_max = s5:max(), s5_amax = s5:argmax(),
  s6_sum = s6:sum(), s6_min = s6:min(), s6_max = s6:max(),
  s7_sum = s7:sum(), s7_max = s7:max(),
  s8_sum = s8:sum(), s8_max = s8:max(), s8_count = s8:count(), s8_var = s8:var(),
  s9_sum = s9:sum(), s9_min = s9:min(),
}, report)

-- W1, and plain reductions beside shifted views of A: each callback makes one pass over A's chunks.
luisa.every(1, { w1_mean = A:mean(), w1_max = A:max(), w1d_std = A:diff(0):std() }, report)
luisa.every(1, {
  mx_sum = A:sum(), mx_var = A:var(), mx_amin = A:argmin(), mxd0_var = A:diff(0):var(),
  mxd1_max = A:diff(D - 1):max(), mxlap_sum = L:sum(), mxlap_std = L:std(),
}, report)

-- A and B are decomposed differently: combining them moves data between ranks.
local full = { 1, -1 }
luisa.every(1, {
  ab_sum = (A + B):sum(),
  abm_min = (A - B):min(),
  abp_max = (A * B):max(), abp_amax = (A * B):argmax(),
  abd_sum = (A:diff(0) - B:diff(0)):sum(),
  abd1_max = (A:diff(1) * B:diff(1)):max(),
  abl_sum = (L * B:slice(axes { full, full, full })):sum(),                   -- B[1:-1, 1:-1, 1:-1]
  abs_sum = (A:slice(axes { { 0, -1, 2 }, {}, {} }) + B:slice(axes { { 1, nil, 2 }, {}, {} })):sum(),
  abs_amin = (A:slice(axes { { 0, -1, 2 }, {}, {} }) + B:slice(axes { { 1, nil, 2 }, {}, {} })):argmin(),
  bd_sum = B:diff(D - 1):sum(),
  bl_max = B:laplacian():max(),
}, report)
