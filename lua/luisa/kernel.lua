-- luisa.kernel: fuses elementwise chains and their reductions into one
-- generated Lua function per group of chunks, compiled once by LuaJIT.
local ffi = require "ffi"
local expr = require "luisa.expr"
expr.internal[debug.getinfo(1, "S").source] = true

local M = { compiled = 0 }   -- kernels compiled since the state was made

M.ctype = { f64 = "double", f32 = "float", i64 = "int64_t", i32 = "int32_t" }

-- Words per work item in the geometry table: 4 extents, the result's linear
-- index of the item's first element and the result's 4 strides, then per
-- input: its source (>= 0: that published chunk; < 0: received piece -src-1),
-- the element index of its first element and 4 strides. Axes in loop order.
local ITEM_WORDS, INPUT_WORDS = 9, 6
function M.geometry_width(ninputs) return ITEM_WORDS + INPUT_WORDS * ninputs end
M.ITEM_WORDS, M.INPUT_WORDS = ITEM_WORDS, INPUT_WORDS

local function literal(v)
  if v ~= v then return "(0/0)" end
  if v == math.huge then return "(1/0)" end
  if v == -math.huge then return "(-1/0)" end
  return string.format("%.17g", v)
end

local unary = {
  neg = "(-%s)", cast_f64 = "%s", cast_f32 = "tonumber(cast_float(%s))",
  cast_i64 = "trunc(%s)", cast_i32 = "trunc(%s)",
}
for _, fn in ipairs(expr.functions) do unary[fn] = fn .. "(%s)" end

local PRELUDE = [[
local ffi = require "ffi"
local floor, ceil, min, max = math.floor, math.ceil, math.min, math.max
local abs, sqrt, exp, log, log10 = math.abs, math.sqrt, math.exp, math.log, math.log10
local sin, cos, tan, asin, acos, atan = math.sin, math.cos, math.tan, math.asin, math.acos, math.atan
local sinh, cosh, tanh = math.sinh, math.cosh, math.tanh
local float = ffi.typeof("float")
local function cast_float(x) return ffi.cast(float, x) end
local function trunc(x) if x >= 0 then return floor(x) end return ceil(x) end]]

-- LuaJIT allows 200 live locals per function; the loops and inputs take
-- some, accumulators and shared subexpressions the rest.
local MAX_LOCALS = 190
local MAX_DEPTH = 24   -- deeper inline expressions are split with a local

-- Accumulator locals each kernel kind keeps.
local ACC_LOCALS = { sum = 1, sumsq = 1, min = 1, max = 1, argmin = 2, argmax = 2, moments = 6, histogram = 0,
                     fsum = 1, fmin = 1, fmax = 1, fset = 1 }
function M.locals_of(kind) return ACC_LOCALS[kind] end

