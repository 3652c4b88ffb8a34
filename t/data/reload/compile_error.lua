local luisa = require "luisa"
luisa.every(1, { s = luisa.array("NOPE"):sum() }, function() end)
