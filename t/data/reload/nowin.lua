-- nowin.lua: no window any more: the store lets the versions go.
local luisa = require "luisa"
local out = assert(io.open(os.getenv("LUISA_TEST_OUT"), "a"))
luisa.every(1, { s = luisa.array("T"):sum() }, function(step, r)
  local s = luisa.stats()
  out:write(string.format("%d N %s %d %d\n", step, tostring(r.s), s.objects, s.bytes_held))
  out:flush()
end)
