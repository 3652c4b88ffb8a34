-- slow.lua: the analysis is slower than the simulation: its callback sleeps
-- 50 ms at every step (trusted, for FFI's usleep: a sleep, not a busy loop,
-- on a machine the simulation shares). Rank 0 writes "step sum count" to
-- $LUISA_TEST_OUT, for t/050-threads.t (t/threads.c, case lag).
local luisa = require "luisa"
local ffi = require "ffi"
ffi.cdef "int usleep(unsigned int usec);"
local A = luisa.array "A"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
luisa.every(1, { s = A:sum(), n = A:count() }, function(step, r)
  ffi.C.usleep(50000)
  out:write(string.format("%d %.17g %d\n", step, r.s, r.n))
  out:flush()
end)
