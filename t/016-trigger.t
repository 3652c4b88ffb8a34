#!/bin/sh
# Triggers: the expensive statistics are computed exactly at the steps where
# the cheap condition holds, in the same step, and equal a plain callback's.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..8"
for np in 1 3; do
  # t/reduce drives the data; its own TAP line is not this test's.
  LUISA_TEST_OUT="$out/r$np" mpi "$np" "$B/t/reduce" f64 17,13 3,2 1 c 12 t/data/trigger.lua >/dev/null 2>"$out/err$np"
  awk -v np="$np" '
    $2 == "every" { mean[$1] = $3; s[$1] = $4; lap[$1] = $5; steps++ }
    $2 == "fired" { fired[$1] = 1; fmean[$1] = $3; fs[$1] = $4; flap[$1] = $5; nfired++ }
    $2 == "runs" { runs[$1] = $3 }
    END {
      for (t = 1; t <= 12; t++) {
        want = (mean[t] + 0 > 0)
        if (want != (t in fired)) bad_when = bad_when " " t
        if ((t in fired) && (fs[t] != s[t] || flap[t] != lap[t] || fmean[t] != mean[t])) bad_value = bad_value " " t
        if (want) yes++
      }
      print (steps == 12 ? "ok" : "not ok") " - " np " ranks: the plain callback ran at all 12 steps"
      print (bad_when == "" && yes > 0 && yes < 12 ? "ok" : "not ok") " - " np " ranks: fired at exactly the " yes " steps with a positive mean" (bad_when ? " (wrong at" bad_when ")" : "")
      print (bad_value == "" ? "ok" : "not ok") " - " np " ranks: what fired equals the plain callback at the same step" (bad_value ? " (differs at" bad_value ")" : "")
      # per step: 3 callbacks on schedule (plain, check, runs) plus the fired one
      expected = 3 * 12 + nfired - 1   # the runs line of step 12 is written before its own count
      print (runs[12] == expected ? "ok" : "not ok") " - " np " ranks: evaluations counted on rank 0 are " runs[12] ", expected " expected " (the expensive stats only when fired)"
    }' "$out/r$np"
done
