-- luisa.lower: turns a script's expression into what kernels evaluate: an
-- elementwise tree over leaves, each a shifted and strided view of an array.
local expr = require "luisa.expr"
expr.internal[debug.getinfo(1, "S").source] = true

local M = {}
-- A coarsen's block or a stencil's weights read one view per element, times
-- the views of what they apply to. Past this many, compile time and memory
-- grow out of reason (a second and 20 MB at 4096, docs/decisions.md) and the
-- plan's recursive walks near the end of LuaJIT's stack (about 5600).
local MAX_VIEWS = 4096

local function fail(where, fmt, ...)
  error(where .. ": " .. string.format(fmt, ...), 0)
end

-- Indices and sizes are doubles here: exact below 2^53. Arrays whose
-- elements or buffers reach it are refused (check_exact), so no index
-- computed from them is ever rounded.
M.EXACT = 2 ^ 53

-- A number for messages: whole ones in full (the double's exact value),
-- others (past 2^63, fractional, NaN, infinite) to 17 digits.
local function num(v)
  if type(v) ~= "number" then return tostring(v) end
  if v % 1 == 0 and v >= -2^63 and v < 2^63 then return string.format("%d", v) end
  if v ~= v then return "nan" end
  return string.format("%.17g", v)
end
M.num = num

local function shape_text(shape)
  local t = {}
  for i, v in ipairs(shape) do t[i] = num(v) end
  return "[" .. table.concat(t, ", ") .. "]"
end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end
M.same_shape, M.shape_text = same_shape, shape_text

-- A list of whole numbers as text for keys. %d, not tostring: -0 and 0
-- must read the same, as ranks must agree on every key (whether ceil gives
-- -0 may depend on whether LuaJIT compiled the code).
function M.text(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = string.format("%d", v) end
  return table.concat(t, ",")
end

-- Array `name` as an analysis reads it: fewer than 2^53 elements, and (with
-- `chunks`) every local chunk's highest element index below 2^53, so the
-- plan's index arithmetic in doubles is exact.
function M.check_exact(name, a, where, chunks)
  local volume = 1
  for _, extent in ipairs(a.shape) do volume = volume * extent end
  if volume >= M.EXACT then
    fail(where, "array %q (shape %s) has %s elements: scripts index arrays in doubles, exact below 2^53 elements",
         name, shape_text(a.shape), num(volume))
  end
  for c, ch in ipairs(chunks and a.chunks or {}) do
    local last = ch.first
    for d = 1, #ch.shape do last = last + (ch.shape[d] - 1) * ch.stride[d] end
    if last >= M.EXACT then
      fail(where, "chunk %d of array %q: its buffer's highest element index is %s: scripts index buffers in "
           .. "doubles, exact below 2^53 (luisa_chunk's layout)", c - 1, name, num(last))
    end
  end
end

-- A leaf: element r of the view is array[origin + r * step] on every axis,
-- as published `version` steps ago (0: this step).
local function leaf(name, origin, step, version)
  local key = "L" .. name .. "@" .. M.text(origin) .. "/" .. M.text(step) .. "v" .. version
  return { kind = "leaf", name = name, origin = origin, step = step, version = version, key = key }
end

M.leaf = leaf

-- Every node below t rebuilt with its leaves passed through f.
local function map_leaves(t, f)
  local memo = {}
  local function go(n)
    if n.kind == "const" then return n end
    if memo[n] then return memo[n] end
    local out
    if n.kind == "leaf" then out = f(n)
    else out = { kind = n.kind, op = n.op, a = go(n.a), b = n.b and go(n.b), c = n.c and go(n.c) } end
    memo[n] = out
    return out
  end
  return go(t)
end

-- The view of t at result index start + r * step: composes with every leaf.
local function restrict(t, start, step)
  return map_leaves(t, function(n)
    local origin, st = {}, {}
    for d = 1, #n.origin do
      origin[d] = n.origin[d] + start[d] * n.step[d]
      st[d] = n.step[d] * step[d]
    end
    return leaf(n.name, origin, st, n.version)
  end)
end

local function ones(n, v)
  local t = {}
  for d = 1, n do t[d] = v end
  return t
end

local function unit(n, axis, v)   -- v on axis (1-based), 0 elsewhere
  local t = ones(n, 0)
  t[axis] = v
  return t
end

local function add(a, b) return { kind = "binary", op = "+", a = a, b = b } end
local function const(v) return { kind = "const", value = v } end

-- Steps idx (0-based, the last axis fastest) through a box of extents n;
-- false once past its last index.
local function advance(idx, n, ndim)
  for d = ndim, 1, -1 do
    idx[d] = idx[d] + 1
    if idx[d] < n[d] then return true end
    idx[d] = 0
  end
  return false
end
M.advance = advance

-- Python's slice rules, refusing what would be out of bounds. n < 2^53
-- (check_exact), so start and stop are exact once inside [0, n]; a step
-- matters only for two elements or more, when it is below n too: a lone
-- element gets step 1, so no huge step ever reaches a view's products.
local function normalize(range, n, where, axis)
  if range == nil or range == true then return 0, n, 1 end
  if type(range) == "number" then
    local i = range < 0 and range + n or range
    if range % 1 ~= 0 or i < 0 or i >= n then
      fail(where, "slice: index %s is out of bounds on axis %d of extent %d", num(range), axis, n)
    end
    return i, 1, 1
  end
  local start, stop, step = range[1] or 0, range[2] or n, range[3] or 1
  for _, v in ipairs { start, stop, step } do
    if type(v) ~= "number" or v % 1 ~= 0 then
      fail(where, "slice: axis %d: start, stop and step must be whole numbers, got {%s, %s, %s}", axis,
           num(range[1] or 0), num(range[2] or n), num(range[3] or 1))
    end
  end
  if step < 1 then fail(where, "slice: axis %d: step must be >= 1, got %s", axis, num(step)) end
  if start < 0 then start = start + n end
  if stop < 0 then stop = stop + n end
  if start < 0 or stop > n or start >= stop then
    fail(where, "slice: axis %d: range {%s, %s} is empty or out of bounds for extent %d", axis,
         num(range[1] or 0), num(range[2] or n), n)
  end
  local count = math.floor((stop - start + step - 1) / step)
  return start, count, count > 1 and step or 1
end
M.normalize = normalize

-- Weights of a stencil as a flat list of {offset = {...}, w = number}, and
-- the half-width per axis; checks the nesting against ndim.
local function stencil_weights(weights, ndim, where)
  local half, terms = {}, {}
  local function walk(t, depth, offset)
    if depth > ndim then
      if type(t) ~= "number" then fail(where, "stencil: weights nest deeper than the %d axes", ndim) end
      if t ~= 0 then terms[#terms + 1] = { offset = { unpack(offset) }, w = t } end
      return
    end
    if type(t) ~= "table" then fail(where, "stencil: weights must nest %d levels, one per axis", ndim) end
    local n = #t
    if n % 2 == 0 then fail(where, "stencil: axis %d has %d weights, expected an odd count", depth - 1, n) end
    if half[depth] and half[depth] ~= (n - 1) / 2 then
      fail(where, "stencil: axis %d has rows of different lengths", depth - 1)
    end
    half[depth] = (n - 1) / 2
    for i = 1, n do
      offset[depth] = i - 1 - half[depth]
      walk(t[i], depth + 1, offset)
    end
  end
  walk(weights, 1, {})
  return terms, half
end

-- A lowered value is a set of pieces: boxes [lo, hi] of the result's index
-- space, each with its tree (read at the result's index). Most values are
-- one piece; gradient's edges make more, and elementwise operations on
-- pieced values work on the intersections.
local function whole(t, shape)
  local hi = {}
  for d = 1, #shape do hi[d] = shape[d] - 1 end
  return { shape = shape, pieces = { { lo = ones(#shape, 0), hi = hi, t = t } } }
end

local function each_piece(v, f)
  local out = { shape = v.shape, pieces = {} }
  for i, p in ipairs(v.pieces) do out.pieces[i] = { lo = p.lo, hi = p.hi, t = f(p.t) } end
  return out
end

-- The view r -> start + r * step of v, count long on each axis.
local function cut(v, start, step, count)
  local out = { shape = count, pieces = {} }
  for _, p in ipairs(v.pieces) do
    local lo, hi, empty = {}, {}, false
    for d = 1, #count do
      lo[d] = math.max(0, math.ceil((p.lo[d] - start[d]) / step[d])) + 0   -- + 0: never -0
      hi[d] = math.min(count[d] - 1, math.floor((p.hi[d] - start[d]) / step[d]))
      empty = empty or lo[d] > hi[d]
    end
    if not empty then out.pieces[#out.pieces + 1] = { lo = lo, hi = hi, t = restrict(p.t, start, step) } end
  end
  return out
end

-- v moved to start at `offset` of a result shaped `shape`.
local function place(v, offset, shape)
  local out, back = { shape = shape, pieces = {} }, {}
  for d = 1, #offset do back[d] = 0 - offset[d] end
  for _, p in ipairs(v.pieces) do
    local lo, hi = {}, {}
    for d = 1, #offset do lo[d], hi[d] = p.lo[d] + offset[d], p.hi[d] + offset[d] end
    out.pieces[#out.pieces + 1] = { lo = lo, hi = hi, t = restrict(p.t, back, ones(#offset, 1)) }
  end
  return out
end

-- build(ta, tb, tc) over every intersection of the operands' pieces; an
-- operand may be a constant ({ const = node }).
local function combine(shape, build, a, b, c)
  local out = { shape = shape, pieces = {} }
  local operands = {}
  for _, v in ipairs { a, b or false, c or false } do if v and not v.const then operands[#operands + 1] = v end end
  local function go(k, lo, hi, trees)
    if k > #operands then
      local i = 0
      local function pick(v) if not v then return nil end if v.const then return v.const end i = i + 1; return trees[i] end
      out.pieces[#out.pieces + 1] = { lo = lo, hi = hi, t = build(pick(a), pick(b), pick(c)) }
      return
    end
    for _, p in ipairs(operands[k].pieces) do
      local l, h, empty = {}, {}, false
      for d = 1, #shape do
        l[d], h[d] = math.max(lo[d], p.lo[d]), math.min(hi[d], p.hi[d])
        empty = empty or l[d] > h[d]
      end
      if not empty then
        trees[k] = p.t
        go(k + 1, l, h, trees)
      end
    end
  end
  local hi = {}
  for d = 1, #shape do hi[d] = shape[d] - 1 end
  go(1, ones(#shape, 0), hi, {})
  return out
end

-- The most distinct views one piece of v reads.
local function views_of(v)
  local most = 0
  for _, p in ipairs(v.pieces) do most = math.max(most, #M.leaves(p.t)) end
  return most
end

-- `count` views of each view operand `a` reads: refused past MAX_VIEWS.
local function check_views(where, kind, what, count, a, smaller)
  local inner = views_of(a)
  if count * inner > MAX_VIEWS then
    fail(where, "%s: %s%s read %s views of arrays at once, at most %d (compile time and memory grow with "
         .. "them): use a smaller %s", kind, what, inner > 1 and " of an expression reading " .. inner .. " views" or "",
         num(count * inner), MAX_VIEWS, smaller)
  end
end

local function along(ndim, axis, v, rest)   -- v on axis, rest elsewhere (tables or numbers)
  local t = {}
  for d = 1, ndim do t[d] = d == axis and v or (type(rest) == "table" and rest[d] or rest) end
  return t
end

-- Lower e; returns its pieces ({ shape, pieces = {{lo, hi, t}} }, or
-- { const = node } for a constant) and its shape (nil for a constant).
function M.lower(e, arrays)
  local memo = {}
  local function go(n)
    if memo[n] then return memo[n] end
    local v
    if n.kind == "const" then
      v = { const = n }
    elseif n.kind == "array" then
      local a = arrays[n.name]
      if not a then
        local names = {}
        for name in pairs(arrays) do names[#names + 1] = name end
        table.sort(names)
        fail(n.where, "no array named %q is declared by the simulation (declared: %s)", n.name,
             #names > 0 and table.concat(names, ", ") or "none")
      end
      M.check_exact(n.name, a, n.where, true)
      v = whole(leaf(n.name, ones(a.ndim, 0), ones(a.ndim, 1), 0), a.shape)
    elseif n.kind == "unary" then
      local a = go(n.a)
      local function f(t) return { kind = "unary", op = n.op, a = t } end
      v = a.const and { const = f(a.const) } or each_piece(a, f)
    elseif n.kind == "binary" or n.kind == "compare" or n.kind == "where" then
      local kids, shape, from = {}, nil, nil
      for _, key in ipairs { "c", "a", "b" } do   -- where's mask first
        if n[key] then
          local kid = go(n[key])
          kids[key] = kid
          if kid.shape and shape and not same_shape(shape, kid.shape) then
            fail(n.where, "shape mismatch in %s: %s has shape %s, %s has shape %s", tostring(n),
                 tostring(from), shape_text(shape), tostring(n[key]), shape_text(kid.shape))
          end
          if kid.shape and not shape then shape, from = kid.shape, n[key] end
        end
      end
      local function build(a, b, c) return { kind = n.kind, op = n.op, a = a, b = b, c = c } end
      if not shape then
        v = { const = build(kids.a.const, kids.b and kids.b.const, kids.c and kids.c.const) }
      else
        v = combine(shape, build, kids.a, kids.b, kids.c)
      end
    elseif n.kind == "prev" then
      local a = go(n.a)
      v = a.const and a or each_piece(a, function(t)
        return map_leaves(t, function(l) return leaf(l.name, l.origin, l.step, l.version + n.k) end)
      end)
    else
      local a = go(n.a)
      local s = a.shape
      if not s then fail(n.where, "%s applies to a constant", n.kind) end
      local ndim = #s
      local function sub(x, y) return { kind = "binary", op = "-", a = x, b = y } end
      local function sum(x, y) return { kind = "binary", op = "+", a = x, b = y } end
      if n.kind == "coarsen" then
        local f, start, volume, shape = {}, {}, 1, {}
        if type(n.factor) == "table" and #n.factor ~= ndim then
          fail(n.where, "coarsen: %d factors for %d axes", #n.factor, ndim)
        end
        for d = 1, ndim do
          f[d] = type(n.factor) == "table" and n.factor[d] or n.factor
          shape[d] = math.floor(s[d] / f[d])
          if shape[d] < 1 then
            fail(n.where, "coarsen: axis %d has extent %d, less than the factor %s", d - 1, s[d], num(f[d]))
          end
          start[d], volume = 0, volume * f[d]
        end
        check_views(n.where, "coarsen", "blocks of " .. num(volume) .. " elements", volume, a, "factor")
        repeat   -- every offset inside a block, odometer style
          local term = cut(a, { unpack(start) }, f, shape)
          v = v and combine(shape, sum, v, term) or term
        until not advance(start, f, ndim)
        v = combine(shape, function(x, y) return { kind = "binary", op = "/", a = x, b = y } end,
                    v, { const = const(volume) })
      elseif n.kind == "slice" then
        if n.naxes > ndim then fail(n.where, "slice: %d ranges for %d axes", n.naxes, ndim) end
        local start, step, shape = {}, {}, {}
        for d = 1, ndim do start[d], shape[d], step[d] = normalize(n.ranges[d], s[d], n.where, d - 1) end
        n.input_shape = s   -- what luisa.move checks a region's new ranges against
        v = cut(a, start, step, shape)
      elseif n.kind == "diff" or n.kind == "gradient" then
        local axis = n.axis + 1
        if axis < 1 or axis > ndim then
          fail(n.where, "%s: axis %s is out of range for %d axes (0 to %d)", n.kind, num(n.axis), ndim, ndim - 1)
        end
        local len = s[axis]
        if len < 2 then fail(n.where, "%s: axis %d has extent %d, needs 2 or more", n.kind, n.axis, len) end
        local one = ones(ndim, 1)
        local function shifted(from, count)   -- a's elements from..from+count-1 on the axis
          return cut(a, along(ndim, axis, from, 0), one, along(ndim, axis, count, s))
        end
        local edge_shape = along(ndim, axis, 1, s)
        if n.kind == "diff" then
          local shape = along(ndim, axis, len - 1, s)
          v = combine(shape, sub, shifted(1, len - 1), shifted(0, len - 1))
        else   -- numpy.gradient: central inside, one-sided at both ends
          v = { shape = s, pieces = {} }
          local parts = {
            place(combine(edge_shape, sub, shifted(1, 1), shifted(0, 1)), ones(ndim, 0), s),
            place(combine(edge_shape, sub, shifted(len - 1, 1), shifted(len - 2, 1)),
                  along(ndim, axis, len - 1, 0), s) }
          if len > 2 then
            local inner = along(ndim, axis, len - 2, s)
            parts[3] = place(combine(inner, function(x, y) return { kind = "binary", op = "/", a = sub(x, y), b = const(2) } end,
                                     shifted(2, len - 2), shifted(0, len - 2)), along(ndim, axis, 1, 0), s)
          end
          for _, part in ipairs(parts) do
            for _, p in ipairs(part.pieces) do v.pieces[#v.pieces + 1] = p end
          end
        end
      else
        local terms, half
        if n.kind == "laplacian" then
          terms, half = { { offset = ones(ndim, 0), w = -2 * ndim } }, ones(ndim, 1)
          for d = 1, ndim do
            terms[#terms + 1] = { offset = unit(ndim, d, 1), w = 1 }
            terms[#terms + 1] = { offset = unit(ndim, d, -1), w = 1 }
          end
        else
          terms, half = stencil_weights(n.weights, ndim, n.where)
          if #half ~= ndim then fail(n.where, "stencil: weights must nest %d levels, one per axis", ndim) end
          if #terms == 0 then fail(n.where, "stencil: every weight is zero") end
        end
        check_views(n.where, n.kind, num(#terms) .. " weights", #terms, a, "stencil")
        local shape = {}
        for d = 1, ndim do
          shape[d] = s[d] - 2 * half[d]
          if shape[d] < 1 then
            fail(n.where, "%s: axis %d has extent %d, too short for a reach of %d", n.kind, d - 1, s[d], half[d])
          end
        end
        for _, term in ipairs(terms) do
          local start = {}
          for d = 1, ndim do start[d] = half[d] + term.offset[d] end
          local t = cut(a, start, ones(ndim, 1), shape)
          if term.w ~= 1 then
            t = combine(shape, function(x, y) return { kind = "binary", op = "*", a = x, b = y } end,
                        { const = const(term.w) }, t)
          end
          v = v and combine(shape, sum, v, t) or t
        end
      end
    end
    memo[n] = v
    return v
  end
  local v = go(e)
  return v, v.shape
end

-- A piece's tree read at the piece's own index (0 at its lo).
function M.local_tree(piece)
  return restrict(piece.t, piece.lo, ones(#piece.lo, 1))
end

-- t moved by `by` on every axis: the new tree at i is t at i - by.
function M.shift(t, by)
  local back = {}
  for d = 1, #by do back[d] = 0 - by[d] end
  return restrict(t, back, ones(#by, 1))
end

-- The leaves of a lowered tree, each once, in order of first appearance.
function M.leaves(t)
  local list, seen = {}, {}   -- seen: keys, and nodes walked (trees share subtrees)
  local function go(n)
    if seen[n] then return end
    seen[n] = true
    if n.kind == "leaf" then
      if not seen[n.key] then seen[n.key] = true; list[#list + 1] = n end
    elseif n.kind ~= "const" then
      go(n.a)
      if n.b then go(n.b) end
      if n.c then go(n.c) end
    end
  end
  go(t)
  return list
end

return M
