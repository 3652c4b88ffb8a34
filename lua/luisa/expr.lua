-- luisa.expr: lazy expressions over distributed arrays.
-- Building one only records a node and where the script made it.
local M = { MAX_DIMS = 4 }   -- LUISA_MAX_DIMS

local Expr, Reduction = {}, {}
Reduction.__index = Reduction

-- Sources of the luisa modules: their frames are skipped when naming the
-- script line an error is about.
M.internal = { [debug.getinfo(1, "S").source] = true }

-- "file:line" of the first frame outside the luisa modules. Walking up
-- from here rather than counting levels stays right across tail calls.
function M.caller()
  local level = 2
  while true do
    local info = debug.getinfo(level, "Sl")
    if not info then return "?" end
    local src = info.source
    if not M.internal[src] and info.currentline > 0 then
      return (src:gsub("^@", "")) .. ":" .. info.currentline
    end
    level = level + 1
  end
end

local function node(t)
  t.where = M.caller()
  return setmetatable(t, Expr)
end

function M.is_expr(v) return getmetatable(v) == Expr end
function M.is_reduction(v) return getmetatable(v) == Reduction end

function M.array(name)
  if type(name) ~= "string" or name == "" then
    error("luisa.array: expected an array name (string), got " .. tostring(name), 2)
  end
  return node { kind = "array", name = name }
end

local function operand(v, opname)
  if getmetatable(v) == Expr then return v end
  if type(v) == "number" then return setmetatable({ kind = "const", value = v }, Expr) end
  local what = getmetatable(v) == Reduction and "a reduction (its number exists only in the callback)"
               or type(v)
  error(string.format("luisa: operand of %s must be a luisa array expression or a number, got %s",
                      opname, what), 3)
end

-- Arithmetic on reductions would need a second pass over the results:
-- combine the numbers in the callback instead.
local function reduction_arithmetic()
  error("luisa: a reduction is a number only inside the callback: combine results there "
        .. "(e.g. r.a / r.b)", 2)
end
for _, mm in ipairs { "__add", "__sub", "__mul", "__div", "__pow", "__unm", "__mod" } do
  Reduction[mm] = reduction_arithmetic
end

local function binary(op)
  return function(a, b)
    a, b = operand(a, op), operand(b, op)
    return node { kind = "binary", op = op, a = a, b = b }
  end
end

Expr.__add = binary "+"
Expr.__sub = binary "-"
Expr.__mul = binary "*"
Expr.__div = binary "/"
Expr.__pow = binary "^"
function Expr.__unm(a) return node { kind = "unary", op = "neg", a = a } end

-- Lua turns the result of < and == into booleans, so comparisons are methods
-- and give masks (1 where true, 0 elsewhere).
for method, op in pairs { lt = "<", le = "<=", gt = ">", ge = ">=", eq = "==", ne = "~=" } do
  Expr[method] = function(a, b)
    a, b = operand(a, method), operand(b, method)
    return node { kind = "compare", op = op, a = a, b = b }
  end
end

local function method_of_expr(a, name)
  if getmetatable(a) ~= Expr then
    error("luisa: " .. name .. "() must be called as a method of an array expression, e.g. T:"
          .. name .. "()", 3)
  end
end

M.functions = { "abs", "sqrt", "exp", "log", "log10", "floor", "ceil", "sin", "cos", "tan",
                "asin", "acos", "atan", "sinh", "cosh", "tanh" }
for _, fn in ipairs(M.functions) do
  Expr[fn] = function(a)
    method_of_expr(a, fn)
    return node { kind = "unary", op = fn, a = a }
  end
end

-- cast(dtype): the value as that type would hold it: f32 rounds to single
-- precision, integers truncate toward zero.
M.casts = { f64 = true, f32 = true, i64 = true, i32 = true }
function Expr.cast(a, dtype)
  method_of_expr(a, "cast")
  if not M.casts[dtype] then
    error("luisa: cast() takes \"f64\", \"f32\", \"i64\" or \"i32\", got " .. tostring(dtype), 2)
  end
  return node { kind = "unary", op = "cast_" .. dtype, a = a }
end

-- where(mask, a, b): a where mask is non-zero, b elsewhere.
function M.where(mask, a, b)
  mask, a, b = operand(mask, "where"), operand(a, "where"), operand(b, "where")
  return node { kind = "where", a = a, b = b, c = mask }
end

-- Elementwise minimum and maximum of two operands.
function M.minimum(a, b) return node { kind = "binary", op = "min", a = operand(a, "minimum"), b = operand(b, "minimum") } end
function M.maximum(a, b) return node { kind = "binary", op = "max", a = operand(a, "maximum"), b = operand(b, "maximum") } end

-- Stencils and slices: shapes are known only when the plan is compiled, so
-- these stay structural nodes until luisa.lower turns them into elementwise
-- expressions over shifted and strided views of the arrays.

