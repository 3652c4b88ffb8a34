-- luisa.fingerprint: a compiled callback as canonical text, hashed, so the
-- engine can check that every rank built the same analysis (engine/agree.c).
local ffi = require "ffi"
local lower = require "luisa.lower"

local M = {}

local FNV_START, FNV_PRIME = 14695981039346656037ULL, 1099511628211ULL

-- FNV-1a 64 of a string, as 16 hex digits (engine/bundle.c hashes alike).
function M.fnv(text)
  local h = ffi.new("uint64_t", FNV_START)
  for k = 1, #text do h = bit.bxor(h, text:byte(k)) * FNV_PRIME end
  return bit.tohex(h, 16)
end

-- Numbers as every rank writes them alike: -0 is 0, every NaN is "nan".
local function num(v)
  if v == nil then return "-" end
  if v ~= v then return "nan" end
  if v == 0 then return "0" end
  return string.format("%.17g", v)
end

local function ints(list) return list and lower.text(list) or "-" end

-- A lowered tree as numbered lines (shared nodes once, so a stencil's DAG
-- stays linear); returns the root's name.
local function tree(t, lines, ids)
  if t.kind == "const" then return "c" .. num(t.value) end
  if t.kind == "leaf" then return t.key end
  if ids[t] then return ids[t] end
  local a = tree(t.a, lines, ids)
  local b = t.b and tree(t.b, lines, ids) or "-"
  local c = t.c and tree(t.c, lines, ids) or "-"
  lines[#lines + 1] = string.format("%s %s %s %s %s", t.kind, tostring(t.op), a, b, c)
  ids[t] = "#" .. #lines
  return ids[t]
end

-- Where a map's function was written (file name and line: a module a rank
-- read from its own disk may sit in another directory there): two ranks
-- passing different functions would combine different numbers.
local function function_text(fn)
  if type(fn) ~= "function" then return "-" end
  local info = debug.getinfo(fn, "S")
  return info.source:gsub("^.*/", "") .. ":" .. info.linedefined
end

-- The fingerprint of compiled callback c (of registration cb): its period,
-- what fires it, every statistic's kind, key, shape, parameters, slot and
-- lowered pieces, and its reduction layout. What is this rank's own (its
-- chunks, items and transfers) stays out: the transfers are checked apart.
function M.callback(cb, c, index_of)
  local lines, ids = {}, {}
  lines[1] = string.format("every %d fires %s assign %s counts %s", cb.every,
                           cb.fires and tostring(index_of[cb.fires]) or "-",
                           cb.assign and cb.assign.name or "-", ints(c.counts))
  for _, spec in ipairs(c.specs) do
    lines[#lines + 1] = string.format("spec %s:%s %s shape %s bins %s range %s %s axis %s out %s combine %s fn %s "
                                      .. "slot %s %s field %s", type(spec.key), tostring(spec.key), spec.kind,
                                      ints(spec.shape), num(spec.bins), num(spec.lo), num(spec.hi),
                                      num(spec.axis), ints(spec.out_shape), tostring(spec.combine),
                                      function_text(spec.fn), tostring(spec.slot_kind), num(spec.slot),
                                      spec.field and "yes" or "no")
    for _, piece in ipairs(spec.value and spec.value.pieces or {}) do
      local root = tree(piece.t, lines, ids)
      lines[#lines + 1] = string.format("piece %s %s %s", ints(piece.lo), ints(piece.hi), root)
    end
  end
  return M.fnv(table.concat(lines, "\n"))
end

return M
