#!/bin/sh
# The Lua side of luisa on its own, without MPI or the engine: t/expr.lua under
# LuaJIT with the modules loaded from lua/ (see t/expr.lua for what it covers).
cd "$(dirname "$0")/.." || exit 1
LUA_PATH="lua/?.lua;;" exec luajit t/expr.lua
