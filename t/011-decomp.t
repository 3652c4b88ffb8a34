#!/bin/sh
# The collective declaration check of the first luisa_step on 2 and 3 ranks:
# overlaps, holes, mismatched declarations and a valid irregular tiling.
. t/lib.sh
per_run=44   # ok lines of one run of t/decomp: 11 scenarios x 4 checks
err=$(mktemp)
trap 'rm -f "$err"' EXIT
# One TAP stream: each run numbers its lines from $first and prints no plan.
echo "1..$((2 * per_run))"
first=1
for np in 2 3; do
  # stderr holds the engine's expected error log: shown only on failure.
  mpi "$np" "$B/t/decomp" "$first" 2>"$err" \
    || { echo "# $np ranks: exit status $?, stderr:"; sed 's/^/#   /' "$err"; }
  first=$((first + per_run))
done
