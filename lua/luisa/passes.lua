-- luisa.passes: a callback's groups fused into passes over memory, each cut
-- into the cells its kernel walks, and the geometry table that describes them.
local ffi = require "ffi"
local expr = require "luisa.expr"
local kernel = require "luisa.kernel"
local lower = require "luisa.lower"
local boxtree = require "luisa.boxtree"
expr.internal[debug.getinfo(1, "S").source] = true

local M = { MAX_PER_KERNEL = 32 }  -- reductions fused in one kernel: keeps its locals few
local MAX_PER_KERNEL = M.MAX_PER_KERNEL

-- Axes by decreasing stride of the first input, so the innermost loop walks
-- its memory contiguously. strides[d] for the ndim axes.
local function loop_order(strides, ndim)
  local axes, keys = {}, {}
  for d = 1, 4 do   -- insertion: larger strides first, equal ones by axis
    local key, j = d <= ndim and strides[d] or math.huge, d
    while j > 1 and keys[j - 1] < key do axes[j], keys[j], j = axes[j - 1], keys[j - 1], j - 1 end
    axes[j], keys[j] = d, key
  end
  return axes
end

-- Where input k of an item starts and how it steps along each result axis:
-- in a published chunk, or in a received piece (C order over the item).
local function input_layout(leaf, src, item, arrays)
  local ndim = #item.lo
  local strides = {}
  if src.chunk then
    local chunk = arrays[leaf.name].chunks[src.chunk + 1]
    local first, stride = chunk.first, chunk.stride
    if leaf.version > 0 then   -- the store keeps earlier versions packed in C order
      first, stride = 0, {}
      local s = 1
      for d = ndim, 1, -1 do stride[d], s = s, s * chunk.shape[d] end
    end
    for d = 1, ndim do
      first = first + (leaf.origin[d] + item.lo[d] * leaf.step[d] - chunk.offset[d]) * stride[d]
      strides[d] = stride[d] * leaf.step[d]
    end
    return src.chunk, first, strides
  end
  local s = 1
  for d = ndim, 1, -1 do
    strides[d] = s
    s = s * (item.hi[d] - item.lo[d] + 1)
  end
  return -src.pointer, 0, strides
end

