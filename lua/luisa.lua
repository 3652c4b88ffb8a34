-- luisa: the module analysis scripts require.
-- Declares what to compute; nothing runs here: the engine compiles the
-- declarations into a per-rank plan at the first step and replays it.
local expr = require "luisa.expr"
expr.internal[debug.getinfo(1, "S").source] = true

local luisa = { version = "0.1.0" }

local ok, core = pcall(require, "luisa.core")   -- absent outside the engine
luisa.rank = ok and core.rank or 0
luisa.size = ok and core.size or 1

-- Registered callbacks, in registration order: the plan compiles them all.
luisa._callbacks = {}

luisa.array = expr.array
luisa.where = expr.where
luisa.window = expr.window
luisa.minimum = expr.minimum
luisa.maximum = expr.maximum
luisa.is_expr = expr.is_expr
luisa.is_reduction = expr.is_reduction

-- every(n, stats, fn): every n steps, evaluate the reductions in stats over
-- the whole distributed arrays and call fn(step, results) on the root, with
-- results holding plain numbers under the same keys.
function luisa.every(n, stats, fn)
  if type(n) ~= "number" or n < 1 or n > 2^31 - 1 or n % 1 ~= 0 then
    error("luisa.every: the period must be a whole number from 1 to 2^31-1, got " .. tostring(n), 2)
  end
  if type(stats) ~= "table" or expr.is_reduction(stats) then
    local hint = expr.is_reduction(stats) and " (name it: {x = " .. tostring(stats) .. "})" or ""
    error("luisa.every: stats must be a table of reductions, got "
          .. (hint ~= "" and "a reduction" or type(stats)) .. hint, 2)
  end
  if type(fn) ~= "function" then
    error("luisa.every: the callback must be a function, got " .. type(fn), 2)
  end
  local copy, count = {}, 0
  for k, v in pairs(stats) do
    if not expr.is_reduction(v) then
      local hint = expr.is_expr(v) and " (an array expression: reduce it, e.g. :mean())" or ""
      error(string.format("luisa.every: stats[%q] is a %s, not a reduction%s", tostring(k),
                          expr.is_expr(v) and "lazy array" or type(v), hint), 2)
    end
    copy[k] = v
    count = count + 1
  end
  if count == 0 then error("luisa.every: stats is empty", 2) end
  local cb = { every = n, stats = copy, fn = fn, where = expr.caller() }
  luisa._callbacks[#luisa._callbacks + 1] = cb
  return cb
end

-- This rank's figures: objects and bytes the store holds, bytes and messages
-- sent by planned transfers, plans built and kernels compiled.
function luisa.stats()
  local s = ok and core.stats() or { objects = 0, bytes_held = 0, bytes_moved = 0, transfers = 0 }
  s.plans = require("luisa.plan").builds
  s.kernels = require("luisa.kernel").compiled
  return s
end

return luisa
