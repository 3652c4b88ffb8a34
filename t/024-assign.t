#!/bin/sh
# luisa.assign: exact values written into the simulation's buffers at the
# steps due, inside the chunks only; bad assignments fail at their line.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..20"
for np in 1 2 4; do
  LUISA_TEST_OUT="$out/a" mpi "$np" "$B/t/assign" 2>/dev/null | grep '^ok\|^not ok\|^#' \
    | sed "s/^\(not \)\{0,1\}ok [0-9]* - /\1ok - $np ranks: /"
done
LUISA_TEST_OUT="$out/a" mpi 2 "$B/t/assign" bad 2>/dev/null | grep '^ok\|^not ok\|^#' \
  | sed "s/^\(not \)\{0,1\}ok [0-9]* - /\1ok - bad script: /"
