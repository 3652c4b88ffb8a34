#!/bin/sh
# examples/gray-scott/steer.lua: the pattern steered into its band stops the
# run at the same step on every rank, and the run is the same on 1, 2 and 4
# ranks and from one run to the next.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..6"
run() { mpi "$1" "$B/examples/gray_scott" --size 64 --steps 6000 --progress 0 --check \
          --script examples/gray-scott/steer.lua >"$out/$2" 2>"$out/$2.err"; }
run 2 a; run 2 b; run 1 one; run 4 four
grep -q "ended the run at step" "$out/a.err" && grep -q "kill+\|kill-" "$out/a" \
  && echo "ok - the script steered the kill rate and ended the run: $(grep -o 'ended the run at step [0-9]*' "$out/a.err")" \
  || { echo "not ok - no steering or no stop"; sed 's/^/# /' "$out/a.err" | tail -5; }
cmp -s "$out/a" "$out/b" && echo "ok - two runs on 2 ranks print the same steering history" \
  || echo "not ok - two identical runs differ"
h() { sed -n 's/.*check hash //p' "$out/$1.err"; }
[ -n "$(h a)" ] && [ "$(h a)" = "$(h b)" ] && echo "ok - and end with bit-identical fields" \
  || echo "not ok - field hashes $(h a) and $(h b)"
cmp -s "$out/a" "$out/one" && cmp -s "$out/a" "$out/four" \
  && echo "ok - 1, 2 and 4 ranks print the same history" || echo "not ok - histories differ across rank counts"
[ "$(h one)" = "$(h a)" ] && [ "$(h four)" = "$(h a)" ] \
  && echo "ok - and end with the same fields on 1, 2 and 4 ranks" || echo "not ok - fields differ across rank counts"
LUISA_LOG_LEVEL=info mpi 2 "$B/examples/gray_scott" --size 64 --steps 6000 --progress 0 \
  --script examples/gray-scott/steer.lua >/dev/null 2>"$out/log"
changes=$(grep -c "luisa\[0\] info: step [0-9]*: kill " "$out/log")
grep -q "summary: $changes parameter changes (0: kill 0.062 -> 0.0615;.*); stopped: area in" "$out/log" \
  && echo "ok - with LUISA_LOG_LEVEL=info every change is logged and the summary lists all $changes" \
  || { echo "not ok - change log or summary missing ($changes changes logged)"; grep summary "$out/log" | cut -c1-300 | sed 's/^/# /'; }

