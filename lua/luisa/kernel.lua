-- luisa.kernel: fuses elementwise chains and their reductions into one
-- generated Lua function per group of chunks, compiled once by LuaJIT.
local ffi = require "ffi"
local expr = require "luisa.expr"
expr.internal[debug.getinfo(1, "S").source] = true

local M = { compiled = 0 }   -- kernels compiled since the state was made

M.ctype = { f64 = "double", f32 = "float", i64 = "int64_t", i32 = "int32_t" }

-- Words per chunk in the geometry table: 4 extents, then per input the
-- element index of its first element and 4 strides.
function M.geometry_width(ninputs) return 4 + 5 * ninputs end

local function literal(v)
  if v ~= v then return "(0/0)" end
  if v == math.huge then return "(1/0)" end
  if v == -math.huge then return "(-1/0)" end
  return string.format("%.17g", v)
end

local unary = {
  neg = "(-%s)", abs = "abs(%s)", sqrt = "sqrt(%s)", exp = "exp(%s)", log = "log(%s)",
  floor = "floor(%s)", ceil = "ceil(%s)",
}

-- LuaJIT allows 200 live locals per function; the loops and inputs take
-- some, accumulators and shared subexpressions the rest.
local MAX_LOCALS = 190
local MAX_DEPTH = 24   -- deeper inline expressions are split with a local

-- Canonical text of each node, so equal subexpressions are computed once.
local function keys_of(reductions)
  local keys = {}
  local function key(e)
    if keys[e] then return keys[e] end
    local k
    if e.kind == "array" then k = "A" .. e.name
    elseif e.kind == "const" then k = "C" .. literal(e.value)
    else k = e.op .. "(" .. key(e.a) .. (e.b and "," .. key(e.b) or "") .. ")" end
    keys[e] = k
    return k
  end
  for _, r in ipairs(reductions) do key(r.expr) end
  return keys
end

