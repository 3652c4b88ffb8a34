#!/bin/sh
# The suite's engine tests again in thread mode (LUISA_MODE=thread): the
# same programs, scripts and expected values as inline, so every result
# must come out equal. max_lag 0 everywhere (a test reading what a script
# wrote before luisa_finalize needs the step analysed when luisa_step
# returns); the tests written for any lag run with 2 as well, and the
# fault injection with 1. One TAP line per test file; a failing one shows
# its failed assertions.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

lag0="t/001-api.t t/010-reduce.t t/012-scripts.t t/013-stencil.t t/014-store.t t/015-fields.t
      t/016-trigger.t t/017-map.t t/018-gradient.t t/019-fetch.t t/020-gray-scott.t t/021-steer.t
      t/022-steer-example.t t/023-wants.t t/024-assign.t t/025-heat2d.t t/026-reload.t
      t/027-safety.t t/029-diverge.t t/030-bindings.t t/036-fuzz-replay.t"
any_lag="t/014-store.t t/016-trigger.t t/019-fetch.t t/024-assign.t t/027-safety.t"
set -- $lag0 $any_lag
echo "1..$(($# + 1))"

run() {   # lag test
  LUISA_MODE=thread LUISA_MAX_LAG=$1 sh "$2" >"$out/tap" 2>"$out/err"
  rc=$?
  plan=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$out/tap" | head -1)
  passed=$(grep -c '^ok' "$out/tap")
  failed=$(grep -c '^not ok' "$out/tap")
  if [ "$rc" = 0 ] && [ "$failed" = 0 ] && [ -n "$plan" ] && [ "$passed" = "$plan" ]; then
    echo "ok - $2, thread mode, max_lag $1: all $plan assertions as inline"
  else
    echo "not ok - $2, thread mode, max_lag $1: $failed of ${plan:-?} failed, $passed passed (exit status $rc)"
    grep -A6 '^not ok' "$out/tap" | head -60 | sed 's/^/#   /'
    [ -n "$plan" ] || tail -20 "$out/err" | sed 's/^/#   /'
  fi
}

for t in $lag0; do run 0 "$t"; done
for t in $any_lag; do run 2 "$t"; done
if [ -n "$LUISA_VALGRIND" ]; then
  echo "ok - t/035-faults.t, thread mode, max_lag 1 # SKIP the fault build checks every engine block itself"
else
  run 1 t/035-faults.t
fi
