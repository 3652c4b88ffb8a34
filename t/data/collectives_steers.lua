-- collectives_steers.lua: collectives.lua, from a script whose sources
-- name luisa.set (never called here): the other ranks then wait for the
-- root's callbacks at every step, as steering needs (t/037-collectives.t).
require "collectives"
