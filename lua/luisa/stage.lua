-- luisa.stage: reductions reading more views than one kernel holds, cut
-- into stages that hand partial results on through scratch buffers.
local ffi = require "ffi"
local expr = require "luisa.expr"
local kernel = require "luisa.kernel"
local lower = require "luisa.lower"
expr.internal[debug.getinfo(1, "S").source] = true

local M = {}

-- A kernel keeps 4 locals per view in LuaJIT's 200 (luisa.kernel): past 40
-- views a reduction never fits. Stages read at most VIEWS[1] views each,
-- fewer when shared subexpressions crowd the kernel (the next counts).
M.WIDE = 40
M.VIEWS = { 32, 16, 8, 4, 3 }
M.FINAL = 4   -- views a staged sum, min or max reads at most (see plan)

-- How a stage works: a subtree S of a reduction's tree (a coarsen block's
-- first 32 terms, say) is computed by a kernel of its own that stores S at
-- each element into a scratch buffer (an fset); the tree, S replaced by a
-- view of that buffer, goes on. A left-to-right sum thus runs 32 terms per
-- kernel, each stage starting from the sum so far, with the very additions
-- one kernel would do: the result is the same bit for bit. The stages walk
-- the pass's own cells in its own order; a buffer holds one double per
-- element of the pass's cells, one cell after the other (C order over its
-- loop extents), and serves again once its value has been read.

-- Structure ids: equal subtrees (by structure, as the kernel shares them)
-- get one id.
local function structure()
  local intern, count, node_id = {}, 0, {}
  local function id(n)
    local v = node_id[n]
    if v then return v end
    local text
    if n.kind == "leaf" then text = "L" .. n.key
    elseif n.kind == "const" then text = "C" .. kernel.literal(n.value)
    else
      text = n.kind .. (n.op or "") .. ":" .. id(n.a) .. "," .. (n.b and id(n.b) or "") .. ","
             .. (n.c and id(n.c) or "")
    end
    v = intern[text]
    if not v then count = count + 1; v, intern[text] = count, count end
    node_id[n] = v
    return v
  end
  return id
end

-- What a value costs a kernel in locals: 4 per view it reads (luisa.kernel
-- loads each into locals), 1 per subexpression used more than once ("#").
local function cost(set)
  local c = 0
  for _, key in ipairs(set) do c = c + (key:sub(1, 1) == "#" and 1 or 4) end
  return c
end

