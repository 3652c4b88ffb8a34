#!/bin/sh
# The plan's partition (who computes what, what moves) against the algorithm
# it replaced, on every rank of many decompositions: t/partition.lua under LuaJIT.
cd "$(dirname "$0")/.." || exit 1
LUA_PATH="lua/?.lua;;" exec luajit t/partition.lua
