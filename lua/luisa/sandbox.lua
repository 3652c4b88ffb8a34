-- luisa.sandbox: the environment scripts run in. Sandboxed (the default):
-- a whitelist, with no process control, no os.exit, no debug, no raw FFI,
-- no luisa.core, modules only from the engine (luisa) and the script's
-- directory, and writes only under the output directory. Trusted: the full
-- global environment. Either way scripts load from source text only, and
-- with a time budget their functions run interpreted, where the budget's
-- hook reaches them (LuaJIT's hooks never fire inside compiled loops).
local M = { trusted = false, jit_off = false, output_dir = "luisa-out" }

local jit_off = jit.off
local raw_load, raw_setfenv, raw_require = load, setfenv, require
local raw_pcall, raw_xpcall, raw_resume, getinfo = pcall, xpcall, coroutine.resume, debug.getinfo

-- Once the budget or the heap stops a script, the script may not catch
-- the stop: its pcall, xpcall and coroutine.resume pass it on. The
-- engine's own calls (chunks named "=luisa") keep the plain behaviour.
local function pass(ok, ...)
  if not ok and M.stopped and M.stopped() then
    local caller = getinfo(2, "S")   -- the caller of the wrapper, which tail-calls pass
    if not caller or caller.source:sub(1, 6) ~= "=luisa" then error((...), 0) end
  end
  return ok, ...
end
local function safe_pcall(f, ...) return pass(raw_pcall(f, ...)) end
local function safe_xpcall(f, handler, ...) return pass(raw_xpcall(f, handler, ...)) end
local function safe_resume(co, ...) return pass(raw_resume(co, ...)) end

-- Chunk names starting "=luisa" mark the engine's own code, which the
-- budget lets finish: a script's chunk may not take one.
local function user_name(name)
  name = name ~= nil and tostring(name) or "=(load)"
  if name:sub(1, 6) == "=luisa" then name = "=(script) " .. name:sub(2) end
  return name
end

-- A script's chunk: text only (bytecode can crash the process), in env.
local function load_text(chunk, name, env)
  local f, err = raw_load(chunk, user_name(name), "t")
  if not f then
    if type(err) == "string" and err:find("wrong mode", 1, true) then
      err = tostring(name) .. ": LuaJIT bytecode is refused: scripts load from source text only"
    end
    return nil, err
  end
  raw_setfenv(f, env)
  if M.jit_off then jit_off(f, true) end
  return f
end

-- For the engine: the script's file or a module's, or an error.
function M.load(text, chunkname)
  local f, err = load_text(text, chunkname, M.env)
  if not f then error(err, 0) end
  return f
end

local function copy(t, except)
  local c = {}
  for k, v in pairs(t) do if not (except and except[k]) then c[k] = v end end
  return c
end

-- "a/./b//c" -> "a/b/c"; nil for a path that climbs with "..".
local function normal(path)
  local parts, absolute = {}, path:sub(1, 1) == "/"
  for part in path:gmatch("[^/]+") do
    if part == ".." then return nil end
    if part ~= "." then parts[#parts + 1] = part end
  end
  return (absolute and "/" or "") .. table.concat(parts, "/")
end

local function under_output(path)
  local p, dir = normal(path), normal(M.output_dir)
  return p and dir and dir ~= "" and p:sub(1, #dir + 1) == dir .. "/" and #p > #dir + 1
end

local function refuse_write(what, path)
  error(string.format("%s(%q): sandboxed scripts write only under the output directory %q "
        .. "(opts.output_dir, LUISA_OUTPUT_DIR), without \"..\"; opts.trusted lifts this", what,
        tostring(path), M.output_dir), 3)
end

-- The output directory is made when a script first writes there.
local function make_dirs(path)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" and M.mkdir then M.mkdir(dir) end
end

local function safe_open(path, mode)
  mode = mode or "r"
  if type(path) ~= "string" or type(mode) ~= "string" then
    error("io.open(path, mode): path and mode must be strings", 2)
  end
  if mode:find("[wa+]") then
    if not under_output(path) then refuse_write("io.open", path) end
    make_dirs(normal(path))
  end
  return io.open(path, mode)
end

local function safe_lines(path)
  if path == nil then error("io.lines() reads standard input: not in the sandbox", 2) end
  return io.lines(path)
end

local function safe_remove(path)
  if type(path) ~= "string" or not under_output(path) then refuse_write("os.remove", path) end
  return os.remove(path)
end

local function safe_rename(from, to)
  if type(from) ~= "string" or not under_output(from) then refuse_write("os.rename", from) end
  if type(to) ~= "string" or not under_output(to) then refuse_write("os.rename", to) end
  return os.rename(from, to)
end

local function safe_collect(what, ...)
  if what == nil or what == "count" or what == "collect" or what == "step" then
    return collectgarbage(what, ...)
  end
  error("collectgarbage(" .. tostring(what) .. "): only \"count\", \"collect\" and \"step\" in the sandbox", 2)
end

local function missing(name)
  return function() error(name .. " is not available to sandboxed scripts (opts.trusted lifts the sandbox)", 2) end
end

local function sandbox_env()
  local env = {}
  for _, k in ipairs { "assert", "error", "ipairs", "next", "pairs", "print", "rawequal", "rawget",
                       "rawset", "select", "tonumber", "tostring", "type", "unpack", "_VERSION",
                       "getmetatable", "setmetatable", "gcinfo" } do
    env[k] = _G[k]
  end
  env.pcall, env.xpcall = safe_pcall, safe_xpcall
  env.math, env.table, env.coroutine, env.bit = copy(math), copy(table), copy(coroutine), copy(bit)
  env.coroutine.resume = safe_resume
  env.string = copy(string, { dump = true })
  env.os = { clock = os.clock, time = os.time, date = os.date, difftime = os.difftime, getenv = os.getenv,
             remove = safe_remove, rename = safe_rename, exit = missing("os.exit"),
             execute = missing("os.execute") }
  env.io = { open = safe_open, lines = safe_lines, write = function(...) return io.write(...) end,
             stdout = io.stdout, stderr = io.stderr, popen = missing("io.popen") }
  env.collectgarbage = safe_collect
  env.load = function(chunk, name, mode, fenv)
    if mode ~= nil and mode ~= "t" then return nil, "only source text loads in the sandbox (mode \"t\")" end
    return load_text(chunk, name, fenv or env)
  end
  env.loadstring = function(s, name) return load_text(s, name, env) end
  env.loadfile, env.dofile = missing("loadfile"), missing("dofile")
  env.getfenv, env.setfenv, env.newproxy = missing("getfenv"), missing("setfenv"), missing("newproxy")
  local mine = {}   -- modules the script loaded from its directory
  env.require = function(name)
    if type(name) ~= "string" then error("require: the module name must be a string", 2) end
    if name == "luisa" or mine[name] then return raw_require(name) end
    if package.loaded[name] ~= nil or package.preload[name] ~= nil then
      error(string.format("module %q is not available to sandboxed scripts: they may require \"luisa\" and "
            .. "modules beside the script (opts.trusted lifts the sandbox)", name), 2)
    end
    local v = raw_require(name)
    mine[name] = true
    return v
  end
  env._G = env
  return env
end

-- Trusted scripts keep the global environment, but still load only text.
-- The engine's own chunks (its kernels, named "=luisa ...") share these
-- globals and keep the JIT.
local function trusted_load(chunk, name, fenv)
  if type(name) == "string" and name:sub(1, 6) == "=luisa" then
    local f, err = raw_load(chunk, name, "t")
    if f and fenv then raw_setfenv(f, fenv) end
    return f, err
  end
  return load_text(chunk, name, fenv or _G)
end

local function trusted_env()
  _G.pcall, _G.xpcall, coroutine.resume = safe_pcall, safe_xpcall, safe_resume
  _G.load = function(chunk, name, mode, fenv)
    if mode ~= nil and mode ~= "t" then return nil, "scripts load source text only (mode \"t\")" end
    return trusted_load(chunk, name, fenv)
  end
  _G.loadstring = function(s, name) return trusted_load(s, name) end
  _G.loadfile = function(path)
    local f, err = io.open(path or "", "rb")
    if not f then return nil, err end
    local text = f:read("*a")
    f:close()
    return load_text(text, "@" .. path, _G)
  end
  _G.dofile = function(path) return assert(_G.loadfile(path))() end
  -- The Lua path searcher, text only; the C searchers stay.
  package.loaders[2] = function(name)
    local path, err = package.searchpath(name, package.path)
    if not path then return err end
    local f = assert(_G.loadfile(path))
    return f
  end
  return _G
end

-- Called once by the engine when the state is made.
function M.setup(cfg)
  M.trusted, M.jit_off, M.output_dir, M.mkdir = cfg.trusted, cfg.jit_off, cfg.output_dir, cfg.mkdir
  M.stopped = cfg.stopped
  if M.trusted then
    M.env = trusted_env()
  else
    package.loaders = { package.loaders[1] }   -- the engine's modules only; the script's come next
    M.env = sandbox_env()
  end
  -- Strings share one metatable with the engine: scripts may not change it.
  getmetatable("").__metatable = "string"
end

return M
