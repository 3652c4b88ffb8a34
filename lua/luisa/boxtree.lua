-- luisa.boxtree: an array's chunk boxes (every rank's) in a k-d tree, so the
-- plan finds the box holding an index, or those meeting a region, in O(log P).
local expr = require "luisa.expr"
expr.internal[debug.getinfo(1, "S").source] = true

local M = {}
local LEAF = 16  -- boxes per leaf node
local min, max, floor = math.min, math.max, math.floor
local new = require "table.new"   -- sized arrays: growing one by one costs more than filling it

-- Node n covers perm[first[n]..last[n]] within the bounds blo/bhi (flat,
-- nd per node); an inner node's children are left[n] and right[n]. The
-- boxes of perm[a..b], held in src (perm or tmp), have their lower corners
-- in the node's region klo/khi (flat as blo/bhi; the root's is set before):
-- the node cuts it in two at the middle of its widest axis (again if one
-- side would be empty), so boxes sharing a lower corner (a grid's row or
-- column) stay on one side, on a grid the children's bounds do not
-- overlap, and the depth stays below 53 halvings of the extent per axis
-- whatever the boxes. Each level moves the boxes to the other list,
-- perm <-> tmp, in one pass.
local function build(t, n, a, b, src)
  local nd, lo, hi, perm, klo, khi, blo, bhi = t.nd, t.lo, t.hi, t.perm, t.klo, t.khi, t.blo, t.bhi
  local base = (n - 1) * nd
  t.first[n], t.last[n], t.left[n], t.right[n] = a, b, false, false
  while b - a + 1 > LEAF do
    local axis, widest = 0, 0
    for d = 1, nd do
      if khi[base + d] - klo[base + d] > widest then axis, widest = d, khi[base + d] - klo[base + d] end
    end
    if axis == 0 then break end   -- every lower corner alike (overlapping boxes): one leaf
    local cut, left = klo[base + axis] + floor(widest / 2), 0   -- not (klo + khi) / 2: exact past 2^52
    -- Branch-free (data-dependent branches leave LuaJIT's traces): f = 1
    -- when the lower corner is at most cut, else 0.
    for i = a, b do left = left + min(1, max(0, cut + 1 - lo[(src[i] - 1) * nd + axis])) end
    if left == 0 then klo[base + axis] = cut + 1
    elseif left == b - a + 1 then khi[base + axis] = cut
    else
      local dst = src == perm and t.tmp or perm
      local l, r = a, a + left
      for i = a, b do
        local p = src[i]
        local f = min(1, max(0, cut + 1 - lo[(p - 1) * nd + axis]))
        dst[r + f * (l - r)] = p
        l, r = l + f, r + 1 - f
      end
      local x, y = t.nodes + 1, t.nodes + 2   -- numbered in order: arrays, not hashes
      t.nodes = y
      for k = x, y do
        local at = (k - 1) * nd
        for d = 1, nd do klo[at + d], khi[at + d], blo[at + d], bhi[at + d] = klo[base + d], khi[base + d], 0, 0 end
      end
      khi[(x - 1) * nd + axis], klo[(y - 1) * nd + axis] = cut, cut + 1
      build(t, x, a, a + left - 1, dst)
      build(t, y, a + left, b, dst)
      t.left[n], t.right[n] = x, y
      for d = 1, nd do
        blo[base + d] = min(blo[(x - 1) * nd + d], blo[(y - 1) * nd + d])
        bhi[base + d] = max(bhi[(x - 1) * nd + d], bhi[(y - 1) * nd + d])
      end
      return
    end
  end
  for d = 1, nd do
    local bl, bh = math.huge, -math.huge
    for i = a, b do
      local p = src[i]
      perm[i] = p
      bl, bh = min(bl, lo[(p - 1) * nd + d]), max(bh, hi[(p - 1) * nd + d])
    end
    blo[base + d], bhi[base + d] = bl, bh
  end
end

-- The tree of `boxes`, made when first searched: a plan that only reads
-- its own chunks (a reduction) never needs it.
local function grow(t, boxes)
  local nd, n = t.nd, #boxes
  local nodes = 2 * math.ceil(n / LEAF * 2)   -- about: leaves hold LEAF / 2 to LEAF boxes on a grid
  local lo, hi, perm, tmp = new(n * nd, 0), new(n * nd, 0), new(n, 0), new(n, 0)
  t.lo, t.hi, t.perm, t.tmp = lo, hi, perm, tmp
  t.blo, t.bhi, t.klo, t.khi = new(nodes * nd, 0), new(nodes * nd, 0), new(nodes * nd, 0), new(nodes * nd, 0)
  t.first, t.last, t.left, t.right, t.stack = new(nodes, 0), new(nodes, 0), new(nodes, 0), new(nodes, 0), {}
  local klo, khi = t.klo, t.khi   -- the root's region: the boxes' lower corners
  for d = 1, nd do klo[d], khi[d], t.blo[d], t.bhi[d] = math.huge, -math.huge, 0, 0 end
  for i = 1, n do   -- all filled in order: arrays, not hashes
    local offset, shape, at = boxes[i].offset, boxes[i].shape, (i - 1) * nd
    for d = 1, nd do
      local o = offset[d]
      lo[at + d], hi[at + d], klo[d], khi[d] = o, o + shape[d] - 1, min(klo[d], o), max(khi[d], o)
    end
    perm[i], tmp[i] = i, 0
  end
  t.nodes = n > 0 and 1 or 0
  if n > 0 then build(t, 1, 1, n, perm) end
  t.tmp, t.klo, t.khi = nil, nil, nil
end

-- boxes -> index: once per array per compile. An index never refers to
-- its boxes: a weak key its value holds would never be collected.
local cache = setmetatable({}, { __mode = "k" })

-- The index of `boxes`, made at the first call for that list.
local function index_of(boxes)
  if cache[boxes] then return cache[boxes] end
  local n = #boxes
  -- Each owner's boxes as a linked list in list order (a table per owner
  -- would be P tables), head and tail by owner + 1: arrays when the boxes
  -- come in owners' order, as they do.
  local head, tail, next = {}, {}, new(n, 0)
  for i = 1, n do
    local o = boxes[i].owner + 1
    next[i] = false
    if head[o] then next[tail[o]] = i else head[o] = i end
    tail[o] = i
  end
  local t = { nd = n > 0 and #boxes[1].offset or 0, head = head, next = next }
  cache[boxes] = t
  return t
end

-- Below, boxes = {{owner, chunk, offset, shape}} as engine/plan.c's
-- push_arrays gives them (offsets 0-based), indexed once per list.

-- Indices of the boxes `rank` owns, in list order (a new list).
function M.owned(boxes, rank)
  local t = cache[boxes] or index_of(boxes)
  local list, i = {}, t.head[rank + 1]
  while i do list[#list + 1], i = i, t.next[i] end
  return list
end

-- The index of a box holding `index` (0-based coordinates), or nil. Boxes
-- do not overlap (engine/decomp.c refuses it), so it is the only one.
function M.find(boxes, index)
  local t = cache[boxes] or index_of(boxes)
  if not t.nodes then grow(t, boxes) end
  if t.nodes == 0 then return nil end
  local nd, stack, sp = t.nd, t.stack, 1
  stack[1] = 1
  while sp > 0 do
    local n = stack[sp]
    sp = sp - 1
    local base, inside = (n - 1) * nd, true
    for d = 1, nd do
      local v = index[d]
      if v < t.blo[base + d] or v > t.bhi[base + d] then inside = false; break end
    end
    if inside then
      if t.left[n] then
        stack[sp + 1], stack[sp + 2] = t.right[n], t.left[n]
        sp = sp + 2
      else
        for i = t.first[n], t.last[n] do
          local b = t.perm[i]
          local at, hit = (b - 1) * nd, true
          for d = 1, nd do
            local v = index[d]
            if v < t.lo[at + d] or v > t.hi[at + d] then hit = false; break end
          end
          if hit then return b end
        end
      end
    end
  end
  return nil
end

-- Calls f(box index) for every box meeting the region [lo, hi] (inclusive),
-- in no particular order.
function M.each(boxes, lo, hi, f)
  local t = cache[boxes] or index_of(boxes)
  if not t.nodes then grow(t, boxes) end
  if t.nodes == 0 then return end
  local nd, stack, sp = t.nd, {}, 1   -- its own stack: f may query the tree
  stack[1] = 1
  while sp > 0 do
    local n = stack[sp]
    sp = sp - 1
    local base, meets = (n - 1) * nd, true
    for d = 1, nd do
      if hi[d] < t.blo[base + d] or lo[d] > t.bhi[base + d] then meets = false; break end
    end
    if meets then
      if t.left[n] then
        stack[sp + 1], stack[sp + 2] = t.right[n], t.left[n]
        sp = sp + 2
      else
        for i = t.first[n], t.last[n] do
          local b = t.perm[i]
          local at, hit = (b - 1) * nd, true
          for d = 1, nd do
            if hi[d] < t.lo[at + d] or lo[d] > t.hi[at + d] then hit = false; break end
          end
          if hit then f(b) end
        end
      end
    end
  end
end

return M
