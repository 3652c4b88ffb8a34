#!/bin/sh
# Axis reductions, gather() and coarsen(f) (t/fields.lua), alone and with stencils, slices and windows,
# against plain C loops over global data on uneven decompositions; then bad uses, each named by file:line.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# ranks dtype shape A-blocks B-blocks ghost order steps [pattern]. B's block k is on rank k+1 and
# V's (1-D, A-blocks[0]+1 blocks) on rank k+2, so the three are decomposed differently; blocks of
# one element are narrower than a coarsening block; "1,3" and "3,1" on 4 ranks leave ranks without
# a chunk. pattern: what A holds (t/fields.c): NaN everywhere, on the last rank's blocks or every
# third row (an axis reduction's line of NaN only gives NaN), ramps, infinities...
configs="
1 f64 9,7 1,1 1,1 0 c 3
1 f32 12,10 3,2 2,3 1 f 4
2 f64 16,12 3,2 2,3 1 c 4
2 i32 13,11 4,3 1,5 2 f 3
3 f64 9,8,7 2,2,3 3,1,2 1 f 4
3 f32 8,7,9 3,2,2 1,1,4 0 c 3
4 f64 13,11 1,3 3,1 0 c 4
4 i32 10,9,8 2,3,1 1,2,3 1 f 3
4 f64 31,17 5,4 3,6 1 f 3
1 f64 9,7 1,1 1,1 0 c 3 nan
2 f64 16,12 3,2 2,3 1 c 3 nan
4 f32 13,11 1,3 3,1 0 c 3 nan
2 f64 16,12 3,2 2,3 1 f 3 nanrank
4 f64 31,17 5,4 3,6 1 f 3 nanrank
1 f32 12,10 3,2 2,3 1 f 3 nanrows
2 f64 9,8,7 2,2,3 3,1,2 1 f 3 nanrows
4 f64 13,11 1,3 3,1 0 c 3 nanrows
2 f64 16,12 3,2 2,3 1 c 3 nanends
4 f64 13,11 1,3 3,1 0 c 3 inf
2 f32 16,12 3,2 2,3 1 c 3 naninf
4 i32 10,9,8 2,3,1 1,2,3 1 f 3 rising
2 f64 16,12 3,2 2,3 1 c 3 falling
1 f64 9,7 1,1 1,1 0 c 3 constant
"
script=t/fields.lua
n=$(echo "$configs" | grep -c .)
bad='^ *luisa\.every.*-- bad: '   # the bad callbacks, one per line
nbad=$(grep -c "$bad" "$script")
# the selftest; values, windows and statuses per configuration; values and statuses of the bad run
echo "1..$((1 + 3 * n + 2 + nbad))"

# A deadlock must fail this test, not hang the suite; valgrind runs are far slower.
export MPIEXEC_TIMEOUT=${MPIEXEC_TIMEOUT:-$([ -n "$LUISA_VALGRIND" ] && echo 900 || echo 60)}
# run N NP ARGS...: the driver's TAP lines, then "not ok" for each of the N it did not print (it
# crashed or was cut by the timeout), so the plan holds; its stderr as comments if it failed.
run() {
  want=$1
  shift
  rm -f "$out/r"
  LUISA_TEST_OUT="$out/r" mpi "$@" >"$out/tap" 2>"$out/err"
  rc=$?
  cat "$out/tap"
  got=$(grep -c -e '^ok' -e '^not ok' "$out/tap")
  while [ "$got" -lt "$want" ]; do
    echo "not ok - $(echo "$*" | cut -c1-200): no result (crash or timeout)"
    got=$((got + 1))
  done
  [ "$rc" = 0 ] || { echo "# stderr:"; head -20 "$out/err" | cut -c1-300 | sed 's/^/#   /'; }
}

run 1 1 "$B/t/fields" selftest

echo "$configs" | while read -r np dtype shape ablocks bblocks ghost order steps pattern; do
  [ -n "$np" ] || continue
  run 3 "$np" "$B/t/fields" "$dtype" "$shape" "$ablocks" "$bblocks" "$ghost" "$order" "$steps" "$script" \
    ${pattern:-random}
done

# Every bad callback fails at step 1 on every rank while the good ones go on; each bad line is
# named as file:line in luisa_error (printed on stderr by the driver) or in rank 0's log.
run 2 3 "$B/t/fields" f64 10,9,8 2,3,1 1,2,3 1 c 3 "$script" errors
grep -n "$bad" "$script" | while IFS=: read -r line text; do
  what=${text##*-- bad: }
  if grep -qF "$script:$line:" "$out/err"; then
    echo "ok - $script:$line reported ($what)"
    grep -F "$script:$line:" "$out/err" | head -1 | cut -c1-300 | sed 's/^/#   /'
  else
    echo "not ok - $script:$line reported ($what)"
    echo "#   \"$script:$line:\" is in neither luisa_error nor the log"
  fi
done
