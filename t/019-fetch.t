#!/bin/sh
# luisa.fetch: boxes of an array read on demand from their owners inside a
# callback, now and one step ago, equal gathers of the same slices.
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
echo "1..$((n * 5))"
echo "$configs" | while read -r np dtype blocks ghost order; do
  [ -n "$np" ] || continue
  LUISA_TEST_OUT="$out/f" mpi "$np" "$B/t/reduce" "$dtype" 17,13 "$blocks" "$ghost" "$order" 3 t/data/fetch.lua \
    >/dev/null 2>"$out/err"
  for what in box whole corner before at; do
    good=$(grep -c " $what true" "$out/f")
    [ "$good" = 3 ] && echo "ok - $np ranks $dtype blocks $blocks ghost $ghost $order: fetch $what equals the gather at 3 steps" \
      || { echo "not ok - $np ranks $dtype blocks $blocks: fetch $what: $good of 3 steps"; sed 's/^/# /' "$out/err"; }
  done
done
