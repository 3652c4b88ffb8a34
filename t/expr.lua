-- expr.lua: TAP tests of luisa's Lua side alone (expressions, fused kernels, the plan),
-- driven with fake `arrays` and `core` tables shaped like engine/script.c's. Run by t/002-expr.t.
local ffi = require "ffi"

------------------------------------------------------------------------------
-- TAP. EXPR_TEST_BREAK=n perturbs the expectation of assertion n, so a loop
-- over n can show that every assertion is able to fail.
local BREAK = tonumber(os.getenv("EXPR_TEST_BREAK"))
local ntests, nfailed = 0, 0
local PLAN = 265
print("1.." .. PLAN)

local function perturb(want)
  if type(want) == "number" then
    if want ~= want or math.abs(want) == math.huge then return 0 end
    return want + math.max(1e-9 * math.abs(want), 1e-300)
  elseif type(want) == "string" then return want .. "\1broken"
  elseif type(want) == "boolean" then return not want end
  return "broken"
end

local function report(pass, name, got, want, how)
  if pass then
    print(string.format("ok %d - %s", ntests, name))
  else
    nfailed = nfailed + 1
    print(string.format("not ok %d - %s", ntests, name))
    print(string.format("#   got:  %s\n#   %s %s", (tostring(got):gsub("\n", "\n#         ")), how,
                        (tostring(want):gsub("\n", "\n#         "))))
  end
end

local function expect(want)
  ntests = ntests + 1
  if ntests == BREAK then return perturb(want) end
  return want
end

local function is(got, want, name)
  want = expect(want)
  report(got == want, name, got, want, "want:")
end

-- Sums and means: relative tolerance, since the kernels add in chunk order.
local function near(got, want, name)
  want = expect(want)
  report(type(got) == "number" and math.abs(got - want) <= 1e-12 * math.abs(want), name, got, want, "want:")
end

-- A number, or nil, as text that tells NaN (whatever its sign), infinities and nil apart.
local function num(v)
  if v == nil then return "nil" end
  if type(v) ~= "number" then return type(v) end
  if v ~= v then return "nan" end
  return string.format("%.17g", v)
end

local function like(got, sub, name)
  sub = expect(sub)
  report(type(got) == "string" and got:find(sub, 1, true) ~= nil, name, got, sub, "containing:")
end

-- "t/expr.lua:LINE" of the line calling here(): what `where` fields must say.
local function here() return "t/expr.lua:" .. debug.getinfo(2, "l").currentline end

-- Error message of f(), or a marker when it does not raise.
local function err(f)
  local ok, e = pcall(f)
  return ok and "(no error)" or e
end

------------------------------------------------------------------------------
-- A fake engine. Each scenario gets fresh modules, as each engine context
-- gets its own Lua state, so counters and registered callbacks start at 0.
local core

