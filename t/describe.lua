-- describe.lua: TAP tests of luisa.describe alone: callbacks compiled to a plain
-- description (no luisa.core, no engine), its exact contents, on two ranks. Run by t/003-describe.t.
local ntests, nfailed = 0, 0
local PLAN = 22
print("1.." .. PLAN)

local function is(got, want, name)
  ntests = ntests + 1
  if got == want then
    print(string.format("ok %d - %s", ntests, name))
  else
    nfailed = nfailed + 1
    print(string.format("not ok %d - %s\n#   got:  %s\n#   want: %s", ntests, name,
                        (tostring(got):gsub("\n", "\n#         ")), (tostring(want):gsub("\n", "\n#         "))))
  end
end

-- Only numbers, strings, booleans and tables of them, without metatables
-- or cycles (shared subtables are fine). Returns nil, or what is not.
local function not_plain(v, path, open)
  local t = type(v)
  if t == "number" or t == "string" or t == "boolean" then return nil end
  if t ~= "table" then return path .. " is a " .. t end
  if getmetatable(v) ~= nil then return path .. " has a metatable" end
  if open[v] then return path .. " is a cycle" end
  open[v] = true
  for k, x in pairs(v) do
    local why = not_plain(k, path .. "[key]", open) or not_plain(x, path .. "." .. tostring(k), open)
    if why then return why end
  end
  open[v] = nil
  return nil
end

