-- reload_helper.lua: required by the reload test scripts from their
-- directory, so it travels with them from rank 0.
local M = {}
local out = assert(io.open(os.getenv("LUISA_TEST_OUT"), "a"))

-- step tag value loads n hist[0] (whether luisa.state.f is gone)
function M.put(step, tag, value, state)
  out:write(string.format("%d %s %s %d %d %d %s\n", step, tag, tostring(value), state.loads, state.n,
                          tonumber(state.hist[0]), tostring(state.f == nil)))
  out:flush()
end

return M
