-- luisa.partition: who computes which part of a result and where its data
-- comes from. Owner computes: the ranks owning the first view's elements.
local expr = require "luisa.expr"
local lower = require "luisa.lower"
local boxtree = require "luisa.boxtree"
expr.internal[debug.getinfo(1, "S").source] = true

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
          or boxtree.find(boxes, first)
  if not bi then error("luisa.partition: no chunk of " .. leaf.name .. " holds index " .. lower.text(first), 0) end
  local box = boxes[bi]
  for d = 1, #first do
    local end_in = box.offset[d] + box.shape[d] - 1
    if last[d] > end_in then return nil, d, math.floor((end_in - leaf.origin[d]) / leaf.step[d]) + 1 end
  end
  return bi
end

-- The result box [lo, hi] whose elements the view reads in `box`, or nil.
local function over(leaf, box, shape)
  local lo, hi = {}, {}
  for d = 1, #shape do
    local o, s = leaf.origin[d], leaf.step[d]
    lo[d] = math.max(0, math.ceil((box.offset[d] - o) / s)) + 0   -- + 0: never -0
    hi[d] = math.min(shape[d] - 1, math.floor((box.offset[d] + box.shape[d] - 1 - o) / s))
    if lo[d] > hi[d] then return nil end
  end
  return lo, hi
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
  local boxes = arrays[driver.name].boxes
  for _, bi in ipairs(boxtree.owned(boxes, rank)) do
    local lo, hi = over(driver, boxes[bi], shape)
    if lo then split(lo, hi, bi) end
  end
  return items
end

local alike = setmetatable({}, { __mode = "k" })   -- boxes -> boxes -> whether the same

-- Whether two box lists are the same boxes with the same owners, in the
-- same order; compared once per pair of lists.
local function same_boxes(a, b)
  local known = alike[a] and alike[a][b]
  if known ~= nil then return known end
  local same = #a == #b
  for i = 1, same and #a or 0 do
    same = a[i].owner == b[i].owner and #a[i].offset == #b[i].offset
    for d = 1, same and #a[i].offset or 0 do
      same = same and a[i].offset[d] == b[i].offset[d] and a[i].shape[d] == b[i].shape[d]
    end
    if not same then break end
  end
  alike[a] = alike[a] or setmetatable({}, { __mode = "k" })
  alike[a][b] = same
  return same
end
M.same_boxes = same_boxes

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

-- The ranks other than `rank` whose items read a box `rank` owns, in
-- ascending order: the owners of the first view's boxes that meet the
-- elements it reads where the result reads one of those boxes. The others'
-- items neither send to nor receive from `rank`.
local function readers(rank, leaves, arrays, shape)
  local driver, seen, list = leaves[1], { [rank] = true }, {}
  local dboxes = arrays[driver.name].boxes
  local function add(bi)
    local r = dboxes[bi].owner
    if not seen[r] then seen[r], list[#list + 1] = true, r end
  end
  for _, leaf in ipairs(leaves) do
    local boxes = arrays[leaf.name].boxes
    for _, bi in ipairs(boxtree.owned(boxes, rank)) do
      local lo, hi = over(leaf, boxes[bi], shape)
      if lo then boxtree.each(dboxes, at(driver, lo), at(driver, hi), add) end
    end
  end
  table.sort(list)
  return list
end

-- This rank's work items and the transfers they need:
-- items[i] = { lo, hi, sources[k] = { chunk = local index } or { message, offset } },
-- sends = {{peer, bytes, pieces = {{array, chunk, lo, count, step, version, offset}}}},
-- recvs = {{peer, bytes}}. A message's pieces follow its receiver's items,
-- which sender and receiver both compute the same way, so senders know what
-- to send without asking; a rank computes only its own items and those of
-- the ranks reading its boxes.
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
  local ranks = readers(rank, leaves, arrays, shape)
  ranks[#ranks + 1] = rank
  for _, r in ipairs(ranks) do
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
