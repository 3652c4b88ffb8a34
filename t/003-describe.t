#!/bin/sh
# A script's callbacks described as plain data without any engine: t/describe.lua
# under LuaJIT with the modules loaded from lua/ (see t/describe.lua).
cd "$(dirname "$0")/.." || exit 1
LUA_PATH="lua/?.lua;;" exec luajit t/describe.lua
