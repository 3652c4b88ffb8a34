-- luisa.expr: lazy expressions over distributed arrays.
-- Building one only records a node and where the script made it.
local M = {}

local Expr, Reduction = {}, {}
Expr.__index = Expr
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

for _, fn in ipairs { "abs", "sqrt", "exp", "log", "floor", "ceil" } do
  Expr[fn] = function(a)
    if getmetatable(a) ~= Expr then
      error("luisa: " .. fn .. "() must be called as a method of an array expression, e.g. T:" .. fn .. "()", 2)
    end
    return node { kind = "unary", op = fn, a = a }
  end
end

local function reduction(kind)
  return function(a)
    if getmetatable(a) ~= Expr then
      error("luisa: " .. kind .. "() must be called as a method of an array expression, e.g. T:" .. kind .. "()", 2)
    end
    return setmetatable({ kind = kind, expr = a, where = M.caller() }, Reduction)
  end
end

for _, kind in ipairs { "sum", "mean", "min", "max", "count" } do
  Expr[kind] = reduction(kind)
end

function Expr.__tostring(e)
  if e.kind == "array" then return e.name end
  if e.kind == "const" then return tostring(e.value) end
  if e.kind == "unary" then return e.op .. "(" .. tostring(e.a) .. ")" end
  return "(" .. tostring(e.a) .. " " .. e.op .. " " .. tostring(e.b) .. ")"
end

function Reduction.__tostring(r) return tostring(r.expr) .. ":" .. r.kind .. "()" end

-- Every node below e, each once, children before parents.
function M.walk(e, visit, seen)
  seen = seen or {}
  if seen[e] then return end
  seen[e] = true
  if e.a then M.walk(e.a, visit, seen) end
  if e.b then M.walk(e.b, visit, seen) end
  visit(e)
end

return M
