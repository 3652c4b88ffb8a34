#!/bin/sh
# engine/route.c (t/route.c): in transit mode's plan of which analytics rank
# receives each simulation rank: by node first, then balanced by bytes,
# largest first; refusals; the init log's text. One process without
# mpirun: the plan makes no MPI call.
. t/lib.sh
err=$(mktemp)
trap 'rm -f "$err"' EXIT
# shellcheck disable=SC2086 # WRAP is words: valgrind and its options
$WRAP "$B/t/route" 2>"$err" || { echo "# exit status $?, stderr:"; sed 's/^/#   /' "$err"; }
