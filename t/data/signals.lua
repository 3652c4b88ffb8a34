-- signals.lua: loads and asks for nothing, for the reload signal checks of t/api.c.
require "luisa"
