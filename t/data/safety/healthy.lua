-- safety: the healthy part every case shares: the sum of A at every step
-- and the Lua heap in KiB, written by the root to $LUISA_OUTPUT_DIR/out.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_OUTPUT_DIR") .. "/out", "w"))
luisa.every(1, { sum = A:sum() }, function(step, r)
  out:write(string.format("%d %.17g %d\n", step, r.sum, math.floor(collectgarbage("count"))))
  out:flush()
end)
return { luisa = luisa, A = A, out = out }