-- diff(axis): forward difference T[i+1] - T[i] along axis (0-based); the
-- result is one shorter on that axis (numpy.diff).
function Expr.diff(a, axis)
  method_of_expr(a, "diff")
  if type(axis) ~= "number" or axis % 1 ~= 0 then
    error("luisa: diff(axis): the axis must be a whole number, got " .. tostring(axis), 2)
  end
  return node { kind = "diff", a = a, axis = axis }
end

-- gradient(axis): numpy.gradient with unit spacing: (T[i+1] - T[i-1]) / 2
-- inside, one-sided differences at both ends; the same shape as T.
function Expr.gradient(a, axis)
  method_of_expr(a, "gradient")
  if type(axis) ~= "number" or axis % 1 ~= 0 then
    error("luisa: gradient(axis): the axis must be a whole number, got " .. tostring(axis), 2)
  end
  return node { kind = "gradient", a = a, axis = axis }
end

-- laplacian(): sum over axes of T[i+1] + T[i-1] - 2 T[i], on the interior
-- points (two shorter on every axis).
function Expr.laplacian(a)
  method_of_expr(a, "laplacian")
  return node { kind = "laplacian", a = a }
end

-- stencil(weights): nested tables, one level per axis, odd extents 2h+1,
-- centred; the result covers the points where the whole stencil fits.
function Expr.stencil(a, weights)
  method_of_expr(a, "stencil")
  if type(weights) ~= "table" then
    error("luisa: stencil(weights): weights must be nested tables of numbers, got " .. type(weights), 2)
  end
  return node { kind = "stencil", a = a, weights = weights }
end

-- slice(r0, r1, ...): per axis {start, stop, step} as in Python (0-based,
-- stop excluded, negative from the end, step >= 1), {} or true for the whole
-- axis, a number i for {i, i+1}. Missing trailing axes are whole.
function Expr.slice(a, ...)
  method_of_expr(a, "slice")
  local ranges = { ... }
  if select("#", ...) > M.MAX_DIMS then
    error(string.format("luisa: slice: %d ranges, arrays have at most %d axes", select("#", ...), M.MAX_DIMS), 2)
  end
  for axis = 1, select("#", ...) do
    local r = ranges[axis]
    if not (r == true or type(r) == "number" or type(r) == "table") then
      error(string.format("luisa: slice: the range of axis %d must be {start, stop, step}, {} or a "
                          .. "number, got %s", axis - 1, tostring(r)), 2)
    end
  end
  return node { kind = "slice", a = a, ranges = ranges, naxes = select("#", ...) }
end

