-- region.lua: at step 2 the callback (line 9) adds a statistic to its own
-- registration, on rank 0 only (callbacks run there), and moves its region:
-- the plan compiled again differs between ranks, is refused, the old goes on.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local zoom = luisa.region(A, { 0, 4 })
local cb
cb = luisa.every(1, { s = zoom:sum() }, function(step, r)
  out:write(string.format("%d sumR %.17g\n", step, r.s)); out:flush()
  if step == 2 then
    cb.stats.extra = A:max()
    luisa.move(zoom, { 2, 6 })
  end
end)
