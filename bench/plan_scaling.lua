-- plan_scaling.lua: benchmark 11, one rank's compile against the number of
-- ranks (issue 13): luisa.describe on synthetic decompositions, no MPI.
--   luajit bench/plan_scaling.lua [largest rank count]   (from the top directory)
-- One chunk per rank: row slabs of a 2D array (8x64 each), 2D blocks (8x8)
-- and 3D blocks (4x4x4), ranks numbered row-major as MPI_Cart does. For
-- rank 0 and the rank at the middle of the grid: plan = partition.plan's
-- time within describe, describe = the whole description, both with the
-- chunk index built (arrays are new tables every compile, as engine/plan.c's
-- push_arrays makes them); again = describing again with the index kept;
-- arrays = making those tables in Lua (the engine does it in C), boxes KiB
-- their size; alloc = KiB allocated while describing, kept = KiB the
-- description and the chunk index keep after a full collection. Times are
-- the minimum over repetitions, each on new tables; s/r = sends/receives.
package.path = "lua/?.lua;" .. package.path
package.loaded["luisa.core"] = nil
local luisa = require "luisa"
local registry = require "luisa.registry"
local describe = require "luisa.describe"
local partition = require "luisa.partition"

local SIZES = { 16, 64, 256, 1024, 4096, 16384, 65536, 100000 }
local largest = tonumber(arg[1]) or math.huge

-- The n factors of p closest to each other, largest first.
local function factors(p, n)
  if n == 1 then return { p } end
  local best
  for a = math.floor(p ^ (1 / n) + 0.5), 1, -1 do
    if p % a == 0 then
      local rest = factors(p / a, n - 1)
      if rest[1] >= a then best = rest; table.insert(best, 1, a); break end
    end
  end
  if not best then best = factors(p, n - 1); best[#best + 1] = 1 end
  table.sort(best, function(x, y) return x > y end)
  return best
end

local LAYOUTS = {
  { name = "slabs", grid = function(p) return { p, 1 } end, chunk = { 8, 64 } },
  { name = "2D blocks", grid = function(p) return factors(p, 2) end, chunk = { 8, 8 } },
  { name = "3D blocks", grid = function(p) return factors(p, 3) end, chunk = { 4, 4, 4 } },
}

-- arrays as push_arrays gives them to `rank`: every rank's box, its chunk.
local function arrays_of(layout, grid, rank)
  local nd, shape, boxes, chunks = #grid, {}, {}, {}
  for d = 1, nd do shape[d] = grid[d] * layout.chunk[d] end
  local at, owner = {}, 0
  for d = 1, nd do at[d] = 0 end
  repeat
    local offset, bshape = {}, {}
    for d = 1, nd do offset[d], bshape[d] = at[d] * layout.chunk[d], layout.chunk[d] end
    boxes[owner + 1] = { owner = owner, chunk = 0, offset = offset, shape = bshape }
    if owner == rank then
      local stride, s = {}, 1
      for d = nd, 1, -1 do stride[d], s = s, s * bshape[d] end
      chunks[1] = { offset = offset, shape = bshape, stride = stride, first = 0 }
    end
    owner = owner + 1
    local d = nd
    while d >= 1 do
      at[d] = at[d] + 1
      if at[d] < grid[d] then break end
      at[d], d = 0, d - 1
    end
  until d < 1
  return { T = { dtype = "f64", ndim = nd, shape = shape, chunks = chunks, boxes = boxes } }
end

local function middle(grid)
  local r = 0
  for d = 1, #grid do r = r * grid[d] + math.floor(grid[d] / 2) end
  return r
end

local STATS = {
  { name = "T:sum()", make = function(T) return T:sum() end },
  { name = "T:diff(0):std()", make = function(T) return T:diff(0):std() end },
  { name = "T:laplacian():max()", make = function(T) return T:laplacian():max() end },
  { name = "mean, diff(0):std()", make = function(T) return T:mean(), T:diff(0):std() end },   -- one pass: W1's
}

-- partition.plan timed inside describe, its outputs counted.
local plan, timed = partition.plan, { ms = 0 }
partition.plan = function(...)
  local t0 = os.clock()
  local items, sends, recvs = plan(...)
  timed.ms = timed.ms + (os.clock() - t0) * 1e3
  timed.items, timed.sends, timed.recvs, timed.pieces = timed.items + #items, timed.sends + #sends,
                                                         timed.recvs + #recvs, timed.pieces
  for _, m in ipairs(sends) do timed.pieces = timed.pieces + #m.pieces end
  return items, sends, recvs
end

-- A collection that also frees what only weak tables' values held (one
-- more cycle per table: the plan's caches are keyed by one another's keys).
local function collect()
  for _ = 1, 4 do collectgarbage("collect") end
