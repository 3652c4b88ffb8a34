-- luisa.run: a live plan (luisa.bind) at each step: local kernels before the
-- engine's reductions, callbacks with their results after, then assignments.
local ffi = require "ffi"
local expr = require "luisa.expr"
local kernel = require "luisa.kernel"
local lower = require "luisa.lower"
local describe = require "luisa.describe"
expr.internal[debug.getinfo(1, "S").source] = true

local M = {}
local MAX_MESSAGE = describe.MAX_MESSAGE
local shape_text = lower.shape_text

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

-- A map's function over each of this rank's items of its expression; the
-- numbers it returns combine like the reduction named by spec.combine.
local function run_map(c, g)
  local spec = g.map
  local acc, s, fn = c.acc, spec.slot, spec.fn
  for _, item in ipairs(g.items) do
    local v = fn(checked(g.scratch + item.scratch, item.count, "luisa.map data"), item.shape, item.offset)
    if type(v) ~= "number" then
      error(string.format("luisa.map: the function must return a number, got %s", type(v)), 0)
    end
    if spec.combine == "sum" then acc[s] = acc[s] + v
    elseif spec.combine == "min" then if not (v >= acc[s]) and v == v then acc[s] = v end
    elseif not (v <= acc[s]) and v == v then acc[s] = v end
  end
end

-- Pass g over nitems of its items from the first-th (geo: theirs): nil,
-- or the item and input whose chunk was not published.
local function run_items(c, g, geo, nitems, first)
  local ready = true
  for _, w in ipairs(g.waits) do ready = ready and c.core.versions(w[1]) >= w[2] end
  local item, input
  if ready and g.past then c.core.restore(g.past) end
  if ready then
    for _, run in ipairs(g.runs) do
      item, input = run(c.acc, geo, nitems, g.chunks, g.pieces, c.outputs)
      if item then item = item + first; break end
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
  return item, input
end

