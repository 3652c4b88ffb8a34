#!/bin/sh
# Coarsen blocks and stencils wider than one kernel holds (lua/luisa/stage.lua; t/stage.lua),
# gathered and reduced, against plain C loops over global data bit for bit (t/stage.c) on uneven
# decompositions whose chunk boundaries cut through blocks; then a rerun gives the same bits.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# ranks dtype shape A-blocks B-blocks ghost order. B's block k is on rank k+1; "1,3" and "3,1"
# on 4 ranks leave a rank without a chunk of A or B.
configs="
1 f64 37,35 1,1 1,1 0 c
1 f32 33,18 2,3 3,1 1 f
2 f64 37,35 3,2 2,3 1 c
2 i32 40,17 2,2 3,1 0 f
4 f64 41,38 3,3 2,2 1 f
4 f64 37,35 1,3 3,1 0 c
1 f64 13,11,12 1,1,1 1,1,1 0 c
2 f64 13,11,12 2,2,3 3,1,2 1 f
4 f64 17,9,10 2,3,1 1,2,3 1 c
4 f32 13,11,12 2,2,2 1,1,3 0 f
"
script=t/stage.lua
n=$(echo "$configs" | grep -c .)
echo "1..$((1 + n + 2))"
export MPIEXEC_TIMEOUT=${MPIEXEC_TIMEOUT:-$([ -n "$LUISA_VALGRIND" ] && echo 1800 || echo 120)}

# run ARGS...: the driver's TAP line, or "not ok" if it printed none (crash or timeout)
run() {
  rm -f "$out/r"
  LUISA_TEST_OUT="$out/r" mpi "$@" >"$out/tap" 2>"$out/err"
  rc=$?
  cat "$out/tap"
  grep -q -e '^ok' -e '^not ok' "$out/tap" || echo "not ok - $(echo "$*" | cut -c1-200): no result (crash or timeout)"
  [ "$rc" = 0 ] || { echo "# stderr:"; head -20 "$out/err" | cut -c1-300 | sed 's/^/#   /'; }
}

run 1 "$B/t/stage" selftest
i=0
echo "$configs" | while read -r np dtype shape ablocks bblocks ghost order; do
  [ -n "$np" ] || continue
  i=$((i + 1))
  run "$np" "$B/t/stage" "$dtype" "$shape" "$ablocks" "$bblocks" "$ghost" "$order" 2 "$script"
  [ -f "$out/r" ] && mv "$out/r" "$out/r$i"
done

# Configurations 5 and 9 again: the same bits, sums of A included (no C loop matches them exactly).
for i in 5 9; do
  cfg=$(echo "$configs" | grep . | sed -n "${i}p")
  set -- $cfg
  run "$1" "$B/t/stage" "$2" "$3" "$4" "$5" "$6" "$7" 2 "$script" >/dev/null
  if [ -s "$out/r$i" ] && cmp -s "$out/r$i" "$out/r"; then
    echo "ok - $cfg: a second run reports the same bits"
  else
    echo "not ok - $cfg: a second run reports the same bits"
    diff "$out/r$i" "$out/r" 2>&1 | head -5 | sed 's/^/#   /'
  fi
done
