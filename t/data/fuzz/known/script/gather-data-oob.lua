-- gather-data-oob.lua: a callback indexing a gather result's data far out of
-- bounds: data is a raw FFI pointer, so the read kills the process (known defect).
local luisa = require "luisa"
luisa.every(1, { a = luisa.array("A"):gather() }, function(step, r)
  local x = r.a.data[-100000000]
end)
