#!/bin/sh
# luisa.map: a Lua function over each block of an expression, its numbers
# combined across blocks and ranks, equal to the same counts by reductions.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..8"
for np in 1 3; do
  # 17 x 13 in 3 x 2 uneven blocks: axis 0 blocks start at 0, 3 and 9.
  LUISA_TEST_OUT="$out/m$np" mpi "$np" "$B/t/reduce" f64 17,13 3,2 1 f 3 t/data/map.lua >/dev/null 2>"$out/err$np"
  awk -v np="$np" '
    { n++; if ($2 != $3) a++; if ($4 != $5) b++; if ($6 != 9 || $7 != 0) c++
      d = $8 - $9; if (d < 0) d = -d; if (d > 1e-9 * ($9 < 0 ? -$9 : $9)) e++ }
    END {
      print (n == 3 && !a ? "ok" : "not ok") " - " np " ranks: map counting positives equals A:gt(0):sum() at 3 steps"
      print (n == 3 && !b ? "ok" : "not ok") " - " np " ranks: map over (A:diff(1) * 2) equals the same count by a reduction"
      print (n == 3 && !c ? "ok" : "not ok") " - " np " ranks: blocks get their global offsets: max 9, min 0 on axis 0"
      print (n == 3 && !e ? "ok" : "not ok") " - " np " ranks: map summing a slice equals its sum"
    }' "$out/m$np"
done
