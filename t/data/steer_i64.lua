-- steer_i64.lua: for "steer i64" (t/021-steer.t): at step t, callback t sets one value at
-- the edge of an i64 or f64 parameter's bounds, alone on its line (a refusal names the
-- line and disables the callback); t/steer.c checks each step's status, line and value.
local luisa = require "luisa"
local S = { s = luisa.array("A"):sum() }
local function on(t, step) return t == step end
luisa.every(1, S, function(t) if on(t, 1) then luisa.set("big", 2^63) end end)          -- refused: past INT64_MAX
luisa.every(1, S, function(t) if on(t, 2) then luisa.set("big", 2^63 - 1024) end end)   -- the largest double below
luisa.every(1, S, function(t) if on(t, 3) then luisa.set("big", 0/0) end end)           -- refused
luisa.every(1, S, function(t) if on(t, 4) then luisa.set("big", 1/0) end end)           -- refused
luisa.every(1, S, function(t) if on(t, 5) then luisa.set("big", 1.5) end end)           -- refused
luisa.every(1, S, function(t) if on(t, 6) then luisa.set("big", -1) end end)            -- refused
luisa.every(1, S, function(t) if on(t, 7) then luisa.set("low", -2^63) end end)         -- INT64_MIN exactly
luisa.every(1, S, function(t) if on(t, 8) then luisa.set("low", -2^63 - 2048) end end)  -- refused: the double below
luisa.every(1, S, function(t) if on(t, 9) then luisa.set("low", -1/0) end end)          -- refused
luisa.every(1, S, function(t) if on(t, 10) then luisa.set("odd", 2^53 + 4) end end)     -- refused: (double)max is it
luisa.every(1, S, function(t) if on(t, 11) then luisa.set("odd", -(2^53 + 4)) end end)  -- refused
luisa.every(1, S, function(t) if on(t, 12) then luisa.set("odd", 2^53 + 2) end end)     -- inside [-(2^53+3), 2^53+3]
luisa.every(1, S, function(t) if on(t, 13) then luisa.set("top", 2^62) end end)         -- the bound itself
luisa.every(1, S, function(t) if on(t, 14) then luisa.set("top", 2^62 + 1024) end end)  -- refused: the double above
luisa.every(1, S, function(t) if on(t, 15) then luisa.set("f", 0/0) end end)            -- refused
luisa.every(1, S, function(t) if on(t, 16) then luisa.set("f", 1/0) end end)            -- refused
luisa.every(1, S, function(t) if on(t, 17) then luisa.set("g", -1/0) end end)           -- infinite bounds: accepted
luisa.every(1, S, function(t) if on(t, 18) then luisa.set("g", 0/0) end end)            -- refused
luisa.every(1, S, function(t)   -- what scripts read: doubles, rounded past 2^53
  if not on(t, 19) then return end
  local b, o, p = luisa.bounds.big, luisa.bounds.odd, luisa.param
  if b[1] ~= 0 or b[2] ~= 2^63 or o[2] ~= 2^53 + 4 or p.low ~= -2^63 or p.big ~= 2^63 - 1024 or p.g ~= -1/0 then
    error(string.format("read big [%.17g, %.17g] odd max %.17g low %.17g big %.17g g %g", b[1], b[2], o[2],
                        p.low, p.big, p.g))
  end
end)
