-- luisa.plan: the engine's entry points (engine/script.c). Holds this rank's
-- current plan: described (luisa.describe), bound (luisa.bind), run (luisa.run).
local expr = require "luisa.expr"
local lower = require "luisa.lower"
local registry = require "luisa.registry"
local describe = require "luisa.describe"
local bind = require "luisa.bind"
local run = require "luisa.run"
expr.internal[debug.getinfo(1, "S").source] = true

local M = { builds = 0, runs = 0, overlapped = 0, waited = 0 }   -- plans built, callbacks evaluated on this rank; see luisa.stats
local current = { callbacks = {}, registered = {} }   -- the live plan (luisa.bind), none compiled yet
local fired = {}   -- indices of callbacks triggers fired this round

-- Compile every registered callback. Returns one entry per callback:
-- { every = n, reduction = id, reads = {[array] = {[chunk + 1] = true}},
-- assigns = whether it writes an array, passes = kernel passes over memory
-- per step, fingerprint = 16 hex digits (luisa.fingerprint), where =
-- "file:line" of its registration } or { error = "file:line: message",
-- where = ... }; and off = true when the script called luisa.off().
function M.compile(arrays, core)
  M.builds = M.builds + 1
  local writable = {}   -- the arrays assignments target, as far as the simulation allows
  for _, cb in ipairs(registry.callbacks) do
    local name = cb.assign and cb.assign.name
    if name and arrays[name] and writable[name] == nil then writable[name] = core.writable(name) and true end
  end
  local facts = { rank = core.rank, size = core.size, writable = writable }
  local description = describe.describe(registry.callbacks, registry.off, arrays, facts)
  current = bind.bind(description, registry.callbacks, arrays, core)
  return current.results
end

-- Local work of the due callbacks (indices), in two phases around the
-- planned transfers (engine/round.c), or both at once. Returns nil, or a
-- table index -> message for those that failed on this rank.
function M.run_inner(step, due, rank) return run.run_local(current, step, due, rank, M, "inner") end
function M.run_rim(step, due, rank) return run.run_local(current, step, due, rank, M, "rim") end
function M.run_local(step, due, rank)
  local failures = run.run_local(current, step, due, rank, M, "inner")
  local rest, still = {}, {}
  for _, i in ipairs(due) do if not (failures and failures[i]) then rest[#rest + 1] = i end end
  for i, why in pairs(run.run_local(current, step, rest, rank, M, "rim") or still) do
    failures = failures or {}
    failures[i] = why
  end
  return failures
end

-- On the root, after the reductions: call each due callback with its
-- results. Returns nil, or a table index -> message for those that failed.
function M.deliver(step, due) return run.deliver(current, step, due, fired) end

-- After the verdict, on every rank: the due callbacks' assignments.
function M.commit(step, due) return run.commit(current, step, due) end

-- What luisa.fetch reads (see luisa.run).
function M.fetch(name, offset, shape, version)
  local box = run.fetch(current, name, offset, shape, version)
  return box   -- not a tail call: run.fetch's errors name the script's line, a fixed level up
end

-- The index of a registered callback (1-based), or nil.
function M.index_of(cb) return current.registered[cb] end

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
function M.snapshot() return current end

function M.restore(plan)
  if type(plan) ~= "table" then error("luisa.plan.restore: no plan was kept", 0) end
  current = plan
end

-- The callbacks triggers fired since the last call (on the root).
function M.take_fired()
  local list = fired
  if #list > 0 then fired = {} end
  return list
end

return M
