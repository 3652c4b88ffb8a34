-- slow.lua: an analysis slower than the simulation, 50 ms a step (trusted,
-- for FFI's usleep), for t/052-ranks.t (case lag): the simulation is held
-- exactly max_lag steps ahead.
local luisa = require "luisa"
local ffi = require "ffi"
ffi.cdef "int usleep(unsigned int usec);"
local T = luisa.array "T"
luisa.every(1, { s = T:sum() }, function() ffi.C.usleep(50000) end)