-- The union of sets of keys, in order; false past a cost of `most`.
local function union(sets, most)
  local list, seen, c = {}, {}, 0
  for _, set in ipairs(sets) do
    for _, key in ipairs(set) do
      if not seen[key] then
        seen[key], list[#list + 1] = true, key
        c = c + (key:sub(1, 1) == "#" and 1 or 4)
        if c > most then return false end
      end
    end
  end
  return list
end

-- plan(reductions, views): the stages that leave every kernel reading at
-- most `views` views (less the locals of shared subexpressions). Bottom
-- up, a node's set is its children's and itself if shared; where it costs
-- too much, its widest children become stages (a left-to-right sum: every
-- `views` - 1 terms), which each take a buffer once the buffers they read
-- are read for the last time. Returns stages, each { reduction = an fset
-- into buffer `slot`, keys = [buffer] = what its view holds then }, the
-- reductions as they finish, reading the buffers, the buffers' keys then,
-- and how many buffers. Parts (fused groups, see luisa.passes) run over
-- different cells: each is planned on its own.
function M.plan(reductions, views)
  local stages, final, most = {}, {}, 4 * views
  local by_part, order = {}, {}
  for i, r in ipairs(reductions) do
    local p = r.part or 1
    if not by_part[p] then by_part[p], order[#order + 1] = {}, p end
    table.insert(by_part[p], i)
  end
  local spec   -- the reduction being planned: a stage that does not fit is named by it
  for _, p in ipairs(order) do
    local id, memo, uses = structure(), {}, {}   -- memo: structure id -> { node as rewritten, its set }
    local function count(n)   -- uses as the kernel counts them: a local past one
      if n.kind == "leaf" or n.kind == "const" then return end
      local k = id(n)
      uses[k] = (uses[k] or 0) + 1
      if uses[k] > 1 then return end
      count(n.a)
      if n.b then count(n.b) end
      if n.c then count(n.c) end
    end
    for _, i in ipairs(by_part[p]) do count(reductions[i].expr) end
    local function stage_of(t)   -- t computed by a stage of its own; returns the view of its buffer
      local leaf = { kind = "leaf", key = "~stage" .. #stages + 1 }
      stages[#stages + 1] = { reduction = { kind = "fset", expr = t, part = p, spec = spec }, leaf = leaf }
      return leaf
    end
    local function go(n)
      local k = id(n)
      if memo[k] then return memo[k][1], memo[k][2] end
      local out, set
      if n.kind == "leaf" then out, set = n, { n.key }
      elseif n.kind == "const" then out, set = n, {}
      else
        local kids, sets = { n.a, n.b, n.c }, {}
        local count = n.c and 3 or n.b and 2 or 1
        for j = 1, count do kids[j], sets[j] = go(kids[j]) end
        if uses[k] > 1 then sets[count + 1] = { "#" .. k } end
        set = union(sets, most)
        while not set do   -- the widest child that is not a view becomes a stage
          local widest
          for j = 1, count do
            if kids[j].kind ~= "leaf" and kids[j].kind ~= "const" and (not widest or cost(sets[j]) > cost(sets[widest])) then
              widest = j
            end
          end
          if not widest then set = union(sets, math.huge); break end   -- its kernel will say it does not fit
          kids[widest] = stage_of(kids[widest])
          sets[widest] = { kids[widest].key }
          set = union(sets, most)
        end
        out = n
        if kids[1] ~= n.a or kids[2] ~= n.b or kids[3] ~= n.c then
          out = { kind = n.kind, op = n.op, a = kids[1], b = kids[2], c = kids[3] }
        end
      end
      memo[k] = { out, set }
      return out, set
    end
    local roots = {}   -- structure id -> the stage of a whole element value
    for _, i in ipairs(by_part[p]) do
      local r, copy = reductions[i], {}
      for key, v in pairs(r) do copy[key] = v end
      spec = r.spec
      local out, set = go(r.expr)
      -- A lane reduction unrolls its element per lane (luisa.kernel): over
      -- many views LuaJIT runs out of spill slots and interprets the loop.
      -- Its whole value becomes a stage of one lane, the reduction reads one view.
      if cost(set) > 4 * M.FINAL and r.kind:sub(1, 1) ~= "f" and out.kind ~= "leaf" then
        local k = id(r.expr)
        if not roots[k] then roots[k] = stage_of(out) end
        out = roots[k]
      end
      copy.expr = out
      final[i] = copy
    end
  end
  -- Buffers: stage s's output lives until its last reader (a later stage,
  -- or the reductions as they finish: #stages + 1).
  local index, last = {}, {}
  for s, st in ipairs(stages) do index[st.leaf.key] = s end
  local function readers(t, at, seen)
    if seen[t] then return end
    seen[t] = true
    if t.kind == "leaf" then
      local s = index[t.key]
      if s then last[s] = math.max(last[s] or 0, at) end
    elseif t.kind ~= "const" then
      readers(t.a, at, seen)
      if t.b then readers(t.b, at, seen) end
      if t.c then readers(t.c, at, seen) end
    end
  end
  for s, st in ipairs(stages) do readers(st.reduction.expr, s, {}) end
  for _, r in ipairs(final) do readers(r.expr, #stages + 1, {}) end
  local content, holder, nbuf = {}, {}, 0   -- buffer -> key; buffer -> stage whose output it holds
  for s, st in ipairs(stages) do
    st.keys = {}
    for b, key in pairs(content) do st.keys[b] = key end
    local slot
    for b = 1, nbuf do   -- free once its last reader is this stage or earlier
      if not slot and (not holder[b] or (last[holder[b]] or 0) <= s) then slot = b end
    end
    if not slot then nbuf = nbuf + 1; slot = nbuf end
    st.reduction.slot, holder[slot], content[slot] = slot, s, st.leaf.key
  end
  return stages, final, content, nbuf
end

-- The distinct views tree t reads.
function M.views(t) return #lower.leaves(t) end

-- Whether some reduction reads more views than any kernel holds.
function M.wide(reductions)
  for _, r in ipairs(reductions) do
    if M.views(r.expr) > M.WIDE then return true end
  end
  return false
end

-- The inputs a kernel of `reductions` reads: the pass's views it reads, in
-- the pass's order ({ key, dtype, from = k }), then the buffers
-- ({ buffer = b }, keys[b]: what buffer b holds then). A stage of a wide
-- block reads 32 of its thousands of views: so many locals, loops and
-- geometry words fewer.
local function selection(reductions, inputs, index, keys, nbuf)
  local used, from = {}, {}
  for _, r in ipairs(reductions) do
    for _, leaf in ipairs(lower.leaves(r.expr)) do
      if index[leaf.key] and not used[leaf.key] then from[#from + 1] = index[leaf.key] end
      used[leaf.key] = true
    end
  end
  table.sort(from)
  local sel = {}
  for j, k in ipairs(from) do sel[j] = { key = inputs[k].key, dtype = inputs[k].dtype, from = k } end
  for b = 1, nbuf do
    if keys[b] and used[keys[b]] then sel[#sel + 1] = { key = keys[b], dtype = "f64", buffer = b } end
  end
  return sel
end

-- Each cell's place in the buffers: the position of its first element and
-- its strides, C order over its extents in loop order (geometry words 0-3).
local function places(geo, ninputs, nitems)
  local W, list, at = kernel.geometry_width(ninputs), {}, 0
  for c = 0, nitems - 1 do
    local n1, n2, n3, n4 = geo[c * W + 1], geo[c * W + 2], geo[c * W + 3], geo[c * W + 4]
    list[c + 1] = { at, n2 * n3 * n4, n3 * n4, n4, 1 }
    at = at + n1 * n2 * n3 * n4
  end
  return list, at
end

-- The geometry table of a kernel reading `sel` (see luisa.kernel): the
-- pass's words for its cells and views, a buffer as a received piece at
-- the cell's place; a stage writes there too (`into`), the rest where the pass does.
local function geometry(geo, ninputs, sel, place, into)
  local W, w = kernel.geometry_width(ninputs), kernel.geometry_width(#sel)
  local IT, IW = kernel.ITEM_WORDS, kernel.INPUT_WORDS
  local t = ffi.new("double[?]", math.max(1, #place * w))
  for c = 0, #place - 1 do
    local g, from, at = c * w, c * W + 1, place[c + 1]   -- geo is 1-based
    for k = 0, IT - 1 do t[g + k] = geo[from + k] end
    if into then for k = 0, 4 do t[g + 4 + k] = at[k + 1] end end
    for j, s in ipairs(sel) do
      local base = g + IT + IW * (j - 1)
      if s.from then
        for k = 0, IW - 1 do t[base + k] = geo[from + IT + IW * (s.from - 1) + k] end
      else
        t[base] = -1   -- source -1: P[j][0], the buffer
        for k = 0, 4 do t[base + 1 + k] = at[k + 1] end
      end
    end
  end
  return t
end

-- runner(p, chunks, pieces, views, build): pass p (luisa.describe's; its
-- views' published chunks and received pieces as luisa.bind holds them) in
-- stages of at most `views` views: one function with a kernel's arguments
-- that runs the stages, then the reductions as they finish. Or nil and the
-- reduction that does not fit. build(reductions, inputs): their kernels
-- (a list), or nil and the one that does not fit.
function M.runner(p, chunks, pieces, views, build)
  local stages, final, keys, nbuf = M.plan(p.reductions, views)
  local place, size = places(p.geo, #p.inputs, #p.items)
  local F = {}   -- the buffers, one double per element of the pass's cells
  for b = 1, nbuf do F[b] = ffi.new("double[?]", math.max(1, size)) end
  local calls, index = {}, {}   -- calls: { kernel, geometry, S, P, into the buffers, inputs }
  for k, input in ipairs(p.inputs) do index[input.key] = k end
  local function add(reductions, held, into)
    local sel = selection(reductions, p.inputs, index, held, nbuf)
    local runs, lone = build(reductions, sel)
    if not runs then return lone end
    local S, P = {}, {}
    for j, s in ipairs(sel) do
      if s.from then S[j], P[j] = chunks[s.from], pieces[s.from]
      else P[j] = kernel.pointers("f64", 1); P[j][0] = F[s.buffer] end
    end
    local t = geometry(p.geo, #p.inputs, sel, place, into)
    for _, run in ipairs(runs) do calls[#calls + 1] = { run, t, S, P, into, sel } end
  end
  for _, st in ipairs(stages) do
    local lone = add({ st.reduction }, st.keys, true)
    if lone then return nil, lone end
  end
  local lone = add(final, keys, false)
  if lone then return nil, lone end
  local nitems, ncalls = #p.items, #calls
  return function(acc, _, _, _, _, out)
    for k = 1, ncalls do
      local c = calls[k]
      local item, input = c[1](acc, c[2], nitems, c[3], c[4], c[5] and F or out)
      if item then return item, c[6][input].from end   -- a chunk not published: the pass's view
    end
  end
end

return M