-- Source of a kernel over `inputs` ({name=, dtype=}) computing `reductions`
-- ({kind = "sum"|"min"|"max", expr = e, slot = acc index}).
function M.source(reductions, inputs)
  local input_index = {}
  for i, input in ipairs(inputs) do input_index[input.name] = i end
  local keys = keys_of(reductions)

  -- Subexpressions used more than once get a local; the others are inlined.
  local uses = {}
  local function count(e)
    if e.kind == "const" or e.kind == "array" then return end
    local k = keys[e]
    uses[k] = (uses[k] or 0) + 1
    if uses[k] == 1 then
      if e.a then count(e.a) end
      if e.b then count(e.b) end
    end
  end
  for _, r in ipairs(reductions) do count(r.expr) end

  local body, temps, nlocals = {}, {}, #reductions + 8 * #inputs + 30
  local function bind(k, code)
    nlocals = nlocals + 1
    if nlocals > MAX_LOCALS then
      error(string.format("the expressions of this callback need more than %d intermediate values "
                          .. "in one kernel: split them over several callbacks", MAX_LOCALS), 0)
    end
    local name = "t" .. #body + 1
    body[#body + 1] = string.format("          local %s = %s", name, code)
    temps[k] = name
    return name, 0
  end
  -- Returns the code of e and how deeply it nests.
  local function gen(e)
    if e.kind == "const" then return literal(e.value), 0 end
    if e.kind == "array" then return "x" .. input_index[e.name], 0 end
    local k = keys[e]
    if temps[k] then return temps[k], 0 end
    local a, da = gen(e.a)
    local b, db = "", 0
    if e.b then b, db = gen(e.b) end
    local code
    if e.kind == "unary" then
      code = string.format(unary[e.op], a)
    elseif e.kind == "compare" then
      code = string.format("((%s %s %s) and 1 or 0)", a, e.op, b)
    else
      code = string.format("(%s %s %s)", a, e.op, b)
    end
    local depth = 1 + math.max(da, db)
    if uses[k] > 1 or depth >= MAX_DEPTH then return bind(k, code) end
    return code, depth
  end

  local accs, slots, update = {}, {}, {}
  for i, r in ipairs(reductions) do
    local v, acc = gen(r.expr), "r" .. i
    accs[i], slots[i] = acc, "acc[" .. r.slot .. "]"
    if r.kind == "sum" then
      update[#update + 1] = string.format("          %s = %s + %s", acc, acc, v)
    else
      if not v:match("^[%w_]+$") then v = bind("R" .. i, v) end   -- compared, then stored
      -- a NaN never wins a comparison: min and max skip it
      update[#update + 1] = string.format("          if %s %s %s then %s = %s end", v,
                                          r.kind == "min" and "<" or ">", acc, acc, v)
    end
  end

  local src = {}
  local function add(fmt, ...) src[#src + 1] = string.format(fmt, ...) end
  local params, nilchecks, loads, offsets, fields = {}, {}, {}, {}, {}
  local W = M.geometry_width(#inputs)
  for i, input in ipairs(inputs) do
    params[#params + 1] = "s" .. i
    nilchecks[#nilchecks + 1] = string.format("    local q%d = s%d[c]\n    if q%d == nil then return c, %d end", i, i, i, i)
    local base = 4 + 5 * (i - 1)
    fields[#fields + 1] = string.format(
      "    local f%d, a%d, b%d, c%d, d%d = g[%d], g[%d], g[%d], g[%d], g[%d]",
      i, i, i, i, i, base, base + 1, base + 2, base + 3, base + 4)
    offsets[#offsets + 1] = string.format("        local o%d = f%d + i0 * a%d + i1 * b%d + i2 * c%d", i, i, i, i, i)
    local load = string.format("q%d[o%d + i3 * d%d]", i, i, i)
    if input.dtype == "i64" then load = "tonumber(" .. load .. ")" end
    loads[#loads + 1] = string.format("          local x%d = %s", i, load)
  end
  add("-- generated by luisa.kernel")
  add("local abs, sqrt, exp, log, floor, ceil = math.abs, math.sqrt, math.exp, math.log, math.floor, math.ceil")
  add("return function(acc, geo, nchunks, %s)", table.concat(params, ", "))
  add("  local %s = %s", table.concat(accs, ", "), table.concat(slots, ", "))
  add("  for c = 0, nchunks - 1 do")
  add("%s", table.concat(nilchecks, "\n"))
  add("    local g = geo + c * %d", W)
  add("    local n0, n1, n2, n3 = g[0], g[1], g[2], g[3]")
  add("%s", table.concat(fields, "\n"))
  add("    for i0 = 0, n0 - 1 do")
  add("      for i1 = 0, n1 - 1 do")
  add("      for i2 = 0, n2 - 1 do")
  add("%s", table.concat(offsets, "\n"))
  add("        for i3 = 0, n3 - 1 do")
  add("%s", table.concat(loads, "\n"))
  if #body > 0 then add("%s", table.concat(body, "\n")) end
  add("%s", table.concat(update, "\n"))
  add("        end")
  add("      end")
  add("      end")
  add("    end")
  add("  end")
  add("  %s = %s", table.concat(slots, ", "), table.concat(accs, ", "))
  add("end")
  return table.concat(src, "\n")
end

-- Compile the kernel; returns the function and its source.
function M.build(reductions, inputs)
  local src = M.source(reductions, inputs)
  local chunk, err = loadstring(src, "=luisa kernel")
  if not chunk then error("luisa internal error: generated kernel does not compile: " .. err .. "\n" .. src, 0) end
  M.compiled = M.compiled + 1
  return chunk(), src
end

-- Typed views of the engine's table of published pointers, per dtype.
function M.slots(dtype, pointer)
  return ffi.cast(M.ctype[dtype] .. "**", pointer)
end

return M
