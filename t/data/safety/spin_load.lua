-- The script never finishes loading.
require "healthy"
local n = 0
while true do n = n + 1 end
