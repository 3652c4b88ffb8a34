-- trigger.lua: a trigger whose expensive statistics run only when the mean
-- is positive, beside a plain callback computing the same every step, for
-- t/016-trigger.t.
local luisa = require "luisa"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(...) out:write(string.format(...)); out:flush() end

-- max and dstd are not printed: fused in one pass with the others, they
-- must leave mean, s and lap bit for bit as the trigger's own passes give them.
luisa.every(1, { mean = A:mean(), s = A:sum(), lap = A:laplacian():std(), max = A:max(), dstd = A:diff(0):std() },
            function(step, r)
  put("%d every %.17g %.17g %.17g\n", step, r.mean, r.s, r.lap)
end)
luisa.trigger {
  every = 1,
  check = { mean = A:mean() },
  when = function(c) return c.mean > 0 end,
  stats = { s = A:sum(), lap = A:laplacian():std() },
  run = function(step, r, c) put("%d fired %.17g %.17g %.17g\n", step, c.mean, r.s, r.lap) end,
}
luisa.every(1, { n = A:count() }, function(step)
  put("%d runs %d\n", step, luisa.stats().runs)
end)
