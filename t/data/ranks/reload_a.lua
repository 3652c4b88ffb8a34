-- reload_a.lua: version a, replaced by reload_b.lua mid-run in
-- t/052-ranks.t (case reload); luisa.state carries the count over.
local luisa = require "luisa"
local T = luisa.array "T"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "a"))
luisa.state.n = luisa.state.n or 0
luisa.every(1, { s = T:sum() }, function(step, r)
  luisa.state.n = luisa.state.n + 1
  out:write(string.format("%d a %a %d\n", step, r.s, luisa.state.n)); out:flush()
end)
