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
  local spec, views = d.specs[lone.spec] or {}, stage.views(lone.expr)
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
    if run then return { run }, true end
  end
  too_big(d, lone and lone.spec and lone or p.reductions[1])
end

-- Pass p's items that read received pieces (the rim) moved after the
-- others, each part in plan order, so that the others can run while the
-- transfers are under way (engine/round.c) and the additions come in the
-- same order whether the pass runs in two parts or whole (a map, a staged
-- pass). Returns how many items read no piece.
local function rim_last(p)
  local W, IT, IW, n = kernel.geometry_width(#p.inputs), kernel.ITEM_WORDS, kernel.INPUT_WORDS, #p.items
  local inner, rim, unit, reads_piece, open = {}, {}, {}, false, {}
  for c = 0, n - 1 do
    for k = 0, #p.inputs - 1 do reads_piece = reads_piece or p.geo[c * W + IT + IW * k + 1] < 0 end
    unit[#unit + 1] = c
    -- A fused part's own item may span several of ours (its sums fold at
    -- its begin and finish, luisa.kernel): they move together.
    local pattern = p.patterns and p.patterns[p.geo[c * W + 10]]
    for part, f in pairs(pattern or {}) do
      if f.begin then open[part] = true end
      if f.finish then open[part] = nil end
    end
    if next(open) == nil then
      for _, u in ipairs(unit) do table.insert(reads_piece and rim or inner, u) end
      unit, reads_piece = {}, false
    end
  end
  for _, u in ipairs(unit) do table.insert(rim, u) end   -- an own item left open: never split
  local items, geo = {}, {}
  for _, list in ipairs { inner, rim } do
    for _, c in ipairs(list) do
      items[#items + 1] = p.items[c + 1]
      for w = 1, W do geo[#geo + 1] = p.geo[c * W + w] end
    end
  end
  p.items, p.geo = items, geo
  return #inner
end

-- Pass g's two parts once rim_last put its first `inner` items first:
-- late = whether it waits for the transfers, inner and rim = { geo,
-- nitems, first = the part's first item, cells } when it runs in two. A
-- map or staged pass reads its whole expression at once: late whole.
local function split_items(g, ninputs, inner, whole)
  local W = kernel.geometry_width(ninputs)
  local function cells(from, to)   -- extents are geometry words 0 to 3
    local n = 0
    for c = from, to - 1 do n = n + g.geo[c * W] * g.geo[c * W + 1] * g.geo[c * W + 2] * g.geo[c * W + 3] end
    return n
  end
  g.cells = cells(0, g.nitems)
  if inner == g.nitems or whole or inner == 0 then return inner < g.nitems end
  return true, { geo = g.geo, nitems = inner, first = 0, cells = cells(0, inner) },
         { geo = g.geo + inner * W, nitems = g.nitems - inner, first = inner, cells = cells(inner, g.nitems) }
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
  c.transfers = #d.sends > 0 or #d.recvs > 0
  local buffers = c.transfers and core.exchange(id, d.index, d.sends, d.recvs) or {}
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
    local inner = c.transfers and rim_last(p) or #p.items
    local runs, staged = kernels(d, p, chunks, pieces)
    local g = { runs = runs, chunks = chunks, pieces = pieces, nitems = #p.items, items = p.items,
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
    g.late, g.inner, g.rim = split_items(g, #p.inputs, inner, staged or g.map)
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
