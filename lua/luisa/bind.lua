-- luisa.bind: a plan description (luisa.describe) made live on this rank's
-- engine: its slots, fields, transfers and windows asked for, kernels built.
local ffi = require "ffi"
local expr = require "luisa.expr"
local kernel = require "luisa.kernel"
local describe = require "luisa.describe"
local stage = require "luisa.stage"
expr.internal[debug.getinfo(1, "S").source] = true

local M = {}
local SLOT_KINDS, SLOT_WIDTH, SLOT_INIT = describe.SLOT_KINDS, describe.SLOT_WIDTH, describe.SLOT_INIT

local function fail(where, fmt, ...)
  error(where .. ": " .. string.format(fmt, ...), 0)
end

-- What the slots hold before any data, copied in at each step.
local function slot_init(d)
  local init = ffi.new("double[?]", math.max(d.size, 1))
  local base = 0
  for k, kind in ipairs(SLOT_KINDS) do
    local width = SLOT_WIDTH[kind]
    for j = 0, d.counts[k] * width - 1 do init[base + j] = SLOT_INIT[kind][j % width + 1] end
    base = base + d.counts[k] * width
  end
  return init
end

-- A lone reduction that does not fit, even in stages: named where the script wrote it.
local function too_big(d, lone)
  local spec, views = d.specs[lone.spec] or {}, stage.views(lone.expr, math.huge)
  fail(spec.where or d.where, "%s needs more intermediate values than one kernel holds (LuaJIT allows 200 "
       .. "locals), even cut into stages of %d views (it reads %d): each subexpression used more than once "
       .. "takes one; write it with fewer of them, or split it over several reductions",
       spec.text or "this reduction", stage.VIEWS[#stage.VIEWS], views)
end

-- Kernels for `reductions` over `inputs`: one when its locals fit, else the
-- reductions split in halves; nil and the lone one that does not fit.
local function halves(d, p, reductions, inputs)
  local ok, run = pcall(kernel.build, reductions, inputs, p.patterns)
  if ok then
    kernel.warm(run, reductions, inputs, p.patterns)
    return { run }
  end
  if not tostring(run):find("intermediate values", 1, true) then fail(d.where, "luisa.every: %s", tostring(run)) end
  if #reductions == 1 then return nil, reductions[1] end
  local half = math.floor(#reductions / 2)
  local runs, lone = halves(d, p, { unpack(reductions, 1, half) }, inputs)
  if not runs then return nil, lone end
  local rest
  rest, lone = halves(d, p, { unpack(reductions, half + 1) }, inputs)
  if not rest then return nil, lone end
  for _, r in ipairs(rest) do runs[#runs + 1] = r end
  return runs
end

-- The kernels of pass p (its views' chunks and received pieces). A
-- reduction reading more views than a kernel holds (a coarsen's block, a
-- wide stencil) runs in stages (luisa.stage), fewer views each until they fit.
local function kernels(d, p, chunks, pieces)
  if not stage.wide(p.reductions) then
    local runs = halves(d, p, p.reductions, p.inputs)
    if runs then return runs end
  end
  local lone
  for _, views in ipairs(stage.VIEWS) do
    local run
    run, lone = stage.runner(p, chunks, pieces, views, function(reductions, inputs)
      return halves(d, p, reductions, inputs)
    end)
    if run then return { run } end
  end
  too_big(d, lone and lone.spec and lone or p.reductions[1])
end

-- Compiled callback i (description d, registration cb): what luisa.run runs.
local function bind_callback(d, cb, arrays, core)
  local id, input, output = core.reduction(d.counts)
  local c = { cb = cb, reduction = id, init = slot_init(d), size = d.size, specs = {}, fields = {}, outputs = {},
              acc = ffi.cast("double*", input), out = ffi.cast("double*", output), groups = {}, core = core }
  for j, s in ipairs(d.specs) do
    local spec = {}
    for k, v in pairs(s) do spec[k] = v end
    spec.fn = s.map and not s.assign and cb.stats[s.key].fn or nil
    c.specs[j] = spec
  end
  for j, out in ipairs(d.outputs) do
    if out.field then
      local spec = c.specs[out.field]
      local fin, fout = core.field(id, spec.out_count, spec.field_op)
      spec.field_in, spec.field_out = ffi.cast("double*", fin), ffi.cast("double*", fout)
      c.fields[#c.fields + 1] = spec
      c.outputs[j] = spec.field_in
    else
      c.outputs[j] = false   -- the pass's scratch buffer, below
    end
  end
  local buffers = (#d.sends > 0 or #d.recvs > 0) and core.exchange(id, d.index, d.sends, d.recvs) or {}
  local windows = {}
  for _, w in ipairs(d.windows) do windows[w.name] = core.window(w.name, w.depth) end

  for j, p in ipairs(d.passes) do
    local chunks, pieces = {}, {}
    for k, leaf in ipairs(p.leaves) do
      local a, dtype = arrays[leaf.name], p.inputs[k].dtype
      local received = p.received[k]
      local pointers, ctype = kernel.pointers(dtype, #received), kernel.ctype[dtype] .. "*"
      for n, r in ipairs(received) do
        pointers[n - 1] = ffi.cast(ctype, ffi.cast("char*", buffers[r.message]) + r.offset)
      end
      local versions = leaf.version > 0 and windows[leaf.name][leaf.version] or a.published
      chunks[k], pieces[k] = kernel.slots(dtype, versions), pointers
    end
    local g = { runs = kernels(d, p, chunks, pieces), chunks = chunks, pieces = pieces, nitems = #p.items, items = p.items,
                leaves = p.leaves, origin = p.origin, waits = p.waits, specs = {}, map = p.map and c.specs[p.map],
                arrays = arrays }
    for k, s in ipairs(p.specs) do g.specs[k] = c.specs[s] end
    if core.spilling and core.spilling() then   -- earlier versions it reads may be on disk: listed to bring back
      g.past = {}
      for _, leaf in ipairs(p.leaves) do
        if leaf.version > 0 then g.past[#g.past + 1] = leaf.name; g.past[#g.past + 1] = leaf.version end
      end
      if #g.past == 0 then g.past = nil end
    end
    g.geo = ffi.new("double[?]", #p.geo)
    for k = 1, #p.geo do g.geo[k - 1] = p.geo[k] end
    if p.scratch then   -- the kernel writes the expression here, the map's function reads it
      g.scratch = ffi.new("double[?]", math.max(1, p.scratch))
      c.outputs[p.output] = g.scratch
    end
    c.groups[j] = g
  end
  return c
end

-- What an assignment writes on this rank: per item, its chunk and the box
-- in the chunk's own coordinates (0-based lo, count n), so that the engine
-- can copy it into a later buffer (thread mode).
local function writes_of(c, arrays)
  local list = {}
  for _, g in ipairs(c.groups) do
    local target = arrays[g.leaves[1].name]
    for _, item in ipairs(g.items) do
      local chunk = item.sources[1].chunk
      local ch, lo, n = target.chunks[chunk + 1], {}, {}
      for d = 1, #item.lo do
        lo[d] = g.origin[d] + item.lo[d] - ch.offset[d]
        n[d] = item.hi[d] - item.lo[d] + 1
      end
      list[#list + 1] = { chunk = chunk, lo = lo, n = n }
    end
  end
  return list
end

-- bind(description, callbacks, arrays, core): the live plan of a
-- description of `callbacks` (luisa.registry's) over `arrays` on the engine
-- `core`. Returns { callbacks = {[i] = compiled callback}, registered =
-- {[callback] = i}, arrays, core, results }, results as luisa.plan.compile
-- gives them.
function M.bind(description, callbacks, arrays, core)
  local plan = { callbacks = {}, registered = {}, arrays = arrays, core = core,
                 results = { off = description.off } }
  for i, cb in ipairs(callbacks) do plan.registered[cb] = i end
  for i, d in ipairs(description.callbacks) do
    local ok, c = true, d.error
    if not d.error then ok, c = pcall(bind_callback, d, callbacks[i], arrays, core) end
    if ok and not d.error then
      plan.callbacks[i] = c
      plan.results[i] = { every = d.every, reduction = c.reduction, reads = d.reads, assigns = d.assign, fires = d.fires,
                          writes = d.assign and writes_of(c, arrays), passes = #d.passes,
                          fingerprint = d.fingerprint, where = d.where }
    else
      plan.results[i] = { error = tostring(c), where = d.where }
    end
  end
  return plan
end

return M
