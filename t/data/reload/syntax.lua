local luisa = require "luisa"
luisa.every(1, { s = ) })
