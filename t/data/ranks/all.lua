-- all.lua: most of the language at once, for t/052-ranks.t, which runs it
-- inline, in thread mode and in ranks mode on the same chunks and compares
-- what rank 0 of the analysis writes to $LUISA_TEST_OUT, byte for byte:
-- statistics of rising, falling, constant and NaN data, a window, a
-- stencil, a gather, luisa.fetch across chunks, a region moved at step 4,
-- a trigger, an assignment into W every 3 steps, luisa.state, and steering
-- (gain at step 5; period, label and on at step 6; period of B at step 3).
local luisa = require "luisa"
local T, I, W = luisa.array "T", luisa.array "I", luisa.array "W"
local out = luisa.rank == 0 and assert(io.open(os.getenv("LUISA_TEST_OUT"), "w"))
local function put(...) out:write(string.format(...)); out:flush() end
local function digest(f)
  if not f then return "nil" end
  local s = 0
  for k = 0, f.n - 1 do s = s * 3 + f.data[k] end
  return string.format("%d:%a", f.n, s)
end
local win = luisa.window(T, 3)
local B = luisa.every(1, { m = I:mean() }, function(step, r) put("%d B %a\n", step, r.m) end)
luisa.state.runs = luisa.state.runs or 0
luisa.every(1, { s = T:sum(), mn = T:min(), mx = T:max(), m = T:mean(), sd = T:std(), is = I:sum(),
                 imx = I:max(), lap = T:laplacian():std(), d = T:diff(1):sum(), w = W:sum(),
                 ch = (win[0] - win[2]):abs():max(), g = T[{ { 2, 9 }, { 1, 4 } }]:gather() },
  function(step, r)
    luisa.state.runs = luisa.state.runs + 1
    local p = luisa.param
    put("%d s %a mn %a mx %a m %a sd %a is %a imx %a lap %a d %a w %a ch %s g %s f %s f1 %s param %a %d %s %s "
        .. "runs %d\n", step, r.s, r.mn, r.mx, r.m, r.sd, r.is, r.imx, r.lap, r.d, r.w,
        r.ch and string.format("%a", r.ch) or "nil", digest(r.g), digest(luisa.fetch("T", { 1, 0 }, { 6, 6 })),
        digest(luisa.fetch("T", { 1, 0 }, { 6, 6 }, 1)), p.gain, p.period, p.label, tostring(p.on),
        luisa.state.runs)
    if step == 3 then luisa.period(B, 2) end
    if step == 5 then luisa.set("gain", 2.5) end
    if step == 6 then
      luisa.set("period", 3)
      luisa.set("label", "b")
      luisa.set("on", false)
    end
  end)
local zoom = luisa.region(T, { 0, 4 })
luisa.every(2, { z = zoom:sum(), n = zoom:count() }, function(step, r)
  put("%d zoom %a %d\n", step, r.z, r.n)
  if step == 4 then luisa.move(zoom, { 4, 9 }) end
end)
luisa.trigger {
  every = 1,
  check = { mx = T:max() },
  when = function(c) return c.mx > 40 end,
  stats = { n = T:count(), s = T:sum() },
  run = function(step, r, c) put("%d fired %a %d %a\n", step, c.mx, r.n, r.s) end,
}
luisa.assign("W", W * 0.5 + I, 3)
