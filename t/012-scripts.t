#!/bin/sh
# A bad analysis script never stops the simulation: every case of t/scripts.c
# on 1, 2 and 4 ranks, as one TAP stream (each case prints a known count).
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# case:assertions, as counted in t/scripts.c
cases="syntax:10 missing:10 directory:10 empty_path:10 fifo:10
load_error:10 rank_error:10 unknown_array:13 shape_mismatch:12
every_period:10 every_huge_period:10 every_stats:10 every_lazy:10 late_error:13 unpublished:12 period:11"
per=0
for c in $cases; do per=$((per + ${c#*:})); done
echo "1..$((3 * per))"
next=1
for np in 1 2 4; do
  for c in $cases; do
    name=${c%:*} n=${c#*:} ranks="$np ranks"
    [ "$np" = 1 ] && ranks="1 rank"
    rm -f "$out"/r*
    LUISA_TEST_OUT="$out/r" mpi "$np" "$B/t/scripts" "$name" "$next" >"$out/tap" 2>"$out/err"
    rc=$?
    cat "$out/tap"
    tap_fill "$out/tap" "$n" "$name, $ranks" "$rc"
    if [ "$rc" -ne 0 ]; then
      echo "# $name on $ranks exited with $rc; stderr and logs:"
      cat "$out/err" "$out"/r.log.* 2>/dev/null | sed 's/^/#   /'
    fi
    next=$((next + n))
  done
done