-- The geometry table of a pass's cells (see luisa.kernel and cells_of), its
-- length in doubles, and the doubles a map's scratch buffer needs;
-- the result, shaped `shape`, starts at `origin` of the pass's index. What
-- the kernel calls gi: the result's linear index; or for a field its
-- position there (out_stride); or for a map, the position in a scratch
-- buffer holding the cells one after the other in C order (cell.scratch).
local function geometry(cells, leaves, arrays, shape, origin, out_stride, scratch)
  local W, IW = kernel.geometry_width(#leaves), kernel.ITEM_WORDS
  local ndim = #shape
  local rstride, s = {}, 1
  for d = ndim, 1, -1 do rstride[d], s = s, s * shape[d] end
  rstride = out_stride or rstride
  local size = math.max(1, #cells * W)
  local geo = ffi.new("double[?]", size)
  local used, n, rs, read = 0, {}, {}, {}
  for c, cell in ipairs(cells) do
    local g = (c - 1) * W
    local gfirst = 0
    if scratch then
      rstride, s = {}, 1
      for d = ndim, 1, -1 do rstride[d], s = s, s * (cell.hi[d] - cell.lo[d] + 1) end
      cell.scratch, used = used, used + s
      gfirst = cell.scratch
    end
    for d = 1, ndim do gfirst = gfirst + (scratch and 0 or (origin[d] + cell.lo[d]) * rstride[d]) end
    -- extents and result strides by loop position (innermost 4th), then
    -- the inputs the cell's groups read (the others stay zero)
    for j, d in ipairs(cell.order) do
      n[j], rs[j] = d <= ndim and cell.hi[d] - cell.lo[d] + 1 or 1, rstride[d] or 0
    end
    for _, e in ipairs(cell.entries) do
      for kg, leaf in ipairs(e.g.leaves) do
        local k = e.g.moved[kg]
        if read[k] ~= c then   -- views equal once moved read the same elements: any group's layout does
          read[k] = c
          local base = g + IW + kernel.INPUT_WORDS * (k - 1)
          local src, first, strides = input_layout(leaf, cell.sources[k], e.item, arrays)
          for d = 1, ndim do first = first + (cell.lo[d] - e.item.lo[d] - e.g.shift[d]) * strides[d] end
          geo[base], geo[base + 1] = src, first
          for j, d in ipairs(cell.order) do geo[base + 1 + j] = strides[d] or 0 end
        end
      end
    end
    -- Rows that follow each other in memory for every input and the result
    -- are one longer row: LuaJIT pays for each entry into an inner loop.
    for j = 3, 1, -1 do
      local joins = rs[j] == n[4] * rs[4]
      for k = 1, #leaves do
        local base = g + IW + kernel.INPUT_WORDS * (k - 1)
        joins = joins and (read[k] ~= c or geo[base + 1 + j] == n[4] * geo[base + 5])
      end
      if n[j] > 1 and not joins then break end
      n[4], n[j] = n[4] * n[j], 1
    end
    geo[g + 4], geo[g + 9] = gfirst, cell.pattern
    for j = 1, 4 do geo[g + j - 1], geo[g + 4 + j] = n[j], rs[j] end
  end
  return geo, size, used
end

local function moved(list, by)
  local t = {}
  for d = 1, #list do t[d] = list[d] + by[d] end
  return t
end

-- A cell of a pass: the box lo..hi of the pass's index, walked in `order`;
-- entries: per group running there, the item of that group the cell is a
-- piece of, and whether the cell begins or finishes it; sources[k]: where
-- view k of the pass reads.
local function cell(lo, hi, order, entries)
  local c = { lo = lo, hi = hi, order = order, entries = entries, sources = {} }
  for _, e in ipairs(entries) do
    for k, src in ipairs(e.item.sources) do c.sources[e.g.moved[k]] = c.sources[e.g.moved[k]] or src end
  end
  return c
end

-- This rank's cells of a pass. Per chunk of the pass's first array, the
-- groups' items (moved to the pass's index) that span the same range on
-- every axis but the outermost of their loop order are cut there into
-- cells where several groups run together; other items are cells as they
-- are. Each group thus walks its elements in the order it would alone, and
-- its sums and moments (which fold once per item: begin, finish) come out
-- bit for bit the same, whatever it is fused with.
local function cells_of(pass, arrays, rank)
  local ndim, alone = #pass.shape, #pass.groups == 1
  local by_chunk, cells = {}, {}
  for p, g in ipairs(pass.groups) do
    for _, item in ipairs(g.items) do
      local src = item.sources[1]   -- the first view is always read in place: its owner computes
      local order = loop_order(select(3, input_layout(g.leaves[1], src, item, arrays)), ndim)
      local e = { part = p, g = g, item = item, order = order, begin = true, finish = true }
      if alone and not g.moves then   -- its items are its cells
        item.order, item.entries = order, { e }
        cells[#cells + 1] = item
      elseif alone then
        cells[#cells + 1] = cell(moved(item.lo, g.shift), moved(item.hi, g.shift), order, { e })
      else
        e.lo, e.hi = moved(item.lo, g.shift), moved(item.hi, g.shift)
        for _, d in ipairs(order) do if d <= ndim then e.outer = e.outer or d end end
        local key = {}
        for d = 1, ndim do key[d] = d == e.outer and "*" or e.lo[d] .. ":" .. e.hi[d] end
        e.key = table.concat(order, ",") .. "|" .. table.concat(key, ",")
        by_chunk[src.chunk] = by_chunk[src.chunk] or {}
        table.insert(by_chunk[src.chunk], e)
      end
    end
  end
  local boxes = arrays[pass.leaves[1].name].boxes
  for _, bi in ipairs(alone and {} or boxtree.owned(boxes, rank)) do   -- this rank's chunks only: O(own)
    local entries = by_chunk[boxes[bi].chunk] or {}
    local key_of = {}   -- part -> the key all its items here share, or false
    for _, e in ipairs(entries) do key_of[e.part] = (key_of[e.part] == nil or key_of[e.part] == e.key) and e.key end
    local clusters, cluster_of = {}, {}
    for _, e in ipairs(entries) do
      if not key_of[e.part] then
        cells[#cells + 1] = cell(e.lo, e.hi, e.order, { e })
      else
        if not cluster_of[e.key] then
          clusters[#clusters + 1] = {}
          cluster_of[e.key] = clusters[#clusters]
        end
        table.insert(cluster_of[e.key], e)
      end
    end
    for _, cluster in ipairs(clusters) do
      local outer, cuts, seen = cluster[1].outer, {}, {}
      for _, e in ipairs(cluster) do
        for _, at in ipairs { e.lo[outer], e.hi[outer] + 1 } do
          if not seen[at] then seen[at], cuts[#cuts + 1] = true, at end
        end
      end
      table.sort(cuts)
      for j = 1, #cuts - 1 do
        local first, last, inside = cuts[j], cuts[j + 1] - 1, {}
        for _, e in ipairs(cluster) do
          if e.lo[outer] <= first and e.hi[outer] >= last then
            inside[#inside + 1] = { part = e.part, g = e.g, item = e.item, begin = e.lo[outer] == first,
                                    finish = e.hi[outer] == last }
          end
        end
        if #inside > 0 then
          local lo, hi = { unpack(cluster[1].lo) }, { unpack(cluster[1].hi) }
          lo[outer], hi[outer] = first, last
          cells[#cells + 1] = cell(lo, hi, cluster[1].order, inside)
        end
      end
    end
  end
  return cells
end

-- The patterns of a pass's cells (see luisa.kernel): which groups run,
-- and where their sums and moments begin and finish. Sets each cell's pattern.
local function patterns_of(pass)
  if #pass.groups == 1 then   -- its items, whole: one pattern
    for _, cell in ipairs(pass.items) do cell.pattern = 1 end
    return { { { begin = true, finish = true } } }
  end
  local list, index = {}, {}
  for _, cell in ipairs(pass.items) do
    local key, set = {}, {}
    for _, e in ipairs(cell.entries) do
      local m = pass.ordered[e.part]
      key[#key + 1] = e.part .. (m and e.begin and "b" or "") .. (m and e.finish and "f" or "")
      set[e.part] = { begin = e.begin or not m, finish = e.finish or not m }
    end
    key = table.concat(key, ",")
    if not index[key] then
      list[#list + 1] = set
      index[key] = #list
    end
    cell.pattern = index[key]
  end
  return list
end

-- The passes over a callback's groups: a group is a pass of its own, but
-- groups whose first view steps by 1 over arrays chunked alike, reading the
-- same steps, share one: their views are moved to the first view's array
-- index (T:diff(0)'s T[i+1] - T[i] at i becomes, at T's row i + 1, rows
-- i + 1 and i, beside T:mean()'s row i + 1), so one kernel reads each
-- element once for all of them. Not fields and maps (their geometry maps
-- onto their output), not two pieces of one reduction (they share its
-- slot), and argmin and argmax count the index in their own result: a
-- pass serves one result's index.
local NEEDS_INDEX = { argmin = true, argmax = true }
local function passes_of(group_list, arrays)
  local list, open = {}, {}
  for _, g in ipairs(group_list) do
    local first, ndim, shift, fusable = g.leaves[1], #g.shape, {}, not g.own
    for d = 1, ndim do shift[d], fusable = 0, fusable and first.step[d] == 1 end
    local key, frame, pass = "", nil, nil
    if fusable then
      local oldest = 0
      for _, leaf in ipairs(g.leaves) do oldest = math.max(oldest, leaf.version) end
      shift, key = first.origin, arrays[first.name].chunking .. "|" .. oldest
      for _, r in ipairs(g.reductions) do frame = frame or NEEDS_INDEX[r.kind] end
    end
    g.shift, g.moves = shift, false
    for d = 1, ndim do g.moves = g.moves or shift[d] ~= 0 end
    local origin = {}   -- where the pass's index lands in the group's result
    for d = 1, ndim do origin[d] = g.origin[d] - shift[d] end
    if frame then frame = lower.text(g.full) .. "@" .. lower.text(origin) end
    for _, p in ipairs(fusable and open[key] or {}) do
      local fits = #p.reductions + #g.reductions <= MAX_PER_KERNEL and not (frame and p.frame and p.frame ~= frame)
      for _, spec in ipairs(g.specs) do fits = fits and not p.has[spec] end
      if fits then pass = p; break end
    end
    if not pass then
      pass = { groups = {}, leaves = {}, index = {}, reductions = {}, specs = {}, has = {}, ordered = {},
               shape = fusable and arrays[first.name].shape or g.shape, origin = origin, full = g.full,
               out_stride = g.out_stride, map = g.map, output = g.output }
      list[#list + 1] = pass
      if fusable then
        open[key] = open[key] or {}
        table.insert(open[key], pass)
      end
    end
    if frame and not pass.frame then pass.frame, pass.origin, pass.full = frame, origin, g.full end
    local part = #pass.groups + 1
    pass.groups[part], g.moved = g, {}
    for k, leaf in ipairs(g.leaves) do
      local m = lower.shift(leaf, shift)
      if not pass.index[m.key] then
        pass.leaves[#pass.leaves + 1] = m
        pass.index[m.key] = #pass.leaves
      end
      g.moved[k] = pass.index[m.key]
    end
    for _, r in ipairs(g.reductions) do
      pass.reductions[#pass.reductions + 1] = { kind = r.kind, expr = lower.shift(r.expr, shift), spec = r.spec,
                                                bins = r.bins, lo = r.lo, hi = r.hi, part = part }
      -- sums (in lanes, see luisa.kernel) and moments fold once per own item
      pass.ordered[part] = pass.ordered[part] or r.kind == "moments" or r.kind == "sum" or r.kind == "sumsq"
    end
    for _, spec in ipairs(g.specs) do pass.specs[#pass.specs + 1], pass.has[spec] = spec, true end
  end
  return list
end

M.passes_of, M.cells_of, M.patterns_of, M.geometry = passes_of, cells_of, patterns_of, geometry
return M
