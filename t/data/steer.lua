-- steer.lua: changes steerable parameters at known steps, tries refused
-- values, and stops the run, for t/021-steer.t (line numbers are checked).
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
luisa.every(1, { s = A:sum() }, function(step)
  local p = luisa.param
  out:write(string.format("%d seen dt %.17g n %d flag %s mode %s\n", step, p.dt, p.n, tostring(p.flag), p.mode))
  out:flush()
  if step == 3 then luisa.set("dt", p.dt / 2) end
  if step == 4 then luisa.set("n", 7); luisa.set("flag", true); luisa.set("mode", "slow") end
  if step == 8 then luisa.stop("enough at step 8") end
end)
luisa.every(1, { s = A:sum() }, function(step)
  if step == 5 then luisa.set("dt", 1) end                                 -- line 15: refused
end)
luisa.every(1, { s = A:sum() }, function(step)
  if step == 6 then luisa.set("n", 2.5) end                                -- line 18: refused
end)
luisa.every(1, { s = A:sum() }, function(step)
  if step == 6 then
    local b = luisa.bounds.mode
    out:write(string.format("%d bounds mode %s dt %g %g\n", step, table.concat(b, ","), luisa.bounds.dt[1],
                            luisa.bounds.dt[2]))
  end
  if step == 7 then luisa.set("mode", "warp") end                          -- line 26: refused
end)