-- region(e, r0, r1, ...): a slice of e (as e[{r0, r1, ...}]) that callbacks
-- may move (luisa.move): the plan is then compiled again on every rank.
M.regions = {}
function M.region(e, ...)
  local n = Expr.slice(e, ...)
  M.regions[#M.regions + 1] = n
  n.region = #M.regions
  return n
end

-- prev(k): the expression as it was k steps ago: each array in it is read
-- as published k luisa_step calls before this one (k >= 1, default 1).
-- Until k steps have passed, reductions of it give nil.
function Expr.prev(a, k)
  method_of_expr(a, "prev")
  k = k or 1
  if type(k) ~= "number" or k < 1 or k > 1000 or k % 1 ~= 0 then
    error("luisa: prev(k): k must be a whole number from 1 to 1000, got " .. tostring(k), 2)
  end
  return node { kind = "prev", a = a, k = k }
end

-- window(e, n): the last n versions of e, w[0] = e (now) to w[n-1] = e:prev(n-1).
function M.window(e, n)
  method_of_expr(e, "window")
  if type(n) ~= "number" or n < 1 or n > 1001 or n % 1 ~= 0 then
    error("luisa.window(e, n): n must be a whole number from 1 to 1001, got " .. tostring(n), 2)
  end
  local w = { [0] = e }
  for k = 1, n - 1 do w[k] = setmetatable({ kind = "prev", a = e, k = k, where = M.caller() }, Expr) end
  return w
end

-- T[{r0, r1, ...}] is T:slice(r0, r1, ...).
function Expr.__index(e, key)
  if type(key) == "table" then
    local n = table.maxn(key)   -- before unpack: T[{[2^40] = 1}] must not unpack 2^40 values
    if n > M.MAX_DIMS then
      error(string.format("luisa: T[{...}]: %s ranges, arrays have at most %d axes", n % 1 == 0 and n < 2^53
                          and string.format("%d", n) or tostring(n), M.MAX_DIMS), 2)
    end
    return Expr.slice(e, unpack(key, 1, n))
  end
  return Expr[key]
end

local function reduction(kind, along_axis)
  return function(a, axis)
    method_of_expr(a, kind)
    if axis ~= nil and (not along_axis or type(axis) ~= "number" or axis % 1 ~= 0) then
      error("luisa: " .. kind .. "(" .. (along_axis and "axis" or "") .. "): "
            .. (along_axis and "the axis must be a whole number" or "takes no argument")
            .. ", got " .. tostring(axis), 2)
    end
    return setmetatable({ kind = kind, expr = a, axis = axis, where = M.caller() }, Reduction)
  end
end

-- Reductions over the whole array, or along one axis (sum, mean, min, max:
-- the result is an array on the root). var and std are the population ones
-- (divided by the count); argmin and argmax give the 0-based global index.
for _, kind in ipairs { "sum", "mean", "min", "max" } do Expr[kind] = reduction(kind, true) end
for _, kind in ipairs { "count", "var", "std", "norm", "argmin", "argmax" } do Expr[kind] = reduction(kind) end

-- gather(): the whole (small, sliced or coarsened) array on the root.
Expr.gather = reduction("gather")

-- map(e, fn, combine): fn(data, shape, offset) runs on every rank over each
-- block of its part of e (data: a double* to the block's values in C order,
-- shape and offset 0-based global position of the block in e); the numbers
-- it returns are combined by "sum" (default), "min" or "max".
function M.map(e, fn, combine)
  method_of_expr(e, "map")
  if type(fn) ~= "function" then error("luisa.map(e, fn): fn must be a function, got " .. type(fn), 2) end
  combine = combine or "sum"
  if combine ~= "sum" and combine ~= "min" and combine ~= "max" then
    error("luisa.map(e, fn, combine): combine must be \"sum\", \"min\" or \"max\", got " .. tostring(combine), 2)
  end
  return setmetatable({ kind = "map", expr = e, fn = fn, combine = combine, where = M.caller() }, Reduction)
end

-- coarsen(f): means over blocks of f elements per axis (f a number, or one
-- per axis); the result is floor(n / f) long on each axis.
function Expr.coarsen(a, f)
  method_of_expr(a, "coarsen")
  local ok = type(f) == "number" and f >= 1 and f % 1 == 0
  if type(f) == "table" then
    ok = #f > 0
    for _, v in ipairs(f) do ok = ok and type(v) == "number" and v >= 1 and v % 1 == 0 end
  end
  if not ok then
    error("luisa: coarsen(f): f must be a whole number >= 1 or one per axis, got " .. tostring(f), 2)
  end
  return node { kind = "coarsen", a = a, factor = f }
end

-- histogram(bins, {lo, hi}): counts of values in `bins` equal bins over
-- [lo, hi]; hi itself falls in the last bin, values outside are not counted.
function Expr.histogram(a, bins, range)
  method_of_expr(a, "histogram")
  if type(bins) ~= "number" or bins < 1 or bins > 65536 or bins % 1 ~= 0 then
    error("luisa: histogram(bins, {lo, hi}): bins must be a whole number from 1 to 65536, got "
          .. tostring(bins), 2)
  end
  if type(range) ~= "table" or type(range[1]) ~= "number" or type(range[2]) ~= "number"
     or not (range[1] < range[2]) then
    error("luisa: histogram(bins, {lo, hi}): the range must be two numbers with lo < hi", 2)
  end
  -- the kernel bins by floor((v - lo) * bins / (hi - lo)): every factor finite
  local width = range[2] - range[1]
  if width == math.huge or bins / width == math.huge then
    error(string.format("luisa: histogram(bins, {lo, hi}): {%.17g, %.17g} gives bins of width %.17g: expected "
                        .. "finite lo and hi, and bins / (hi - lo) finite", range[1], range[2], width / bins), 2)
  end
  return setmetatable({ kind = "histogram", expr = a, where = M.caller(), bins = bins,
                        lo = range[1], hi = range[2] }, Reduction)
end

function Expr.__tostring(e)
  if e.kind == "array" then return e.name end
  if e.kind == "const" then return tostring(e.value) end
  if e.kind == "unary" then return e.op .. "(" .. tostring(e.a) .. ")" end
  if e.kind == "diff" or e.kind == "gradient" then return tostring(e.a) .. ":" .. e.kind .. "(" .. e.axis .. ")" end
  if e.kind == "prev" then return tostring(e.a) .. ":prev(" .. e.k .. ")" end
  if e.kind == "laplacian" or e.kind == "stencil" or e.kind == "slice" or e.kind == "coarsen" then
    return tostring(e.a) .. ":" .. e.kind .. "(...)"
  end
  if e.kind == "leaf" then return e.name end
  if e.kind == "where" then return "where(" .. tostring(e.c) .. ", " .. tostring(e.a) .. ", " .. tostring(e.b) .. ")" end
  if e.op == "min" or e.op == "max" then return e.op .. "imum(" .. tostring(e.a) .. ", " .. tostring(e.b) .. ")" end
  return "(" .. tostring(e.a) .. " " .. e.op .. " " .. tostring(e.b) .. ")"
end

function Reduction.__tostring(r)
  return tostring(r.expr) .. ":" .. r.kind .. "(" .. (r.axis and tostring(r.axis) or "") .. ")"
end

-- Every node below e, each once, children before parents.
function M.walk(e, visit, seen)
  seen = seen or {}
  if seen[e] then return end
  seen[e] = true
  if e.a then M.walk(e.a, visit, seen) end
  if e.b then M.walk(e.b, visit, seen) end
  if e.c then M.walk(e.c, visit, seen) end
  visit(e)
end

return M
