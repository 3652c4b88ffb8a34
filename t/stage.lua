-- stage.lua: coarsen blocks and stencils wider than one kernel holds (lua/luisa/stage.lua cuts
-- them into stages), gathered and reduced, written by the root to $LUISA_TEST_OUT for t/stage.c
-- as "step name value" lines: index tables as name.axis, arrays as name.n and name.k (C order).
local luisa = require "luisa"
local A, B = luisa.array "A", luisa.array "B"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local shape = {}
for extent in os.getenv("LUISA_TEST_SHAPE"):gmatch("%d+") do shape[#shape + 1] = tonumber(extent) end
local D = #shape

local function line(step, name, v) out:write(string.format("%d %s %.17g\n", step, name, v)) end

local function put(step, name, v)
  if type(v) == "number" then return line(step, name, v) end
  if not v.data then   -- an index
    for d, i in ipairs(v) do line(step, name .. "." .. d - 1, i) end
    return
  end
  line(step, name .. ".n", v.n)
  for k = 0, v.n - 1 do line(step, name .. "." .. k, v.data[k]) end
end

local function every(stats)
  local keys = {}
  for k in pairs(stats) do keys[#keys + 1] = k end
  table.sort(keys)
  luisa.every(1, stats, function(step, r)
    for _, k in ipairs(keys) do put(step, k, r[k]) end
    out:flush()
  end)
end

-- Weights of extent e on every axis, the k-th in C order ((5k) % 11 - 5.5) / 4 as t/stage.c
-- builds them: never 0 or 1 (every point is a view of its own, multiplied), asymmetric.
local function weights(e)
  local k = 0
  local function build(d)
    local t = {}
    for i = 1, e do
      if d == D then t[i] = ((5 * k) % 11 - 5.5) / 4; k = k + 1 else t[i] = build(d + 1) end
    end
    return t
  end
  return build(1)
end

local function same(f) local t = {} for d = 1, D do t[d] = f end return t end

-- The 3x3 (3x3x3) stencil's sum beside a wide stencil in one pass is staged whole; alone it is
-- one kernel. t/stage.c wants both bit for bit equal: a stage keeps the kernel's additions.
local W3, Wide = A:stencil(weights(3)), A:stencil(weights(D == 2 and 7 or 5))
every { s3_alone = W3:sum() }

if D == 2 then   -- 64, 256 and 16 views per block; a 7x7 stencil: 49 views
  every { g8 = A:coarsen(8):gather(), g16 = A:coarsen(16):gather(), g82 = A:coarsen({ 8, 2 }):gather(),
          gw = Wide:gather() }
  every { m8 = A:coarsen(8):max(), n16 = A:coarsen(16):min(), x8 = A:coarsen(8):argmax(),
          m82 = A:coarsen({ 8, 2 }):max(), s4 = (B:coarsen(4) - 1):abs():sum(),
          s8 = (B:coarsen(8) - 1):abs():sum(), e16 = B:coarsen(16):mean(), s82 = B:coarsen({ 8, 2 }):sum(),
          m8a0 = A:coarsen(8):max(0), s16a1 = B:coarsen(16):sum(1) }
else             -- 64, 8 and 512 views per block; 27 and 125-point stencils
  every { g4 = A:coarsen(4):gather(), g222 = A:coarsen(same(2)):gather(), g8 = A:coarsen(8):gather(),
          g27 = W3:gather(), gw = Wide:gather() }
  every { m4 = A:coarsen(4):max(), x4 = A:coarsen(4):argmax(), m222 = A:coarsen(same(2)):min(),
          s4 = (B:coarsen(4) - 1):abs():sum(), s222 = B:coarsen(same(2)):sum(), e4 = B:coarsen(4):mean(),
          m27 = W3:max(), a27 = W3:argmin(), s27 = B:stencil(weights(3)):sum() }
end
-- A wide stencil fused with narrow reductions over A and B (parts of one pass).
every { mw = Wide:max(), aw = Wide:argmin(), sw = B:stencil(weights(D == 2 and 7 or 5)):sum(), s3 = W3:sum(),
        amax = A:max(), bsum = B:sum(), d0 = A:diff(0):max() }
