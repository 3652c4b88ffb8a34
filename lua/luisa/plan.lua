-- luisa.plan: compiles the script's callbacks into this rank's plan once,
-- then runs it: local kernels before the engine's reductions, callbacks after.
local ffi = require "ffi"
local expr = require "luisa.expr"
local kernel = require "luisa.kernel"
local lower = require "luisa.lower"
local partition = require "luisa.partition"
local fingerprint = require "luisa.fingerprint"
expr.internal[debug.getinfo(1, "S").source] = true

local M = { builds = 0, runs = 0 }   -- plans built, callbacks evaluated on this rank
local MAX_PER_KERNEL = 32  -- reductions fused in one kernel: keeps its locals few
local MAX_MESSAGE = 2 ^ 31 - 1   -- bytes in one MPI message (an int count)
local callbacks = {}       -- compiled callbacks, by index in luisa._callbacks
local registered = {}      -- registered callback -> its index
local fired = {}           -- indices of callbacks triggers fired this round
local compiled_arrays, fetch_core   -- what luisa.fetch reads

local function fail(where, fmt, ...)
  error(where .. ": " .. string.format(fmt, ...), 0)
end

-- What sandboxed scripts get instead of a raw FFI array: FFI indexing is
-- unchecked, so data[n] would read or write outside the buffer.
local function checked(data, n, what)
  if require("luisa.sandbox").trusted then return data end
  local function check(k)
    if type(k) ~= "number" or k < 0 or k >= n or k % 1 ~= 0 then
      error(string.format("%s[%s]: the index is outside 0 to %d", what, tostring(k), n - 1), 3)
    end
  end
  return setmetatable({}, {
    __index = function(_, k) check(k); return data[k] end,
    __newindex = function(_, k, v) check(k); data[k] = v end,
    __len = function() return n end,
    __tostring = function() return string.format("luisa array of %d numbers", n) end,
  })
end

local shape_text = lower.shape_text

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