end

local function measure(layout, grid, size, rank, stat)
  for k in pairs(registry.callbacks) do registry.callbacks[k] = nil end
  local a, b = stat.make(luisa.array "T")
  luisa.every(1, { a = a, b = b }, print)
  local facts = { rank = rank, size = size, writable = {} }
  local row = { plan = math.huge, describe = math.huge, again = math.huge, arrays = math.huge }
  for _ = 1, math.max(1, math.min(10, math.floor(4096 / size))) do   -- times: the minimum
    collect()
    local before, t0 = collectgarbage("count"), os.clock()
    local arrays = arrays_of(layout, grid, rank)
    row.arrays = math.min(row.arrays, (os.clock() - t0) * 1e3)
    collect()
    local base = collectgarbage("count")
    row.boxes = base - before
    collectgarbage("stop")
    timed.ms, timed.items, timed.sends, timed.recvs, timed.pieces = 0, 0, 0, 0, 0
    t0 = os.clock()
    local d = describe.describe(registry.callbacks, nil, arrays, facts)
    row.describe = math.min(row.describe, (os.clock() - t0) * 1e3)
    row.alloc = collectgarbage("count") - base
    collectgarbage("restart")
    collect()
    row.kept = collectgarbage("count") - base
    if d.callbacks[1].error then error(d.callbacks[1].error, 0) end
    row.plan, row.items, row.sends, row.recvs, row.pieces = math.min(row.plan, timed.ms), timed.items, timed.sends,
                                                            timed.recvs, timed.pieces
    for _ = 1, 5 do   -- cheap now: its minimum, as a warm cache gives it
      t0 = os.clock()
      describe.describe(registry.callbacks, nil, arrays, facts)
      row.again = math.min(row.again, (os.clock() - t0) * 1e3)
    end
  end
  return row
end

print(string.format("%-9s %-19s %6s %6s %8s %9s %7s %7s %5s %5s %6s %9s %8s %9s", "layout", "statistic", "ranks",
                    "rank", "plan ms", "describe", "again", "arrays", "items", "s/r", "pieces", "alloc KiB", "kept KiB",
                    "boxes KiB"))
for _, layout in ipairs(LAYOUTS) do
  for _, stat in ipairs(STATS) do
    if not (stat.name:match "laplacian" and layout.name == "slabs") then   -- 2D blocks already show it
      for _, size in ipairs(SIZES) do
        if size <= largest then
          local grid = factors(size, #layout.chunk)
          if layout.name == "slabs" then grid = layout.grid(size) end
          for _, rank in ipairs { 0, middle(grid) } do
            local r = measure(layout, grid, size, rank, stat)
            print(string.format("%-9s %-19s %6d %6d %8.2f %9.2f %7.2f %7.2f %5d %2d/%-2d %6d %9.0f %8.0f %9.0f",
                                layout.name, stat.name, size, rank, r.plan, r.describe, r.again, r.arrays, r.items,
                                r.sends, r.recvs, r.pieces, r.alloc, r.kept, r.boxes))
          end
        end
      end
    end
  end
end