-- Every node of the reductions' trees.
local function keys_nodes(reductions)
  local nodes, seen = {}, {}
  local function go(n)
    if seen[n] then return end
    seen[n] = true
    nodes[#nodes + 1] = n
    if n.a then go(n.a) end
    if n.b then go(n.b) end
    if n.c then go(n.c) end
  end
  for _, r in ipairs(reductions) do go(r.expr) end
  return nodes
end

-- Canonical text of each node, so equal subexpressions are computed once.
local function keys_of(reductions)
  local keys = {}
  local function key(e)
    if keys[e] then return keys[e] end
    local k
    if e.kind == "leaf" then k = e.key
    elseif e.kind == "const" then k = "C" .. literal(e.value)
    elseif e.kind == "where" then k = "where(" .. key(e.c) .. "," .. key(e.a) .. "," .. key(e.b) .. ")"
    else k = e.op .. "(" .. key(e.a) .. (e.b and "," .. key(e.b) or "") .. ")" end
    keys[e] = k
    return k
  end
  for _, r in ipairs(reductions) do key(r.expr) end
  return keys
end

-- Source of a kernel over `inputs` ({key=, dtype=}: views, see luisa.lower) computing `reductions`
-- ({kind = "sum"|"sumsq"|"min"|"max"|"argmin"|"argmax"|"moments"|"histogram",
-- expr = e, slot = index in acc; histogram: bins, lo, hi}).
function M.source(reductions, inputs)
  local input_index = {}
  for i, input in ipairs(inputs) do input_index[input.key] = i end
  local keys = keys_of(reductions)

  -- Subexpressions used more than once get a local; the others are inlined.
  local uses = {}
  local function count(e)
    if e.kind == "const" or e.kind == "leaf" then return end
    local k = keys[e]
    uses[k] = (uses[k] or 0) + 1
    if uses[k] == 1 then
      if e.a then count(e.a) end
      if e.b then count(e.b) end
      if e.c then count(e.c) end
    end
  end
  for _, r in ipairs(reductions) do count(r.expr) end

  -- Only the inputs these reductions read get locals (4 each).
  local used, nused = {}, 0
  for _, e in pairs(keys_nodes(reductions)) do
    if e.kind == "leaf" and not used[input_index[e.key]] then
      used[input_index[e.key]] = true
      nused = nused + 1
    end
  end
  local body, temps, nlocals = {}, {}, 4 * nused + 26
  for _, r in ipairs(reductions) do nlocals = nlocals + ACC_LOCALS[r.kind] end
  local function bind(k, code)
    nlocals = nlocals + 1
    if nlocals > MAX_LOCALS then
      error(string.format("the expressions of this callback need more than %d intermediate values "
                          .. "in one kernel: split them over several callbacks", MAX_LOCALS), 0)
    end
    local name = "t" .. #body + 1
    body[#body + 1] = string.format("local %s = %s", name, code)
    temps[k] = name
    return name, 0
  end
  -- Returns the code of e and how deeply it nests.
  local function gen(e)
    if e.kind == "const" then return literal(e.value), 0 end
    if e.kind == "leaf" then return "x" .. input_index[e.key], 0 end
    local k = keys[e]
    if temps[k] then return temps[k], 0 end
    local a, da = gen(e.a)
    local b, db, c, dc = "", 0, "", 0
    if e.b then b, db = gen(e.b) end
    if e.c then c, dc = gen(e.c) end
    local code
    if e.kind == "unary" then
      code = string.format(unary[e.op], a)
    elseif e.kind == "compare" then
      code = string.format("((%s %s %s) and 1 or 0)", a, e.op, b)
    elseif e.kind == "where" then
      code = string.format("((%s ~= 0) and %s or %s)", c, a, b)
    elseif e.op == "min" or e.op == "max" then
      code = string.format("%s(%s, %s)", e.op, a, b)
    else
      code = string.format("(%s %s %s)", a, e.op, b)
    end
    local depth = 1 + math.max(da, db, dc)
    if uses[k] > 1 or depth >= MAX_DEPTH then return bind(k, code) end
    return code, depth
  end

  -- Per reduction: locals, their start and end of kernel, the update per
  -- element, and for moments the per-chunk shift and fold.
  local decl, load_acc, store_acc, update = {}, {}, {}, {}
  local shifts, chunk_start, chunk_end = {}, {}, {}
  local needs_index = false
  for i, r in ipairs(reductions) do
    local v = gen(r.expr)
    local s = r.slot
    local function named()   -- compared or used twice: needs a name
      if not v:match("^[%w_]+$") then v = bind("R" .. i, v) end
      return v
    end
    local a = "r" .. i
    if r.kind == "sum" or r.kind == "sumsq" or r.kind == "min" or r.kind == "max" then
      decl[#decl + 1] = a
      load_acc[#load_acc + 1] = string.format("acc[%d]", s)
      store_acc[#store_acc + 1] = string.format("acc[%d] = %s", s, a)
      if r.kind == "sum" then
        update[#update + 1] = string.format("%s = %s + %s", a, a, v)
      elseif r.kind == "sumsq" then
        named()
        update[#update + 1] = string.format("%s = %s + %s * %s", a, a, v, v)
      else   -- a NaN never wins a comparison: min and max skip it
        named()
        update[#update + 1] = string.format("if %s %s %s then %s = %s end", v,
                                            r.kind == "min" and "<" or ">", a, a, v)
      end
    elseif r.kind == "argmin" or r.kind == "argmax" then
      needs_index = true
      named()
      local op, ai = r.kind == "argmin" and "<" or ">", a .. "i"
      decl[#decl + 1] = a .. ", " .. ai
      load_acc[#load_acc + 1] = string.format("acc[%d], acc[%d]", s, s + 1)
      store_acc[#store_acc + 1] = string.format("acc[%d], acc[%d] = %s, %s", s, s + 1, a, ai)
      -- the lowest global index wins ties: the answer is the same on any decomposition
      update[#update + 1] = string.format("if %s %s %s or (%s == %s and gi < %s) then %s, %s = %s, gi end",
                                          v, op, a, v, a, ai, a, ai, v)
    elseif r.kind == "moments" then
      -- Per chunk: sums of the value minus its first value (which keeps the
      -- sum of squares free of cancellation), folded into (n, mean, M2).
      named()
      local n, mean, m2, k, s1, s2 = a .. "n", a .. "m", a .. "q", a .. "k", a .. "s", a .. "t"
      decl[#decl + 1] = table.concat({ n, mean, m2, k, s1, s2 }, ", ")
      load_acc[#load_acc + 1] = string.format("acc[%d], acc[%d], acc[%d], 0, 0, 0", s, s + 1, s + 2)
      store_acc[#store_acc + 1] = string.format("acc[%d], acc[%d], acc[%d] = %s, %s, %s", s, s + 1, s + 2, n, mean, m2)
      shifts[#shifts + 1] = { k, v }
      chunk_start[#chunk_start + 1] = string.format("%s, %s = 0, 0", s1, s2)
      update[#update + 1] = string.format("local d%d = %s - %s; %s = %s + d%d; %s = %s + d%d * d%d",
                                          i, v, k, s1, s1, i, s2, s2, i, i)
      chunk_end[#chunk_end + 1] = string.format([[
do
      local cm, cq = %s + %s / nc, %s - %s * %s / nc
      local tot = %s + nc
      local delta = cm - %s
      %s = %s + delta * nc / tot
      %s = %s + cq + delta * delta * %s * nc / tot
      %s = tot
    end]], k, s1, s2, s1, s1, n, mean, mean, mean, m2, m2, n, n)
    elseif r.kind:sub(1, 1) == "f" then
      -- a field: element gi of F[slot] (gi is the output position here)
      needs_index = true
      local f = "f" .. i
      decl[#decl + 1] = f
      load_acc[#load_acc + 1] = string.format("F[%d]", s)
      if r.kind == "fset" then
        update[#update + 1] = string.format("%s[gi] = %s", f, v)
      elseif r.kind == "fsum" then
        update[#update + 1] = string.format("%s[gi] = %s[gi] + %s", f, f, v)
      else
        named()
        update[#update + 1] = string.format("if %s %s %s[gi] then %s[gi] = %s end", v,
                                            r.kind == "fmin" and "<" or ">", f, f, v)
      end
    else   -- histogram: counts land in acc directly, one slot per bin
      named()
      local scale = r.bins / (r.hi - r.lo)
      update[#update + 1] = string.format(
        "local b%d = floor((%s - %s) * %s); if %s == %s then b%d = %d end; "
        .. "if b%d >= 0 and b%d < %d then acc[%d + b%d] = acc[%d + b%d] + 1 end",
        i, v, literal(r.lo), literal(scale), v, literal(r.hi), i, r.bins - 1,
        i, i, r.bins, s, i, s, i)
    end
  end

  local src = {}
  local function add(fmt, ...) src[#src + 1] = string.format(fmt, ...) end
  local nilchecks, loads, first_loads, offsets, fields = {}, {}, {}, {}, {}
  local unit_loads, unit_test = {}, {}
  local W = M.geometry_width(#inputs)
  for i, input in ipairs(inputs) do
    if used[i] then
      local base = ITEM_WORDS + INPUT_WORDS * (i - 1)
      -- where input i starts: a published chunk (src >= 0) or a received piece
      nilchecks[#nilchecks + 1] = string.format(
        "    local q%d\n    do local src = g[%d]; if src >= 0 then q%d = S[%d][src]; if q%d == nil then return c, %d end"
        .. " else q%d = P[%d][-src - 1] end end", i, base, i, i, i, i, i, i)
      fields[#fields + 1] = string.format("    local d%d = g[%d]", i, base + 5)
      -- a row pointer, so the innermost loop indexes with its own counter
      offsets[#offsets + 1] = string.format("        local o%d = q%d + (g[%d] + i0 * g[%d] + i1 * g[%d] + i2 * g[%d])",
                                            i, i, base + 1, base + 2, base + 3, base + 4)
      local load, unit, first = string.format("o%d[i3 * d%d]", i, i), string.format("o%d[i3]", i),
                                string.format("q%d[g[%d]]", i, base + 1)
      if input.dtype == "i64" then
        load, unit, first = "tonumber(" .. load .. ")", "tonumber(" .. unit .. ")", "tonumber(" .. first .. ")"
      end
      loads[#loads + 1] = string.format("local x%d = %s", i, load)
      unit_loads[#unit_loads + 1] = string.format("local x%d = %s", i, unit)
      unit_test[#unit_test + 1] = string.format("d%d == 1", i)
      first_loads[#first_loads + 1] = string.format("local x%d = %s", i, first)
    end
  end
  local function lines(list, indent) return indent .. table.concat(list, "\n" .. indent) end

  add("-- generated by luisa.kernel")
  add("%s", PRELUDE)
  -- S[k]: input k's published (or kept) chunks, P[k]: its received pieces,
  -- F[k]: output fields
  add("return function(acc, geo, nitems, S, P, F)")
  if #decl > 0 then add("  local %s = %s", table.concat(decl, ", "), table.concat(load_acc, ", ")) end
  add("  for c = 0, nitems - 1 do")
  add("    local g = geo + c * %d", W)
  add("%s", table.concat(nilchecks, "\n"))
  add("    local n0, n1, n2, n3 = g[0], g[1], g[2], g[3]")
  if needs_index then add("    local gf, g0, g1, g2, g3 = g[4], g[5], g[6], g[7], g[8]") end
  add("%s", table.concat(fields, "\n"))
  if #shifts > 0 then   -- each moment's shift: its value at the chunk's first element
    local names, values = {}, {}
    for k, sh in ipairs(shifts) do names[k], values[k] = sh[1], sh[2] end
    add("    do")
    add("%s", lines(first_loads, "      "))
    if #body > 0 then add("%s", lines(body, "      ")) end
    add("      %s = %s", table.concat(names, ", "), table.concat(values, ", "))
    add("    end")
    add("%s", lines(chunk_start, "    "))
  end
  -- Contiguous rows (every input's innermost stride 1) get a loop of their
  -- own: plain indexing is what LuaJIT turns into the tightest code.
  add("    local unit = %s", #unit_test > 0 and table.concat(unit_test, " and ") or "true")
  add("    for i0 = 0, n0 - 1 do")
  add("      for i1 = 0, n1 - 1 do")
  add("      for i2 = 0, n2 - 1 do")
  add("%s", table.concat(offsets, "\n"))
  if needs_index then add("        local gb = gf + i0 * g0 + i1 * g1 + i2 * g2") end
  for variant = 1, 2 do
    add(variant == 1 and "        if unit then" or "        else")
    add("        for i3 = 0, n3 - 1 do")
    if needs_index then add("          local gi = gb + i3 * g3") end
    add("%s", lines(variant == 1 and unit_loads or loads, "          "))
    if #body > 0 then add("%s", lines(body, "          ")) end
    add("%s", lines(update, "          "))
    add("        end")
  end
  add("        end")
  add("      end")
  add("      end")
  add("    end")
  if #chunk_end > 0 then
    add("    local nc = n0 * n1 * n2 * n3")
    add("    %s", table.concat(chunk_end, "\n    "))
  end
  add("  end")
  if #store_acc > 0 then add("%s", lines(store_acc, "  ")) end
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

-- Run a new kernel once over a few zeros with every min and max already at
-- its extreme: LuaJIT then records its loop with the comparisons not taken,
-- which is the common case on real data (a new extreme is rare), instead of
-- whatever the first real chunk happened to do.
function M.warm(run, reductions, inputs)
  local N = 256
  local geo = ffi.new("double[?]", M.geometry_width(#inputs))
  geo[3] = N
  for k = 0, 3 do geo[k] = k == 3 and N or 1 end
  local S, P, F, keep = {}, {}, {}, {}
  for i, input in ipairs(inputs) do
    local buf = ffi.new(M.ctype[input.dtype] .. "[?]", N)
    local table_ = ffi.new(M.ctype[input.dtype] .. "*[1]", buf)
    S[i], P[i], keep[i] = table_, table_, buf
    geo[ITEM_WORDS + INPUT_WORDS * (i - 1) + 5] = 1   -- innermost stride
  end
  local size = 8
  for _, r in ipairs(reductions) do size = math.max(size, r.slot + 4 + (r.bins or 0)) end
  local acc = ffi.new("double[?]", size)
  local extreme = { min = -math.huge, max = math.huge, argmin = -math.huge, argmax = math.huge,
                    fmin = -math.huge, fmax = math.huge }
  for _, r in ipairs(reductions) do
    if r.kind:sub(1, 1) == "f" then
      F[r.slot] = ffi.new("double[1]", extreme[r.kind] or 0)
    elseif extreme[r.kind] then
      acc[r.slot] = extreme[r.kind]
      if r.kind:sub(1, 3) == "arg" then acc[r.slot + 1] = -math.huge end
    end
  end
  run(acc, geo, 1, S, P, F)
  return keep
end

-- Typed view of the engine's table of published pointers.
function M.slots(dtype, pointer)
  return ffi.cast(M.ctype[dtype] .. "**", pointer)
end

-- A table of n typed pointers (received pieces of one input).
function M.pointers(dtype, n)
  return ffi.new(M.ctype[dtype] .. "*[?]", math.max(n, 1))
end

return M
