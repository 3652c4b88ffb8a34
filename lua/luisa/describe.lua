-- luisa.describe: the script's callbacks compiled into this rank's plan as
-- plain data (numbers, strings, booleans, tables of them), calling no engine.
local expr = require "luisa.expr"
local lower = require "luisa.lower"
local partition = require "luisa.partition"
local passes = require "luisa.passes"
local fingerprint = require "luisa.fingerprint"
expr.internal[debug.getinfo(1, "S").source] = true

local M = {}
local MAX_PER_KERNEL = passes.MAX_PER_KERNEL
M.MAX_MESSAGE = 2 ^ 31 - 1   -- bytes in one MPI message (an int count)
local MAX_MESSAGE = M.MAX_MESSAGE

local function fail(where, fmt, ...)
  error(where .. ": " .. string.format(fmt, ...), 0)
end

local shape_text = lower.shape_text

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
M.SLOT_KINDS = { "min", "sum", "max", "argmin", "argmax", "moments" }   -- buffer order
local SLOT_KINDS = M.SLOT_KINDS
-- Reductions giving an array: the kernel kind and how ranks' parts combine
-- (a gather's elements are written by one rank each, the others hold 0).
local FIELD_KIND = { gather = "fset", sum = "fsum", mean = "fsum", min = "fmin", max = "fmax" }
local FIELD_OP = { gather = "sum", sum = "sum", mean = "sum", min = "min", max = "max" }
-- NaN for min and max: nothing seen yet (the kernels skip NaN values and
-- C's fmin and fmax return the other operand), so an element that only ever
-- saw NaN stays NaN.
local FIELD_INIT = { gather = 0, sum = 0, mean = 0, min = 0 / 0, max = 0 / 0 }
M.SLOT_WIDTH = { min = 1, sum = 1, max = 1, argmin = 2, argmax = 2, moments = 3 }
local SLOT_WIDTH = M.SLOT_WIDTH
-- What a slot holds before any data: the identity of its combination (for
-- min and max NaN, as FIELD_INIT says).
M.SLOT_INIT = { min = { 0 / 0 }, sum = { 0 }, max = { 0 / 0 },
                argmin = { math.huge, math.huge }, argmax = { -math.huge, math.huge },
                moments = { 0, 0, 0 } }

-- Arrays decomposed alike (the same boxes with the same owners, in the same
-- order) get the same chunking, a number: compared box by box with one array
-- of each decomposition already seen, not spelled out as the text of every
-- box (megabytes at 100,000 ranks). New numbers are never reused, so two
-- arrays of different compiles never share one by chance.
local seen_chunkings = setmetatable({}, { __mode = "k" })   -- arrays -> {one array per chunking}
local chunkings = 0
local function chunking(a, arrays)
  if not a.chunking then
    local list = seen_chunkings[arrays] or {}
    seen_chunkings[arrays] = list
    for _, b in ipairs(list) do
      if partition.same_boxes(a.boxes, b.boxes) then a.chunking = b.chunking; break end
    end
    if not a.chunking then
      chunkings = chunkings + 1
      a.chunking, list[#list + 1] = chunkings, a
    end
  end
  return a.chunking
end

-- Reductions whose first view reads the same elements of arrays decomposed
-- the same way are split into the same items: they share a group; those
-- reading earlier steps are apart, as they wait until those steps exist.
local function group_key(leaves, arrays, shape)
  local leaf, oldest = leaves[1], 0
  for _, l in ipairs(leaves) do oldest = math.max(oldest, l.version) end
  return chunking(arrays[leaf.name], arrays) .. "|" .. lower.text(leaf.origin) .. "/" .. lower.text(leaf.step)
         .. "|" .. lower.text(shape) .. "|" .. oldest
end

-- An assignment's target, as the first view of its group: the partition
-- then computes each element on the rank owning it in the target.
local function assignment(cb, arrays, writable)
  local a = cb.assign
  local target = arrays[a.name]
  if not target then fail(cb.where, "luisa.assign: no array named %q is declared", a.name) end
  if not writable[a.name] then
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

-- The statistics of a callback (its assignment first) and the groups of
-- reductions computing them, each a piece of a result over the same items.
local function specs_of(cb, arrays, writable)
  local specs, groups, group_list = {}, {}, {}
  if cb.assign then   -- one spec: the whole expression, written at the end of the step
    local value, target = assignment(cb, arrays, writable)
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
      spec.field_op, spec.field_init = FIELD_OP[r.kind], FIELD_INIT[r.kind]
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
  return specs, group_list, counts
end

-- Who computes what, and the transfers that brings: one exchange per
-- callback, its messages in group order on every rank.
-- One message per pair of ranks: the groups' pieces follow each other in
-- it (MPI starts a batch of requests in no fixed order, so two messages
-- with the same peer and tag could swap).
local function transfers(cb, group_list, arrays, rank, size)
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
    local items, gsends, grecvs = partition.plan(g.leaves, arrays, g.shape, rank, size)
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
  return sends, recvs
end

-- A copy holding no metatable and nothing shared with the script's objects
-- (a lowered tree's constants are its expression nodes); shared nodes stay
-- shared, so a stencil's DAG stays one.
local function plain(v, memo)
  if type(v) ~= "table" then return v end
  if memo[v] then return memo[v] end
  local t = {}
  memo[v] = t
  for k, x in pairs(v) do t[plain(k, memo)] = plain(x, memo) end
  return t
end

local SPEC_FIELDS = { "key", "kind", "count", "shape", "bins", "where", "text", "lo", "hi", "axis", "map", "combine",
                      "assign", "field", "field_op", "field_init", "out_shape", "out_stride", "out_count", "along",
                      "slot_kind", "slot", "output" }

-- A pass as the description holds it: spec and output indices instead of
-- the tables, cells with only what binding and running read.
local function pass_text(g, spec_index, memo)
  local p = { leaves = plain(g.leaves, memo), inputs = g.inputs, patterns = plain(g.patterns, memo),
              origin = plain(g.origin, memo), waits = g.waits, received = g.received, geo = g.geo,
              scratch = g.map and g.scratch_size or nil, map = g.map and spec_index[g.map], output = g.output,
              specs = {}, reductions = {}, items = {} }
  for j, spec in ipairs(g.specs) do p.specs[j] = spec_index[spec] end
  for j, r in ipairs(g.reductions) do
    p.reductions[j] = { kind = r.kind, expr = plain(r.expr, memo), slot = r.slot, bins = r.bins, lo = r.lo,
                        hi = r.hi, part = r.part, spec = spec_index[r.spec] }
  end
  for j, cell in ipairs(g.items) do
    local c = { lo = { unpack(cell.lo) }, hi = { unpack(cell.hi) }, scratch = cell.scratch, sources = {} }
    for k, src in pairs(cell.sources) do
      c.sources[k] = src.chunk and { chunk = src.chunk } or { message = src.recv.message, offset = src.recv.offset }
    end
    if g.map and not g.map.assign then   -- what the map's function is given for the cell
      c.shape, c.offset, c.count = {}, {}, 1
      for d = 1, #c.lo do
        c.shape[d], c.offset[d] = c.hi[d] - c.lo[d] + 1, g.origin[d] + c.lo[d]
        c.count = c.count * c.shape[d]
      end
    end
    p.items[j] = c
  end
  return p
end

local function describe_callback(index, cb, arrays, facts, registered)
  local specs, group_list, counts = specs_of(cb, arrays, facts.writable)
  local list = {}
  for k, kind in ipairs(SLOT_KINDS) do list[k] = counts[kind] end
  local base, size = {}, 0
  for _, kind in ipairs(SLOT_KINDS) do base[kind], size = size, size + counts[kind] * SLOT_WIDTH[kind] end
  for _, spec in ipairs(specs) do
    if spec.slot_kind then spec.slot = base[spec.slot_kind] + spec.index * SLOT_WIDTH[spec.slot_kind] end
  end
  -- Kernels' outputs F: the fields, then the maps' scratch buffers.
  local outputs, spec_index = {}, {}
  for j, spec in ipairs(specs) do
    spec_index[spec] = j
    if spec.field then
      outputs[#outputs + 1] = { field = j }
      spec.output = #outputs
    end
  end
  for _, g in ipairs(group_list) do
    if g.map then
      outputs[#outputs + 1] = { scratch = 0 }   -- the pass, once passes are made
      g.output = #outputs
    end
  end

  local sends, recvs = transfers(cb, group_list, arrays, facts.rank, facts.size)

  -- Earlier versions the store must keep, per array.
  local depth, windows = {}, {}
  for _, g in ipairs(group_list) do
    for _, leaf in ipairs(g.leaves) do depth[leaf.name] = math.max(depth[leaf.name] or 0, leaf.version) end
  end
  for _, name in ipairs(sorted_keys(depth)) do
    if depth[name] > 0 then windows[#windows + 1] = { name = name, depth = depth[name] } end
  end

  local pass_list = passes.passes_of(group_list, arrays)
  for _, g in ipairs(pass_list) do   -- from here on a group is a pass
    for _, r in ipairs(g.reductions) do r.slot = g.output or r.spec.output or r.spec.slot end
    g.items = passes.cells_of(g, arrays, facts.rank)
    g.patterns = passes.patterns_of(g)
    g.inputs, g.received = {}, {}
    local waits = {}   -- array -> versions needed before the pass can run
    for k, leaf in ipairs(g.leaves) do
      local a = arrays[leaf.name]
      if leaf.version > 0 then waits[leaf.name] = math.max(waits[leaf.name] or 0, leaf.version) end
      g.inputs[k] = { key = leaf.key, dtype = a.dtype }
      local received, seen = {}, {}   -- the pieces of received messages view k reads, once each
      for _, cell in ipairs(g.items) do
        local src = cell.sources[k]
        if src and src.message and not seen[src] then
          local at = src.group.recv_at[src.message]
          seen[src] = true
          src.recv = { message = at.message.index, offset = at.base + src.offset }
          received[#received + 1] = src.recv
          src.pointer = #received
        end
      end
      g.received[k] = received
    end
    g.waits = {}   -- a list: pairs() would keep LuaJIT from compiling the step
    for _, name in ipairs(sorted_keys(waits)) do g.waits[#g.waits + 1] = { name, waits[name] } end
    local geo, n, used = passes.geometry(g.items, g.leaves, arrays, g.full, g.origin, g.out_stride, g.map)
    g.geo = {}
    for k = 0, n - 1 do g.geo[k + 1] = geo[k] end
    g.scratch_size = used
  end
  -- The local chunks this callback reads, per array: what luisa_wants tells.
  local reads = {}
  local function read(name, chunk)
    reads[name] = reads[name] or {}
    reads[name][chunk + 1] = true
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

  local memo = {}
  local d = { index = index, every = cb.every, where = cb.where, fires = cb.fires and registered[cb.fires],
              assign = cb.assign and cb.assign.name, counts = list, size = size, specs = {}, outputs = outputs,
              sends = {}, recvs = {}, windows = windows, passes = {}, reads = reads,
              fingerprint = fingerprint.callback(cb, { counts = list, specs = specs }, registered) }
  for j, spec in ipairs(specs) do
    local s = {}
    for _, f in ipairs(SPEC_FIELDS) do s[f] = plain(spec[f], memo) end
    d.specs[j] = s
  end
  for j, m in ipairs(sends) do d.sends[j] = { peer = m.peer, bytes = m.bytes, pieces = plain(m.pieces, memo) } end
  for j, m in ipairs(recvs) do d.recvs[j] = { peer = m.peer, bytes = m.bytes } end
  for j, g in ipairs(pass_list) do
    d.passes[j] = pass_text(g, spec_index, memo)
    if g.map then outputs[g.output].scratch = j end
  end
  return d
end

-- describe(callbacks, off, arrays, facts): this rank's plan of the
-- registered callbacks (luisa.registry) over `arrays` (as engine/script.c's
-- push_arrays gives them; only their shapes and chunk maps are read), with
-- facts = { rank, size, writable = {[array] = true} }. Returns
-- { off = whether the script called luisa.off(), callbacks = { [i] = ... } },
-- each callback either
--   { index, every, where, fires = index of the callback it fires or nil,
--     assign = target array or nil, fingerprint = 16 hex digits,
--     counts = slots per kind in SLOT_KINDS order, size = doubles of slots,
--     specs = {{key, kind, slot_kind, slot, shape, count, field, ...}},
--     outputs = {{field = spec} or {scratch = pass}}: the kernels' outputs,
--     sends = {{peer, bytes, pieces}}, recvs = {{peer, bytes}},
--     windows = {{name, depth}}, reads = {[array] = {[chunk + 1] = true}},
--     passes = {{leaves, inputs, reductions, patterns, items, received, geo,
--                waits, specs, map, output, scratch, origin}} }
-- or { error = "file:line: message", where }.
function M.describe(callbacks, off, arrays, facts)
  local d = { off = off ~= nil, callbacks = {} }
  local registered = {}
  for i, cb in ipairs(callbacks) do registered[cb] = i end
  for i, cb in ipairs(callbacks) do
    local ok, c = pcall(describe_callback, i, cb, arrays, facts, registered)
    d.callbacks[i] = ok and c or { error = tostring(c), where = cb.where }
  end
  return d
end

return M
