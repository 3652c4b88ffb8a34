-- luisa: the module analysis scripts require.
-- Declares what to compute; nothing runs here: the engine compiles the
-- declarations into a per-rank plan at the first step and replays it.
local expr = require "luisa.expr"
local registry = require "luisa.registry"
expr.internal[debug.getinfo(1, "S").source] = true

local luisa = { version = "0.1.0" }

local ok, core = pcall(require, "luisa.core")   -- absent outside the engine
luisa.rank = ok and core.rank or 0
luisa.size = ok and core.size or 1

-- Registered callbacks, in registration order: the plan compiles them all.
luisa._callbacks = registry.callbacks

-- Kept when the script is reloaded: plain values (numbers, strings,
-- booleans, tables of them, FFI arrays of numbers) are copied into the new
-- version's luisa.state; everything else in the script starts fresh.
luisa.state = {}

luisa.array = expr.array
luisa.where = expr.where
luisa.window = expr.window
luisa.region = expr.region
luisa.map = expr.map
luisa.minimum = expr.minimum
luisa.maximum = expr.maximum
luisa.is_expr = expr.is_expr
luisa.is_reduction = expr.is_reduction

local function check_stats(stats, what)
  if type(stats) ~= "table" or expr.is_reduction(stats) then
    local hint = expr.is_reduction(stats) and " (name it: {x = " .. tostring(stats) .. "})" or ""
    error(what .. ": stats must be a table of reductions, got "
          .. (hint ~= "" and "a reduction" or type(stats)) .. hint, 3)
  end
  local copy, count = {}, 0
  for k, v in pairs(stats) do
    if not expr.is_reduction(v) then
      local hint = expr.is_expr(v) and " (an array expression: reduce it, e.g. :mean())" or ""
      error(string.format("%s: stats[%q] is a %s, not a reduction%s", what, tostring(k),
                          expr.is_expr(v) and "lazy array" or type(v), hint), 3)
    end
    copy[k] = v
    count = count + 1
  end
  if count == 0 then error(what .. ": stats is empty", 3) end
  return copy
end

local function check_period(n, what)
  if type(n) ~= "number" or n < 1 or n > 2^31 - 1 or n % 1 ~= 0 then
    error(what .. ": the period must be a whole number from 1 to 2^31-1, got " .. tostring(n), 3)
  end
end

-- After luisa.off() the script registers nothing (see luisa.off).
local function check_on(what)
  if registry.off then
    error(what .. ": the script called luisa.off() at " .. registry.off .. ": it registers no analysis", 3)
  end
end

local function check_function(fn, what, name)
  if type(fn) ~= "function" then error(what .. ": " .. name .. " must be a function, got " .. type(fn), 3) end
end

