-- steer.lua: steering decided at known steps, for t/050-threads.t (case
-- steer): luisa.set("x", 2.5) at step 3, luisa.period(B, 5) at step 2,
-- luisa.stop at step 7. Rank 0 writes what each step's analysis saw to
-- $LUISA_TEST_OUT: "step seen x n" lines, and "step B max" where B ran.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local B = luisa.every(1, { m = A:max() }, function(step, r)
  out:write(string.format("%d B %.17g\n", step, r.m))
  out:flush()
end)
luisa.every(1, { s = A:sum() }, function(step)
  out:write(string.format("%d seen %.17g %d\n", step, luisa.param.x, luisa.param.n))
  out:flush()
  if step == 2 then luisa.period(B, 5) end
  if step == 3 then luisa.set("x", 2.5) end
  if step == 7 then luisa.stop("enough at step 7") end
end)
