#!/bin/sh
# examples/heat2d: nudging toward obs lowers the misfit, the steered run is
# bit-identical on 1, 2 and 4 ranks, and luisa.assign writes u exactly.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..10"
# 37 cells: uneven blocks on the 2 x 1 and 2 x 2 process grids.
run() { np=$1 name=$2; shift 2
        mpi "$np" "$B/examples/heat2d" --size 37 --progress 0 --check "$@" >"$out/$name" 2>"$out/$name.err"; }
run 2 two --steps 200 --script examples/heat2d/nudge.lua
run 1 one --steps 200 --script examples/heat2d/nudge.lua
run 4 four --steps 200 --script examples/heat2d/nudge.lua

misfit() { sed -n 's/.*misfit \([0-9.]*\).*/\1/p' "$out/$1"; }
first=$(misfit two | head -1) last=$(misfit two | tail -1) lines=$(misfit two | wc -l)
[ "$lines" = 41 ] && awk "BEGIN { exit !($last < $first / 2) }" \
  && echo "ok - nudge.lua: the misfit falls from $first to $last over $lines checks" \
  || { echo "not ok - misfit from '$first' to '$last' over $lines checks"; tail -3 "$out/two.err" | sed 's/^/# /'; }
grep -q "dt/2" "$out/two" && grep -q "dt\*2" "$out/two" \
  && grep -q "obs computed at 41 steps" "$out/two.err" \
  && echo "ok - it halved dt on the sharp start and restored it; obs computed only at the 41 steps it is read" \
  || { echo "not ok - no steering of dt, or obs computed when not wanted"; grep "obs computed" "$out/two.err" | sed 's/^/# /'; }
cmp -s "$out/two" "$out/one" && cmp -s "$out/two" "$out/four" \
  && echo "ok - 1, 2 and 4 ranks print the same lines" || echo "not ok - printed lines differ across rank counts"
h() { sed -n 's/.*check hash //p' "$out/$1.err"; }
[ -n "$(h two)" ] && [ "$(h one)" = "$(h two)" ] && [ "$(h four)" = "$(h two)" ] \
  && echo "ok - and end with bit-identical u (hash $(h two))" \
  || echo "not ok - hashes $(h one) $(h two) $(h four)"

# u = obs assigned at every step; the script stops the run at step 30. The
# assignment lands after step 30's analytics in the buffer step 31 would
# read, and no update follows: u must equal obs(t of step 30) bit for bit.
gap() { sed -n 's/.*check step \([0-9]*\) .* max|u - obs| \(.*\)/\1 \2/p' "$out/$1.err"; }
run 1 a1 --steps 100 --script t/data/heat_assign.lua
run 3 a3 --steps 100 --script t/data/heat_assign.lua
run 4 a4 --steps 100 --script t/data/heat_assign.lua
[ "$(gap a1)" = "30 0" ] && [ "$(gap a3)" = "30 0" ] && [ "$(gap a4)" = "30 0" ] \
  && grep -q "ended the run at step 30" "$out/a3.err" \
  && echo "ok - heat_assign.lua: after the stop at step 30, max|u - obs| is exactly 0 on 1, 3 and 4 ranks" \
  || { echo "not ok - max|u - obs| at the end: '$(gap a1)' '$(gap a3)' '$(gap a4)'"; tail -3 "$out/a3.err" | sed 's/^/# /'; }
# The control: the same check without assignments is far from 0, and a
# script that never reads obs makes the simulation compute it only at step 0
# (before the first step everything is wanted).
run 2 s --steps 30 --script examples/heat2d/stats.lua
d=$(gap s)
awk "BEGIN { exit !(\"${d#* }\" + 0 > 0.1) }" && [ "${d% *}" = 30 ] \
  && grep -q "obs computed at 1 steps" "$out/s.err" \
  && echo "ok - with stats.lua, max|u - obs| is ${d#* } and obs is computed at step 0 only" \
  || { echo "not ok - stats.lua: '$d'"; grep "obs computed" "$out/s.err" | sed 's/^/# /'; }
[ "$(sed -n 's/^step *\([0-9]*\) .*/\1/p' "$out/s" | tr '\n' ' ')" = "0 10 20 30 " ] \
  && echo "ok - stats.lua prints at steps 0, 10, 20, 30" || { echo "not ok - stats.lua output:"; sed 's/^/# /' "$out/s"; }

# Ranks mode (2 simulation ranks + 1 analytics rank, max_lag 0): the same
# steering, the same assignments, the same u as inline on the 2 ranks; and
# heat_assign.lua's exact landing on 3 + 1.
LUISA_MODE=ranks LUISA_MAX_LAG=0 LUISA_ANALYTICS_RANKS=1 run 3 r3 --steps 200 --script examples/heat2d/nudge.lua
cmp -s "$out/two" "$out/r3" && echo "ok - ranks mode, 2 + 1 ranks: nudge.lua prints what 2 ranks inline print" \
  || { echo "not ok - ranks mode prints other lines"; diff "$out/two" "$out/r3" | head -5 | sed 's/^/# /'; }
[ -n "$(h r3)" ] && [ "$(h r3)" = "$(h two)" ] && grep -q "obs computed at 41 steps" "$out/r3.err" \
  && echo "ok - and ends with the same u (hash $(h r3)), obs computed only when wanted" \
  || { echo "not ok - ranks mode hash '$(h r3)'"; tail -3 "$out/r3.err" | sed 's/^/# /'; }
LUISA_MODE=ranks LUISA_MAX_LAG=0 LUISA_ANALYTICS_RANKS=1 run 4 ra4 --steps 100 --script t/data/heat_assign.lua
[ "$(gap ra4)" = "30 0" ] && grep -q "ended the run at step 30" "$out/ra4.err" \
  && echo "ok - ranks mode, 3 + 1 ranks: after the stop at step 30, max|u - obs| is exactly 0" \
  || { echo "not ok - ranks mode max|u - obs| '$(gap ra4)'"; tail -3 "$out/ra4.err" | sed 's/^/# /'; }
