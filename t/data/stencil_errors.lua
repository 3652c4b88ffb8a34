-- stencil_errors.lua: each bad use of diff, slice, stencil or shapes sits alone on a line marked
-- "-- bad:" in its own callback, so each fails at the first step and names that line (t/013-stencil.t).
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local n0, n1 = os.getenv("LUISA_TEST_SHAPE"):match("(%d+),(%d+)")
n0, n1 = tonumber(n0), tonumber(n1)
local function put(step, r) for k, v in pairs(r) do out:write(string.format("%d %s %.17g\n", step, k, v)) end out:flush() end
local function never() end

luisa.every(1, { s = A:diff(2):sum() }, never)                               -- bad: diff axis 2 of a 2D array
luisa.every(1, { s = A:diff(-1):sum() }, never)                              -- bad: diff axis -1
luisa.every(1, { s = A:slice(n0, {}):sum() }, never)                         -- bad: index n0 on an axis of n0
luisa.every(1, { s = A:slice({}, { n1 + 2, n1 + 4 }):sum() }, never)         -- bad: start beyond the end
luisa.every(1, { s = A[{ {}, -(n1 + 1) }]:sum() }, never)                    -- bad: index -(n1+1) before the start
luisa.every(1, { s = A:slice({ 3, 3 }, {}):sum() }, never)                   -- bad: empty slice 3:3
luisa.every(1, { s = A:slice({ 5, 2 }, {}):sum() }, never)                   -- bad: empty slice 5:2
luisa.every(1, { s = A:slice({ 0, 4, 0 }, {}):sum() }, never)                -- bad: step 0
luisa.every(1, { d0_sum = A:diff(0):sum(), lap_sum = A:laplacian():sum() }, put)   -- the good one
luisa.every(1, { s = A:slice({}, { 0, 4, -1 }):sum() }, never)               -- bad: step -1
luisa.every(1, { s = A:stencil { { 1, 1 }, { 1, 1 } }:sum() }, never)        -- bad: 2x2 weights
luisa.every(1, { s = A:stencil { { 0, 1, 0 }, { 1, -4, 1 } }:sum() }, never)  -- bad: 2x3 weights
luisa.every(1, { s = A:stencil { 1, -2, 1 }:sum() }, never)                  -- bad: weights of depth 1 on 2D
luisa.every(1, { s = A:stencil { { { 1 } } }:sum() }, never)                 -- bad: weights of depth 3 on 2D
luisa.every(1, { s = (A:diff(0) + A:diff(1)):sum() }, never)                 -- bad: diff(0) + diff(1) shapes
luisa.every(1, { s = (A:laplacian() * A):sum() }, never)                     -- bad: laplacian * A shapes
luisa.every(1, { s = (A:slice({ 0, -1 }, {}) - A[{ { 1 }, { 1 } }]):sum() }, never)   -- bad: slices of different shapes
