# lib.sh: shared by the t/*.t scripts: where the build is and how to run MPI.
B=${LUISA_BUILD:-build}
export OMPI_MCA_btl_vader_single_copy_mechanism=none   # no ptrace in containers
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_mca_base_component_disable_dlclose=1   # plugins stay symbolised
# Open MPI keeps memory until exit that LeakSanitizer cannot attribute (its
# plugins are built without frame pointers): leaks are checked by valgrind
# (make test VALGRIND=1), ASan and UBSan check everything else.
export ASAN_OPTIONS=detect_leaks=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# ThreadSanitizer (make test SANITIZE=thread) misreads Open MPI's internals:
# t/tsan.supp names them, and only them.
export TSAN_OPTIONS="suppressions=$PWD/t/tsan.supp${TSAN_OPTIONS:+ $TSAN_OPTIONS}"
WRAP=
if [ -n "$LUISA_VALGRIND" ]; then
  mkdir -p "$LUISA_VALGRIND"
  # hwloc's x86 backend disables itself under valgrind, saying so on stderr
  # where the tests read luisa's own sentences: leave it out beforehand.
  export HWLOC_COMPONENTS=-x86
  WRAP="valgrind -q --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite
        --suppressions=$PWD/t/valgrind.supp --log-file=$LUISA_VALGRIND/%p.log"
fi
# mpirun reads stdin, which would swallow the caller's loop input.
# Sandboxed scripts write only under LUISA_OUTPUT_DIR: the test's own
# output directory unless the test says otherwise.
mpi() {
  np=$1; shift
  if [ -n "$LUISA_TEST_OUT" ] && [ -z "$LUISA_OUTPUT_DIR" ]; then
    LUISA_OUTPUT_DIR=$(dirname "$LUISA_TEST_OUT") mpirun --allow-run-as-root --oversubscribe -np "$np" $WRAP "$@" </dev/null
  else
    mpirun --allow-run-as-root --oversubscribe -np "$np" $WRAP "$@" </dev/null
  fi
}

# A case printed part of its n TAP lines, numbered from $next: a run that
# died early still accounts for the rest, so the plan holds.
# usage: tap_fill TAPFILE N "what" "exit status text"
tap_fill() {
  got=$(grep -cE '^(not )?ok ' "$1")
  while [ "$got" -lt "$2" ]; do
    echo "not ok $((next + got)) - $3: assertion never printed (exit status $4)"
    got=$((got + 1))
  done
}
