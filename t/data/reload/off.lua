-- off.lua: a version for t/026-reload.t that turns the analysis off on
-- purpose: it registers nothing, and says so.
local luisa = require "luisa"
luisa.off()
