#!/bin/sh
# gradient(axis) (central inside, one-sided at the ends) against the same
# rule applied in plain Lua to the gathered array, across decompositions.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
configs="
1 f64 9,7 1,1 0 c
2 f64 9,7 3,2 1 f
3 f32 11,6 4,3 1 c
4 f64 6,10 3,3 2 c
4 i32 8,5 2,4 1 f
"
n=$(echo "$configs" | grep -c .)
echo "1..$((n * 8))"
echo "$configs" | while read -r np dtype shape blocks ghost order; do
  [ -n "$np" ] || continue
  LUISA_TEST_OUT="$out/g" mpi "$np" "$B/t/reduce" "$dtype" "$shape" "$blocks" "$ghost" "$order" 2 \
    t/data/gradient.lua >/dev/null 2>"$out/err"
  for check in gather0 sum0 max0 argmin0 gather1 sum1 max1 argmin1; do
    line=$(grep " $check " "$out/g" | grep -v " ok" | head -1)
    count=$(grep -c " $check ok" "$out/g")
    [ "$count" = 2 ] && echo "ok - $np ranks $dtype $shape blocks $blocks ghost $ghost $order: gradient $check at both steps" \
      || echo "not ok - $np ranks $dtype $shape blocks $blocks: gradient $check: $line ($count of 2 steps)"
  done
done
