-- a.lua: version A for t/026-reload.t: the sum of T every step, and a
-- luisa.state that the next version must find (a count, an FFI array, and
-- a function, which does not carry over).
local luisa = require "luisa"
local ffi = require "ffi"
local helper = require "reload_helper"
local state = luisa.state
state.loads = (state.loads or 0) + 1
state.n = state.n or 0
state.hist = state.hist or ffi.new("double[2]")
state.f = print
luisa.every(1, { s = luisa.array("T"):sum() }, function(step, r)
  state.n = state.n + 1
  state.hist[0] = state.hist[0] + 1
  helper.put(step, "A", r.s, state)
end)
