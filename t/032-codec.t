#!/bin/sh
# engine/codec.c (t/codec.c): zstd frames for chunks that move between ranks
# or spill to disk: bit-exact round trips, refusals of corrupt, truncated,
# foreign and mis-sized frames, levels, bounds, counters. One process
# without mpirun: the codec makes no MPI call.
. t/lib.sh
err=$(mktemp)
trap 'rm -f "$err"' EXIT
# shellcheck disable=SC2086 # WRAP is words: valgrind and its options
$WRAP "$B/t/codec" 2>"$err" || { echo "# exit status $?, stderr:"; sed 's/^/#   /' "$err"; }
