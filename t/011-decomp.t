#!/bin/sh
# The collective declaration check of the first luisa_step on 2 and 3 ranks.
# One TAP stream: each run of t/decomp numbers its lines from the given
# first number and prints no plan; this script prints the plan.
. t/lib.sh
per_run=44   # ok lines of one run: 11 scenarios x 4 checks (t/decomp.c)
err=$(mktemp)
trap 'rm -f "$err"' EXIT
echo "1..$((2 * per_run))"
first=1
for np in 2 3; do
  # stderr holds the engine's expected error log: shown only on failure.
  mpi "$np" "$B/t/decomp" "$first" 2>"$err" \
    || { echo "# $np ranks: exit status $?, stderr:"; sed 's/^/#   /' "$err"; }
  first=$((first + per_run))
done