-- Plain data as Lua source, keys sorted: the same data gives the same text.
local function text(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "number" then
    if v ~= v then return "0/0" end
    if v == math.huge or v == -math.huge then return v > 0 and "1/0" or "-1/0" end
    return string.format("%.17g", v)
  end
  if type(v) ~= "table" then return tostring(v) end
  local keys, parts = {}, {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) ~= type(b) then return type(a) < type(b) end
    return a < b
  end)
  for _, k in ipairs(keys) do parts[#parts + 1] = "[" .. text(k) .. "]=" .. text(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function list(t) return table.concat(t, " ") end

-- Reads as "T:1,2 U:1": the chunks (1-based) each array is read in.
local function reads_text(reads)
  local names, parts = {}, {}
  for name in pairs(reads) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local chunks = {}
    for c in pairs(reads[name]) do chunks[#chunks + 1] = c end
    table.sort(chunks)
    parts[#parts + 1] = name .. ":" .. table.concat(chunks, ",")
  end
  return table.concat(parts, " ")
end

-- Per spec "key kind slot_kind@slot", in the description's order.
local function specs_text(specs)
  local parts = {}
  for _, s in ipairs(specs) do parts[#parts + 1] = string.format("%s %s %s@%s", s.key, s.kind, s.slot_kind, s.slot) end
  return table.concat(parts, ", ")
end

------------------------------------------------------------------------------
-- No engine: luisa.core is absent, as outside a simulation.
package.loaded["luisa.core"] = nil
local luisa = require "luisa"
local registry = require "luisa.registry"
local describe = require "luisa.describe"

-- Two 8x6 arrays in row blocks: rows 0-3 on rank 0, rows 4-7 on rank 1.
-- arrays as engine/script.c's push_arrays gives them, without `published`:
-- describing reads no data.
local function arrays_of(rank)
  local function boxes()
    return { { owner = 0, chunk = 0, offset = { 0, 0 }, shape = { 4, 6 } },
             { owner = 1, chunk = 0, offset = { 4, 0 }, shape = { 4, 6 } } }
  end
  local chunks = { { offset = { 4 * rank, 0 }, shape = { 4, 6 }, stride = { 6, 1 }, first = 0 } }
  return { T = { dtype = "f64", ndim = 2, shape = { 8, 6 }, chunks = chunks, boxes = boxes() },
           U = { dtype = "f32", ndim = 2, shape = { 8, 6 }, chunks = chunks, boxes = boxes() } }
end

local T, U = luisa.array "T", luisa.array "U"
local line = debug.getinfo(1, "l").currentline
luisa.every(5, { m = T:mean(), lo = T:min(), hi = (T + U):max(), v = T:var() }, print)
luisa.every(3, { h = T:histogram(4, { 0, 1 }), a = T:argmax(), d = T:diff(0):sum() }, print)
luisa.every(1, { x = luisa.array("nope"):sum() }, print)
luisa.assign("T", T * 2)

local d0 = describe.describe(registry.callbacks, registry.off, arrays_of(0), { rank = 0, size = 2, writable = {} })
local d1 = describe.describe(registry.callbacks, registry.off, arrays_of(1), { rank = 1, size = 2, writable = {} })
is(package.loaded["luisa.core"] == nil and package.loaded["luisa.plan"] == nil, true,
   "describing loads neither luisa.core nor luisa.plan")
is(not_plain(d0, "d0", {}) or not_plain(d1, "d1", {}), nil,
   "the descriptions hold only numbers, strings, booleans and tables of them")
local copy = assert(loadstring("return " .. text(d0)))()
is(text(copy), text(d0), "a description written as text and read back is the same")
is(#d0.callbacks, 4, "one entry per registered callback")
is(d0.off, false, "off: the script did not call luisa.off()")

-- Callback 1: one slot per min, sum (mean) and max, three for var's moments.
local c = d0.callbacks[1]
local where = "t/describe.lua:" .. (line + 1)
is(string.format("every %d, where %s, fires %s, assign %s", c.every, c.where, tostring(c.fires), tostring(c.assign)),
   "every 5, where " .. where .. ", fires nil, assign nil", "callback 1: its period and registration")
is(list(c.counts) .. " / " .. c.size, "1 1 1 0 0 1 / 6", "callback 1: slots per kind (min sum max argmin argmax moments), doubles")
is(specs_text(c.specs), "hi max max@2, lo min min@0, m mean sum@1, v var moments@3",
   "callback 1: statistics by key, each in its slot")
is(reads_text(c.reads), "T:1 U:1", "callback 1: reads this rank's chunk of T and U")
is(#c.passes .. " pass, " .. #c.sends .. " sends, " .. #c.recvs .. " recvs", "1 pass, 0 sends, 0 recvs",
   "callback 1: one pass over memory, nothing moves")
is(#c.passes[1].reductions .. " reductions, " .. #c.passes[1].items .. " item", "4 reductions, 1 item",
   "callback 1: the pass computes the four over this rank's rows")
is(c.fingerprint:match("^%x+$") and #c.fingerprint, 16, "callback 1: the fingerprint is 16 hex digits")

-- Callback 2: histogram bins are sum slots, argmax two doubles; diff(0)
-- needs row 3 on rank 1, which computes T[4] - T[3].
c = d0.callbacks[2]
is(list(c.counts) .. " / " .. c.size, "0 5 0 0 1 0 / 7", "callback 2: slots per kind, doubles")
is(specs_text(c.specs), "a argmax argmax@5, d sum sum@0, h histogram sum@1", "callback 2: statistics in their slots")
is(c.specs[3].bins .. " bins over " .. c.specs[3].lo .. ".." .. c.specs[3].hi, "4 bins over 0..1",
   "callback 2: the histogram's bins and range")
local s = c.sends[1]
is(string.format("%d send: to %d, %d bytes, %s chunk %d rows %d+%d", #c.sends, s.peer, s.bytes, s.pieces[1].array,
                 s.pieces[1].chunk, s.pieces[1].lo[1], s.pieces[1].count[1]),
   "1 send: to 1, 48 bytes, T chunk 0 rows 3+1", "callback 2 on rank 0: row 3 of T goes to rank 1")
c = d1.callbacks[2]
is(string.format("%d recv: from %d, %d bytes", #c.recvs, c.recvs[1].peer, c.recvs[1].bytes), "1 recv: from 0, 48 bytes",
   "callback 2 on rank 1: the same row comes from rank 0")
local p = c.passes[1]
is(string.format("%d pass, views %s and %s, received by each %d and %d, the second at message %d + %d", #c.passes,
                 p.leaves[1].key, p.leaves[2].key, #p.received[1], #p.received[2], p.received[2][1].message,
                 p.received[2][1].offset),
   "1 pass, views LT@0,0/1,1v0 and LT@-1,0/1,1v0, received by each 0 and 1, the second at message 1 + 0",
   "callback 2 on rank 1: one pass; diff's T[i] view (moved to T's index) reads the received row")
is(c.fingerprint, d0.callbacks[2].fingerprint, "callback 2: both ranks describe the same analysis")

-- Failures are data too: the message and the line.
is(text(d0.callbacks[3]), text { error = "t/describe.lua:" .. (line + 3)
   .. ": no array named \"nope\" is declared by the simulation (declared: T, U)", where = "t/describe.lua:" .. (line + 3) },
   "callback 3: an unknown array is its error")
is(d0.callbacks[4].error, "t/describe.lua:" .. (line + 4)
   .. ": luisa.assign: the simulation did not register \"T\" as writable (luisa_field_writable)",
   "callback 4: an assignment to an array the facts do not list as writable is refused")
local facts = { rank = 0, size = 2, writable = { T = true } }
c = describe.describe(registry.callbacks, registry.off, arrays_of(0), facts).callbacks[4]
is(string.format("%s, assign %s, %d pass", tostring(c.error), c.assign, #c.passes), "nil, assign T, 1 pass",
   "callback 4: with T writable, the assignment is described")

if ntests ~= PLAN then print("# planned " .. PLAN .. " tests but ran " .. ntests) end
os.exit(nfailed == 0 and ntests == PLAN and 0 or 1)
