#!/bin/sh
# engine/pin.c (t/pin.c): where each rank's analytics thread runs, under
# the bindings mpirun gives: a free PU when there is one per rank, unpinned
# when the ranks are unbound or use every PU, a named list taken as asked,
# and bad lists refused on every rank, also when one rank alone has one.
# Open MPI 4.1 binds to a core by default up to 2 ranks, and not at all when
# there are more ranks than cores: the cases name their binding.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
limit=60
[ -n "$LUISA_VALGRIND" ] && limit=900
last=$(($(nproc --all) - 1))
# ranks|case|assertions|binding, as counted in t/pin.c. The binding is given
# by Open MPI's variables, not mpirun's options, which lib.sh's mpi puts
# after valgrind under make test VALGRIND=1: --bind-to is binding_policy,
# --cpu-set cpu_list.
bind=OMPI_MCA_hwloc_base_binding_policy
cpus=OMPI_MCA_hwloc_base_cpu_list
cases="1|alone|10|$bind=core
1|alone|10|$cpus=$last $bind=core
1|unbound|3|$bind=none
2|unbound|3|$bind=none
4|unbound|3|$bind=none
1|bad|9|
2|bad|9|
2|ranks|6|$bind=core
2|ranks|6|$cpus=0 $bind=core:overload-allowed
4|ranks|6|$bind=core:overload-allowed
2|bad_on_one|6|
4|bad_on_one|6|"
total=0
for n in $(echo "$cases" | cut -d'|' -f3); do
  total=$((total + n))
done
echo "1..$total"
next=1
echo "$cases" | while IFS='|' read -r np name n vars; do
  # shellcheck disable=SC2086 # vars are words for env
  env $vars timeout -k 5 "$limit" sh -c '. t/lib.sh && mpi "$@"' mpi "$np" "$B/t/pin" "$name" "$next" \
    >"$out/tap" 2>"$out/err"
  rc=$?
  cat "$out/tap"
  tap_fill "$out/tap" "$n" "$name on $np ranks, ${vars:-default binding}" "$rc$([ "$rc" = 124 ] && echo ", timed out")"
  if [ "$rc" -ne 0 ]; then
    echo "# $name on $np ranks (${vars:-default binding}) exited with $rc; stderr:"
    sed 's/^/#   /' "$out/err"
  fi
  next=$((next + n))
done
