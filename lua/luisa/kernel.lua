-- luisa.kernel: fuses elementwise chains and their reductions into one
-- generated Lua function per group of chunks, compiled once by LuaJIT.
local ffi = require "ffi"
local expr = require "luisa.expr"
expr.internal[debug.getinfo(1, "S").source] = true

local M = { compiled = 0 }   -- kernels compiled since the state was made

M.ctype = { f64 = "double", f32 = "float", i64 = "int64_t", i32 = "int32_t" }

-- Words per work item in the geometry table: 4 extents, the result's linear
-- index of the item's first element, the result's 4 strides and the item's
-- pattern (see M.source), then per input: its source (>= 0: that published
-- chunk; < 0: received piece -src-1), the element index of its first element
-- and 4 strides. Axes in loop order.
local ITEM_WORDS, INPUT_WORDS = 10, 6
function M.geometry_width(ninputs) return ITEM_WORDS + INPUT_WORDS * ninputs end
M.ITEM_WORDS, M.INPUT_WORDS = ITEM_WORDS, INPUT_WORDS

-- A number as Lua source that reads back exactly (NaN and infinities too).
local function literal(v)
  if v ~= v then return "(0/0)" end
  if v == math.huge then return "(1/0)" end
  if v == -math.huge then return "(-1/0)" end
  return string.format("%.17g", v)
end
M.literal = literal

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
local ACC_LOCALS = { sum = 1, sumsq = 1, min = 3, max = 3, argmin = 3, argmax = 3, moments = 7, histogram = 0,
                     fsum = 1, fmin = 1, fmax = 1, fset = 1 }
-- Independent partial accumulators per lane each kind keeps in an item.
local LANE_LOCALS = { sum = 1, sumsq = 1, min = 1, max = 1, argmin = 1, argmax = 1, moments = 2 }

