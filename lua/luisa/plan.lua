-- luisa.plan: compiles the script's callbacks into this rank's plan once,
-- then runs it: local kernels before the engine's reductions, callbacks after.
local ffi = require "ffi"
local expr = require "luisa.expr"
local kernel = require "luisa.kernel"
expr.internal[debug.getinfo(1, "S").source] = true

local M = { builds = 0 }   -- plans built since the state was made
local MAX_PER_KERNEL = 32  -- reductions fused in one kernel: keeps its locals few
local callbacks = {}       -- compiled callbacks, by index in luisa._callbacks

local function fail(where, fmt, ...)
  error(where .. ": " .. string.format(fmt, ...), 0)
end

local function shape_text(shape) return "[" .. table.concat(shape, ", ") .. "]" end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- Global shape of e after checking every array it names; nil for a constant.
local function check(e, arrays)
  local shapes = {}
  expr.walk(e, function(n)
    if n.kind == "array" then
      local a = arrays[n.name]
      if not a then
        local names = {}
        for name in pairs(arrays) do names[#names + 1] = name end
        table.sort(names)
        fail(n.where, "no array named %q is declared by the simulation (declared: %s)", n.name,
             #names > 0 and table.concat(names, ", ") or "none")
      end
      shapes[n] = a.shape
    elseif n.kind == "unary" then
      shapes[n] = shapes[n.a]
    elseif n.kind ~= "const" then
      local shape, from
      for _, child in ipairs { n.c or false, n.a, n.b or false } do   -- where's mask first
        local sc = child and shapes[child]
        if sc and shape and not same_shape(shape, sc) then
          fail(n.where, "shape mismatch in %s: %s has shape %s, %s has shape %s", tostring(n),
               tostring(from), shape_text(shape), tostring(child), shape_text(sc))
        end
        if sc and not shape then shape, from = sc, child end
      end
      shapes[n] = shape
    end
  end)
  return shapes[e]
end

-- Names of the arrays e reads, in order of first appearance.
local function inputs_of(e)
  local names, seen = {}, {}
  expr.walk(e, function(n)
    if n.kind == "array" and not seen[n.name] then
      seen[n.name] = true
      names[#names + 1] = n.name
    end
  end)
  return names
end

-- Text that is equal for arrays whose local chunks are the same boxes.
local function chunking(a)
  local t = {}
  for i, c in ipairs(a.chunks) do
    t[i] = table.concat(c.offset, ",") .. "+" .. table.concat(c.shape, ",")
  end
  return table.concat(t, ";")
end

-- Loop order for a chunk: axes by decreasing stride of the first input, so
-- the innermost loop walks memory contiguously.
local function loop_order(c, ndim)
  local axes = {}
  for d = 1, 4 do axes[d] = d end
  local function stride(d) return d <= ndim and c.stride[d] or math.huge end
  table.sort(axes, function(x, y)
    local sx, sy = stride(x), stride(y)
    if sx ~= sy then return sx > sy end
    return x < y
  end)
  return axes
end

-- Per chunk, in loop order: extents, global index of the first element and
-- global strides (C order over the global shape), then each input's layout.
local function geometry(names, arrays)
  local first = arrays[names[1]]
  local n, W = #first.chunks, kernel.geometry_width(#names)
  local gstride, s = {}, 1
  for d = first.ndim, 1, -1 do gstride[d], s = s, s * first.shape[d] end
  local geo = ffi.new("double[?]", math.max(1, n * W))
  for c = 1, n do
    local chunk = first.chunks[c]
    local order = loop_order(chunk, first.ndim)
    local g = (c - 1) * W
    local gfirst = 0
    for d = 1, first.ndim do gfirst = gfirst + chunk.offset[d] * gstride[d] end
    geo[g + 4] = gfirst
    for k, d in ipairs(order) do
      geo[g + k - 1] = chunk.shape[d] or 1
      geo[g + 4 + k] = gstride[d] or 0
    end
    for i, name in ipairs(names) do
      local ch = arrays[name].chunks[c]
      local base = g + 9 + 5 * (i - 1)
      geo[base] = ch.first
      for k, d in ipairs(order) do geo[base + k] = ch.stride[d] or 0 end
    end
  end
  return geo, n
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
local SLOT_WIDTH = { min = 1, sum = 1, max = 1, argmin = 2, argmax = 2, moments = 3 }
-- What a slot holds before any data: the identity of its combination.
local SLOT_INIT = { min = { math.huge }, sum = { 0 }, max = { -math.huge },
                    argmin = { math.huge, math.huge }, argmax = { -math.huge, math.huge },
                    moments = { 0, 0, 0 } }

local function compile_callback(cb, arrays, core)
  local specs, groups, group_list = {}, {}, {}
  local counts = {}
  for _, kind in ipairs(SLOT_KINDS) do counts[kind] = 0 end
  for _, key in ipairs(sorted_keys(cb.stats)) do
    local r = cb.stats[key]
    local shape = check(r.expr, arrays)
    if not shape then fail(r.where, "%s reduces a constant: it names no array", tostring(r)) end
    local volume = 1
    for _, extent in ipairs(shape) do volume = volume * extent end
    local spec = { key = key, kind = r.kind, count = volume, shape = shape, bins = r.bins }
    specs[#specs + 1] = spec
    if r.kind ~= "count" then
      local names = inputs_of(r.expr)
      local sig = chunking(arrays[names[1]])
      for i = 2, #names do
        if chunking(arrays[names[i]]) ~= sig then
          fail(r.where, "%s combines %q and %q, whose chunks differ on rank %d: elementwise "
               .. "operations need arrays decomposed into the same chunks", tostring(r),
               names[1], names[i], core.rank)
        end
      end
      local g = groups[sig]
      if not g or #g.reductions == MAX_PER_KERNEL then
        g = { names = {}, seen = {}, reductions = {} }
        groups[sig] = g
        group_list[#group_list + 1] = g
      end
      for _, name in ipairs(names) do
        if not g.seen[name] then g.seen[name] = true; g.names[#g.names + 1] = name end
      end
      local kernel_kind = KERNEL_KIND[r.kind]
      spec.slot_kind = SLOT_KIND[kernel_kind]
      spec.index = counts[spec.slot_kind]
      counts[spec.slot_kind] = counts[spec.slot_kind] + (r.bins or 1)
      g.reductions[#g.reductions + 1] = { kind = kernel_kind, expr = r.expr, spec = spec,
                                          bins = r.bins, lo = r.lo, hi = r.hi }
    end
  end

  local list = {}
  for k, kind in ipairs(SLOT_KINDS) do list[k] = counts[kind] end
  local id, input, output = core.reduction(list)
  local base, size, ranges = {}, 0, {}
  for _, kind in ipairs(SLOT_KINDS) do
    base[kind] = size
    ranges[#ranges + 1] = { kind = kind, first = size, count = counts[kind] }
    size = size + counts[kind] * SLOT_WIDTH[kind]
  end
  for _, spec in ipairs(specs) do
    if spec.slot_kind then spec.slot = base[spec.slot_kind] + spec.index * SLOT_WIDTH[spec.slot_kind] end
  end
  local c = { cb = cb, specs = specs, groups = group_list, reduction = id, ranges = ranges,
              acc = ffi.cast("double*", input), out = ffi.cast("double*", output) }
  for _, g in ipairs(group_list) do
    for _, r in ipairs(g.reductions) do r.slot = r.spec.slot end
    local inputs = {}
    for i, name in ipairs(g.names) do inputs[i] = { name = name, dtype = arrays[name].dtype } end
    local ok, run = pcall(kernel.build, g.reductions, inputs)
    if not ok then fail(cb.where, "luisa.every: %s", tostring(run)) end
    g.run = run
    g.geo, g.nchunks = geometry(g.names, arrays)
    g.slots = {}
    for i, name in ipairs(g.names) do g.slots[i] = kernel.slots(arrays[name].dtype, arrays[name].published) end
    g.arrays = arrays
  end
  return c
end

-- Compile every registered callback. Returns one entry per callback:
-- { every = n, reduction = id } or { error = "file:line: message" }.
function M.compile(arrays, core)
  M.builds = M.builds + 1
  local luisa = require "luisa"
  local results = {}
  callbacks = {}
  for i, cb in ipairs(luisa._callbacks) do
    local ok, c = pcall(compile_callback, cb, arrays, core)
    if ok then
      callbacks[i] = c
      results[i] = { every = cb.every, reduction = c.reduction }
    else
      results[i] = { error = tostring(c) }
    end
  end
  return results
end

local function run_callback(c, step, rank)
  local acc = c.acc
  for _, range in ipairs(c.ranges) do
    local init, width = SLOT_INIT[range.kind], SLOT_WIDTH[range.kind]
    for k = 0, range.count - 1 do
      for w = 1, width do acc[range.first + k * width + w - 1] = init[w] end
    end
  end
  for _, g in ipairs(c.groups) do
    local chunk, input = g.run(acc, g.geo, g.nchunks, unpack(g.slots))
    if chunk then
      local name = g.names[input]
      local ch = g.arrays[name].chunks[chunk + 1]
      error(string.format("step %d: chunk %d of array %q (offset %s, shape %s) was not published on "
            .. "rank %d; luisa.every at %s needs it: call luisa_publish before luisa_step",
            step, chunk, name, shape_text(ch.offset), shape_text(ch.shape), rank, c.cb.where), 0)
    end
  end
end

-- Local phase of the due callbacks (indices). Returns nil, or a table
-- index -> message for those that failed on this rank.
function M.run_local(step, due, rank)
  local failures
  for _, i in ipairs(due) do
    local ok, err = pcall(run_callback, callbacks[i], step, rank)
    if not ok then
      failures = failures or {}
      failures[i] = tostring(err)
    end
  end
  return failures
end

-- The traceback of a failed callback, without the engine's own frames.
local function traceback(msg)
  local tb = debug.traceback(tostring(msg), 2)   -- not a tail call: level 2 is the failing function
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
local function value_of(spec, out)
  local kind, s = spec.kind, spec.slot
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

-- On the root, after the reductions: call each due callback with its
-- results. Returns nil, or a table index -> message for those that failed.
function M.deliver(step, due)
  local failures
  for _, i in ipairs(due) do
    local c = callbacks[i]
    local results = {}
    for _, spec in ipairs(c.specs) do results[spec.key] = value_of(spec, c.out) end
    local ok, err = xpcall(c.cb.fn, traceback, step, results)
    if not ok then
      failures = failures or {}
      failures[i] = "luisa.every callback (registered at " .. c.cb.where .. ") failed: " .. tostring(err)
    end
  end
  return failures
end

return M
