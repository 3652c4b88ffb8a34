#!/bin/sh
# The store keeps a window's versions and releases them as it slides: over
# 1000 steps the objects and bytes it holds stay flat, and the plan and its
# kernels are built once.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..5"
# 4 ranks on 64 x 64: rank 0 owns one 32 x 32 chunk of U, 8192 bytes a version.
mpi 4 "$B/examples/gray_scott" --size 64 --steps 1000 --progress 0 --script t/data/store_stats.lua \
  >"$out/stats" 2>"$out/err"
awk '
  $1 == 0 && $2 == 0 && $6 == "pending" { a++ }
  $1 == 1 && $2 == 1 && $3 == 8192 && $6 == "pending" { a++ }
  $1 >= 2 && $2 == 2 && $3 == 16384 && $6 == "ready" { b++ }
  END { print ((a == 2) ? "ok" : "not ok") " - steps 0 and 1 hold 0 then 1 version, the window result is pending"
        print ((b == 999) ? "ok" : "not ok") " - from step 2 to 1000, 2 versions of 8192 bytes, and the result is ready (" b " of 999 steps)" }
' "$out/stats"
lines=$(grep -c . "$out/stats")
[ "$lines" = 1001 ] && echo "ok - one line per step, 0 to 1000" || echo "not ok - $lines lines, expected 1001"
awk '$4 != 1 { bad++ } END { print (bad ? "not ok" : "ok") " - one plan built over 1001 steps" }' "$out/stats"
awk 'NR == 1 { k = $5 } $5 != k || k < 1 { bad++ } END { print (bad ? "not ok" : "ok") " - " k " kernels compiled at the first step, none after" }' "$out/stats"
[ -s "$out/err" ] && grep -v '^gray-scott' "$out/err" | sed 's/^/# /'
exit 0
