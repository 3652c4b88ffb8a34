-- gather-data-oob.lua: a callback indexing a gather result's data far out of
-- bounds. It killed the process while data was a raw FFI pointer; sandboxed,
-- it is a bounds-checked array and the callback fails at this line.
local luisa = require "luisa"
luisa.every(1, { a = luisa.array("A"):gather() }, function(step, r)
  local x = r.a.data[-100000000]
end)
