-- luisa.state: what a script keeps across reloads. The engine packs the old
-- script's luisa.state into text in its Lua state and unpacks it in the new
-- one: numbers, strings, booleans, tables of them, and FFI numbers or arrays
-- of numbers. Anything else (functions, userdata, metatables, cycles) starts
-- fresh: pack lists what it left out so the engine can say so.
local ffi = require "ffi"
local number_text = require("luisa.kernel").literal

local M = {}

-- "double [?]" from ctype<double [?]>: the element and whether it is an array.
local function numeric_ctype(v)
  local ct = tostring(ffi.typeof(v)):match("^ctype<(.*)>$")
  local elem, dims = ct:match("^(.-) ?(%[[%d?]*%])$")
  elem = elem or ct
  local ok, x = pcall(ffi.new, elem)
  if not ok or type(tonumber(x)) ~= "number" then return nil end
  return elem, dims ~= nil
end

local function pack(v, path, seen, dropped)
  local t = type(v)
  if t == "number" then return number_text(v) end
  if t == "string" then return string.format("%q", v) end
  if t == "boolean" then return tostring(v) end
  if t == "cdata" then
    local elem, is_array = numeric_ctype(v)
    if elem then
      local bytes = ffi.sizeof(v)
      return string.format("C(%q,%s,%q)", elem, is_array and tostring(bytes / ffi.sizeof(elem)) or "nil",
                           ffi.string(is_array and v or ffi.new(elem .. "[1]", v), bytes))
    end
  elseif t == "table" and not seen[v] and not getmetatable(v) then
    seen[v] = true
    local parts = {}
    for k, x in pairs(v) do
      local kt = type(k)
      local where = path .. (kt == "string" and k:match("^[%a_][%w_]*$") and "." .. k
                             or "[" .. tostring(k) .. "]")
      if kt == "string" or kt == "number" or kt == "boolean" then
        local text = pack(x, where, seen, dropped)
        if text then parts[#parts + 1] = "[" .. pack(k, where, seen, dropped) .. "]=" .. text end
      else
        dropped[#dropped + 1] = where .. " (a " .. kt .. " key)"
      end
    end
    seen[v] = nil
    return "{" .. table.concat(parts, ",") .. "}"
  end
  local why = t == "table" and (seen[v] and "a cycle" or "a table with a metatable") or "a " .. t
  dropped[#dropped + 1] = path .. " (" .. why .. ")"
  return nil
end

-- The running script's luisa.state as text, and what it left out ("" if nothing).
function M.pack()
  local luisa = package.loaded.luisa
  local dropped = {}
  local text = type(luisa) == "table" and type(luisa.state) == "table"
               and pack(luisa.state, "luisa.state", {}, dropped) or "{}"
  return text, table.concat(dropped, ", ")
end

local function make_cdata(elem, n, bytes)
  local v = ffi.new(elem .. "[?]", n or 1)
  ffi.copy(v, bytes, #bytes)
  return n and v or ffi.new(elem, v[0])
end

-- Installs the packed state as luisa.state of this Lua state.
function M.unpack(text)
  local build = assert(loadstring("return " .. text, "=luisa.state"))
  setfenv(build, { C = make_cdata })
  require("luisa").state = build()
end

return M
