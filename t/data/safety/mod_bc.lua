-- Requires a module beside it that is LuaJIT bytecode.
require "healthy"
require "bc_module"
