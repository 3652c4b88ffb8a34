-- diverge.lua: a version for t/026-reload.t whose period depends on the
-- rank (line 7): its plan differs between ranks, the reload is refused.
local luisa = require "luisa"
local helper = require "reload_helper"
local state = luisa.state
state.loads = (state.loads or 0) + 1
luisa.every(luisa.rank == 0 and 1 or 2, { s = luisa.array("U"):sum() }, function(step, r)
  helper.put(step, "D", r.s, state)
end)
