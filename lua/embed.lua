-- embed.lua: a build tool, not a module. Writes the C file that compiles
-- the lua/ modules into the library as source text:
--   luajit lua/embed.lua lua/luisa.lua lua/luisa/plan.lua ... > lua_embed.c
io.write("/* generated from lua/ by lua/embed.lua: do not edit */\n#include \"context.h\"\n")
local entries = {}
for i, file in ipairs(arg) do
  local rel = file:gsub("^lua/", "")
  local name = rel:gsub("%.lua$", ""):gsub("/", ".")
  local text = assert(io.open(file, "rb")):read("*a")
  local bytes = {}
  for k = 1, #text do bytes[k] = text:byte(k) end
  io.write("static const unsigned char src_", i, "[] = {", table.concat(bytes, ","), "};\n")
  entries[i] = string.format("  { %q, %q, src_%d, sizeof src_%d },\n", name, "=" .. rel, i, i)
end
io.write("const lu_lua_module lu_lua_modules[] = {\n", table.concat(entries), "  { NULL, NULL, NULL, 0 }\n};\n")