local function fake_core(rank, size)
  local c = { rank = rank, size = size, buffers = {} }
  -- Like script.c: slot 0 is the engine's failure slot; the plan gets
  -- pointers to the user slots just after it.
  -- counts per slot kind: min, sum, max (1 double), argmin, argmax (2), moments (3)
  function c.reduction(counts)
    local nmin, nsum, nmax = counts[1] or 0, counts[2] or 0, counts[3] or 0
    local n = nmin + nsum + nmax + 2 * ((counts[4] or 0) + (counts[5] or 0)) + 3 * (counts[6] or 0)
    local b = { nmin = nmin, nsum = nsum, nmax = nmax, n = n,
                input = ffi.new("double[?]", n + 1), output = ffi.new("double[?]", n + 1) }
    b.input[0], b.output[0] = 7777, 7777
    b.fields = {}
    c.buffers[#c.buffers + 1] = b
    return #c.buffers - 1, b.input + 1, b.output + 1
  end
  -- An array reduced elementwise beside reduction `id` (axis reductions, gathers).
  function c.field(id, n, op)
    local f = { n = n, op = op, input = ffi.new("double[?]", n), output = ffi.new("double[?]", n) }
    table.insert(c.buffers[id + 1].fields, f)
    return f.input, f.output
  end
  function c.origin() return nil end   -- chunks are the simulation's own: not in ranks mode
  return c
end

-- What MPI_Reduce does on one rank: the results are the inputs.
local function reduce_all()
  for _, b in ipairs(core.buffers) do
    for k = 1, b.n do b.output[k] = b.input[k] end
    for _, f in ipairs(b.fields) do
      for k = 0, f.n - 1 do f.output[k] = f.input[k] end
    end
  end
end

local function fresh(rank, size)
  for _, m in ipairs { "luisa", "luisa.registry", "luisa.expr", "luisa.kernel", "luisa.passes", "luisa.describe",
                       "luisa.bind", "luisa.run", "luisa.plan", "luisa.core" } do
    package.loaded[m] = nil
  end
  core = fake_core(rank or 0, size or 1)
  package.loaded["luisa.core"] = core
  local plan = require "luisa.plan"   -- script_load requires the plan before the script runs
  return require "luisa", plan, require "luisa.kernel"
end

local ctype = { f64 = "double", f32 = "float", i32 = "int32_t", i64 = "int64_t" }
-- Ghost cells hold values that spoil any reduction that reads them.
local poison = { f64 = 0 / 0, f32 = 0 / 0, i32 = 2 ^ 30, i64 = 2 ^ 60 }
local anchors = {}   -- keeps the FFI buffers alive while the plan points into them

-- Global values of an array in C order (1-based), exact in its dtype.
local function values(dtype, n, seed)
  local v = {}
  for i = 1, n do
    local h = (i * 7919 + seed * 104729) % 4001
    if dtype == "i32" then v[i] = h % 201 - 100
    elseif dtype == "i64" then v[i] = (h % 201 - 100) * 2 ^ 33   -- beyond 32 bits
    else v[i] = (h - 2000) / 16 end
  end
  return v
end

-- arrays[name] as push_arrays builds it. boxes = {{offset, shape}, ...}, each
-- placed in its own buffer with `ghost` cells before and ghost (+1 on odd
-- axes) after, in C or Fortran order. Returns the entry, the void*[] table of
-- published pointers and the buffers.
local function fake_array(dtype, shape, boxes, order, ghost, vals)
  local ndim = #shape
  local pub = ffi.new("void*[?]", math.max(#boxes, 1))
  local entry = { dtype = dtype, ndim = ndim, shape = shape, chunks = {}, published = ffi.cast("void*", pub) }
  local bufs = {}
  for c, box in ipairs(boxes) do
    local offset, extent = box[1], box[2]
    local alloc, stride, s = {}, {}, 1
    for d = 1, ndim do alloc[d] = extent[d] + 2 * ghost + d % 2 end
    for k = 1, ndim do
      local d = order == "c" and ndim + 1 - k or k
      stride[d] = s
      s = s * alloc[d]
    end
    local buf = ffi.new(ctype[dtype] .. "[?]", s)
    for i = 0, s - 1 do buf[i] = poison[dtype] end
    local first, volume, idx = 0, 1, {}
    for d = 1, ndim do first, volume, idx[d] = first + ghost * stride[d], volume * extent[d], 0 end
    for _ = 1, volume do   -- odometer over the chunk's local indices
      local at, g = first, 0
      for d = 1, ndim do
        at = at + idx[d] * stride[d]
        g = g * shape[d] + offset[d] + idx[d]
      end
      buf[at] = vals[g + 1]
      for d = ndim, 1, -1 do
        idx[d] = idx[d] + 1
        if idx[d] < extent[d] then break end
        idx[d] = 0
      end
    end
    pub[c - 1], bufs[c] = buf, buf
    entry.chunks[c] = { offset = offset, shape = extent, stride = stride, first = first }
  end
  -- The global chunk map: here every chunk is this (fake) rank's.
  entry.boxes = {}
  for c, ch in ipairs(entry.chunks) do
    entry.boxes[c] = { owner = core.rank, chunk = c - 1, offset = ch.offset, shape = ch.shape }
  end
  anchors[#anchors + 1] = { pub, bufs }
  return entry, pub, bufs
end

-- Plain-Lua reduction of f(i) over global elements 1..n.
local function reference(kind, n, f)
  if kind == "count" then return n end
  local s, mn, mx = 0, math.huge, -math.huge
  for i = 1, n do
    local v = f(i)
    s = s + v
    if v < mn then mn = v end
    if v > mx then mx = v end
  end
  return ({ sum = s, mean = s / n, min = mn, max = mx })[kind]
end

local function sorted(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

------------------------------------------------------------------------------
-- Building is lazy and every node records the script line that built it.
-- luisa.array, the operators and the unary methods reach expr.lua's node()
-- by tail calls, so these lines also check that `where` survives those.
do
  local luisa, plan, kernel = fresh()
  local function describe(node)
    local kind = luisa.is_expr(node) and "expression" or luisa.is_reduction(node) and "reduction" or type(node)
    return kind .. " at " .. tostring(node.where)
  end
  local T, lT = luisa.array "T", here()
  local U = luisa.array "U"
  is(describe(T), "expression at " .. lT, "luisa.array returns an expression recording its line")

  local built = {}
  local function rec(name, node, line) built[#built + 1] = { name, node, line } end
  rec("T + U", T + U, here())
  rec("T + 2", T + 2, here())
  rec("2 + T", 2 + T, here())
  rec("T - U", T - U, here())
  rec("1 - T", 1 - T, here())
  rec("T * 3", T * 3, here())
  rec("3 * T", 3 * T, here())
  rec("T / U", T / U, here())
  rec("4 / T", 4 / T, here())
  rec("T ^ 2", T ^ 2, here())
  rec("2 ^ T", 2 ^ T, here())
  rec("-T", -T, here())
  rec("T:abs()", T:abs(), here())
  rec("T:sqrt()", T:sqrt(), here())
  rec("T:exp()", T:exp(), here())
  rec("T:log()", T:log(), here())
  rec("T:floor()", T:floor(), here())
  rec("T:ceil()", T:ceil(), here())
  rec("T:lt(U)", T:lt(U), here())
  rec("T:le(1)", T:le(1), here())
  rec("T:gt(U)", T:gt(U), here())
  rec("T:ge(0)", T:ge(0), here())
  rec("T:eq(U)", T:eq(U), here())
  rec("T:ne(2)", T:ne(2), here())
  rec("(T * U + 1):abs()", (T * U + 1):abs(), here())
  for _, b in ipairs(built) do
    is(describe(b[2]), "expression at " .. b[3], b[1] .. " is an expression recording its line")
  end

  built = {}
  rec("T:sum()", T:sum(), here())
  rec("T:mean()", T:mean(), here())
  rec("(T - U):min()", (T - U):min(), here())
  rec("T:max()", T:max(), here())
  rec("T:count()", T:count(), here())
  rec("T:gt(0):sum()", T:gt(0):sum(), here())
  for _, b in ipairs(built) do
    is(describe(b[2]), "reduction at " .. b[3], b[1] .. " is a reduction recording its line")
  end

  -- Each entry of a table constructor spanning lines names its own line.
  local stats, ls = {
    a = T:sum(),
    b = (T * 2):max(),
  }, here()
  local l = tonumber(ls:match("%d+$"))
  is(stats.a.where .. " " .. stats.b.where, "t/expr.lua:" .. (l - 2) .. " t/expr.lua:" .. (l - 1),
     "reductions in a multi-line table record their own lines")

  -- Through a helper that builds and returns, the helper's line...
  local function helper() return (T:mean()), here() end
  local r, lr = helper()
  is(r.where, lr, "a node built inside a helper records the helper's line")
  -- ...but a tail call drops the helper's frame in LuaJIT: the line left to
  -- name is the one calling the helper.
  local function tail() return T:min() end
  local r2, lr2 = tail(), here()
  is(r2.where, lr2, "a node built in a tail call records the line calling the helper")
  local function tail_array() return luisa.array "V" end
  local v, lv = tail_array(), here()
  is(v.where, lv, "luisa.array in a tail call records the line calling the helper")

  local cb, lcb = luisa.every(2, { s = T:sum() }, function() end), here()
  is(cb.where, lcb, "luisa.every records its line")
  is(tostring((T + 1) * U:abs()), "((T + 1) * abs(U))", "expressions print as formulas for messages")
  -- Nothing is compiled before the engine asks: no arrays exist yet.
  is(string.format("builds %d, kernels %d, callbacks %d", plan.builds, kernel.compiled, #luisa._callbacks),
     "builds 0, kernels 0, callbacks 1", "building and registering compile nothing")
end

------------------------------------------------------------------------------
-- Bad operands and registrations fail at the script's line, with a reason.
do
  local luisa = fresh()
  local T = luisa.array "T"
  local S = T:sum()
  local fn = function() end
  local e, l
  e, l = err(function() return T + "x" end), here()
  is(e, l .. ": luisa: operand of + must be a luisa array expression or a number, got string", 'T + "x"')
  e, l = err(function() return T + {} end), here()
  is(e, l .. ": luisa: operand of + must be a luisa array expression or a number, got table", "T + {}")
  e, l = err(function() return "x" * T end), here()
  is(e, l .. ": luisa: operand of * must be a luisa array expression or a number, got string", '"x" * T')
  -- Not `return T:lt("x")`: that tail call would drop the frame the message names.
  e, l = err(function() local _ = T:lt("x") end), here()
  is(e, l .. ": luisa: operand of lt must be a luisa array expression or a number, got string", 'T:lt("x")')
  e, l = err(function() local _ = T.sum(5) end), here()
  is(e, l .. ": luisa: sum() must be called as a method of an array expression, e.g. T:sum()", "T.sum(5)")
  e, l = err(function() luisa.every(0, { s = S }, fn) end), here()
  is(e, l .. ": luisa.every: the period must be a whole number from 1 to 2^31-1, got 0", "period 0")
  e, l = err(function() luisa.every(1.5, { s = S }, fn) end), here()
  is(e, l .. ": luisa.every: the period must be a whole number from 1 to 2^31-1, got 1.5", "period 1.5")
  e, l = err(function() luisa.every("x", { s = S }, fn) end), here()
  is(e, l .. ": luisa.every: the period must be a whole number from 1 to 2^31-1, got x", 'period "x"')
  e, l = err(function() luisa.every(1, 5, fn) end), here()
  is(e, l .. ": luisa.every: stats must be a table of reductions, got number", "stats not a table")
  e, l = err(function() luisa.every(1, {}, fn) end), here()
  is(e, l .. ": luisa.every: stats is empty", "empty stats")
  e, l = err(function() luisa.every(1, { s = S, x = T * 2 }, fn) end), here()
  is(e, l .. ': luisa.every: stats["x"] is a lazy array, not a reduction (an array expression: reduce it, e.g. :mean())',
     "a lazy array in stats")
  e, l = err(function() luisa.every(1, { s = S }, "f") end), here()
  is(e, l .. ": luisa.every: the callback must be a function, got string", "callback not a function")
  is(#luisa._callbacks, 0, "refused registrations register nothing")
end

------------------------------------------------------------------------------
-- Compile and run: every reduction against plain Lua over the global data,
-- across dtypes, chunkings, ghost cells and C/Fortran layouts.
do
  local luisa, plan = fresh()
  local a, b = values("f64", 35, 1), values("f64", 35, 2)
  local f = values("f32", 72, 3)
  local iv, dv = values("i32", 11, 4), values("f64", 11, 5)
  local lv, gv = values("i64", 48, 6), values("f64", 48, 7)
  local box2 = { { { 0, 0 }, { 3, 5 } }, { { 3, 0 }, { 4, 2 } }, { { 3, 2 }, { 4, 3 } } }
  local box3 = { { { 0, 0, 0 }, { 2, 4, 3 } }, { { 2, 0, 0 }, { 4, 4, 1 } }, { { 2, 0, 1 }, { 4, 4, 2 } } }
  local box1 = { { { 0 }, { 4 } }, { { 4 }, { 3 } }, { { 7 }, { 4 } } }
  local box4 = { { { 0, 0, 0, 0 }, { 3, 2, 2, 2 } }, { { 0, 2, 0, 0 }, { 3, 2, 2, 2 } } }
  local arrays = {
    A = fake_array("f64", { 7, 5 }, box2, "c", 1, a),
    B = fake_array("f64", { 7, 5 }, box2, "f", 2, b),
    F = fake_array("f32", { 6, 4, 3 }, box3, "f", 1, f),
    I = fake_array("i32", { 11 }, box1, "c", 2, iv),
    D = fake_array("f64", { 11 }, box1, "c", 0, dv),
    L = fake_array("i64", { 3, 4, 2, 2 }, box4, "f", 1, lv),
    G = fake_array("f64", { 3, 4, 2, 2 }, box4, "c", 1, gv),
  }
  local A, B, F = luisa.array "A", luisa.array "B", luisa.array "F"
  local I, D, L, G = luisa.array "I", luisa.array "D", luisa.array "L", luisa.array "G"

  local stats, want, kinds = {}, {}, {}
  local function stat(key, r, kind, n, fn)
    stats[key], kinds[key], want[key] = r, kind, reference(kind, n, fn)
  end
  for _, x in ipairs { { "A", A, a }, { "B", B, b }, { "F", F, f }, { "I", I, iv }, { "L", L, lv } } do
    local name, e, v = x[1], x[2], x[3]
    for _, kind in ipairs { "sum", "mean", "min", "max", "count" } do
      stat(name .. ":" .. kind, e[kind](e), kind, #v, function(i) return v[i] end)
    end
  end
  stat("(A + B):sum", (A + B):sum(), "sum", 35, function(i) return a[i] + b[i] end)
  stat("(1.5 + A):max", (1.5 + A):max(), "max", 35, function(i) return 1.5 + a[i] end)
  stat("(A - B):min", (A - B):min(), "min", 35, function(i) return a[i] - b[i] end)
  stat("(2 - A):mean", (2 - A):mean(), "mean", 35, function(i) return 2 - a[i] end)
  stat("(A * B):sum", (A * B):sum(), "sum", 35, function(i) return a[i] * b[i] end)
  stat("(3 * A - B * 0.5):max", (3 * A - B * 0.5):max(), "max", 35, function(i) return 3 * a[i] - b[i] * 0.5 end)
  stat("(A / (|B| + 1)):sum", (A / (B:abs() + 1)):sum(), "sum", 35, function(i) return a[i] / (math.abs(b[i]) + 1) end)
  stat("(10 / (|A| + 1)):min", (10 / (A:abs() + 1)):min(), "min", 35, function(i) return 10 / (math.abs(a[i]) + 1) end)
  stat("(A ^ 2):sum", (A ^ 2):sum(), "sum", 35, function(i) return a[i] ^ 2 end)
  stat("(2 ^ (B / 64)):max", (2 ^ (B / 64)):max(), "max", 35, function(i) return 2 ^ (b[i] / 64) end)
  stat("(-A):max", (-A):max(), "max", 35, function(i) return -a[i] end)
  stat("|A|:sum", A:abs():sum(), "sum", 35, function(i) return math.abs(a[i]) end)
  stat("sqrt(|B| + 1):mean", (B:abs() + 1):sqrt():mean(), "mean", 35, function(i) return math.sqrt(math.abs(b[i]) + 1) end)
  stat("exp(A / 64):sum", (A / 64):exp():sum(), "sum", 35, function(i) return math.exp(a[i] / 64) end)
  stat("log(|A| + 1):min", (A:abs() + 1):log():min(), "min", 35, function(i) return math.log(math.abs(a[i]) + 1) end)
  stat("floor(B / 3):sum", (B / 3):floor():sum(), "sum", 35, function(i) return math.floor(b[i] / 3) end)
  stat("ceil(B / 3):min", (B / 3):ceil():min(), "min", 35, function(i) return math.ceil(b[i] / 3) end)
  local function mask(c) return c and 1 or 0 end
  stat("A:lt(B):sum", A:lt(B):sum(), "sum", 35, function(i) return mask(a[i] < b[i]) end)
  stat("A:le(0):mean", A:le(0):mean(), "mean", 35, function(i) return mask(a[i] <= 0) end)
  stat("A:gt(B):sum", A:gt(B):sum(), "sum", 35, function(i) return mask(a[i] > b[i]) end)
  stat("B:ge(0):sum", B:ge(0):sum(), "sum", 35, function(i) return mask(b[i] >= 0) end)
  -- Coarse buckets so that equal values actually occur.
  local qa, qb = (A / 50):floor(), (B / 50):floor()
  stat("qa:eq(qb):sum", qa:eq(qb):sum(), "sum", 35, function(i) return mask(math.floor(a[i] / 50) == math.floor(b[i] / 50)) end)
  stat("qa:ne(qb):sum", qa:ne(qb):sum(), "sum", 35, function(i) return mask(math.floor(a[i] / 50) ~= math.floor(b[i] / 50)) end)
  stat("A:gt(0):max", A:gt(0):max(), "max", 35, function(i) return mask(a[i] > 0) end)
  stat("(F * F):sum", (F * F):sum(), "sum", 72, function(i) return f[i] * f[i] end)
  stat("F:gt(0):sum", F:gt(0):sum(), "sum", 72, function(i) return mask(f[i] > 0) end)
  stat("(I * D):sum", (I * D):sum(), "sum", 11, function(i) return iv[i] * dv[i] end)
  stat("(I - D):min", (I - D):min(), "min", 11, function(i) return iv[i] - dv[i] end)
  stat("I:le(D):sum", I:le(D):sum(), "sum", 11, function(i) return mask(iv[i] <= dv[i]) end)
  stat("(I / 7):mean", (I / 7):mean(), "mean", 11, function(i) return iv[i] / 7 end)
  stat("(L + G):max", (L + G):max(), "max", 48, function(i) return lv[i] + gv[i] end)
  stat("(L * 2 - G):sum", (L * 2 - G):sum(), "sum", 48, function(i) return lv[i] * 2 - gv[i] end)
  stat("L:gt(G):sum", L:gt(G):sum(), "sum", 48, function(i) return mask(lv[i] > gv[i]) end)
  stat("(L + G):count", (L + G):count(), "count", 48, nil)

  local got_step, got = nil, nil
  luisa.every(5, stats, function(step, r) got_step, got = step, r end)
  local compiled = plan.compile(arrays, core)
  is(string.format("every %s, reduction %s, error %s", compiled[1].every, compiled[1].reduction, compiled[1].error),
     "every 5, reduction 0, error nil", "plan.compile gives the period and the reduction id")
  -- Slots: one min per min, one sum per sum or mean, one max per max, none for count.
  local nslots = { min = 0, sum = 0, max = 0 }
  for _, kind in pairs(kinds) do
    if kind == "mean" then kind = "sum" end
    if nslots[kind] then nslots[kind] = nslots[kind] + 1 end
  end
  local buf = core.buffers[1]
  is(string.format("%d %d %d", buf.nmin, buf.nsum, buf.nmax), string.format("%d %d %d", nslots.min, nslots.sum, nslots.max),
     "core.reduction is asked for the slots the reductions need")
  is(plan.run_local(10, { 1 }, 0), nil, "run_local reports no failure")
  is(buf.input[0], 7777, "kernels leave the engine's failure slot alone")
  reduce_all()
  is(plan.deliver(10, { 1 }), nil, "deliver reports no failure")
  is(got_step, 10, "the callback gets the step")
  is(#sorted(got or {}), #sorted(want), "the callback gets one result per stat")
  for _, key in ipairs(sorted(want)) do
    local check = (kinds[key] == "sum" or kinds[key] == "mean") and near or is
    check((got or {})[key], want[key], key)
  end
end

------------------------------------------------------------------------------
-- Fusion: kernels are built once per group of same-chunked arrays, the plan
-- once, and a subexpression is computed once however often it is used.
do
  local luisa, plan, kernel = fresh()
  local tv, uv, vv = values("f64", 48, 11), values("f64", 48, 12), values("f64", 48, 13)
  local two = { { { 0, 0 }, { 5, 6 } }, { { 5, 0 }, { 3, 6 } } }
  local three = { { { 0, 0 }, { 8, 2 } }, { { 0, 2 }, { 8, 2 } }, { { 0, 4 }, { 8, 2 } } }
  local tentry, _, tbufs = fake_array("f64", { 8, 6 }, two, "c", 1, tv)
  local arrays = { T = tentry, U = fake_array("f64", { 8, 6 }, two, "f", 0, uv),
                   V = fake_array("f64", { 8, 6 }, three, "c", 1, vv) }
  local T, U, V = luisa.array "T", luisa.array "U", luisa.array "V"

  local sources = {}   -- every kernel the plan builds, via kernel.build
  local build = kernel.build
  kernel.build = function(...)
    local fn, src = build(...)
    sources[#sources + 1] = src
    return fn, src
  end

  local twice = T * 2
  local r1, r2
  luisa.every(1, { a = T:sum(), b = (T * U):max(), c = (twice + 1):sum(), d = twice:abs():max(), e = U:min() },
              function(_, r) r1 = r end)
  luisa.every(1, { v = V:mean(), t = T:min() }, function(_, r) r2 = r end)
  local compiled = plan.compile(arrays, core)
  is(compiled[1].error or compiled[2].error, nil, "both callbacks compile")
  is(kernel.compiled, 3, "one kernel per group: 5 reductions over same-chunked T and U share one, callback 2 has V's and T's")
  is(#sources, 3, "kernel.build is called once per group")
  -- The first callback's kernel reads T and U and computes T * 2 once.
  -- once per element the kernel's loops take (lanes of the unrolled loop and
  -- the row's rest, for contiguous and strided rows): once per load of T
  local function per_element(src) return select(2, src:gsub("x1 %* 2", "")), select(2, src:gsub("local x1 = o1%[", "")) end
  local n, loads = per_element(sources[1])
  is(n, loads, "T * 2 used by two reductions is computed once per element")

  local tchunk = arrays.T.chunks[1]
  local at = tchunk.first + tchunk.stride[1] + tchunk.stride[2]   -- global (1, 1)
  for step = 1, 100 do
    tbufs[1][at], tv[1 * 6 + 1 + 1] = step, step   -- new data every step: no result may be cached
    if plan.run_local(step, { 1, 2 }, 0) then break end
    reduce_all()
    if plan.deliver(step, { 1, 2 }) then break end
  end
  is(string.format("builds %d, kernels %d", plan.builds, kernel.compiled), "builds 1, kernels 3",
     "100 steps rebuild neither the plan nor the kernels")
  near(r1 and r1.a, reference("sum", 48, function(i) return tv[i] end), "the 100th step sums the 100th data")
  near(r1 and r1.c, reference("sum", 48, function(i) return tv[i] * 2 + 1 end), "(T * 2 + 1):sum at step 100")
  is(r1 and r1.d, reference("max", 48, function(i) return math.abs(tv[i] * 2) end), "|T * 2|:max at step 100")
  is(r1 and r1.b, reference("max", 48, function(i) return tv[i] * uv[i] end), "(T * U):max at step 100")
  near(r2 and r2.v, reference("mean", 48, function(i) return vv[i] end), "V:mean from its own group")

  -- A subexpression is shared by text, not only by node: two separately
  -- built T * 2 give one temporary.
  local lower = require "luisa.lower"
  local function tree(e) return lower.local_tree(lower.lower(e, arrays).pieces[1]) end
  local e1, e2 = tree(T * 2 + U), tree((T * 2):abs())
  local views = lower.leaves(e1)
  local src = kernel.source({ { kind = "sum", expr = e1, slot = 0 }, { kind = "max", expr = e2, slot = 1 } },
                            { { key = views[1].key, dtype = "f64" }, { key = views[2].key, dtype = "f64" } })
  n, loads = per_element(src)
  is(loads >= 2 and n, loads, "kernel.source computes equal subexpressions once per element")
end

------------------------------------------------------------------------------
-- Large callbacks stay within LuaJIT's 200 locals: many reductions split
-- into several kernels, long chains inline their single-use steps.
do
  local luisa, plan, kernel = fresh()
  local tv = values("f64", 48, 21)
  local arrays = { T = fake_array("f64", { 8, 6 }, { { { 0, 0 }, { 5, 6 } }, { { 5, 0 }, { 3, 6 } } }, "c", 1, tv) }
  local T = luisa.array "T"
  local bins, chain = {}, T
  for k = 1, 41 do bins[k] = (T:ge(k * 5 - 105) * T:lt(k * 5 - 100)):sum() end
  for k = 1, 200 do chain = chain + k end
  bins.chain = chain:max()
  local r
  luisa.every(1, bins, function(_, res) r = res end)
  local compiled = plan.compile(arrays, core)
  is(compiled[1].error, nil, "42 reductions and a 200-term chain compile")
  -- each reduction keeps 8 lanes (8 locals): 42 of them halve twice
  is(kernel.compiled, 3, "42 reductions take three kernels")
  plan.run_local(1, { 1 }, 0)
  reduce_all()
  plan.deliver(1, { 1 })
  local exact = true
  for k = 1, 41 do
    local lo, hi = k * 5 - 105, k * 5 - 100
    exact = exact and r and r[k] == reference("sum", 48, function(i) return (tv[i] >= lo and tv[i] < hi) and 1 or 0 end)
  end
  is(exact, true, "every histogram bin counts exactly")
  is(r and r.chain, reference("max", 48, function(i)
    local v = tv[i]
    for k = 1, 200 do v = v + k end
    return v
  end), "the 200-term chain's max is exact")

  local e, l
  e, l = err(function() luisa.every(2^32, { s = T:sum() }, function() end) end), here()
  is(e, l .. ": luisa.every: the period must be a whole number from 1 to 2^31-1, got 4294967296", "period 2^32")
  e, l = err(function() local _ = T.abs(3) end), here()
  is(e, l .. ": luisa: abs() must be called as a method of an array expression, e.g. T:abs()", "T.abs(3)")
  e, l = err(function() local _ = T + T:sum() end), here()
  is(e, l .. ": luisa: operand of + must be a luisa array expression or a number, got a reduction "
     .. "(its number exists only in the callback)", "T + T:sum()")
  e, l = err(function() local _ = T:sum() / T:count() end), here()
  is(e, l .. ": luisa: a reduction is a number only inside the callback: combine results there (e.g. r.a / r.b)",
     "T:sum() / T:count()")
end

------------------------------------------------------------------------------
-- Fusion over shifted views: T:mean(), T:max() and T:diff(0):std() read the
-- same chunks (the difference's T[i+1] - T[i] is T moved by a row), so they
-- make one pass over memory, one kernel; and every result is bit for bit
-- what it is computed alone, whatever it is fused with.
do
  -- Not multiples of a power of 2: sums in another order would differ.
  local n, m = 9, 7
  local tv = {}
  for i = 1, n * m do tv[i] = 1e4 + math.sin(i * 0.37) * 50 + i / 3 end
  -- uneven rows, the middle ones split in columns: the difference's first
  -- row of the last chunk reads two chunks above it
  local boxes = { { { 0, 0 }, { 1, 7 } }, { { 1, 0 }, { 4, 3 } }, { { 1, 3 }, { 4, 4 } }, { { 5, 0 }, { 4, 7 } } }
  local luisa, plan, kernel = fresh()
  local arrays = { T = fake_array("f64", { n, m }, boxes, "c", 1, tv) }
  local T = luisa.array "T"
  local r
  luisa.every(1, { mean = T:mean(), max = T:max(), dstd = T:diff(0):std() }, function(_, res) r = res end)
  local compiled = plan.compile(arrays, core)
  is(string.format("passes %s, kernels %d", compiled[1].passes, kernel.compiled), "passes 1, kernels 1",
     "mean, max and diff(0):std() of T make one pass: one kernel")
  plan.run_local(1, { 1 }, 0)
  reduce_all()
  plan.deliver(1, { 1 })
  local d, s, q = {}, 0, 0
  for i = 1, (n - 1) * m do d[i] = tv[i + m] - tv[i]; s = s + d[i] end
  for i = 1, #d do q = q + (d[i] - s / #d) ^ 2 end   -- two passes: the textbook variance
  near(r and r.mean, reference("mean", n * m, function(i) return tv[i] end), "the fused mean")
  is(r and r.max, reference("max", n * m, function(i) return tv[i] end), "the fused max")
  near(r and r.dstd, math.sqrt(q / #d), "the fused std of the difference, against two passes")

  -- The same reductions alone, and fused with others whose boxes and
  -- shifts differ along either axis, in C and Fortran order.
  luisa, plan, kernel = fresh()
  arrays = { T = fake_array("f64", { n, m }, boxes, "c", 1, tv), F = fake_array("f64", { n, m }, boxes, "f", 2, tv) }
  T = luisa.array "T"
  local F = luisa.array "F"
  local got = {}
  local function keep(k) return function(_, res) got[k] = res end end
  local sets = {
    { mean = T:mean(), max = T:max(), dstd = T:diff(0):std() },
    { mean = F:mean(), max = F:max(), dstd = F:diff(0):std() },
    { std = T:std(), dmean = T:diff(0):mean(), dvar = T:diff(0):var(), d1 = T:diff(1):sum(),
      lap = T:laplacian():max(), lstd = T:laplacian():std(), amax = T:argmax() },
  }
  local alone = {}
  for k, set in ipairs(sets) do luisa.every(1, set, keep(k)) end
  for k, set in ipairs(sets) do
    for key, red in pairs(set) do
      alone[#alone + 1] = { k, key }
      luisa.every(1, { [key] = red }, keep(#sets + #alone))
    end
  end
  compiled = plan.compile(arrays, core)
  is(string.format("%s %s %s", compiled[1].passes, compiled[2].passes, compiled[3].passes), "1 1 1",
     "one pass each for W1 in C order, in Fortran order, and 7 reductions over 4 shifted views and an argmax")
  local due = {}
  for k = 1, #sets + #alone do due[k] = k end
  plan.run_local(1, due, 0)
  reduce_all()
  plan.deliver(1, due)
  local differ = {}
  for j, a in ipairs(alone) do
    local k, key = a[1], a[2]
    local fused, single = got[k] and got[k][key], got[#sets + j] and got[#sets + j][key]
    if type(fused) == "table" then fused, single = table.concat(fused, ","), single and table.concat(single, ",") end
    if fused == nil or fused ~= single then differ[#differ + 1] = k .. "." .. key end
  end
  table.sort(differ)
  is(table.concat(differ, " "), "", "every fused result equals the same reduction alone, bit for bit")
  near(got[2] and got[2].dstd, math.sqrt(q / #d), "Fortran order: the std of the difference")
end

------------------------------------------------------------------------------
-- An unpublished chunk fails the callbacks reading it, naming the array,
-- chunk and rank. Rank 2 of 3, so the rank in the message cannot be right by chance.
do
  local luisa, plan = fresh(2, 3)
  local two = { { { 0, 0 }, { 5, 6 } }, { { 5, 0 }, { 3, 6 } } }
  local three = { { { 0, 0 }, { 8, 2 } }, { { 0, 2 }, { 8, 2 } }, { { 0, 4 }, { 8, 2 } } }
  local ventry, vpub, vbufs = fake_array("f64", { 8, 6 }, three, "c", 1, values("f64", 48, 41))
  local arrays = { T = fake_array("f64", { 8, 6 }, two, "c", 1, values("f64", 48, 42)), V = ventry }
  local T, V = luisa.array "T", luisa.array "V"
  luisa.every(1, { t = T:sum() }, function() end)
  local _, lcb = luisa.every(1, { v = V:mean(), t = T:max() }, function() end), here()
  plan.compile(arrays, core)
  vpub[1] = nil
  local failures = plan.run_local(7, { 1, 2 }, 2) or {}
  is(failures[1], nil, "the callback not reading V still runs")
  is(failures[2], "chunk 1 of array \"V\" (offset [0, 2], shape [8, 2]) was not published on rank 2; "
     .. "luisa.every at " .. lcb .. " needs it: call luisa_publish before luisa_step",
     "an unpublished chunk names the array, chunk, rank and callback")
  vpub[1] = vbufs[2]
  is(plan.run_local(8, { 1, 2 }, 2), nil, "publishing again recovers")
end

------------------------------------------------------------------------------
-- Compile errors name the script line and leave the other callbacks working.
do
  local luisa, plan = fresh()
  local tv, vv, wv = values("f64", 24, 21), values("f64", 24, 22), values("f64", 24, 23)
  local arrays = {
    T = fake_array("f64", { 4, 6 }, { { { 0, 0 }, { 4, 6 } } }, "c", 0, tv),
    V = fake_array("f64", { 6, 4 }, { { { 0, 0 }, { 6, 4 } } }, "c", 0, vv),
    W = fake_array("f64", { 4, 6 }, { { { 0, 0 }, { 2, 6 } }, { { 2, 0 }, { 2, 6 } } }, "f", 1, wv),
  }
  local T, V, W = luisa.array "T", luisa.array "V", luisa.array "W"
  local Q, lq = luisa.array "Q", here()
  local results = {}
  local function keep(k) return function(_, r) results[k] = r end end
  luisa.every(1, { s = (Q + 1):sum() }, keep(1))
  luisa.every(3, { s = T:sum(), n = T:count() }, keep(2))
  local TV, ltv = T + V, here()
  luisa.every(1, { s = TV:sum() }, keep(3))
  local TW, ltw = (T * W):max(), here()
  luisa.every(1, { m = TW }, keep(4))
  luisa.every(2, { m = W:mean() }, keep(5))
  local compiled = plan.compile(arrays, core)
  is(compiled[1].error, lq .. ': no array named "Q" is declared by the simulation (declared: T, V, W)',
     "an unknown array names the luisa.array line and the declared arrays")
  is(compiled[3].error, ltv .. ": shape mismatch in (T + V): T has shape [4, 6], V has shape [6, 4]",
     "a shape mismatch names the operator's line")
  is(compiled[4].error, nil, "arrays decomposed differently combine elementwise (" .. ltw .. ")")
  is(string.format("%s/%s %s/%s", compiled[2].every, compiled[2].error, compiled[5].every, compiled[5].error),
     "3/nil 2/nil", "the other callbacks compile")
  is(#core.buffers, 3, "only compiled callbacks take reduction buffers")
  is(plan.run_local(6, { 2, 4, 5 }, 0), nil, "the compiled callbacks run")
  reduce_all()
  is(plan.deliver(6, { 2, 4, 5 }), nil, "and deliver")
  is(results[4] and results[4].m, reference("max", 24, function(i) return tv[i] * wv[i] end),
     "(T * W):max() over T in one chunk and W in two")
  near(results[2] and results[2].s, reference("sum", 24, function(i) return tv[i] end), "T:sum next to failed callbacks")
  near(results[5] and results[5].m, reference("mean", 24, function(i) return wv[i] end), "W:mean next to failed callbacks")
end

------------------------------------------------------------------------------
-- A callback that raises fails alone, with its line and a traceback.
do
  local luisa, plan = fresh()
  local arrays = { T = fake_array("f64", { 5 }, { { { 0 }, { 5 } } }, "c", 1, values("f64", 5, 31)) }
  local T = luisa.array "T"
  local lraise
  local function boom() lraise = here(); error("boom") end
  local _, lcb = luisa.every(1, { s = T:sum() }, boom), here()
  local second
  luisa.every(1, { m = T:max() }, function(_, r) second = r.m end)
  plan.compile(arrays, core)
  is(plan.run_local(4, { 1, 2 }, 0), nil, "run_local succeeds")
  reduce_all()
  local failures = plan.deliver(4, { 1, 2 }) or {}
  like(failures[1], "luisa.every callback (registered at " .. lcb .. ") failed: ", "the failure names the registration line")
  like(failures[1], tostring(lraise) .. ": boom", "the failure names the line that raised")
  like(failures[1], "stack traceback", "the failure has a traceback")
  is(failures[2], nil, "the other callback does not fail")
  is(second, reference("max", 5, function(i) return values("f64", 5, 31)[i] end), "and gets its results")
end

------------------------------------------------------------------------------
-- Indices are doubles on this side: huge, fractional or NaN numbers from
-- scripts are refused at their line, arrays past 2^53 elements (or buffers
-- past index 2^53) refused at compile, and nothing is ever rounded.
do
  local luisa, plan = fresh()
  local tv = values("f64", 35, 51)
  local arrays = { T = fake_array("f64", { 7, 5 }, { { { 0, 0 }, { 3, 5 } }, { { 3, 0 }, { 4, 5 } } }, "c", 1, tv),
                   W = fake_array("f64", { 64, 64 }, { { { 0, 0 }, { 64, 64 } } }, "c", 0, values("f64", 4096, 52)) }
  local pub = ffi.new("void*[1]")
  anchors[#anchors + 1] = pub
  local function meta(shape, chunks)   -- an array's description alone: compile never reads its data
    local boxes = {}
    for c, ch in ipairs(chunks) do boxes[c] = { owner = ch.owner or 0, chunk = c - 1, offset = ch.offset, shape = ch.shape } end
    local mine = {}
    for _, ch in ipairs(chunks) do if (ch.owner or 0) == core.rank then mine[#mine + 1] = ch end end
    return { dtype = "f64", ndim = #shape, shape = shape, chunks = mine, boxes = boxes, published = ffi.cast("void*", pub) }
  end
  arrays.Huge = meta({ 2^27, 2^27 }, { { offset = { 0, 0 }, shape = { 2^27, 2^27 }, stride = { 2^27, 1 }, first = 0 } })
  arrays.Far = meta({ 4 }, { { offset = { 0 }, shape = { 4 }, stride = { 1 }, first = 2^53 - 3 } })
  arrays.Edge = meta({ 4 }, { { offset = { 0 }, shape = { 4 }, stride = { 1 }, first = 2^53 - 4 } })
  local T, W = luisa.array "T", luisa.array "W"
  local e, l
  e, l = err(function() local _ = T:slice({}, {}, {}, {}, {}) end), here()
  is(e, l .. ": luisa: slice: 5 ranges, arrays have at most 4 axes", "a slice of 5 ranges")
  e, l = err(function() local _ = T[{ [2^40] = 1 }] end), here()
  is(e, l .. ": luisa: T[{...}]: 1099511627776 ranges, arrays have at most 4 axes", "T[{[2^40] = 1}] unpacks nothing")
  e, l = err(function() local _ = T:histogram(10, { -1/0, 0 }) end), here()
  like(e, l .. ": luisa: histogram(bins, {lo, hi}): {-inf, 0} gives bins of width inf", "histogram over {-inf, 0}")
  e, l = err(function() local _ = T:histogram(4, { -1e308, 1e308 }) end), here()
  like(e, l .. ": luisa: histogram(bins, {lo, hi}): {-1e+308, 1e+308} gives bins of width inf",
       "histogram whose hi - lo overflows")
  e, l = err(function() local _ = T:histogram(65536, { 0, 5e-324 }) end), here()
  like(e, l .. ": luisa: histogram(bins, {lo, hi}): {0, 4.9406564584124654e-324}", "histogram whose bins / (hi - lo) is inf")

  local results = {}
  local function keep(k) return function(_, r) results[k] = r end end
  local bad = {   -- each alone in a callback: {reduction, its line, what the error says}
    { T[{ { 0, 4, -1e300 } }]:sum(), here(), "slice: axis 0: step must be >= 1, got -1.0000000000000001e+300" },
    { T[{ { 0.5, 2 } }]:sum(), here(), "slice: axis 0: start, stop and step must be whole numbers, got {0.5, 2, 1}" },
    { T[{ { 0/0, 2 } }]:sum(), here(), "slice: axis 0: start, stop and step must be whole numbers, got {nan, 2, 1}" },
    { T[{ 2^60 }]:sum(), here(), "slice: index 1152921504606846976 is out of bounds on axis 0 of extent 7" },
    { T[{ {}, -1e300 }]:sum(), here(), "slice: index -1.0000000000000001e+300 is out of bounds on axis 1 of extent 5" },
    { T[{ { -2^62, 3 } }]:sum(), here(), "slice: axis 0: range {-4611686018427387904, 3} is empty or out of bounds for extent 7" },
    { T:diff(2^60):sum(), here(), "diff: axis 1152921504606846976 is out of range for 2 axes (0 to 1)" },
    { T:coarsen(2^60):sum(), here(), "coarsen: axis 0 has extent 7, less than the factor 1152921504606846976" },
    { W:laplacian():coarsen(30):sum(), here(), "coarsen: blocks of 900 elements of an expression reading 5 views read 4500 "
      .. "views of arrays at once, at most 4096 (compile time and memory grow with them): use a smaller factor" },
    { T:sum(2^60), here(), "sum: axis 1152921504606846976 is out of range for 2 axes (0 to 1)" },
    { luisa.array("Huge"):sum(), here(), 'array "Huge" (shape [134217728, 134217728]) has 18014398509481984 elements: '
      .. "scripts index arrays in doubles, exact below 2^53 elements" },
    { (luisa.array("Far") + 1):max(), here(), 'chunk 0 of array "Far": its buffer\'s highest element index is '
      .. "9007199254740992: scripts index buffers in doubles, exact below 2^53 (luisa_chunk's layout)" },
  }
  for k, b in ipairs(bad) do luisa.every(1, { r = b[1] }, keep(k)) end
  local lone = T[{ { 1, 2, 1e300 } }][{ { 0, 1, 1e300 } }][{ { 0, 1, 1e300 }, { 2, 3, 2^62 } }]
  luisa.every(1, { v = lone:sum() }, keep(#bad + 1))
  luisa.every(1, { v = luisa.array("Edge"):max() }, keep(#bad + 2))
  luisa.every(1, { v = T:sum() }, keep(#bad + 3))
  local compiled = plan.compile(arrays, core)
  for k, b in ipairs(bad) do
    is(compiled[k].error, b[2] .. ": " .. b[3], "refused at compile: " .. b[3])
  end
  is(compiled[#bad + 1].error, nil, "a lone element's huge steps compile: T[{{1, 2, 1e300}}] three times over")
  is(compiled[#bad + 2].error, nil, "a buffer whose highest element index is 2^53 - 1 compiles")
  local due = { #bad + 1, #bad + 3 }
  is(plan.run_local(1, due, 0), nil, "the lone element and T:sum() run")
  reduce_all()
  plan.deliver(1, due)
  is(results[#bad + 1] and results[#bad + 1].v, tv[1 * 5 + 2 + 1], "and it reads T[1, 2], nothing else")

  e, l = err(function() luisa.fetch("T", { 0/0, 0 }, { 1, 1 }) end), here()
  is(e, l .. ': luisa.fetch("T"): the offset on axis 0 must be a whole number, got nan', "fetch at offset NaN")
  e, l = err(function() luisa.fetch("T", { 0, 0 }, { 1, 2.5 }) end), here()
  is(e, l .. ': luisa.fetch("T"): the shape on axis 1 must be a whole number >= 1, got 2.5', "fetch of shape 2.5")
  e, l = err(function() luisa.fetch("T", { 2^60, 0 }, { 1, 1 }) end), here()
  like(e, l .. ': luisa.fetch("T"): the box at [1152921504606846976, 0] of shape [1, 1] is outside', "fetch at 2^60")
  e, l = err(function() luisa.fetch("Huge", { 0, 0 }, { 1, 1 }) end), here()
  like(e, l .. ': luisa.fetch: array "Huge" (shape [134217728, 134217728]) has 18014398509481984 elements',
       "fetch from an array of 2^54 elements")
end

-- Planned transfers and fetched parts travel in one MPI message each: past
-- 2^31 - 1 bytes they are refused, not truncated. Rank 0 of 2; metadata only.
do
  local luisa, plan = fresh(0, 2)
  local pub = ffi.new("void*[1]")
  anchors[#anchors + 1] = pub
  local n = 2^28   -- 2^31 bytes of f64
  local arrays = {
    T = { dtype = "f64", ndim = 1, shape = { n }, published = ffi.cast("void*", pub),
          chunks = { { offset = { 0 }, shape = { n }, stride = { 1 }, first = 0 } },
          boxes = { { owner = 0, chunk = 0, offset = { 0 }, shape = { n } } } },
    U = { dtype = "f64", ndim = 1, shape = { n }, published = ffi.cast("void*", pub), chunks = {},
          boxes = { { owner = 1, chunk = 0, offset = { 0 }, shape = { n } } } },
  }
  local T, U = luisa.array "T", luisa.array "U"
  local _, lcb = luisa.every(1, { s = (T + U):sum() }, function() end), here()
  local compiled = plan.compile(arrays, core)
  is(compiled[1].error, lcb .. ": luisa.every: a planned transfer from rank 1 is 2147483648 bytes, more than one "
     .. "MPI message carries (2147483647 bytes): slice or coarsen what it reads", "a transfer of 2^31 bytes is refused")
  local e, l = err(function() luisa.fetch("U", { 0 }, { n }) end), here()
  is(e, l .. ': luisa.fetch("U"): the part of chunk 0 on rank 1 is 2147483648 bytes, more than one MPI message '
     .. "carries (2147483647 bytes): fetch smaller boxes", "a fetch of 2^31 bytes from one chunk is refused")
end

------------------------------------------------------------------------------
-- NaN: min and max skip it, and give NaN where they saw nothing else (every
-- element NaN, or every element of an axis reduction's line); argmin and
-- argmax give nil then; a mix of NaN and numbers gives the extreme of the
-- numbers, infinities included. Data patterns over 3 chunks, against plain
-- Lua that sorts the numbers (no comparison chain like the kernel's).
do
  local n0, n1 = 6, 5
  local N, nan, inf = n0 * n1, 0 / 0, math.huge
  -- rows 0-1 are chunk 1, rows 2-5 are split in columns 0-1 and 2-4
  local boxes = { { { 0, 0 }, { 2, 5 } }, { { 2, 0 }, { 4, 2 } }, { { 2, 2 }, { 4, 3 } } }
  local function pattern(f)   -- values in C order (1-based) of f(i, row, col), 0-based i
    local v = {}
    for i = 0, N - 1 do v[i + 1] = f(i, math.floor(i / n1), i % n1) end
    return v
  end
  local random = values("f64", N, 51)
  local patterns = {
    { "all NaN", pattern(function() return nan end) },
    { "chunk 1 NaN", pattern(function(i, r) return r < 2 and nan or random[i + 1] end) },
    { "first and last NaN", pattern(function(i) return (i == 0 or i == N - 1) and nan or random[i + 1] end) },
    { "rising", pattern(function(i) return i * 0.5 - 3 end) },
    { "falling", pattern(function(i) return 7 - i * 0.25 end) },
    { "constant", pattern(function() return 2.5 end) },
    { "+inf and -inf", pattern(function(i) return i == 7 and inf or i == 23 and -inf or random[i + 1] end) },
    { "NaN but one +inf", pattern(function(i) return i == 17 and inf or nan end) },
    { "NaN but one -inf", pattern(function(i) return i == 4 and -inf or nan end) },
    { "NaN and -inf in column 3", pattern(function(i, _, c) return c == 3 and (i == 8 and -inf or nan)
                                                                     or c == 1 and nan or random[i + 1] end) },
  }
  -- The reference: min and max of the numbers (NaN when there are none),
  -- the lowest index holding them (nil when none).
  local function extremes(list)   -- list of {value, index}
    local numbers = {}
    for _, e in ipairs(list) do if e[1] == e[1] then numbers[#numbers + 1] = e end end
    if #numbers == 0 then return nan, nan, nil, nil end
    table.sort(numbers, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
    local lo, hi = numbers[1], numbers[#numbers]
    local first_hi = #numbers
    while first_hi > 1 and numbers[first_hi - 1][1] == hi[1] do first_hi = first_hi - 1 end
    return lo[1], hi[1], lo[2], numbers[first_hi][2]
  end

  local luisa, plan = fresh()
  local arrays, got = {}, {}
  local function block_min(data, shape)   -- a map's function: the block's min, skipping NaN
    local m = nan
    for k = 0, shape[1] * shape[2] - 1 do
      local v = data[k]
      if v == v and (m ~= m or v < m) then m = v end
    end
    return m
  end
  local function block_max(data, shape)
    local m = nan
    for k = 0, shape[1] * shape[2] - 1 do
      local v = data[k]
      if v == v and (m ~= m or v > m) then m = v end
    end
    return m
  end
  for p, pat in ipairs(patterns) do
    local name = "P" .. p
    arrays[name] = fake_array("f64", { n0, n1 }, boxes, p % 2 == 0 and "f" or "c", 1, pat[2])
    local P = luisa.array(name)
    luisa.every(1, { min = P:min(), max = P:max(), amin = P:argmin(), amax = P:argmax(), sum = P:sum(),
                     min0 = P:min(0), max0 = P:max(0), min1 = P:min(1), max1 = P:max(1),
                     mmin = luisa.map(P, block_min, "min"), mmax = luisa.map(P, block_max, "max"),
                     both = (P * 2):min(), neg = (-P):max() },
                function(_, r) got[p] = r end)
  end
  -- No selection is empty, so there is no min of nothing but this: an empty
  -- slice is refused when the plan is compiled (arrays and chunks have at
  -- least one element, engine/array.c).
  local P1 = luisa.array "P1"
  local empty, lempty = P1[{ { 3, 3 } }], here()
  luisa.every(1, { m = empty:min() }, function() end)
  local compiled = plan.compile(arrays, core)
  is(compiled[#patterns + 1].error, lempty .. ": slice: axis 0: range {3, 3} is empty or out of bounds for extent 6",
     "a min over an empty slice is refused at compile time")
  local due, errors = {}, {}
  for p = 1, #patterns do
    due[p] = p
    if compiled[p].error then errors[#errors + 1] = compiled[p].error end
  end
  is(table.concat(errors, "; "), "", "the NaN patterns' callbacks compile")
  is(plan.run_local(1, due, 0), nil, "and run")
  reduce_all()
  is(plan.deliver(1, due), nil, "and deliver")
  local function index(i) return i and string.format("{%d, %d}", math.floor(i / n1), i % n1) or "nil" end
  local function text_of(t) return t and string.format("{%s, %s}", t[1], t[2]) or "nil" end
  local function row(field, count)   -- a field's elements as text
    if type(field) ~= "table" then return tostring(field) end
    local t = {}
    for k = 0, count - 1 do t[#t + 1] = num(field.data[k]) end
    return table.concat(t, " ")
  end
  for p, pat in ipairs(patterns) do
    local label, v, r = pat[1], pat[2], got[p] or {}
    local all = {}
    for i = 0, N - 1 do all[#all + 1] = { v[i + 1], i } end
    local mn, mx, amin, amax = extremes(all)
    is(string.format("min %s max %s", num(r.min), num(r.max)), string.format("min %s max %s", num(mn), num(mx)),
       label .. ": P:min() and P:max()")
    is(string.format("argmin %s argmax %s", text_of(r.amin), text_of(r.amax)),
       string.format("argmin %s argmax %s", index(amin), index(amax)), label .. ": P:argmin() and P:argmax()")
    is(string.format("map min %s max %s", num(r.mmin), num(r.mmax)), string.format("map min %s max %s", num(mn), num(mx)),
       label .. ": luisa.map combining by min and max")
    local m2, x2 = extremes((function()
      local t = {}
      for i = 0, N - 1 do t[#t + 1] = { v[i + 1] * 2, i } end
      return t
    end)())
    local _, xneg = extremes((function()
      local t = {}
      for i = 0, N - 1 do t[#t + 1] = { -v[i + 1], i } end
      return t
    end)())
    is(string.format("%s %s", num(r.both), num(r.neg)), string.format("%s %s", num(m2), num(xneg)),
       label .. ": (P * 2):min() and (-P):max()")
    local s = 0
    for i = 1, N do s = s + v[i] end
    is(num(r.sum), num(s), label .. ": P:sum() propagates NaN and infinities")
    -- along axis 0 (one value per column) and axis 1 (one per row)
    local want = { min0 = {}, max0 = {}, min1 = {}, max1 = {} }
    for c = 0, n1 - 1 do
      local line = {}
      for r0 = 0, n0 - 1 do line[#line + 1] = { v[r0 * n1 + c + 1], r0 } end
      local a, b = extremes(line)
      want.min0[#want.min0 + 1], want.max0[#want.max0 + 1] = num(a), num(b)
    end
    for r0 = 0, n0 - 1 do
      local line = {}
      for c = 0, n1 - 1 do line[#line + 1] = { v[r0 * n1 + c + 1], c } end
      local a, b = extremes(line)
      want.min1[#want.min1 + 1], want.max1[#want.max1 + 1] = num(a), num(b)
    end
    is(string.format("min(0) %s | max(0) %s", row(r.min0, n1), row(r.max0, n1)),
       string.format("min(0) %s | max(0) %s", table.concat(want.min0, " "), table.concat(want.max0, " ")),
       label .. ": P:min(0) and P:max(0) per column")
    is(string.format("min(1) %s | max(1) %s", row(r.min1, n0), row(r.max1, n0)),
       string.format("min(1) %s | max(1) %s", table.concat(want.min1, " "), table.concat(want.max1, " ")),
       label .. ": P:min(1) and P:max(1) per row")
  end
  -- The same again: the accumulators start over at every step, and the
  -- loops LuaJIT compiles by then (side traces for the rare branches
  -- included) give what the interpreter gave.
  local function extremes_text()
    local t = {}
    for p = 1, #patterns do
      local r = got[p] or {}
      t[p] = table.concat({ num(r.min), num(r.max), num(r.mmin), num(r.mmax), row(r.min1, n0), row(r.max0, n1) }, " ")
    end
    return table.concat(t, ", ")
  end
  local before, differ = extremes_text(), 0
  for step = 2, 300 do
    plan.run_local(step, due, 0)
    reduce_all()
    plan.deliver(step, due)
    if extremes_text() ~= before then differ = differ + 1 end
  end
  is(differ, 0, "299 more steps give the same min and max every time")
end

if ntests ~= PLAN then print("# planned " .. PLAN .. " tests but ran " .. ntests) end
os.exit(nfailed == 0 and ntests == PLAN and 0 or 1)
