#!/bin/sh
# luisa.fetch: boxes of an array read on demand from their owners inside a
# callback, now and one step ago, equal gathers of the same slices; bad
# offsets, shapes and k (NaN, infinite, fractional, not numbers, huge) are
# refused naming the axis, the value and the caller's line.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
configs="
1 f64 1,1 0 c
2 f32 3,2 1 f
4 f64 3,2 1 f
3 i32 4,3 2 c
"
n=$(echo "$configs" | grep -c .)
script=t/data/fetch.lua
bad='^ *function.*-- bad: '   # the bad calls, one per line
nbad=$(grep -c "$bad" "$script")
echo "1..$((n * (6 + nbad)))"
echo "$configs" | while read -r np dtype blocks ghost order; do
  [ -n "$np" ] || continue
  LUISA_TEST_OUT="$out/f" mpi "$np" "$B/t/reduce" "$dtype" 17,13 "$blocks" "$ghost" "$order" 3 "$script" \
    >/dev/null 2>"$out/err"
  for what in box whole corner before at; do
    good=$(grep -c " $what true" "$out/f")
    [ "$good" = 3 ] && echo "ok - $np ranks $dtype blocks $blocks ghost $ghost $order: fetch $what equals the gather at 3 steps" \
      || { echo "not ok - $np ranks $dtype blocks $blocks: fetch $what: $good of 3 steps"; sed 's/^/# /' "$out/err"; }
  done
  k=0
  grep -n "$bad" "$script" | while IFS=: read -r line text; do
    k=$((k + 1))
    want="err $script:$line: ${text##*-- bad: }"
    if grep -qxF "$want" "$out/f"; then
      echo "ok - $np ranks: $script:$line: ${text##*-- bad: }"
    else
      echo "not ok - $np ranks: $script:$line: ${text##*-- bad: }"
      echo "#   want: $want"
      grep "^err " "$out/f" | sed -n "${k}p" | sed 's/^/#   got:  /'   # the k-th bad call's
    fi
  done
  [ "$(grep -c "^err " "$out/f")" = "$nbad" ] && grep -qx "k1000 nil" "$out/f" \
    && echo "ok - $np ranks: every bad call raised once; k = 1000 gives nil (no statistic keeps 1000 steps)" \
    || echo "not ok - $np ranks: $(grep -c "^err " "$out/f") errors for $nbad bad calls; $(grep "^k1000" "$out/f")"
done
