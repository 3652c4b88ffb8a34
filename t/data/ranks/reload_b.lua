-- reload_b.lua: version b, which replaces reload_a.lua mid-run in
-- t/052-ranks.t (case reload); luisa.state carries the count over.
local luisa = require "luisa"
local T = luisa.array "T"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "a"))
luisa.state.n = luisa.state.n or 0
luisa.every(1, { s = T:max() }, function(step, r)
  luisa.state.n = luisa.state.n + 1
  out:write(string.format("%d b %a %d\n", step, r.s, luisa.state.n)); out:flush()
end)
