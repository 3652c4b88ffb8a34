#!/bin/sh
# Every reduction of t/reduce.lua against a plain C loop, over decompositions
# that are uneven, with several chunks per rank, ghost cells, Fortran order,
# and ranks that own nothing; then over data patterns of A (t/reduce.c):
# NaN everywhere, on the last rank only, at the ends, ramps, a constant,
# infinities, NaN but one infinity, on 1, 2 and 4 ranks.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
configs="
1 f64 16,12 1,1 0 c
1 f64 16,12 3,2 1 f
2 f64 16,12 1,1 0 c
2 f64 16,12 3,2 1 c
2 f32 16,12 3,2 1 c
2 i32 16,12 3,2 2 f
3 f64 5,6,4,3 2,2,1,2 1 f
3 i64 9,8,7 2,2,3 1 c
4 f64 100 7 2 c
4 f32 31,17 3,5 1 f
4 i32 13,11 2,1 1 c
4 f64 33,20 4,3 0 c
1 f64 16,12 1,1 0 c nan
2 f64 16,12 3,2 1 c nan
4 f32 31,17 3,5 1 f nan
2 f64 16,12 3,2 1 f nanrank
4 f64 33,20 4,3 0 c nanrank
4 f32 13,11 2,1 1 c nanrank
1 f32 16,12 3,2 1 c nanends
2 f64 16,12 3,2 1 f nanends
4 f64 100 7 2 c nanends
1 i32 16,12 3,2 2 f rising
2 f64 16,12 3,2 1 c rising
4 i64 9,8,7 2,2,3 1 c rising
1 f64 16,12 1,1 0 c falling
2 i32 13,11 2,1 1 c falling
4 f32 31,17 3,5 1 f falling
1 f32 16,12 3,2 1 f constant
2 i64 9,8,7 2,2,3 1 c constant
4 f64 33,20 4,3 0 c constant
1 f64 16,12 3,2 1 c inf
2 f32 16,12 3,2 1 f inf
4 f64 100 7 2 c inf
1 f64 16,12 1,1 0 c naninf
2 f64 16,12 3,2 1 c naninf
4 f32 31,17 3,5 1 f naninf
"
n=$(echo "$configs" | grep -c .)
echo "1..$n"
echo "$configs" | while read -r np dtype shape blocks ghost order pattern; do
  [ -n "$np" ] || continue
  LUISA_TEST_OUT="$out/r" mpi "$np" "$B/t/reduce" "$dtype" "$shape" "$blocks" "$ghost" "$order" 3 t/reduce.lua \
    ${pattern:-random} 2>"$out/err" \
    || { echo "# stderr:"; sed 's/^/#   /' "$out/err"; }
done
