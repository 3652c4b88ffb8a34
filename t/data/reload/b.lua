-- b.lua: version B for t/026-reload.t: the sum of U every step, carrying on
-- the count and the FFI array version A left in luisa.state.
local luisa = require "luisa"
local ffi = require "ffi"
local helper = require "reload_helper"
local state = luisa.state
state.loads = (state.loads or 0) + 1
state.n = state.n or 0
state.hist = state.hist or ffi.new("double[2]")
luisa.every(1, { s = luisa.array("U"):sum() }, function(step, r)
  state.n = state.n + 1
  state.hist[0] = state.hist[0] + 1
  helper.put(step, "B", r.s, state)
end)