-- every(n, stats, fn): every n steps, evaluate the reductions in stats over
-- the whole distributed arrays and call fn(step, results) on the root, with
-- results holding plain numbers under the same keys.
function luisa.every(n, stats, fn)
  check_on("luisa.every")
  check_period(n, "luisa.every")
  stats = check_stats(stats, "luisa.every")
  check_function(fn, "luisa.every", "the callback")
  local cb = { every = n, stats = stats, fn = fn, where = expr.caller() }
  luisa._callbacks[#luisa._callbacks + 1] = cb
  return cb
end

-- assign(name, expr[, n]): every n steps (default 1), write expr into the
-- simulation's array `name` (registered with luisa_field_writable): the
-- values are computed from this step's data and written on every rank after
-- the step's analytics, before luisa_step returns; ghost cells untouched.
function luisa.assign(name, e, n)
  check_on("luisa.assign")
  if type(name) ~= "string" then error("luisa.assign: the array name must be a string, got " .. type(name), 2) end
  if not expr.is_expr(e) then
    e = type(e) == "number" and (expr.array(name) * 0 + e) or nil
    if not e then error("luisa.assign(" .. name .. ", e): e must be an array expression or a number", 2) end
  end
  check_period(n or 1, "luisa.assign")
  local cb = { every = n or 1, stats = {}, fn = function() end, where = expr.caller(),
               assign = { name = name, expr = e } }
  luisa._callbacks[#luisa._callbacks + 1] = cb
  return cb
end

-- trigger{every = n, check = {cheap reductions}, when = function(c) -> bool,
--         stats = {expensive reductions}, run = function(step, r, c)}:
-- every n steps the cheap reductions are computed and when(c) decides, on
-- the root; where it says yes, the expensive ones are computed at the same
-- step, on every rank, and run(step, r, c) gets both. Elsewhere they cost
-- nothing.
function luisa.trigger(t)
  local what = "luisa.trigger"
  check_on(what)
  if type(t) ~= "table" then error(what .. ": expected a table {every, check, when, stats, run}", 2) end
  check_period(t.every or 1, what)
  local check = check_stats(t.check, what .. " check")
  local stats = check_stats(t.stats, what)
  check_function(t.when, what, "when")
  check_function(t.run, what, "run")
  local where = expr.caller()
  local last_check
  local fire = { every = 0, stats = stats, where = where,
                 fn = function(step, r) return t.run(step, r, last_check) end }
  local test = { every = t.every or 1, stats = check, where = where, fires = fire,
                 fn = function(_, c)
                   last_check = c
                   return t.when(c) and fire or nil
                 end }
  luisa._callbacks[#luisa._callbacks + 1] = test
  luisa._callbacks[#luisa._callbacks + 1] = fire
  return test
end

-- off(): this version of the script analyses nothing, on purpose. A reload
-- to a script that registers no callback is refused, as an empty file saved
-- by mistake would silently end the analysis; one that calls luisa.off()
-- is taken, and a later reload can bring the analysis back.
function luisa.off()
  if #luisa._callbacks > 0 then
    error("luisa.off: the script already registered a callback (at " .. luisa._callbacks[1].where
          .. "): luisa.off() says it analyses nothing", 2)
  end
  registry.off = expr.caller()
end

-- fetch(name, offset, shape[, k]): inside a callback, any box of an array
-- (0-based offset and shape) as published at this step, or k steps ago
-- when a statistic keeps that many (T:prev(k)); read on demand from the
-- ranks that own it. Gives {shape, data, n, at} like gather(); nil while
-- the k-th earlier step does not exist yet.
function luisa.fetch(name, offset, shape, k)
  -- a window keeps at most 1000 earlier steps (T:prev(1000), luisa.window(T, 1001))
  if k ~= nil and (type(k) ~= "number" or not (k >= 0 and k <= 1000) or k % 1 ~= 0) then
    error("luisa.fetch: k must be a whole number from 0 to 1000, got " .. (k ~= k and "nan" or tostring(k)), 2)
  end
  local box = require("luisa.plan").fetch(name, offset, shape, k or 0)
  return box   -- not a tail call: the plan's errors name the line calling luisa.fetch (level 3)
end

-- Steering. luisa.param.NAME: the current value of a parameter the
-- simulation registered; luisa.bounds.NAME: {min, max} or the allowed
-- values. In a callback, luisa.set(NAME, value) changes it on every rank
-- before this step ends (the simulation sees it from the next step) and
-- luisa.stop(reason) makes luisa_step return LUISA_STOP on every rank.
local function need_core(what)
  if not ok then error(what .. ": only inside the engine", 3) end
end

luisa.param = setmetatable({}, {
  __index = function(_, name)
    need_core("luisa.param")
    local found, value = pcall(core.param, name)
    if not found then error("luisa.param." .. tostring(name) .. ": " .. tostring(value), 2) end
    return value
  end,
  __newindex = function(_, name)
    error("luisa.param is read-only: change " .. tostring(name) .. " with luisa.set(name, value)", 2)
  end,
})

luisa.bounds = setmetatable({}, {
  __index = function(_, name)
    need_core("luisa.bounds")
    local found, bounds = pcall(core.bounds, name)
    if not found then error("luisa.bounds." .. tostring(name) .. ": " .. tostring(bounds), 2) end
    return bounds
  end,
})

function luisa.set(name, value)
  need_core("luisa.set")
  local done, refused = pcall(core.set, name, value)
  if not done then error(tostring(refused), 2) end
  if refused then error(refused .. " (" .. tostring(name) .. " keeps its value)", 2) end
end

-- period(cb, n): in a callback, make the callback cb (what luisa.every
-- returned) run every n steps from the next step on, on every rank. A
-- trigger's handle changes how often its check runs.
function luisa.period(cb, n)
  need_core("luisa.period")
  check_period(n, "luisa.period")
  local i = require("luisa.plan").index_of(cb)
  if not i then error("luisa.period: the first argument must be what luisa.every returned", 2) end
  local done, err = pcall(core.period, i - 1, n)
  if not done then error(tostring(err), 2) end
end

-- move(region, r0, r1, ...): in a callback, give a region (what
-- luisa.region returned) new ranges, as for a slice; from the next step on,
-- on every rank, its statistics and luisa_wants follow them (the plan is
-- compiled again, unless the ranges are the same). Ranges out of bounds are
-- refused here.
function luisa.move(region, ...)
  need_core("luisa.move")
  if type(region) ~= "table" or not region.region then
    error("luisa.move: the first argument must be what luisa.region returned", 2)
  end
  local plan = require "luisa.plan"
  local text, err = plan.region_text(region, ...)
  if not text then error("luisa.move: " .. err, 2) end
  if text == plan.region_text(region, unpack(region.ranges, 1, region.naxes)) then return end  -- no recompile
  local done, why = pcall(core.move, region.region, text)
  if not done then error(tostring(why), 2) end
end

function luisa.stop(reason)
  need_core("luisa.stop")
  local done, err = pcall(core.stop, reason ~= nil and tostring(reason) or nil)
  if not done then error(tostring(err), 2) end
end

-- This rank's figures: objects and bytes the store holds, bytes and messages
-- sent by planned transfers, plans built, kernels compiled, callbacks run.
function luisa.stats()
  local s = ok and core.stats() or { objects = 0, bytes_held = 0, bytes_moved = 0, transfers = 0 }
  s.plans = require("luisa.plan").builds
  s.runs = require("luisa.plan").runs
  -- elements of callbacks with planned transfers computed while they were
  -- under way, and after they were in (what reads the pieces received)
  s.overlapped, s.waited = require("luisa.plan").overlapped, require("luisa.plan").waited
  s.kernels = require("luisa.kernel").compiled
  return s
end

return luisa