-- The geometry table of a pass's cells (see luisa.kernel and cells_of);
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
  local geo = ffi.new("double[?]", math.max(1, #cells * W))
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
  return geo, used
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
  for _, box in ipairs(alone and {} or arrays[pass.leaves[1].name].boxes) do
    local entries = box.owner == rank and by_chunk[box.chunk] or {}
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
-- and where their moments begin and finish. Sets each cell's pattern.
local function patterns_of(pass)
  if #pass.groups == 1 then   -- its items, whole: one pattern
    for _, cell in ipairs(pass.items) do cell.pattern = 1 end
    return { { { begin = true, finish = true } } }
  end
  local list, index = {}, {}
  for _, cell in ipairs(pass.items) do
    local key, set = {}, {}
    for _, e in ipairs(cell.entries) do
      local m = pass.moments[e.part]
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

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

-- How each reduction is computed: the kernel's kind and the slot kind its
-- partial result travels in (engine/transport.c combines slots by kind).
local KERNEL_KIND = { sum = "sum", mean = "sum", min = "min", max = "max", var = "moments",
                      std = "moments", norm = "sumsq", argmin = "argmin", argmax = "argmax",
                      histogram = "histogram" }
local SLOT_KIND = { sum = "sum", sumsq = "sum", min = "min", max = "max", argmin = "argmin",
                    argmax = "argmax", moments = "moments", histogram = "sum" }
local SLOT_KINDS = { "min", "sum", "max", "argmin", "argmax", "moments" }   -- buffer order
-- Reductions giving an array: the kernel kind and how ranks' parts combine
-- (a gather's elements are written by one rank each, the others hold 0).
local FIELD_KIND = { gather = "fset", sum = "fsum", mean = "fsum", min = "fmin", max = "fmax" }
local FIELD_OP = { gather = "sum", sum = "sum", mean = "sum", min = "min", max = "max" }
-- NaN for min and max: nothing seen yet (the kernels skip NaN values and
-- C's fmin and fmax return the other operand), so an element that only ever
-- saw NaN stays NaN.
local FIELD_INIT = { gather = 0, sum = 0, mean = 0, min = 0 / 0, max = 0 / 0 }
local SLOT_WIDTH = { min = 1, sum = 1, max = 1, argmin = 2, argmax = 2, moments = 3 }
-- What a slot holds before any data: the identity of its combination (for
-- min and max NaN, as FIELD_INIT says).
local SLOT_INIT = { min = { 0 / 0 }, sum = { 0 }, max = { 0 / 0 },
                    argmin = { math.huge, math.huge }, argmax = { -math.huge, math.huge },
                    moments = { 0, 0, 0 } }

-- Reductions whose first view reads the same elements of arrays decomposed
-- the same way are split into the same items: they share a group; those
-- reading earlier steps are apart, as they wait until those steps exist.
local function group_key(leaves, arrays, shape)
  local leaf, oldest = leaves[1], 0
  for _, l in ipairs(leaves) do oldest = math.max(oldest, l.version) end
  local a = arrays[leaf.name]
  if not a.chunking then
    local t = {}
    for i, box in ipairs(a.boxes) do
      t[i] = box.owner .. ":" .. lower.text(box.offset) .. "+" .. lower.text(box.shape)
    end
    a.chunking = table.concat(t, ";")
  end
  return a.chunking .. "|" .. lower.text(leaf.origin) .. "/" .. lower.text(leaf.step)
         .. "|" .. lower.text(shape) .. "|" .. oldest
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
      pass = { groups = {}, leaves = {}, index = {}, reductions = {}, specs = {}, has = {}, moments = {},
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
      pass.moments[part] = pass.moments[part] or r.kind == "moments"
    end
    for _, spec in ipairs(g.specs) do pass.specs[#pass.specs + 1], pass.has[spec] = spec, true end
  end
  return list
end

-- An assignment's target, as the first view of its group: the partition
-- then computes each element on the rank owning it in the target.
local function assignment(cb, arrays, core)
  local a = cb.assign
  local target = arrays[a.name]
  if not target then fail(cb.where, "luisa.assign: no array named %q is declared", a.name) end
  if not core.writable(a.name) then
    fail(cb.where, "luisa.assign: the simulation did not register %q as writable (luisa_field_writable)", a.name)
  end
  lower.check_exact(a.name, target, cb.where, true)   -- its writes index its buffers
  local value, shape = lower.lower(a.expr, arrays)
  if not shape then value = lower.lower(expr.array(a.name) * 0 + a.expr.value, arrays) end
  if shape and not lower.same_shape(shape, target.shape) then
    fail(cb.where, "luisa.assign(%q): the expression has shape %s, the array %s", a.name, shape_text(shape),
         shape_text(target.shape))
  end
  return value, target
end

local function compile_callback(index, cb, arrays, core)
  local specs, groups, group_list = {}, {}, {}
  if cb.assign then   -- one spec: the whole expression, written at the end of the step
    local value, target = assignment(cb, arrays, core)
    local spec = { key = "assign", kind = "assign", map = true, assign = true, shape = target.shape, count = 0,
                   value = value }
    specs[1] = spec
    local ones, zeros = {}, {}
    for d = 1, #target.shape do ones[d], zeros[d] = 1, 0 end
    local self = lower.leaf(cb.assign.name, zeros, ones, 0)
    for _, piece in ipairs(value.pieces) do
      local t, pshape = lower.local_tree(piece), {}
      for d = 1, #target.shape do pshape[d] = piece.hi[d] - piece.lo[d] + 1 end
      local g = { leaves = {}, seen = {}, reductions = {}, specs = { spec }, shape = pshape, origin = piece.lo,
                  full = target.shape, map = spec, own = true }
      -- the target's own view first (shifted to the piece), so it drives the partition
      local own = lower.local_tree({ lo = piece.lo, t = self })
      for _, leaf in ipairs(lower.leaves(own)) do g.seen[leaf.key] = true; g.leaves[1] = leaf end
      for _, leaf in ipairs(lower.leaves(t)) do
        if not g.seen[leaf.key] then g.seen[leaf.key] = true; g.leaves[#g.leaves + 1] = leaf end
      end
      g.reductions[1] = { kind = "fset", expr = t, spec = spec }
      group_list[#group_list + 1] = g
    end
  end
  local counts = {}
  for _, kind in ipairs(SLOT_KINDS) do counts[kind] = 0 end
  for _, key in ipairs(sorted_keys(cb.stats)) do
    local r = cb.stats[key]
    local value, shape = lower.lower(r.expr, arrays)
    if not shape then fail(r.where, "%s reduces a constant: it names no array", tostring(r)) end
    local volume = 1
    for _, extent in ipairs(shape) do volume = volume * extent end
    local spec = { key = key, kind = r.kind, count = volume, shape = shape, bins = r.bins, where = r.where,
                   text = tostring(r), lo = r.lo, hi = r.hi, axis = r.axis, value = value }
    specs[#specs + 1] = spec
    local field = r.kind == "gather" or r.axis ~= nil
    if r.kind == "map" then spec.map, spec.fn, spec.combine = true, r.fn, r.combine end
    if field then   -- an array on the root: where each result element lands in it
      spec.field, spec.out_shape, spec.out_stride = true, {}, {}
      local axis = r.axis and r.axis + 1
      if axis and (axis < 1 or axis > #shape) then
        fail(r.where, "%s: axis %s is out of range for %d axes (0 to %d)", r.kind, lower.num(r.axis), #shape,
             #shape - 1)
      end
      for d = 1, #shape do
        if d ~= axis then spec.out_shape[#spec.out_shape + 1] = shape[d] end
      end
      if #spec.out_shape == 0 then spec.out_shape[1] = 1 end
      local s = 1
      for d = #shape, 1, -1 do
        spec.out_stride[d] = d == axis and 0 or s
        if d ~= axis then s = s * shape[d] end
      end
      spec.out_count, spec.along = s, axis and shape[axis] or 1
    end
    if r.kind ~= "count" then
      local kernel_kind = field and FIELD_KIND[r.kind] or spec.map and "fset" or KERNEL_KIND[r.kind]
      if not field then
        spec.slot_kind = spec.map and spec.combine or SLOT_KIND[kernel_kind]
        spec.index = counts[spec.slot_kind]
        counts[spec.slot_kind] = counts[spec.slot_kind] + (r.bins or 1)
      end
      -- Each piece of the result is computed by its own group; reductions
      -- over the same piece, split the same way, share a kernel. Fields and
      -- maps have their own: their geometry maps onto their output.
      for _, piece in ipairs(value.pieces) do
        local t, pshape = lower.local_tree(piece), {}
        for d = 1, #shape do pshape[d] = piece.hi[d] - piece.lo[d] + 1 end
        local leaves = lower.leaves(t)
        local own = field or spec.map
        local sig = group_key(leaves, arrays, pshape) .. "@" .. lower.text(piece.lo)
                    .. (own and "|own " .. tostring(key) or "")
        local g = groups[sig]
        if not g or #g.reductions == MAX_PER_KERNEL then
          g = { leaves = {}, seen = {}, reductions = {}, specs = {}, shape = pshape, origin = piece.lo, full = shape,
                out_stride = spec.out_stride, map = spec.map and spec, own = own }
          groups[sig] = g
          group_list[#group_list + 1] = g
        end
        for _, leaf in ipairs(leaves) do
          if not g.seen[leaf.key] then g.seen[leaf.key] = true; g.leaves[#g.leaves + 1] = leaf end
        end
        g.reductions[#g.reductions + 1] = { kind = kernel_kind, expr = t, spec = spec,
                                            bins = r.bins, lo = r.lo, hi = r.hi }
        g.specs[#g.specs + 1] = spec
      end
    end
  end

  local list = {}
  for k, kind in ipairs(SLOT_KINDS) do list[k] = counts[kind] end
  local id, input, output = core.reduction(list)
  local base, size = {}, 0
  for _, kind in ipairs(SLOT_KINDS) do base[kind], size = size, size + counts[kind] * SLOT_WIDTH[kind] end
  local init = ffi.new("double[?]", math.max(size, 1))   -- what the slots hold before any data, copied each step
  for _, kind in ipairs(SLOT_KINDS) do
    for k = base[kind], base[kind] + counts[kind] * SLOT_WIDTH[kind] - 1 do
      init[k] = SLOT_INIT[kind][(k - base[kind]) % SLOT_WIDTH[kind] + 1]
    end
  end
  for _, spec in ipairs(specs) do
    if spec.slot_kind then spec.slot = base[spec.slot_kind] + spec.index * SLOT_WIDTH[spec.slot_kind] end
  end
  local c = { cb = cb, specs = specs, reduction = id, init = init, size = size, counts = list,
              acc = ffi.cast("double*", input), out = ffi.cast("double*", output), fields = {} }
  -- Kernels' outputs F: the fields, then the maps' scratch buffers.
  c.outputs = {}
  for _, spec in ipairs(specs) do
    if spec.field then
      local fin, fout = core.field(id, spec.out_count, FIELD_OP[spec.kind])
      spec.field_in, spec.field_out = ffi.cast("double*", fin), ffi.cast("double*", fout)
      c.fields[#c.fields + 1] = spec
      c.outputs[#c.outputs + 1] = spec.field_in
      spec.output = #c.outputs
    end
  end
  for _, g in ipairs(group_list) do
    if g.map then
      c.outputs[#c.outputs + 1] = false   -- the scratch buffer, once its size is known
      g.output = #c.outputs
    end
  end

  -- Who computes what, and the transfers that brings: one exchange per
  -- callback, its messages in group order on every rank.
  -- One message per pair of ranks: the groups' pieces follow each other in
  -- it (MPI starts a batch of requests in no fixed order, so two messages
  -- with the same peer and tag could swap).
  local sends, recvs, send_to, recv_from = {}, {}, {}, {}
  local function message(list, by_peer, peer)
    if not by_peer[peer] then
      list[#list + 1] = { peer = peer, bytes = 0, pieces = {} }
      by_peer[peer] = list[#list]
      by_peer[peer].index = #list
    end
    return by_peer[peer]
  end
  for _, g in ipairs(group_list) do
    local items, gsends, grecvs = partition.plan(g.leaves, arrays, g.shape, core.rank, core.size)
    g.items, g.recv_at = items, {}
    for _, item in ipairs(items) do
      for _, src in ipairs(item.sources) do if src.message then src.group = g end end   -- whose messages
    end
    for _, m in ipairs(gsends) do
      local to = message(sends, send_to, m.peer)
      for _, piece in ipairs(m.pieces) do
        piece.offset = piece.offset + to.bytes
        to.pieces[#to.pieces + 1] = piece
      end
      to.bytes = to.bytes + m.bytes
    end
    for j, m in ipairs(grecvs) do
      local from = message(recvs, recv_from, m.peer)
      g.recv_at[j] = { message = from, base = from.bytes }
      from.bytes = from.bytes + m.bytes
    end
  end
  table.sort(sends, function(a, b) return a.peer < b.peer end)
  for _, list in ipairs { sends, recvs } do   -- MPI counts are ints; the peer refuses the same message
    for _, m in ipairs(list) do
      if m.bytes > MAX_MESSAGE then
        fail(cb.where, "luisa.every: a planned transfer %s rank %d is %s bytes, more than one MPI message carries "
             .. "(%d bytes): slice or coarsen what it reads", list == sends and "to" or "from", m.peer,
             lower.num(m.bytes), MAX_MESSAGE)
      end
    end
  end
  local buffers = (#sends > 0 or #recvs > 0) and core.exchange(id, index, sends, recvs) or {}

  -- Earlier versions the store must keep, per array.
  local depth, windows = {}, {}
  for _, g in ipairs(group_list) do
    for _, leaf in ipairs(g.leaves) do depth[leaf.name] = math.max(depth[leaf.name] or 0, leaf.version) end
  end
  for _, name in ipairs(sorted_keys(depth)) do
    if depth[name] > 0 then windows[name] = core.window(name, depth[name]) end
  end

  c.groups = passes_of(group_list, arrays)
  for _, g in ipairs(c.groups) do   -- from here on a group is a pass
    for _, r in ipairs(g.reductions) do r.slot = g.output or r.spec.output or r.spec.slot end
    g.items = cells_of(g, arrays, core.rank)
    g.patterns = patterns_of(g)
    local inputs, chunks, pieces = {}, {}, {}
    local waits = {}   -- array -> versions needed before the pass can run
    for k, leaf in ipairs(g.leaves) do
      local a = arrays[leaf.name]
      if leaf.version > 0 then waits[leaf.name] = math.max(waits[leaf.name] or 0, leaf.version) end
      inputs[k] = { key = leaf.key, dtype = a.dtype }
      local received = {}   -- the pieces of received messages view k reads, once each
      for _, cell in ipairs(g.items) do
        local src = cell.sources[k]
        if src and src.message and not received[src] then
          received[src], received[#received + 1] = true, cell
        end
      end
      local pointers, ctype = kernel.pointers(a.dtype, #received), kernel.ctype[a.dtype] .. "*"
      for n, cell in ipairs(received) do
        local src = cell.sources[k]
        local at = src.group.recv_at[src.message]
        local buffer = ffi.cast("char*", buffers[at.message.index])
        pointers[n - 1] = ffi.cast(ctype, buffer + at.base + src.offset)
        src.pointer = n
      end
      local versions = leaf.version > 0 and windows[leaf.name][leaf.version] or a.published
      chunks[k], pieces[k] = kernel.slots(a.dtype, versions), pointers
    end
    -- One kernel when its locals fit, else the reductions split in halves.
    local function build(reductions)
      local ok, run = pcall(kernel.build, reductions, inputs, g.patterns)
      if ok then
        kernel.warm(run, reductions, inputs, g.patterns)
        return { run }
      end
      local too_big = tostring(run):find("intermediate values", 1, true)
      if too_big and #reductions == 1 then
        fail(reductions[1].spec.where or cb.where, "%s reads %d shifted views of arrays at once, more than one "
             .. "kernel can hold (LuaJIT allows 200 locals; about 40 views fit): use a smaller coarsen "
             .. "factor or stencil", reductions[1].spec.text or "this reduction", #inputs)
      end
      if not too_big then fail(cb.where, "luisa.every: %s", tostring(run)) end
      local half = math.floor(#reductions / 2)
      local runs = build({ unpack(reductions, 1, half) })
      for _, r in ipairs(build({ unpack(reductions, half + 1) })) do runs[#runs + 1] = r end
      return runs
    end
    g.runs, g.chunks, g.pieces, g.nitems = build(g.reductions), chunks, pieces, #g.items
    g.waits = {}   -- a list: pairs() would keep LuaJIT from compiling the step
    for _, name in ipairs(sorted_keys(waits)) do g.waits[#g.waits + 1] = { name, waits[name] } end
    local size
    g.geo, size = geometry(g.items, g.leaves, arrays, g.full, g.origin, g.out_stride, g.map)
    if g.map then   -- the kernel writes the expression here, the map's function reads it
      g.scratch = ffi.new("double[?]", math.max(1, size))
      c.outputs[g.output] = g.scratch
    end
    g.arrays = arrays
  end
  c.core = core
  -- The local chunks this callback reads, per array: what luisa_wants tells.
  c.reads = {}
  local function read(name, chunk)
    c.reads[name] = c.reads[name] or {}
    c.reads[name][chunk + 1] = true
  end
  for _, g in ipairs(group_list) do
    for _, item in ipairs(g.items) do
      for k, src in ipairs(item.sources) do
        if src.chunk then read(g.leaves[k].name, src.chunk) end
      end
    end
  end
  for _, m in ipairs(sends) do
    for _, piece in ipairs(m.pieces) do read(piece.array, piece.chunk) end
  end
  return c
end

-- Compile every registered callback. Returns one entry per callback:
-- { every = n, reduction = id, reads = {[array] = {[chunk + 1] = true}},
-- passes = kernel passes over memory per step, fingerprint = 16 hex digits
-- (luisa.fingerprint), where = "file:line" of its registration } or
-- { error = "file:line: message", where = ... }; and off = true when the
-- script called luisa.off().
function M.compile(arrays, core)
  M.builds = M.builds + 1
  compiled_arrays, fetch_core = arrays, core
  local luisa = require "luisa"
  local results = { off = require("luisa.registry").off ~= nil }
  callbacks, registered = {}, {}
  for i, cb in ipairs(luisa._callbacks) do registered[cb] = i end
  for i, cb in ipairs(luisa._callbacks) do
    local ok, c = pcall(compile_callback, i, cb, arrays, core)
    if ok then
      callbacks[i] = c
      results[i] = { every = cb.every, reduction = c.reduction, reads = c.reads, assigns = cb.assign ~= nil,
                     passes = #c.groups, fingerprint = fingerprint.callback(cb, c, registered), where = cb.where }
    else
      results[i] = { error = tostring(c), where = cb.where }
    end
  end
  return results
end

-- A map's function over each of this rank's items of its expression; the
-- numbers it returns combine like the reduction named by spec.combine.
local function run_map(c, g)
  local spec = g.map
  local acc, s, fn = c.acc, spec.slot, spec.fn
  for _, item in ipairs(g.items) do
    if not item.shape then
      item.shape, item.offset = {}, {}
      for d = 1, #item.lo do
        item.shape[d], item.offset[d] = item.hi[d] - item.lo[d] + 1, g.origin[d] + item.lo[d]
      end
    end
    if not item.count then
      item.count = 1
      for d = 1, #item.shape do item.count = item.count * item.shape[d] end
    end
    local v = fn(checked(g.scratch + item.scratch, item.count, "luisa.map data"), item.shape, item.offset)
    if type(v) ~= "number" then
      error(string.format("luisa.map: the function must return a number, got %s", type(v)), 0)
    end
    if spec.combine == "sum" then acc[s] = acc[s] + v
    elseif spec.combine == "min" then if not (v >= acc[s]) and v == v then acc[s] = v end
    elseif not (v <= acc[s]) and v == v then acc[s] = v end
  end
end

local function run_callback(c, step, rank)
  local acc = c.acc
  ffi.copy(acc, c.init, 8 * c.size)
  for _, spec in ipairs(c.fields) do
    ffi.fill(spec.field_in, 8 * spec.out_count)
    local init = FIELD_INIT[spec.kind]
    if init ~= 0 then for k = 0, spec.out_count - 1 do spec.field_in[k] = init end end
  end
  c.pending = nil   -- specs whose earlier steps are not there yet, if any
  for _, g in ipairs(c.groups) do
    local ready = true
    for _, w in ipairs(g.waits) do ready = ready and c.core.versions(w[1]) >= w[2] end
    local item, input
    if ready then
      for _, run in ipairs(g.runs) do
        item, input = run(acc, g.geo, g.nitems, g.chunks, g.pieces, c.outputs)
        if item then break end
      end
    else
      c.pending = c.pending or {}
      for _, spec in ipairs(g.specs) do c.pending[spec] = true end
    end
    if not item and ready and g.map and not g.map.assign then run_map(c, g) end
    if not item and ready and g.map and g.map.assign then   -- the target must be there to write
      for _, it in ipairs(g.items) do
        if g.chunks[1][it.sources[1].chunk] == nil then item, input = 0, 1; break end
      end
    end
    if item then
      local name = g.leaves[input].name
      local chunk = g.items[item + 1].sources[input].chunk
      local ch = g.arrays[name].chunks[chunk + 1]
      local ago = g.leaves[input].version
      error(string.format("chunk %d of array %q (offset %s, shape %s) was not published on "
            .. "rank %d%s; luisa.every at %s needs it: call luisa_publish before luisa_step",
            chunk, name, shape_text(ch.offset), shape_text(ch.shape), rank,
            ago > 0 and string.format(" %d step%s ago", ago, ago > 1 and "s" or "") or "", c.cb.where), 0)
    end
  end
end

-- Local phase of the due callbacks (indices). Returns nil, or a table
-- index -> message for those that failed on this rank.
-- The text of whatever a script raised: a table without __tostring says
-- so rather than show its address; a __tostring that fails is named.
local function message_of(err)
  local t = type(err)
  if err == "not enough memory" and fetch_core and fetch_core.refused then   -- say where
    local where = fetch_core.refused()
    if where ~= "" then return where end
  end
  if t == "string" or t == "number" then return tostring(err) end
  local mt = getmetatable(err)
  if type(mt) == "table" and mt.__tostring then
    local ok, text = pcall(tostring, err)
    if ok and type(text) == "string" then return text end
    return "(the error object's __tostring failed: " .. (type(text) == "string" and text or type(text)) .. ")"
  end
  return "(the script raised a " .. t .. " value, not an error message: raise a string, as error(\"what went wrong\"))"
end

local function budget(i)   -- the time budget restarts for callback i (1-based)
  if fetch_core and fetch_core.budget then fetch_core.budget(i - 1) end
end

function M.run_local(step, due, rank)
  local failures
  for _, i in ipairs(due) do
    M.runs = M.runs + 1
    budget(i)
    local ok, err = pcall(run_callback, callbacks[i], step, rank)
    if not ok then
      failures = failures or {}
      failures[i] = message_of(err)
    end
  end
  return failures
end

-- The traceback of a failed callback, without the engine's own frames.
local function traceback(msg)
  local tb = debug.traceback(message_of(msg), 2)   -- not a tail call: level 2 is the failing function
  return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
end

-- The 0-based global index, as a table, of a linear index in C order.
local function index_of(linear, shape)
  if linear == math.huge then return nil end   -- nothing but NaN was seen
  local index = {}
  for d = #shape, 1, -1 do
    index[d] = linear % shape[d]
    linear = (linear - index[d]) / shape[d]
  end
  return index
end

-- The user's value of a reduction from the combined slots.
-- An array delivered to a callback: shape, C-order data, at(i, j, ...).
local Field = {}
Field.__index = Field
function Field:at(...)
  local k = 0
  for d = 1, #self.shape do k = k * self.shape[d] + select(d, ...) end
  return self.data[k]
end

local function value_of(spec, out)
  local kind, s = spec.kind, spec.slot
  if spec.field then   -- a copy: the callback may keep it past this step
    local data = ffi.new("double[?]", spec.out_count)
    for k = 0, spec.out_count - 1 do data[k] = spec.field_out[k] end
    if kind == "mean" then for k = 0, spec.out_count - 1 do data[k] = data[k] / spec.along end end
    return setmetatable({ shape = spec.out_shape, data = checked(data, spec.out_count, "data"), n = spec.out_count },
                        Field)
  end
  if kind == "count" then return spec.count end
  if kind == "mean" then return out[s] / spec.count end
  if kind == "var" then return out[s + 2] / out[s] end
  if kind == "std" then return math.sqrt(out[s + 2] / out[s]) end
  if kind == "norm" then return math.sqrt(out[s]) end
  if kind == "argmin" or kind == "argmax" then return index_of(out[s + 1], spec.shape) end
  if kind == "histogram" then
    local counts = {}
    for b = 1, spec.bins do counts[b] = out[s + b - 1] end
    return counts
  end
  return out[s]
end

local NONE = {}

-- On the root, after the reductions: call each due callback with its
-- results. Returns nil, or a table index -> message for those that failed.
function M.deliver(step, due)
  local failures
  for _, i in ipairs(due) do
    local c = callbacks[i]
    local results, pending = {}, c.pending or NONE
    for _, spec in ipairs(c.specs) do
      if not pending[spec] and not spec.assign then results[spec.key] = value_of(spec, c.out) end   -- nil: not yet
    end
    budget(i)
    local ok, err = xpcall(c.cb.fn, traceback, step, results)
    if ok and err and c.cb.fires == err then   -- a trigger said yes
      fired[#fired + 1] = registered[err]
    end
    if not ok then
      failures = failures or {}
      failures[i] = "luisa.every callback (registered at " .. c.cb.where .. ") failed: " .. message_of(err)
    end
  end
  return failures
end

-- fetch(name, offset, shape, version): any box of an array as published at
-- this step (or `version` steps ago), read from its owners on demand. Only
-- in a callback on the root, where the owners serve while they wait.
-- A value as an error message shows it: NaN without its sign, strings quoted.
local function shown(v)
  if type(v) == "number" then return v ~= v and "nan" or tostring(v) end
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

local function whole(v)   -- a whole number: not NaN, not infinite, not fractional
  return type(v) == "number" and v == v and v > -math.huge and v < math.huge and v % 1 == 0
end

function M.fetch(name, offset, shape, version)
  local a = compiled_arrays and compiled_arrays[name]
  if not a then error(string.format("luisa.fetch: no array named %q", tostring(name)), 3) end
  if type(offset) ~= "table" or type(shape) ~= "table" or #offset ~= a.ndim or #shape ~= a.ndim then
    error(string.format("luisa.fetch(%q, offset, shape): offset and shape need %d numbers each", name, a.ndim), 3)
  end
  local ok, why = pcall(lower.check_exact, name, a, "")
  if not ok then error("luisa.fetch" .. tostring(why):gsub("^: ", ": "), 3) end
  for d = 1, a.ndim do
    if not whole(offset[d]) then
      error(string.format("luisa.fetch(%q): the offset on axis %d must be a whole number, got %s", name, d - 1,
                          shown(offset[d])), 3)
    end
    if not whole(shape[d]) or shape[d] < 1 then
      error(string.format("luisa.fetch(%q): the shape on axis %d must be a whole number >= 1, got %s", name, d - 1,
                          shown(shape[d])), 3)
    end
  end
  local n = 1
  for d = 1, a.ndim do
    if offset[d] < 0 or offset[d] + shape[d] > a.shape[d] then
      error(string.format("luisa.fetch(%q): the box at %s of shape %s is outside the array's shape %s", name,
                          shape_text(offset), shape_text(shape), shape_text(a.shape)), 3)
    end
    n = n * shape[d]
  end
  local size, parts = ffi.sizeof(kernel.ctype[a.dtype]), {}
  for _, box in ipairs(a.boxes) do   -- every part checked before anything is allocated or asked for
    local lo, count, m = {}, {}, 1
    for d = 1, a.ndim do
      lo[d] = math.max(offset[d], box.offset[d])
      count[d] = math.min(offset[d] + shape[d], box.offset[d] + box.shape[d]) - lo[d]
      m = m * math.max(count[d], 0)
    end
    if m * size > MAX_MESSAGE then   -- the owner sends it in one message
      error(string.format("luisa.fetch(%q): the part of chunk %d on rank %d is %s bytes, more than one MPI "
                          .. "message carries (%d bytes): fetch smaller boxes", name, box.chunk, box.owner,
                          lower.num(m * size), MAX_MESSAGE), 3)
    end
    if m > 0 then parts[#parts + 1] = { box = box, lo = lo, count = count, m = m } end
  end
  if version > 0 and fetch_core.versions(name) < version then return nil end
  local data = ffi.new("double[?]", n)
  local stride, s = {}, 1
  for d = a.ndim, 1, -1 do stride[d], s = s, s * shape[d] end
  for _, p in ipairs(parts) do
    local box, lo, count = p.box, p.lo, p.count
    local part = ffi.new("double[?]", p.m)
    if not fetch_core.fetch(name, version, box.owner, box.chunk, lo, count, part) then
      error(string.format("luisa.fetch(%q): chunk %d on rank %d was not published%s", name, box.chunk,
                          box.owner, version > 0 and " at that step" or ""), 3)
    end
    for k = 0, p.m - 1 do   -- part is C order over count: place it in data
      local rest, at = k, 0
      for d = a.ndim, 1, -1 do
        local i = rest % count[d]
        rest = (rest - i) / count[d]
        at = at + (lo[d] - offset[d] + i) * stride[d]
      end
      data[at] = part[k]
    end
  end
  return setmetatable({ shape = { unpack(shape) }, data = checked(data, n, "data"), n = n }, Field)
end

-- After the verdict, on every rank: the assignments of the due callbacks
-- that did not fail are written into the simulation's buffers.
function M.commit(step, due)
  for _, i in ipairs(due) do
    local c = callbacks[i]
    for _, g in ipairs(c and c.cb.assign and c.groups or {}) do
      local target = g.arrays[g.leaves[1].name]
      for _, item in ipairs(g.items) do
        local chunk = item.sources[1].chunk
        local ch, dst = target.chunks[chunk + 1], g.chunks[1][chunk]
        local ndim, n = #item.lo, {}
        for d = 1, ndim do n[d] = item.hi[d] - item.lo[d] + 1 end
        local src, k, idx = g.scratch + item.scratch, 0, {}
        for d = 1, ndim do idx[d] = 0 end
        repeat   -- the item's elements in C order, as the scratch holds them
          local at = ch.first
          for d = 1, ndim do at = at + (g.origin[d] + item.lo[d] + idx[d] - ch.offset[d]) * ch.stride[d] end
          dst[at] = src[k]
          k = k + 1
        until not lower.advance(idx, n, ndim)
      end
    end
  end
end

-- The index of a registered callback (1-based), or nil.
function M.index_of(cb) return registered[cb] end

-- A region's new ranges, checked against its input's shape, as the text
-- that travels to every rank: "start:stop:step" per axis, ";" between.
function M.region_text(region, ...)
  local s = region.input_shape
  if not s then return nil, "the region is not part of a compiled statistic" end
  local ranges, parts = { ... }, {}
  if select("#", ...) > #s then return nil, string.format("%d ranges for %d axes", select("#", ...), #s) end
  for d = 1, #s do
    local ok, start, count, step = pcall(lower.normalize, ranges[d], s[d], "", d - 1)
    if not ok then return nil, tostring(start):gsub("^: ", "") end
    parts[d] = string.format("%d:%d:%d", start, start + (count - 1) * step + 1, step)
  end
  return table.concat(parts, ";")
end

-- On every rank: the region moved (the engine compiles the plan again).
function M.move_region(id, text)
  local n = expr.regions[id]
  local ranges = {}
  for start, stop, step in text:gmatch("(%d+):(%d+):(%d+)") do
    ranges[#ranges + 1] = { tonumber(start), tonumber(stop), tonumber(step) }
  end
  n.ranges, n.naxes = ranges, #ranges
  return tostring(n.a) .. "[" .. text .. "]"
end

-- The compiled plan, kept aside while another is compiled, and put back
-- if that one fails.
function M.snapshot()
  return { callbacks = callbacks, registered = registered, arrays = compiled_arrays, core = fetch_core }
end

function M.restore(s)
  callbacks, registered, compiled_arrays, fetch_core = s.callbacks, s.registered, s.arrays, s.core
end

-- The callbacks triggers fired since the last call (on the root).
function M.take_fired()
  local list = fired
  if #list > 0 then fired = {} end
  return list
end

return M
