#!/bin/sh
# Thread mode (t/threads.c): the lag bound, steering that lands max_lag
# steps later on every rank, results byte for byte those of inline, handed-
# over buffers given back once at their documented call, errors told
# max_lag calls later, luisa_finalize draining what is pending, and the
# refusals at luisa_init (a bad cpuset, ranks asking for different lags,
# MPI without MPI_THREAD_MULTIPLE). Each case runs inline and in thread
# mode with max_lag 0, 1 and 2 where it applies, under `timeout` so that a
# hang fails instead of waiting. Each run also asserts that it exited with
# 0 and that no sanitizer wrote a report (ThreadSanitizer's do not stop the
# run: make test SANITIZE=thread).
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
limit=60
[ -n "$LUISA_VALGRIND" ] && limit=900
[ -n "$LUISA_SANITIZE" ] && limit=300
# ranks:case:assertions[:single], as counted in t/threads.c; single: the
# program starts MPI with MPI_Init. mixed runs on 2 ranks, rank 0 started
# with MPI_Init and rank 1 with MPI_THREAD_MULTIPLE (MPMD).
cases="124:lag:24 124:steer:20 124:same:5 124:handover:28 124:errors:18 124:refuse:2 24:lags:4 12:single:4:single
2:mixed:1"
total=0
for c in $cases; do
  nps=${c%%:*} rest=${c#*:}
  rest=${rest#*:}
  n=${rest%%:*}
  total=$((total + ${#nps} * (n + 1)))
done
echo "1..$total"
next=1
for c in $cases; do
  nps=${c%%:*} rest=${c#*:}
  name=${rest%%:*} rest=${rest#*:}
  n=${rest%%:*} how=
  [ "$rest" != "$n" ] && how=${rest#*:}
  for np in $(echo "$nps" | sed 's/./& /g'); do
    ranks="$np ranks"
    [ "$np" = 1 ] && ranks="1 rank"
    rm -f "$out"/t*
    if [ "$name" = mixed ]; then
      # shellcheck disable=SC2086 # WRAP is words
      LUISA_TEST_OUT="$out/t" LUISA_OUTPUT_DIR="$out" timeout -k 5 "$limit" \
        mpirun --allow-run-as-root --oversubscribe -np 1 $WRAP "$B/t/threads" mixed "$next" single : \
        -np 1 $WRAP "$B/t/threads" mixed "$next" </dev/null >"$out/tap" 2>"$out/err"
    else
      # shellcheck disable=SC2086 # how is one word or none
      LUISA_TEST_OUT="$out/t" timeout -k 5 "$limit" sh -c '. t/lib.sh && mpi "$@"' mpi "$np" "$B/t/threads" \
        "$name" "$next" $how >"$out/tap" 2>"$out/err"
    fi
    rc=$?
    cat "$out/tap"
    tap_fill "$out/tap" "$n" "$name, $ranks" "$rc$([ "$rc" = 124 ] && echo ", timed out")"
    if [ "$rc" -eq 0 ] && ! grep -q 'Sanitizer' "$out/err"; then
      echo "ok $((next + n)) - $name, $ranks: exits with 0, no sanitizer report"
    else
      echo "not ok $((next + n)) - $name, $ranks: exits with 0, no sanitizer report (exit status $rc)"
      echo "# $name on $ranks exited with $rc; stderr:"
      sed 's/^/#   /' "$out/err"
    fi
    next=$((next + n + 1))
  done
done
