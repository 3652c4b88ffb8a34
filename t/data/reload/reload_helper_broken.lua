-- reload_helper_broken.lua: reload_helper.lua saved with a syntax error (line 3).
local M = {}
M.put = )
return M
