#!/bin/sh
# Hot reload: every case of t/reload.c on 1, 2 and 4 ranks (the leak case on
# 2), as one TAP stream; each case prints a known count of assertions.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# case:assertions, as counted in t/reload.c
cases="switch:6 syntax:5 load_error:5 rank_error:5 compile_error:5 window:3 call:2 signal:2 module:3 empty:5 off:2"
per=0
for c in $cases; do per=$((per + ${c#*:})); done
echo "1..$((3 * per + 6 + 10 + 2))"
limit=120   # a hang fails the run instead of the suite
[ -n "$LUISA_VALGRIND" ] && limit=900
next=1
run() {   # np name count
  np=$1 name=$2 n=$3 ranks="$1 ranks"
  [ "$np" = 1 ] && ranks="1 rank"
  rm -rf "$out/d" && mkdir -p "$out/d"
  LUISA_TEST_OUT="$out/d/out" timeout -k 5 "$limit" sh -c '. t/lib.sh && mpi "$@"' mpi "$np" "$B/t/reload" "$name" \
    "$next" "$out/d" >"$out/tap" 2>"$out/err"
  rc=$?
  cat "$out/tap"
  tap_fill "$out/tap" "$n" "$name, $ranks" "$rc"
  if [ "$rc" -ne 0 ]; then
    echo "# $name on $ranks exited with $rc; stderr:"
    sed 's/^/#   /' "$out/err"
  fi
  next=$((next + n))
}
for np in 1 2 4; do
  for c in $cases; do
    run "$np" "${c%:*}" "${c#*:}"
    if [ "$np" = 2 ] && [ "${c%:*}" = syntax ]; then cp "$out/err" "$out/syntax.err"; fi
  done
done
run 2 leak 6
run 2 diverge 5   # a plan that depends on the rank: more than one rank
run 4 diverge 5
# The reload history: logged as it happens and in rank 0's finalize summary.
if grep -qE '^luisa\[0\] error: step 4: script version [0-9a-f]{8} not loaded, version [0-9a-f]{8} goes on: on every rank: .*live.lua:2:' "$out/syntax.err" &&
   grep -qE '^luisa\[0\] warning: step 9: script version [0-9a-f]{8} loaded$' "$out/syntax.err"; then
  echo "ok $next - the failed and the successful reload are logged by rank 0 as they happen"
else
  echo "not ok $next - the failed and the successful reload are logged by rank 0 as they happen"
  sed 's/^/#   /' "$out/syntax.err"
fi
next=$((next + 1))
if grep -qE '^luisa\[0\] info: summary: 2 reloads, 1 failed \(step 4 [0-9a-f]{8} failed, step 9 [0-9a-f]{8} ok\)$' "$out/syntax.err"; then
  echo "ok $next - the finalize summary lists the reloads: step, version, outcome"
else
  echo "not ok $next - the finalize summary lists the reloads: step, version, outcome"
fi