-- Lanes: one accumulator is one long chain of dependent adds (or maxsd),
-- which runs at the latency of one instruction per element, not at memory
-- speed; so a row is taken several elements per iteration, element c into
-- lane c % k of each reduction, the lanes combined at the item's end.
-- Sums fix k by kind, which fixes their order of additions: a sum has the
-- same bits whatever it is fused with. Min and max are exact in any order
-- and take what the registers leave (x86-64 has 16; a spilled accumulator
-- costs more than the lanes win).
-- Moments keep one chain: with their two sums per lane beside the others
-- the registers spill (benchmark 10's W1 measured 1 lane fastest).
local SUM_LANES = { sum = 4, sumsq = 4, moments = 1 }
local ORDER_FREE = { min = true, max = true, argmin = true, argmax = true }
local REGISTERS, MOST_LANES = 12, 8
local HIST_LANES = 4   -- counts in memory: no register cost

-- names[1] op names[2] ... as a balanced tree, so the lanes combine in a
-- fixed order whatever the row length.
local function tree(names, fn)
  if #names == 1 then return names[1] end
  local half = math.floor(#names / 2)
  local a, b = tree({ unpack(names, 1, half) }, fn), tree({ unpack(names, half + 1) }, fn)
  return fn == "+" and "(" .. a .. " + " .. b .. ")" or string.format("%s(%s, %s)", fn, a, b)
end

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
-- expr = e, slot = index in acc, part = p (default 1); histogram: bins, lo, hi}).
-- patterns[n] = {[p] = {begin = b, finish = f}}: the parts an item whose
-- word 9 is n belongs to, and whether it begins or finishes that part's own
-- item (moments fold once per own item, which may span several of ours).
-- Each pattern has its own loops, running only its parts' reductions and
-- reading only their inputs. Default: one pattern, every part, whole items.
function M.source(reductions, inputs, patterns, most_lanes)
  most_lanes = most_lanes or MOST_LANES
  local input_index = {}
  for i, input in ipairs(inputs) do input_index[input.key] = i end
  local keys = keys_of(reductions)

  -- Accumulators: loaded at the start, kept across items and patterns.
  local decl, load_acc, store_acc, after_load, scratch, nacc = {}, {}, {}, {}, {}, 0
  -- A sum's lanes live across items: fusion may cut its own item into
  -- several of ours, and its additions must keep their order.
  local sum_lanes = {}
  for i, r in ipairs(reductions) do
    local s, a = r.slot, "r" .. i
    nacc = nacc + ACC_LOCALS[r.kind]
    if SUM_LANES[r.kind] then
      sum_lanes[i] = math.min(SUM_LANES[r.kind], most_lanes)
      nacc = nacc + sum_lanes[i] * LANE_LOCALS[r.kind]
      for _, name in ipairs(r.kind == "moments" and { a .. "s", a .. "t" } or { a }) do
        local names, zeros = {}, {}
        for L = 0, sum_lanes[i] - 1 do names[L + 1], zeros[L + 1] = name .. "L" .. L, "0" end
        after_load[#after_load + 1] = string.format("local %s = %s", table.concat(names, ", "), table.concat(zeros, ", "))
      end
    end
    if r.kind == "sum" or r.kind == "sumsq" then
      decl[#decl + 1] = a
      load_acc[#load_acc + 1] = string.format("acc[%d]", s)
      store_acc[#store_acc + 1] = string.format("acc[%d] = %s", s, a)
    elseif r.kind == "min" or r.kind == "max" then
      -- acc holds NaN until a number is seen; the loop runs from the
      -- opposite infinity, a_0 keeps what acc held, a_k whether a number came.
      decl[#decl + 1] = a
      load_acc[#load_acc + 1] = string.format("acc[%d]", s)
      after_load[#after_load + 1] = string.format("local %s_seen, %s_held = 0, %s; if %s ~= %s then %s = %s end",
                                                  a, a, a, a, a, a, r.kind == "min" and "1/0" or "-1/0")
      store_acc[#store_acc + 1] = string.format("acc[%d] = %s_seen == 0 and %s_held or %s", s, a, a, a)
    elseif r.kind == "argmin" or r.kind == "argmax" then
      decl[#decl + 1] = a .. ", " .. a .. "i"
      load_acc[#load_acc + 1] = string.format("acc[%d], acc[%d]", s, s + 1)
      store_acc[#store_acc + 1] = string.format("acc[%d], acc[%d] = %s, %si", s, s + 1, a, a)
    elseif r.kind == "moments" then   -- (n, mean, M2), then the own item's shift, sums and count
      decl[#decl + 1] = table.concat({ a .. "n", a .. "m", a .. "q", a .. "k", a .. "s", a .. "t", a .. "c" }, ", ")
      load_acc[#load_acc + 1] = string.format("acc[%d], acc[%d], acc[%d], 0, 0, 0, 0", s, s + 1, s + 2)
      store_acc[#store_acc + 1] = string.format("acc[%d], acc[%d], acc[%d] = %sn, %sm, %sq", s, s + 1, s + 2, a, a, a)
    elseif r.kind:sub(1, 1) == "f" then
      decl[#decl + 1] = "f" .. i
      load_acc[#load_acc + 1] = string.format("F[%d]", s)
    elseif r.kind == "histogram" then
      -- counts per lane in a scratch table of the kernel's own: on rising
      -- or constant data one bin's count would be one chain of dependent
      -- stores and loads through memory
      local h, n = "H" .. i, HIST_LANES * r.bins
      scratch[#scratch + 1] = string.format("local %s = ffi.new(\"double[%d]\")", h, n)
      after_load[#after_load + 1] = string.format("ffi.fill(%s, %d)", h, 8 * n)
      local lanes = {}
      for L = 0, HIST_LANES - 1 do lanes[L + 1] = string.format("%s[b + %d]", h, L * r.bins) end
      store_acc[#store_acc + 1] = string.format("for b = 0, %d do acc[%d + b] = acc[%d + b] + %s end",
                                                r.bins - 1, s, s, tree(lanes, "+"))
    end
  end

  -- The code of one item running the reductions listed in `active`;
  -- flags[i]: whether it begins and finishes reduction i's own item.
  local function item_code(active, flags)
    local list = {}
    for n, i in ipairs(active) do list[n] = reductions[i] end
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
    for _, r in ipairs(list) do count(r.expr) end
    -- Each reduction's lanes (k[i]), and the elements per iteration: the most of them.
    local k, lane_locals, registers, free, lanes = {}, 0, 0, 0, 1
    for _, i in ipairs(active) do
      local r = reductions[i]
      if SUM_LANES[r.kind] then
        k[i] = sum_lanes[i]
        registers = registers + k[i] * LANE_LOCALS[r.kind]
      elseif ORDER_FREE[r.kind] then
        free = free + 1
      end
    end
    local k_free = math.min(MOST_LANES, most_lanes)
    while k_free > 1 and registers + free * k_free > REGISTERS do k_free = k_free / 2 end
    for _, i in ipairs(active) do
      if ORDER_FREE[reductions[i].kind] then k[i] = k_free; lane_locals = lane_locals + k_free end
      if reductions[i].kind == "histogram" then k[i] = HIST_LANES end
      lanes = math.max(lanes, k[i] or 1)
    end

    -- Only the inputs these reductions read get locals (4 each).
    local used, nused = {}, 0
    for _, e in pairs(keys_nodes(list)) do
      if e.kind == "leaf" and not used[input_index[e.key]] then
        used[input_index[e.key]] = true
        nused = nused + 1
      end
    end
    local body, temps, nlocals = {}, {}, 4 * nused + 27 + nacc + lane_locals
    local function fits()
      if nlocals > MAX_LOCALS then
        error(string.format("the expressions of this callback need more than %d intermediate values "
                            .. "in one kernel: split them over several callbacks", MAX_LOCALS), 0)
      end
    end
    fits()
    local function bind(k, code)
      nlocals = nlocals + 1
      fits()
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

    -- Per reduction: the update per element of lane L (a function of L),
    -- the lanes' declarations at the item's start and their combination
    -- at its end, and for moments the per-item shift and fold.
    local update, shifts, chunk_start, chunk_end = {}, {}, {}, {}
    local item_start, item_end = {}, {}
    local row_start, searches = {}, {}   -- argmin/argmax: per row, see below
    local needs_index = false   -- the element's global index: gi
    local loop_index = false    -- in the main loop, not only in argmin/argmax's searches
    local lane_names, declare
    for _, i in ipairs(active) do
      local r = reductions[i]
      function lane_names(name)
        local names = {}
        for L = 0, (k[i] or 1) - 1 do names[L + 1] = name .. "L" .. L end
        return names
      end
      function declare(list, name, init, assign)
        local names = lane_names(name)
        local inits = {}
        for L = 1, #names do inits[L] = init end
        list[#list + 1] = string.format("%s%s = %s", assign and "" or "local ", table.concat(names, ", "),
                                        table.concat(inits, ", "))
      end
      local function lane(L) return L % (k[i] or 1) end
      local v = gen(r.expr)
      local s = r.slot
      local function named()   -- compared or used twice: needs a name
        if not v:match("^[%w_]+$") then v = bind("R" .. i, v) end
        return v
      end
      local a = "r" .. i
      if r.kind == "sum" or r.kind == "sumsq" then
        if r.kind == "sumsq" then named() end
        local term = r.kind == "sum" and v or v .. " * " .. v
        if flags[i].begin then declare(item_start, a, "0", true) end
        update[#update + 1] = function(L) L = lane(L); return string.format("%sL%d = %sL%d + %s", a, L, a, L, term) end
        if flags[i].finish then item_end[#item_end + 1] = string.format("%s = %s + %s", a, a, tree(lane_names(a), "+")) end
      elseif r.kind == "min" or r.kind == "max" then
        -- Branch-free but for NaN, which is skipped: a branch on the data
        -- (a new extreme or not) would leave LuaJIT's trace at every element
        -- of rising data. math.min/max are exact on numbers whichever
        -- operand order the JIT picks (it may swap them: not with NaN).
        named()
        declare(item_start, a, r.kind == "min" and "1/0" or "-1/0")
        update[#update + 1] = function(L)
          L = lane(L)
          return string.format("if %s == %s then %sL%d = %s(%sL%d, %s); %s_seen = 1 end", v, v, a, L, r.kind, a, L, v, a)
        end
        item_end[#item_end + 1] = string.format("%s = %s(%s, %s)", a, r.kind, a, tree(lane_names(a), r.kind))
      elseif r.kind == "argmin" or r.kind == "argmax" then
        -- The row's extreme branch-free (as min and max), then, only when
        -- it beats or ties the accumulator, a search of that row (in cache)
        -- for its lowest global index: a branch per element on the data
        -- (a new extreme, a tie) leaves LuaJIT's trace on rising or
        -- constant data. The lowest global index wins ties: the answer is
        -- the same on any decomposition.
        needs_index = true
        named()
        local fn, ai, m = r.kind == "argmin" and "min" or "max", a .. "i", a .. "_m"
        local beats, ties = r.kind == "argmin" and "<" or ">", r.kind == "argmin" and "<=" or ">="
        declare(row_start, m, r.kind == "argmin" and "1/0" or "-1/0")
        update[#update + 1] = function(L)
          L = lane(L)
          return string.format("if %s == %s then %sL%d = %s(%sL%d, %s) end", v, v, m, L, fn, m, L, v)
        end
        searches[#searches + 1] = {
          extreme = string.format("local %s = %s", m, tree(lane_names(m), fn)),
          test = string.format("%s %s %s", m, ties, a),
          best = string.format("local best = %s %s %s and 1/0 or %s", m, beats, a, ai),
          hit = string.format("if %s == %s and gi < best then best = gi end", v, m),
          done = string.format("%s, %s = %s, best", a, ai, m),
        }
      elseif r.kind == "moments" then
        -- Per own item: sums of the value minus its first value (which keeps
        -- the sum of squares free of cancellation), folded into (n, mean, M2).
        named()
        local n, mean, m2, k, s1, s2, nk = a .. "n", a .. "m", a .. "q", a .. "k", a .. "s", a .. "t", a .. "c"
        if flags[i].begin then
          shifts[#shifts + 1] = { k, v }
          chunk_start[#chunk_start + 1] = string.format("%s, %s, %s = 0, 0, 0", s1, s2, nk)
          declare(chunk_start, s1, "0", true)
          declare(chunk_start, s2, "0", true)
        end
        update[#update + 1] = function(L)
          L = lane(L)
          return string.format("local e%d = %s - %s; %sL%d = %sL%d + e%d; %sL%d = %sL%d + e%d * e%d",
                               i, v, k, s1, L, s1, L, i, s2, L, s2, L, i, i)
        end
        chunk_end[#chunk_end + 1] = string.format("%s = %s + nc", nk, nk)
        if flags[i].finish then
          chunk_end[#chunk_end + 1] = string.format("%s = %s + %s; %s = %s + %s", s1, s1, tree(lane_names(s1), "+"),
                                                    s2, s2, tree(lane_names(s2), "+"))
          chunk_end[#chunk_end + 1] = string.format([[
do
  local cm, cq = %s + %s / %s, %s - %s * %s / %s
  local tot = %s + %s
  local delta = cm - %s
  %s = %s + delta * %s / tot
  %s = %s + cq + delta * delta * %s * %s / tot
  %s = tot
end]], k, s1, nk, s2, s1, s1, nk, n, nk, mean, mean, mean, nk, m2, m2, n, nk, n)
        end
      elseif r.kind:sub(1, 1) == "f" then
        -- a field: element gi of F[slot] (gi is the output position here)
        needs_index, loop_index = true, true
        local f, code = "f" .. i
        if r.kind == "fset" then
          code = string.format("%s[gi] = %s", f, v)
        elseif r.kind == "fsum" then
          code = string.format("%s[gi] = %s[gi] + %s", f, f, v)
        else
          named()   -- as min and max: NaN until a number is seen
          code = string.format("if not (%s %s %s[gi]) and %s == %s then %s[gi] = %s end", v,
                               r.kind == "fmin" and ">=" or "<=", f, v, v, f, v)
        end
        update[#update + 1] = function() return code end
      else   -- histogram: counts land in lane L's bins of H, added to acc at the end
        named()
        local scale = r.bins / (r.hi - r.lo)
        update[#update + 1] = function(L)
          local at = string.format("H%d[%d + b%d]", i, (L % HIST_LANES) * r.bins, i)
          return string.format(
            "local b%d = floor((%s - %s) * %s); if %s == %s then b%d = %d end; "
            .. "if b%d >= 0 and b%d < %d then %s = %s + 1 end",
            i, v, literal(r.lo), literal(scale), v, literal(r.hi), i, r.bins - 1, i, i, r.bins, at, at)
        end
      end
    end

    -- Element loads, as functions of the index expression in the row.
    local nilchecks, first_loads, offsets, fields = {}, {}, {}, {}
    local unit_loads, strided_loads, unit_test = {}, {}, {}
    for i, input in ipairs(inputs) do
      if used[i] then
        local base = ITEM_WORDS + INPUT_WORDS * (i - 1)
        -- where input i starts: a published chunk (src >= 0) or a received piece
        nilchecks[#nilchecks + 1] = string.format(
          "local q%d\ndo local src = g[%d]; if src >= 0 then q%d = S[%d][src]; if q%d == nil then return c, %d end"
          .. " else q%d = P[%d][-src - 1] end end", i, base, i, i, i, i, i, i)
        fields[#fields + 1] = string.format("local d%d = g[%d]", i, base + 5)
        -- a row pointer, so the innermost loop indexes with its own counter
        offsets[#offsets + 1] = string.format("    local o%d = q%d + (g[%d] + i0 * g[%d] + i1 * g[%d] + i2 * g[%d])",
                                              i, i, base + 1, base + 2, base + 3, base + 4)
        local wrap = input.dtype == "i64" and "tonumber(%s)" or "%s"
        unit_loads[#unit_loads + 1] = function(at)
          return string.format("local x%d = " .. wrap, i, string.format("o%d[%s]", i, at))
        end
        strided_loads[#strided_loads + 1] = function(at)
          return string.format("local x%d = " .. wrap, i, string.format("o%d[(%s) * d%d]", i, at, i))
        end
        unit_test[#unit_test + 1] = string.format("d%d == 1", i)
        first_loads[#first_loads + 1] = string.format("local x%d = " .. wrap, i, string.format("q%d[g[%d]]", i, base + 1))
      end
    end

    local src = {}
    local function add(fmt, ...) src[#src + 1] = string.format(fmt, ...) end
    local function lines(list, indent) return indent .. table.concat(list, "\n" .. indent) end
    -- The code of one element at row index `at` into lane L. gi only
    -- where used: a local the loop keeps is computed at every element.
    local function element(row_loads, at, L, indent)
      local code = {}
      if loop_index then code[#code + 1] = string.format("local gi = gb + (%s) * g3", at) end
      for _, load in ipairs(row_loads) do code[#code + 1] = load(at) end
      for _, line in ipairs(body) do code[#code + 1] = line end
      for _, u in ipairs(update) do code[#code + 1] = u(L) end
      add("%s", lines(code, indent))
    end
    add("%s", table.concat(nilchecks, "\n"))
    add("local n0, n1, n2, n3 = g[0], g[1], g[2], g[3]")
    add("local n3k = n3 - n3 %% %d", lanes)
    if needs_index then add("local gf, g0, g1, g2, g3 = g[4], g[5], g[6], g[7], g[8]") end
    add("%s", table.concat(fields, "\n"))
    if #item_start > 0 then add("%s", table.concat(item_start, "\n")) end
    if #shifts > 0 then   -- each moment's shift: its value at its own item's first element
      local names, values = {}, {}
      for k, sh in ipairs(shifts) do names[k], values[k] = sh[1], sh[2] end
      add("do")
      add("%s", lines(first_loads, "  "))
      if #body > 0 then add("%s", lines(body, "  ")) end
      add("  %s = %s", table.concat(names, ", "), table.concat(values, ", "))
      add("end")
      add("%s", table.concat(chunk_start, "\n"))
    end
    -- Contiguous rows (every input's innermost stride 1) get a loop of their
    -- own: plain indexing is what LuaJIT turns into the tightest code.
    add("local unit = %s", #unit_test > 0 and table.concat(unit_test, " and ") or "true")
    add("for i0 = 0, n0 - 1 do")
    add("  for i1 = 0, n1 - 1 do")
    add("  for i2 = 0, n2 - 1 do")
    add("%s", table.concat(offsets, "\n"))
    if needs_index then add("    local gb = gf + i0 * g0 + i1 * g1 + i2 * g2") end
    for variant = 1, 2 do
      local row_loads = variant == 1 and unit_loads or strided_loads
      add(variant == 1 and "    if unit then" or "    else")
      if #row_start > 0 then add("%s", lines(row_start, "    ")) end
      -- lanes elements per iteration, lane L taking element i3 + L, then
      -- the row's last n3 % lanes elements, each to its lane
      add("    for i3 = 0, n3k - 1, %d do", lanes)
      for L = 0, lanes - 1 do
        add("      do")
        element(row_loads, L == 0 and "i3" or "i3 + " .. L, L, "        ")
        add("      end")
      end
      add("    end")
      for L = 0, lanes - 2 do
        local pad = string.rep("  ", L)
        add("    %sif n3k + %d < n3 then", pad, L)
        add("      %sdo", pad)
        element(row_loads, "n3k + " .. L, L, "        " .. pad)
        add("      %send", pad)
      end
      for L = lanes - 2, 0, -1 do add("    %send", string.rep("  ", L)) end
      for _, search in ipairs(searches) do
        add("    %s", search.extreme)
        add("    if %s then", search.test)
        add("      %s", search.best)
        add("      for i3 = 0, n3 - 1 do")
        local code = {}
        if needs_index then code[1] = "local gi = gb + i3 * g3" end
        for _, load in ipairs(row_loads) do code[#code + 1] = load("i3") end
        for _, line in ipairs(body) do code[#code + 1] = line end
        code[#code + 1] = search.hit
        add("%s", lines(code, "        "))
        add("      end")
        add("      %s", search.done)
        add("    end")
      end
    end
    add("    end")
    add("  end")
    add("  end")
    add("end")
    if #item_end > 0 then add("%s", table.concat(item_end, "\n")) end
    if #chunk_end > 0 then
      add("local nc = n0 * n1 * n2 * n3")
      add("%s", table.concat(chunk_end, "\n"))
    end
    return table.concat(src, "\n")
  end

  local function indent(text, by) return (by .. text:gsub("\n", "\n" .. by)) end
  local src = {}
  local function add(fmt, ...) src[#src + 1] = string.format(fmt, ...) end
  add("-- generated by luisa.kernel")
  add("%s", PRELUDE)
  for _, line in ipairs(scratch) do add("%s", line) end
  -- S[k]: input k's published (or kept) chunks, P[k]: its received pieces,
  -- F[k]: output fields
  add("return function(acc, geo, nitems, S, P, F)")
  if #decl > 0 then add("  local %s = %s", table.concat(decl, ", "), table.concat(load_acc, ", ")) end
  for _, line in ipairs(after_load) do add("  %s", line) end
  add("  for c = 0, nitems - 1 do")
  add("    local g = geo + c * %d", M.geometry_width(#inputs))
  local cases = {}
  local whole = { begin = true, finish = true }
  for n, pattern in ipairs(patterns or { false }) do
    local active, flags = {}, {}
    for i, r in ipairs(reductions) do
      local f = not pattern and whole or pattern[r.part or 1]
      if f then active[#active + 1], flags[i] = i, f end
    end
    if #active > 0 then cases[#cases + 1] = { n, item_code(active, flags) } end
  end
  if #cases == 1 and #(patterns or cases) == 1 then
    add("%s", indent(cases[1][2], "    "))
  elseif #cases > 0 then
    add("    local pattern = g[9]")
    for k, case in ipairs(cases) do
      add("    %s pattern == %d then", k == 1 and "if" or "elseif", case[1])
      add("%s", indent(case[2], "      "))
    end
    add("    end")
  end
  add("  end")
  if #store_acc > 0 then add("  %s", table.concat(store_acc, "\n  ")) end
  add("end")
  return table.concat(src, "\n")
end

-- Compile the kernel; returns the function and its source.
-- Too many locals for lanes: several reductions are split by the caller
-- (each keeps its lanes); a single one runs in one lane (its sum then
-- differs in the last bits from the same sum elsewhere).
function M.build(reductions, inputs, patterns)
  local ok, src = pcall(M.source, reductions, inputs, patterns)
  if not ok and #reductions == 1 and tostring(src):find("intermediate values", 1, true) then
    ok, src = pcall(M.source, reductions, inputs, patterns, 1)
  end
  if not ok then error(src, 0) end
  local chunk, err = loadstring(src, "=luisa kernel")
  if not chunk then error("luisa internal error: generated kernel does not compile: " .. err .. "\n" .. src, 0) end
  M.compiled = M.compiled + 1
  return chunk(), src
end

-- Run a new kernel once over a few zeros with every field extreme (and
-- argmin, argmax's row searches) already at its extreme: LuaJIT then
-- records its loop with their comparisons not taken, the common case,
-- instead of whatever the first real chunk happened to do (min and max are
-- branch-free). One item per pattern.
function M.warm(run, reductions, inputs, patterns)
  local N, W, nitems = 256, M.geometry_width(#inputs), patterns and #patterns or 1
  local geo = ffi.new("double[?]", W * nitems)
  for c = 0, nitems - 1 do
    local g = geo + c * W
    for k = 0, 3 do g[k] = k == 3 and N or 1 end
    g[9] = c + 1
    for i = 1, #inputs do g[ITEM_WORDS + INPUT_WORDS * (i - 1) + 5] = 1 end   -- innermost stride
  end
  local S, P, F, keep = {}, {}, {}, {}
  for i, input in ipairs(inputs) do   -- read only: inputs of a type share their zeros (a stage has thousands)
    local t = input.dtype
    if not keep[t] then
      local buf = ffi.new(M.ctype[t] .. "[?]", N)
      keep[t] = { buf, ffi.new(M.ctype[t] .. "*[1]", buf) }
    end
    S[i], P[i] = keep[t][2], keep[t][2]
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
  run(acc, geo, nitems, S, P, F)
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
