-- The script allocates without bound while it loads.
require "healthy"
local t = {}
while true do t[#t + 1] = {} end
