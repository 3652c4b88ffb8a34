-- region.lua: a region of A that the callback moves at step 4 (and to the
-- same place at step 5), and a move out of bounds at step 7 that is
-- refused, for t/023-wants.t.
local luisa = require "luisa"
local A = luisa.array "A"
local zoom = luisa.region(A, { 0, 3 })
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
luisa.every(1, { s = zoom:sum(), n = zoom:count() }, function(step, r)
  out:write(string.format("%d %.17g %d %d\n", step, r.s, r.n, luisa.stats().plans))
  if step == 4 or step == 5 then luisa.move(zoom, { 6, 11 }) end   -- at 5: no change, no compile
  if step == 7 then
    local moved, err = pcall(function() luisa.move(zoom, { 10, 13 }) end)
    out:write(string.format("refused %s %s\n", tostring(not moved), tostring(err)))
  end
  out:flush()
end)
