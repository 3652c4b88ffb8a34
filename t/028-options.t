#!/bin/sh
# luisa_options and the environment's LUISA_* overrides (t/options.c):
# defaults, every bad field and variable refused naming it, and a bad
# variable on one rank only refused on every rank without a hang.
. t/lib.sh
echo "1..41"
mpi 1 "$B/t/options" defaults 1
mpi 1 "$B/t/options" env 18
timeout 60 mpirun --allow-run-as-root --oversubscribe -np 1 "$B/t/options" split 39 : \
  -np 1 -x LUISA_TRUSTED=maybe "$B/t/options" split 39 </dev/null
timeout 60 mpirun --allow-run-as-root --oversubscribe -np 1 "$B/t/options" modes 41 : \
  -np 1 -x LUISA_MODE=thread "$B/t/options" modes 41 </dev/null | sed -n 1p
