#!/bin/sh
# luisa_wants: which arrays and chunks the plan reads at a step, as periods
# and regions change; a simulation that publishes only those gets exact results.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..42"
for np in 1 2 3; do
  LUISA_TEST_OUT="$out/w" mpi "$np" "$B/t/wants" 2>/dev/null | grep '^ok\|^not ok\|^#' \
    | sed "s/^\(not \)\{0,1\}ok [0-9]* - /\1ok - $np ranks: /"
done
for np in 1 3; do
  LUISA_TEST_OUT="$out/p" mpi "$np" "$B/t/wants" period 2>/dev/null | grep '^ok\|^not ok\|^#' \
    | sed "s/^\(not \)\{0,1\}ok [0-9]* - /\1ok - $np ranks: /"
done
for np in 1 2 4; do
  LUISA_TEST_OUT="$out/g" mpi "$np" "$B/t/wants" region 2>/dev/null | grep '^ok\|^not ok\|^#' \
    | sed "s/^\(not \)\{0,1\}ok [0-9]* - /\1ok - $np ranks: /"
done
