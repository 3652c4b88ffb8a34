# lib.sh: shared by the t/*.t scripts: where the build is and how to run MPI.
B=${LUISA_BUILD:-build}
export OMPI_MCA_btl_vader_single_copy_mechanism=none   # no ptrace in containers
export OMPI_MCA_rmaps_base_oversubscribe=1
export LSAN_OPTIONS="suppressions=$PWD/t/lsan.supp:print_suppressions=0"
mpi() { np=$1; shift; mpirun --allow-run-as-root --oversubscribe -np "$np" "$@" </dev/null; }   # mpirun eats stdin
