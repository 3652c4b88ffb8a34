#!/bin/sh
# Every bad input of the C API on one rank (t/api.c prints its own plan),
# then an exact analysis step proving the refusals changed nothing.
. t/lib.sh
err=$(mktemp)
trap 'rm -f "$err"' EXIT
mpi 1 "$B/t/api" 2>"$err" || { echo "# exit status $?, stderr:"; sed 's/^/#   /' "$err"; }
