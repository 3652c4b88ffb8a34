-- error.lua: failures at known steps, for t/050-threads.t (case errors):
-- the callback of line 11 raises at step $LUISA_TEST_RAISE (line 13), the
-- local work of the callback of line 20 fails on the last rank at step
-- $LUISA_TEST_FAIL (line 17; E holds the step number). Rank 0 writes
-- "step raise" and "step keep" lines to $LUISA_TEST_OUT where they ran.
local luisa = require "luisa"
local A, E = luisa.array "A", luisa.array "E"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local raise_at, fail_at = tonumber(os.getenv("LUISA_TEST_RAISE")), tonumber(os.getenv("LUISA_TEST_FAIL"))
local last = luisa.rank == luisa.size - 1
luisa.every(1, { s = A:sum() }, function(step, r)
  out:write(string.format("%d raise %.17g\n", step, r.s)); out:flush()
  if step == raise_at then error("raised at step " .. step) end
end)
local function local_work(p)
  local step = p[0]
  if last and step == fail_at then error("local work fails at step " .. step) end
  return 1
end
luisa.every(1, { s = A:sum(), m = luisa.map(E, local_work) }, function(step, r)
  out:write(string.format("%d keep %.17g %d\n", step, r.s, r.m)); out:flush()
end)
