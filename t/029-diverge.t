#!/bin/sh
# Ranks that disagree (a plan that depends on the rank, steps that differ, a
# skipped call, a script on some ranks only, a rank gone early) get a clear
# error on every rank, never a hang: the cases of t/diverge.c as one TAP
# stream, each run under `timeout` so that a hang fails instead of waiting.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
limit=60
[ -n "$LUISA_VALGRIND" ] && limit=900
# ranks:case:assertions, as counted in t/diverge.c
cases="24:period:11 24:stats:11 24:scaled:11 24:slice:11 24:region:10 24:steps:11 24:skip:10
24:some_script:3 24:finalize_early:12 124:step0:10"
total=0
for c in $cases; do
  nps=${c%%:*} n=${c##*:}
  total=$((total + ${#nps} * n))
done
echo "1..$total"
next=1
for c in $cases; do
  nps=${c%%:*} rest=${c#*:}
  name=${rest%:*} n=${rest#*:}
  for np in $(echo "$nps" | sed 's/./& /g'); do
    ranks="$np ranks"
    [ "$np" = 1 ] && ranks="1 rank"
    rm -f "$out"/r*
    LUISA_TEST_OUT="$out/r" timeout -k 5 "$limit" sh -c '. t/lib.sh && mpi "$@"' mpi "$np" "$B/t/diverge" "$name" "$next" \
      >"$out/tap" 2>"$out/err"
    rc=$?
    cat "$out/tap"
    tap_fill "$out/tap" "$n" "$name, $ranks" "$rc${rc:+, 124: timed out}"
    if [ "$rc" -ne 0 ]; then
      echo "# $name on $ranks exited with $rc; stderr and logs:"
      cat "$out/err" "$out"/r.log.* 2>/dev/null | sed 's/^/#   /'
    fi
    next=$((next + n))
  done
done