-- Callback c's local work. phase "inner": what reads no received piece,
-- while the transfers are under way; "rim": the rest, once they are in
-- (see luisa.bind's split_items). The accumulators start at "inner".
local function run_callback(c, step, rank, phase, counts)
  local acc = c.acc
  if phase == "inner" then
    ffi.copy(acc, c.init, 8 * c.size)
    for _, spec in ipairs(c.fields) do
      ffi.fill(spec.field_in, 8 * spec.out_count)
      local init = spec.field_init
      if init ~= 0 then for k = 0, spec.out_count - 1 do spec.field_in[k] = init end end
    end
    c.pending = nil   -- specs whose earlier steps are not there yet, if any
  end
  for _, g in ipairs(c.groups) do
    local item, input, cells = nil, nil, 0
    if g.inner then
      local part = phase == "inner" and g.inner or g.rim
      item, input = run_items(c, g, part.geo, part.nitems, part.first)
      cells = part.cells
    elseif g.late == (phase == "rim") then
      item, input = run_items(c, g, g.geo, g.nitems, 0)
      cells = g.cells
    end
    if c.transfers and phase == "inner" then counts.overlapped = counts.overlapped + cells
    elseif c.transfers then counts.waited = counts.waited + cells end
    if item then
      local name = g.leaves[input].name
      local chunk = g.items[item + 1].sources[input].chunk
      local ch = g.arrays[name].chunks[chunk + 1]
      local ago = g.leaves[input].version
      local where = string.format("rank %d", rank)
      local from, its = c.core.origin(name, chunk)   -- ranks mode: say the simulation's numbers
      if from then chunk, where = its, string.format("simulation rank %d", from) end
      error(string.format("chunk %d of array %q (offset %s, shape %s) was not published on "
            .. "%s%s; luisa.every at %s needs it: call luisa_publish before luisa_step",
            chunk, name, shape_text(ch.offset), shape_text(ch.shape), where,
            ago > 0 and string.format(" %d step%s ago", ago, ago > 1 and "s" or "") or "", c.cb.where), 0)
    end
  end
end

-- The text of whatever a script raised: a table without __tostring says
-- so rather than show its address; a __tostring that fails is named.
local function message_of(err, core)
  local t = type(err)
  if err == "not enough memory" and core and core.refused then   -- say where
    local where = core.refused()
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

local function budget(plan, i)   -- the time budget restarts for callback i (1-based)
  if plan.core and plan.core.budget then plan.core.budget(i - 1) end
end

-- Local phase of the due callbacks (indices); counts.runs counts them.
-- Returns nil, or a table index -> message for those that failed on this rank.
function M.run_local(plan, step, due, rank, counts, phase)
  local failures
  for _, i in ipairs(due) do
    if phase == "inner" then counts.runs = counts.runs + 1 end
    budget(plan, i)
    local ok, err = pcall(run_callback, plan.callbacks[i], step, rank, phase, counts)
    if not ok then
      failures = failures or {}
      failures[i] = message_of(err, plan.core)
    end
  end
  return failures
end

-- The traceback of a failed callback, without the engine's own frames.
local function traceback_of(plan)
  plan.traceback = plan.traceback or function(msg)
    local tb = debug.traceback(message_of(msg, plan.core), 2)   -- not a tail call: level 2 is the failing function
    return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
  end
  return plan.traceback
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

-- An array delivered to a callback: shape, C-order data, at(i, j, ...).
local Field = {}
Field.__index = Field
function Field:at(...)
  local k = 0
  for d = 1, #self.shape do k = k * self.shape[d] + select(d, ...) end
  return self.data[k]
end

-- The user's value of a reduction from the combined slots.
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
-- results; the callbacks a trigger fired are added to `fired`. Returns nil,
-- or a table index -> message for those that failed.
function M.deliver(plan, step, due, fired)
  local failures
  local traceback = traceback_of(plan)
  for _, i in ipairs(due) do
    local c = plan.callbacks[i]
    local results, pending = {}, c.pending or NONE
    for _, spec in ipairs(c.specs) do
      if not pending[spec] and not spec.assign then results[spec.key] = value_of(spec, c.out) end   -- nil: not yet
    end
    budget(plan, i)
    local ok, err = xpcall(c.cb.fn, traceback, step, results)
    if ok and err and c.cb.fires == err then   -- a trigger said yes
      fired[#fired + 1] = plan.registered[err]
    end
    if not ok then
      failures = failures or {}
      failures[i] = "luisa.every callback (registered at " .. c.cb.where .. ") failed: " .. message_of(err, plan.core)
    end
  end
  return failures
end

-- fetch(plan, name, offset, shape, version): any box of an array as
-- published at this step (or `version` steps ago), read from its owners on
-- demand. Only in a callback on the root, where the owners serve while they
-- wait. Errors name the script's line: level 4, past luisa.plan.fetch and
-- luisa.fetch.
local LEVEL = 4

-- A value as an error message shows it: NaN without its sign, strings quoted.
local function shown(v)
  if type(v) == "number" then return v ~= v and "nan" or tostring(v) end
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

local function whole(v)   -- a whole number: not NaN, not infinite, not fractional
  return type(v) == "number" and v == v and v > -math.huge and v < math.huge and v % 1 == 0
end

function M.fetch(plan, name, offset, shape, version)
  local a = plan.arrays and plan.arrays[name]
  if not a then error(string.format("luisa.fetch: no array named %q", tostring(name)), LEVEL) end
  if type(offset) ~= "table" or type(shape) ~= "table" or #offset ~= a.ndim or #shape ~= a.ndim then
    error(string.format("luisa.fetch(%q, offset, shape): offset and shape need %d numbers each", name, a.ndim), LEVEL)
  end
  local ok, why = pcall(lower.check_exact, name, a, "")
  if not ok then error("luisa.fetch" .. tostring(why):gsub("^: ", ": "), LEVEL) end
  for d = 1, a.ndim do
    if not whole(offset[d]) then
      error(string.format("luisa.fetch(%q): the offset on axis %d must be a whole number, got %s", name, d - 1,
                          shown(offset[d])), LEVEL)
    end
    if not whole(shape[d]) or shape[d] < 1 then
      error(string.format("luisa.fetch(%q): the shape on axis %d must be a whole number >= 1, got %s", name, d - 1,
                          shown(shape[d])), LEVEL)
    end
  end
  local n = 1
  for d = 1, a.ndim do
    if offset[d] < 0 or offset[d] + shape[d] > a.shape[d] then
      error(string.format("luisa.fetch(%q): the box at %s of shape %s is outside the array's shape %s", name,
                          shape_text(offset), shape_text(shape), shape_text(a.shape)), LEVEL)
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
                          lower.num(m * size), MAX_MESSAGE), LEVEL)
    end
    if m > 0 then parts[#parts + 1] = { box = box, lo = lo, count = count, m = m } end
  end
  local core = plan.core
  if version > 0 and core.versions(name) < version then return nil end
  local data = ffi.new("double[?]", n)
  local stride, s = {}, 1
  for d = a.ndim, 1, -1 do stride[d], s = s, s * shape[d] end
  for _, p in ipairs(parts) do
    local box, lo, count = p.box, p.lo, p.count
    local part = ffi.new("double[?]", p.m)
    if not core.fetch(name, version, box.owner, box.chunk, lo, count, part) then
      error(string.format("luisa.fetch(%q): chunk %d on rank %d was not published%s", name, box.chunk,
                          box.owner, version > 0 and " at that step" or ""), LEVEL)
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
function M.commit(plan, step, due)
  for _, i in ipairs(due) do
    local c = plan.callbacks[i]
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

return M
