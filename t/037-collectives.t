#!/bin/sh
# A step's MPI collectives, counted by interposing on MPI (t/collectives.c):
# one all-reduce for every callback and field of a script that only reads
# its results, the other ranks not waiting for the root's callbacks; a
# script naming steering waits; steering reached by another name is refused;
# what needs no halo is computed while the halo is on its way (luisa.stats).
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..36"
run() {   # np mode script
  LUISA_TEST_OUT="$out/o" mpi "$1" "$B/t/collectives" "$2" "$3" 2>"$out/err" | grep '^ok\|^not ok\|^#' \
    | sed 's/^\(not \)\{0,1\}ok [0-9]* - /\1ok - /'
  grep '^#' "$out/err" | head -5
}
for np in 1 2 4; do run "$np" plain t/data/collectives.lua; done
for np in 2 4; do run "$np" steers t/data/collectives_steers.lua; done
run 2 sneaks t/data/sneaks.lua
for np in 1 2 4; do run "$np" overlap t/data/overlap.lua; done
