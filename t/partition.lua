-- partition.lua: TAP tests of luisa.partition's plan against the algorithm it
-- replaced (kept below: every rank computed every rank's items, finding chunks
-- by scanning the list), on every rank of many decompositions. Run by t/004-partition.t.
local lower = require "luisa.lower"
local partition = require "luisa.partition"

-- The plan before the chunk index (lua/luisa/partition.lua at 6493911), unchanged.
local old = (function()
local M = {}
local SIZE = { f64 = 8, f32 = 4, i64 = 8, i32 = 4 }

local function contains(box, index)
  for d = 1, #index do
    local o = box.offset[d]
    if index[d] < o or index[d] >= o + box.shape[d] then return false end
  end
  return true
end

-- The array index that element r of a view reads.
local function at(leaf, r)
  local index = {}
  for d = 1, #r do index[d] = leaf.origin[d] + r[d] * leaf.step[d] end
  return index
end

-- The box holding every element the view reads over the result box
-- [lo, hi]; or nil, an axis and the first result index past the box that
-- holds lo, where [lo, hi] must be cut.
local function source(leaf, boxes, lo, hi, hint)
  local first, last = at(leaf, lo), at(leaf, hi)
  local bi = hint and boxes[hint] and contains(boxes[hint], first) and hint
  if not bi then
    for i, box in ipairs(boxes) do
      if contains(box, first) then bi = i; break end
    end
  end
  local box = boxes[bi]
  for d = 1, #first do
    local end_in = box.offset[d] + box.shape[d] - 1
    if last[d] > end_in then return nil, d, math.floor((end_in - leaf.origin[d]) / leaf.step[d]) + 1 end
  end
  return bi
end

-- Work items of `rank`: result boxes each of whose views reads one chunk.
local function items_of(rank, leaves, arrays, shape)
  local driver = leaves[1]
  local items = {}
  local function split(lo, hi, hint)
    local sources = {}
    for k, leaf in ipairs(leaves) do
      local bi, axis, cut = source(leaf, arrays[leaf.name].boxes, lo, hi, hint)
      if not bi then
        local hi1, lo2 = { unpack(hi) }, { unpack(lo) }
        hi1[axis], lo2[axis] = cut - 1, cut
        split(lo, hi1, hint)
        split(lo2, hi, hint)
        return
      end
      sources[k] = bi
    end
    items[#items + 1] = { lo = lo, hi = hi, sources = sources }
  end
  for bi, box in ipairs(arrays[driver.name].boxes) do
    if box.owner == rank then
      local lo, hi, empty = {}, {}, false
      for d = 1, #shape do
        local o, s = driver.origin[d], driver.step[d]
        lo[d] = math.max(0, math.ceil((box.offset[d] - o) / s)) + 0   -- + 0: never -0
        hi[d] = math.min(shape[d] - 1, math.floor((box.offset[d] + box.shape[d] - 1 - o) / s))
        empty = empty or lo[d] > hi[d]
      end
      if not empty then split(lo, hi, bi) end
    end
  end
  return items
end

local function same_boxes(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i].owner ~= b[i].owner then return false end
    for d = 1, #a[i].offset do
      if a[i].offset[d] ~= b[i].offset[d] or a[i].shape[d] ~= b[i].shape[d] then return false end
    end
  end
  return true
end

-- Every view reads whole arrays decomposed like the first: each rank
-- computes on its own chunks, nothing moves.
local function local_only(leaves, arrays, shape)
  local first = arrays[leaves[1].name]
  for _, leaf in ipairs(leaves) do
    local a = arrays[leaf.name]
    for d = 1, #shape do
      if leaf.origin[d] ~= 0 or leaf.step[d] ~= 1 or a.shape[d] ~= shape[d] then return false end
    end
    if a ~= first and not same_boxes(a.boxes, first.boxes) then return false end
  end
  return true
end

-- This rank's work items and the transfers they need:
-- items[i] = { lo, hi, sources[k] = { chunk = local index } or { message, offset } },
-- sends = {{peer, bytes, pieces = {{array, chunk, lo, count, step, version, offset}}}},
-- recvs = {{peer, bytes}}. Every rank computes every rank's items the same
-- way, so senders know what to send without asking.
function M.plan(leaves, arrays, shape, rank, size)
  if local_only(leaves, arrays, shape) then
    local items = items_of(rank, leaves, arrays, shape)
    for _, item in ipairs(items) do
      for k, leaf in ipairs(leaves) do
        item.sources[k] = { chunk = arrays[leaf.name].boxes[item.sources[k]].chunk }
      end
    end
    return items, {}, {}
  end

  local mine
  local messages, order = {}, {}   -- by "from>to": { peer, bytes, pieces, seen }
  local function message(from, to)
    local key = from .. ">" .. to
    if not messages[key] then
      messages[key] = { from = from, to = to, bytes = 0, pieces = {}, seen = {} }
      order[#order + 1] = messages[key]
    end
    return messages[key]
  end
  for r = 0, size - 1 do
    local items = items_of(r, leaves, arrays, shape)
    if r == rank then mine = items end
    for _, item in ipairs(items) do
      for k, leaf in ipairs(leaves) do
        local box = arrays[leaf.name].boxes[item.sources[k]]
        if box.owner == r then
          if r == rank then item.sources[k] = { chunk = box.chunk } end
        elseif box.owner == rank or r == rank then
          local m = message(box.owner, r)
          local lo, count = at(leaf, item.lo), {}
          for d = 1, #lo do count[d] = item.hi[d] - item.lo[d] + 1 end
          local key = leaf.name .. ":" .. box.chunk .. ":" .. lower.text(lo) .. ":" .. lower.text(count)
                      .. ":" .. lower.text(leaf.step) .. ":" .. leaf.version
          local piece = m.seen[key]
          if not piece then
            local n = 1
            for d = 1, #count do n = n * count[d] end
            local bytes = n * SIZE[arrays[leaf.name].dtype]
            piece = { array = leaf.name, chunk = box.chunk, lo = lo, count = count, step = leaf.step,
                      version = leaf.version, offset = m.bytes }
            m.bytes = m.bytes + math.ceil(bytes / 8) * 8   -- keeps every piece aligned
            m.pieces[#m.pieces + 1] = piece
            m.seen[key] = piece
          end
          if r == rank then item.sources[k] = { message = m, offset = piece.offset } end
        end
      end
    end
  end
  local sends, recvs = {}, {}
  table.sort(order, function(a, b) return a.from * size + a.to < b.from * size + b.to end)
  for _, m in ipairs(order) do
    if m.from == rank then
      sends[#sends + 1] = { peer = m.to, bytes = m.bytes, pieces = m.pieces }
    else
      recvs[#recvs + 1] = { peer = m.from, bytes = m.bytes }
      m.index = #recvs
    end
  end
  for _, item in ipairs(mine) do
    for _, src in ipairs(item.sources) do
      if src.message then src.message = src.message.index end
    end
  end
  return mine, sends, recvs
end
return M
end)()

local ntests, nfailed = 0, 0
local PLAN = 15
print("1.." .. PLAN)
local function ok(cond, name, diag)
  ntests = ntests + 1
  if cond then print(string.format("ok %d - %s", ntests, name))
  else
    nfailed = nfailed + 1
    print(string.format("not ok %d - %s", ntests, name))
    if diag then print("#   " .. diag:gsub("\n", "\n#   ")) end
  end
end

-- Plain data as text, keys sorted: equal data, equal text.
local function text(v)
  if type(v) ~= "table" then return type(v) == "number" and string.format("%.17g", v) or tostring(v) end
  local keys, parts = {}, {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) ~= type(b) then return type(a) < type(b) end
    return a < b
  end)
  for _, k in ipairs(keys) do parts[#parts + 1] = "[" .. text(k) .. "]=" .. text(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- n cut into k parts of uneven sizes (k <= n): the parts' first indices and extents.
local function cuts(n, k, rand)
  local firsts, sizes, at = {}, {}, 0
  for i = 1, k do
    local left = k - i   -- parts still to come, at least one element each
    local extent = i == k and n - at or math.max(1, math.min(n - at - left, math.floor((n - at) / (k - i + 1))
                                                               + rand(-1, 1)))
    firsts[i], sizes[i], at = at, extent, at + extent
  end
  return firsts, sizes
end

-- Blocks of `shape` on a grid with `grid[d]` uneven parts per axis.
local function blocks(shape, grid, rand)
  local per, boxes = {}, {}
  for d = 1, #shape do per[d] = { cuts(shape[d], grid[d], rand) } end
  local idx = {}
  for d = 1, #shape do idx[d] = 1 end
  while true do
    local offset, bshape = {}, {}
    for d = 1, #shape do offset[d], bshape[d] = per[d][1][idx[d]], per[d][2][idx[d]] end
    boxes[#boxes + 1] = { offset = offset, shape = bshape }
    local d = #shape
    while d >= 1 do
      idx[d] = idx[d] + 1
      if idx[d] <= grid[d] then break end
      idx[d], d = 1, d - 1
    end
    if d < 1 then return boxes end
  end
end

-- Irregular boxes: `shape` cut in two at a random place, the larger part
-- again, until there are n.
local function bisect(shape, n, rand)
  local boxes = { { offset = {}, shape = {} } }
  for d = 1, #shape do boxes[1].offset[d], boxes[1].shape[d] = 0, shape[d] end
  while #boxes < n do
    local bi, most = 1, 0
    for i, b in ipairs(boxes) do
      local v = 1
      for d = 1, #shape do v = v * b.shape[d] end
      if v > most then bi, most = i, v end
    end
    local b = boxes[bi]
    local axis = 1
    for d = 1, #shape do if b.shape[d] > b.shape[axis] or (b.shape[d] == b.shape[axis] and rand(0, 1) == 1) then axis = d end end
    if b.shape[axis] < 2 then break end
    local at = rand(1, b.shape[axis] - 1)
    local c = { offset = { unpack(b.offset) }, shape = { unpack(b.shape) } }
    b.shape[axis], c.offset[axis], c.shape[axis] = at, b.offset[axis] + at, b.shape[axis] - at
    table.insert(boxes, rand(1, #boxes + 1), c)
  end
  return boxes
end

-- Owners for boxes: in order (one per rank while they last), round-robin,
-- or at random (some ranks get none); chunk = index among the owner's.
local function own(boxes, size, how, rand)
  local count = {}
  for i, b in ipairs(boxes) do
    b.owner = how == "random" and rand(0, size - 1) or how == "blocks" and math.floor((i - 1) * size / #boxes)
              or (i - 1) % size
    b.chunk = count[b.owner] or 0
    count[b.owner] = b.chunk + 1
  end
  return boxes
end

local function leaf(name, origin, step, version)
  if not step then step = {}; for d = 1, #origin do step[d] = 1 end end
  return lower.leaf(name, origin, step, version or 0)
end

local function unit(nd, axis, v)
  local t = {}
  for d = 1, nd do t[d] = d == axis and v or 0 end
  return t
end

-- Stencils over an array of `shape`: their leaves (the driver first) and the result's shape.
local STENCILS = {
  ["diff(0)"] = function(shape)
    local r = { unpack(shape) }
    r[1] = r[1] - 1
    return { leaf("T", unit(#shape, 1, 1)), leaf("T", unit(#shape, 1, 0)) }, r
  end,
  laplacian = function(shape)
    local r, c = {}, {}
    for d = 1, #shape do r[d], c[d] = shape[d] - 2, 1 end
    local leaves = {}
    for d = 1, #shape do
      for _, v in ipairs { 0, 2 } do
        local o = { unpack(c) }
        o[d] = v
        leaves[#leaves + 1] = leaf("T", o)
      end
    end
    leaves[#leaves + 1] = leaf("T", c)
    return leaves, r
  end,
  ["step 2"] = function(shape)   -- T[::2] - T[1::2] on axis 1, T[1:, 1:] - T:prev() beside
    local r, s = { unpack(shape) }, unit(#shape, 0, 1)
    for d = 1, #shape do s[d] = 1 end
    s[1], r[1] = 2, math.floor(shape[1] / 2)
    return { leaf("T", unit(#shape, 1, 0), s), leaf("T", unit(#shape, 1, 1), s), leaf("T", unit(#shape, 1, 1), s, 1) }, r
  end,
  ["T + U"] = function(shape)   -- U decomposed otherwise
    return { leaf("T", unit(#shape, 1, 0)), leaf("U", unit(#shape, 1, 0)) }, { unpack(shape) }
  end,
  ["U[1:] - T[:-1]"] = function(shape)
    local r = { unpack(shape) }
    r[1] = r[1] - 1
    return { leaf("U", unit(#shape, 1, 1)), leaf("T", unit(#shape, 1, 0)), leaf("U", unit(#shape, 1, 0), nil, 2) }, r
  end,
  ["local"] = function(shape)
    return { leaf("T", unit(#shape, 1, 0)), leaf("T", unit(#shape, 1, 0), nil, 1) }, { unpack(shape) }
  end,
  ["first half, diff(0)"] = function(shape)   -- reads rows below half only: the rest may be holes
    local r = { unpack(shape) }
    r[1] = math.floor(shape[1] / 2) - 1
    return { leaf("T", unit(#shape, 1, 1)), leaf("T", unit(#shape, 1, 0)) }, r
  end,
}

-- Every rank's plan, old and new, on one decomposition: the first
-- difference found, or nil; and the sends matched against the receives.
local function compare(arrays, leaves, shape, size)
  local new_of = {}
  for rank = 0, size - 1 do
    local ok1, i1, s1, r1 = pcall(old.plan, leaves, arrays, shape, rank, size)
    local ok2, i2, s2, r2 = pcall(partition.plan, leaves, arrays, shape, rank, size)
    if not ok1 or not ok2 then
      return string.format("rank %d of %d: old %s, new %s", rank, size, ok1 and "ran" or i1, ok2 and "ran" or i2)
    end
    local a, b = text { i1, s1, r1 }, text { i2, s2, r2 }
    if a ~= b then return string.format("rank %d of %d:\nold %s\nnew %s", rank, size, a, b) end
    new_of[rank] = { sends = s2, recvs = r2 }
  end
  for rank = 0, size - 1 do
    for _, s in ipairs(new_of[rank].sends) do
      local found = false
      for _, r in ipairs(new_of[s.peer].recvs) do found = found or (r.peer == rank and r.bytes == s.bytes) end
      if not found then return string.format("rank %d sends %d bytes to %d, which expects none", rank, s.bytes, s.peer) end
    end
    for _, r in ipairs(new_of[rank].recvs) do
      local found = false
      for _, s in ipairs(new_of[r.peer].sends) do found = found or (s.peer == rank and s.bytes == r.bytes) end
      if not found then return string.format("rank %d expects %d bytes from %d, which sends none", rank, r.bytes, r.peer) end
    end
  end
  return nil
end

local function rng(seed)
  local x = seed * 2654435761 % 4294967296 + 1
  return function(a, b)   -- a small LCG: the same numbers on every LuaJIT
    x = (1103515245 * x + 12345) % 2147483648
    return a + x % (b - a + 1)
  end
end

local function array(boxes, shape, dtype) return { dtype = dtype or "f64", shape = shape, boxes = boxes } end

-- Runs `make(size, rand)` -> T's boxes, U's boxes (or nil), shape for every
-- rank count of `sizes` and `per` stencils of `names` in turn (the old plan
-- costs P^2 per rank: all of them on every count would take minutes); one test.
local function check(name, sizes, names, per, make)
  local cases, why, t0 = 0, nil, os.clock()
  for s, size in ipairs(sizes) do
    for j = 1, math.min(per, #names) do
      local stencil = names[(s + j - 2) % #names + 1]
      local rand = rng(size * 131 + #stencil)
      local tb, ub, shape = make(size, rand, stencil)
      local arrays = { T = array(tb, shape), U = array(ub or tb, shape, "f32") }
      local leaves, rshape = STENCILS[stencil](shape)
      why = why or compare(arrays, leaves, rshape, size)
      if why then why = name .. ", " .. stencil .. ": " .. why; break end
      cases = cases + 1
    end
    if why then break end
  end
  ok(not why, string.format("%s: the plan is the old one on every rank (%d decompositions, %.1f s)", name, cases,
                            os.clock() - t0), why)
end

local function range(a, b, step)
  local t = {}
  for i = a, b, step or 1 do t[#t + 1] = i end
  return t
end

local ALL = { "diff(0)", "laplacian", "step 2", "T + U", "U[1:] - T[:-1]", "local" }
local ONE_TO_64 = range(1, 64)

local function grid_of(p, n)   -- n factors of p, as even as divisors allow
  local g = {}
  for d = n, 2, -1 do
    local a = math.max(1, math.floor(p ^ (1 / d) + 1e-9))
    while p % a ~= 0 do a = a - 1 end
    g[#g + 1], p = a, p / a
  end
  g[#g + 1] = p
  return g
end

-- U's own decomposition: column slabs at random owners (ranks without one).
local function columns(shape, size, rand)
  local k = math.min(shape[#shape], math.max(1, math.floor(size / 2)))
  local grid = {}
  for d = 1, #shape do grid[d] = d == #shape and k or 1 end
  return own(blocks(shape, grid, rand), size, "random", rand)
end

check("row slabs of a 2D array, uneven", ONE_TO_64, ALL, 1, function(size, rand)
  local shape = { 3 * size + 2, 5 }
  return own(blocks(shape, { size, 1 }, rand), size, "in order"), columns(shape, size, rand), shape
end)

check("slabs of a 1D array", ONE_TO_64, { "diff(0)", "laplacian", "step 2", "U[1:] - T[:-1]" }, 1, function(size, rand)
  local shape = { 2 * size + 3 }
  return own(blocks(shape, { size }, rand), size, "in order"), own(blocks(shape, { math.max(1, size - 1) }, rand), size,
                                                                    "random", rand), shape
end)

check("2D blocks, uneven", ONE_TO_64, ALL, 1, function(size, rand)
  local g = grid_of(size, 2)
  local shape = { 3 * g[1] + 2, 2 * g[2] + 3 }
  return own(blocks(shape, g, rand), size, "in order"), columns(shape, size, rand), shape
end)

check("3D blocks, uneven", range(1, 64, 3), ALL, 2, function(size, rand)
  local g = grid_of(size, 3)
  local shape = { 2 * g[1] + 3, 2 * g[2] + 2, 3 * g[3] + 2 }
  return own(blocks(shape, g, rand), size, "in order"), columns(shape, size, rand), shape
end)

check("several chunks per rank (round-robin 2D blocks)", range(1, 40), ALL, 1, function(size, rand)
  local g = grid_of(3 * size, 2)
  local shape = { 2 * g[1] + 1, 2 * g[2] + 2 }
  return own(blocks(shape, g, rand), size, "round-robin"), own(blocks(shape, { g[2], g[1] }, rand), size,
                                                                 "blocks"), shape
end)

check("ranks with no chunk (fewer blocks than ranks, at random)", range(2, 64), ALL, 1, function(size, rand)
  local g = grid_of(math.max(1, math.floor(size * 2 / 3)), 2)
  local shape = { 3 * g[1] + 2, 3 * g[2] + 2 }
  return own(blocks(shape, g, rand), size, "random", rand), columns(shape, size, rand), shape
end)

check("holes where nothing reads (second half)", ONE_TO_64, { "first half, diff(0)" }, 1, function(size, rand)
  local g = grid_of(2 * size, 2)
  local shape = { 4 * g[1] + 4, 2 * g[2] + 1 }
  local boxes, kept = blocks(shape, g, rand), {}
  for _, b in ipairs(boxes) do
    if b.offset[1] < shape[1] / 2 or rand(0, 2) == 0 then kept[#kept + 1] = b end
  end
  return own(kept, size, "random", rand), nil, shape
end)

check("irregular boxes (random bisection), random owners, shuffled", ONE_TO_64, ALL, 1, function(size, rand)
  local shape = { 4 + rand(size, 3 * size), 4 + rand(size, 2 * size) }
  return own(bisect(shape, size + rand(0, size), rand), size, "random", rand), own(bisect(shape, size, rand), size, "random", rand),
         shape
end)

check("irregular 3D boxes", range(1, 64, 5), ALL, 1, function(size, rand)
  local shape = { 4 + rand(1, size), 4 + rand(1, 6), 4 + rand(1, 5) }
  return own(bisect(shape, size + rand(0, size), rand), size, "random", rand), columns(shape, size, rand), shape
end)

check("T + U alike (copies of one decomposition): local", range(1, 64, 7), { "T + U" }, 1, function(size, rand)
  local g = grid_of(size, 2)
  local shape = { 2 * g[1] + 1, 2 * g[2] + 1 }
  local tb = own(blocks(shape, g, rand), size, "in order")
  local ub = {}
  for i, b in ipairs(tb) do ub[i] = { owner = b.owner, chunk = b.chunk, offset = { unpack(b.offset) }, shape = { unpack(b.shape) } } end
  return tb, ub, shape
end)

-- Many ranks: the two plans of rank 0 and of a rank inside the grid.
do
  local rand, g = rng(1024), { 32, 32 }
  local shape = { 8 * 32, 8 * 32 }
  local arrays = { T = array(own(blocks(shape, g, rand), 1024, "in order"), shape) }
  local why
  for _, stencil in ipairs { "laplacian", "diff(0)" } do
    local leaves, rshape = STENCILS[stencil](shape)
    for _, rank in ipairs { 0, 16 * 32 + 15 } do
      local a = text { old.plan(leaves, arrays, rshape, rank, 1024) }
      local b = text { partition.plan(leaves, arrays, rshape, rank, 1024) }
      why = why or (a ~= b and string.format("%s, rank %d:\nold %s\nnew %s", stencil, rank, a, b))
    end
  end
  ok(not why, "32x32 blocks on 1024 ranks: rank 0's and rank 527's plans are the old ones", why or nil)
end

-- The index alone, against a scan of every box.
local boxtree = require "luisa.boxtree"
do
  local why
  for n = 1, 60 do
    local rand = rng(n)
    local shape = { 3 + rand(0, 20), 3 + rand(0, 20), 1 + rand(0, 4) }
    local boxes = bisect(shape, n, rand)
    if n % 3 == 0 then table.remove(boxes, rand(1, #boxes)) end   -- a hole
    for _, b in ipairs(boxes) do b.owner = 0 end
    for _ = 1, 50 do
      local p = { rand(-1, shape[1]), rand(0, shape[2] - 1), rand(0, shape[3]) }
      local want
      for i, b in ipairs(boxes) do
        local inside = true
        for d = 1, 3 do inside = inside and p[d] >= b.offset[d] and p[d] < b.offset[d] + b.shape[d] end
        if inside then want = i end
      end
      local got = boxtree.find(boxes, p)
      why = why or (got ~= want and string.format("%d boxes, index %s: box %s, not %s", n, text(p), tostring(got),
                                                    tostring(want)))
    end
  end
  ok(not why, "boxtree.find: the box holding an index, or nil in a hole or outside, as a scan finds", why)
end

do
  local why
  for n = 1, 60 do
    local rand = rng(1000 + n)
    local shape = { 3 + rand(0, 30), 3 + rand(0, 30) }
    local boxes = bisect(shape, n, rand)
    for _, b in ipairs(boxes) do b.owner = 0 end
    for _ = 1, 30 do
      local lo = { rand(-2, shape[1]), rand(-2, shape[2]) }
      local hi = { lo[1] + rand(0, 8), lo[2] + rand(0, 8) }
      local want, got = {}, {}
      for i, b in ipairs(boxes) do
        local meets = true
        for d = 1, 2 do meets = meets and hi[d] >= b.offset[d] and lo[d] < b.offset[d] + b.shape[d] end
        if meets then want[#want + 1] = i end
      end
      boxtree.each(boxes, lo, hi, function(i) got[#got + 1] = i end)
      table.sort(got)
      why = why or (text(got) ~= text(want) and string.format("%d boxes, %s..%s: %s, not %s", n, text(lo), text(hi),
                                                                text(got), text(want)))
    end
  end
  ok(not why, "boxtree.each: every box meeting a region, once, as a scan finds", why)
end

-- A view reading where no chunk is: an error naming the index, not a crash.
do
  local boxes = { { owner = 0, chunk = 0, offset = { 0, 0 }, shape = { 4, 4 } },
                  { owner = 1, chunk = 0, offset = { 8, 0 }, shape = { 4, 4 } } }
  local arrays = { T = array(boxes, { 12, 4 }) }
  local leaves = STENCILS["diff(0)"]({ 12, 4 })
  local fine, err = pcall(partition.plan, leaves, arrays, { 11, 4 }, 1, 2)
  ok(not fine and tostring(err):match("no chunk of T holds index 7,0"), "a view reading a hole: " .. tostring(err))
end

-- The index lives as long as its boxes: a compile's arrays, once dropped,
-- take their index with them.
do
  collectgarbage("collect")
  local before = collectgarbage("count")
  for n = 1, 20 do
    local boxes = own(blocks({ 100, 100 }, { 50, 50 }, rng(n)), 2500, "in order")
    boxtree.find(boxes, { 5, 5 })
    partition.plan(STENCILS["diff(0)"]({ 100, 100 }), { T = array(boxes, { 100, 100 }) }, { 99, 100 }, 7, 2500)
  end
  collectgarbage("collect")
  collectgarbage("collect")
  local grown = collectgarbage("count") - before
  ok(grown < 500, string.format("20 decompositions of 2500 boxes planned and dropped: the heap grew %.0f KiB", grown))
end

if ntests ~= PLAN then print("# planned " .. PLAN .. " tests but ran " .. ntests) end
os.exit(nfailed == 0 and ntests == PLAN and 0 or 1)
