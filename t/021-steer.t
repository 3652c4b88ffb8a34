#!/bin/sh
# Steering: parameter changes land at the next step on every rank, refused
# values leave parameters alone, stop ends every rank at the same step, and
# two identical runs give the same parameter history; i64 values are
# compared as integers at the edges of their bounds.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..74"
for np in 1 2 4; do
  LUISA_TEST_OUT="$out/s" mpi "$np" "$B/t/steer" run 2>"$out/h$np" | grep '^ok\|^not ok' \
    | sed "s/^\(not \)\{0,1\}ok [0-9]* - /\1ok - $np ranks: /"
done
for np in 1 2 4; do   # only the history lines: stderr may carry other ranks' logs, or valgrind's
  grep '^history ' "$out/h$np" >"$out/only$np"
done
for np in 2 4; do
  cmp -s "$out/only1" "$out/only$np" && grep -q "^history 8 " "$out/only1" \
    && echo "ok - the parameter history on $np ranks equals the history on 1 rank" \
    || echo "not ok - parameter histories differ between 1 and $np ranks"
done
mpi 1 "$B/t/steer" api 2>/dev/null | grep '^ok\|^not ok' | sed 's/^\(not \)\{0,1\}ok [0-9]* - /\1ok - /'
mpi 2 "$B/t/steer" i64 2>/dev/null | grep '^ok\|^not ok' | sed 's/^\(not \)\{0,1\}ok [0-9]* - /\1ok - 2 ranks: /'
mpi 3 "$B/t/steer" mismatch 2>/dev/null | grep '^ok\|^not ok' | sed 's/^\(not \)\{0,1\}ok [0-9]* - /\1ok - /'
