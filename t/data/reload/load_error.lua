local luisa = require "luisa"
local T = luisa.array "T"
error("boom at load")
