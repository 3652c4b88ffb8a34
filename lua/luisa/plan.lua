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
      local sa, sb = shapes[n.a], shapes[n.b]
      if sa and sb and not same_shape(sa, sb) then
        fail(n.where, "shape mismatch in %s: %s has shape %s, %s has shape %s", tostring(n),
             tostring(n.a), shape_text(sa), tostring(n.b), shape_text(sb))
      end
      shapes[n] = sa or sb
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

local function geometry(names, arrays)
  local first = arrays[names[1]]
  local n, W = #first.chunks, kernel.geometry_width(#names)
  local geo = ffi.new("double[?]", math.max(1, n * W))
  for c = 1, n do
    local order = loop_order(first.chunks[c], first.ndim)
    local g = (c - 1) * W
    for k, d in ipairs(order) do geo[g + k - 1] = first.chunks[c].shape[d] or 1 end
    for i, name in ipairs(names) do
      local ch = arrays[name].chunks[c]
      local base = g + 4 + 5 * (i - 1)
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

local function compile_callback(cb, arrays, core)
  local specs, groups, group_list = {}, {}, {}
  local counts = { min = 0, sum = 0, max = 0 }
  for _, key in ipairs(sorted_keys(cb.stats)) do
    local r = cb.stats[key]
    local shape = check(r.expr, arrays)
    if not shape then fail(r.where, "%s reduces a constant: it names no array", tostring(r)) end
    local volume = 1
    for _, extent in ipairs(shape) do volume = volume * extent end
    local spec = { key = key, kind = r.kind, count = volume }
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
      spec.slot_kind = r.kind == "mean" and "sum" or r.kind
      counts[spec.slot_kind] = counts[spec.slot_kind] + 1
      spec.index = counts[spec.slot_kind]
      g.reductions[#g.reductions + 1] = { kind = spec.slot_kind, expr = r.expr, spec = spec }
    end
  end

  local id, input, output = core.reduction(counts.min, counts.sum, counts.max)
  local base = { min = -1, sum = counts.min - 1, max = counts.min + counts.sum - 1 }
  for _, spec in ipairs(specs) do
    if spec.slot_kind then spec.slot = base[spec.slot_kind] + spec.index end
  end
  local c = { cb = cb, specs = specs, groups = group_list, reduction = id,
              acc = ffi.cast("double*", input), out = ffi.cast("double*", output),
              nmin = counts.min, nsum = counts.sum, nmax = counts.max }
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
  for i = 0, c.nmin - 1 do acc[i] = math.huge end
  for i = c.nmin, c.nmin + c.nsum - 1 do acc[i] = 0 end
  for i = c.nmin + c.nsum, c.nmin + c.nsum + c.nmax - 1 do acc[i] = -math.huge end
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

-- On the root, after the reductions: call each due callback with its
-- results. Returns nil, or a table index -> message for those that failed.
function M.deliver(step, due)
  local failures
  for _, i in ipairs(due) do
    local c = callbacks[i]
    local results = {}
    for _, spec in ipairs(c.specs) do
      if spec.kind == "count" then results[spec.key] = spec.count
      elseif spec.kind == "mean" then results[spec.key] = c.out[spec.slot] / spec.count
      else results[spec.key] = c.out[spec.slot] end
    end
    local ok, err = xpcall(c.cb.fn, traceback, step, results)
    if not ok then
      failures = failures or {}
      failures[i] = "luisa.every callback (registered at " .. c.cb.where .. ") failed: " .. tostring(err)
    end
  end
  return failures
end

return M
