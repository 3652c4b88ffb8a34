#!/bin/sh
# The Fortran and C++ bindings on 1 and 3 ranks (each program's own checks,
# then its exit status), and both built against an installed luisa.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# program and the number of checks it prints
progs="fortran 29
cpp 26"
echo "1..$(( 2 * (29 + 1 + 26 + 1) + 3 ))"
for np in 1 3; do
  echo "$progs" | while read -r prog checks; do
    LUISA_TEST_OUT="$out/stats" mpi "$np" "$B/t/bindings_$prog" t/bindings_stats.lua >"$out/tap" 2>"$out/err"
    rc=$?
    cat "$out/tap"
    n=$(grep -c -E '^(not )?ok ' "$out/tap")
    if [ "$rc" = 0 ] && [ "$n" = "$checks" ]; then
      echo "ok - $prog, np $np: exit status 0 after $n checks"
    else
      echo "not ok - $prog, np $np: exit status $rc after $n of $checks checks; stderr:"
      sed 's/^/#   /' "$out/err"
    fi
  done
done

# Installed: the module and header under include/, the Fortran library under lib/.
make --no-print-directory -s install PREFIX="$out/prefix" SANITIZE="$LUISA_SANITIZE" >"$out/log" 2>&1 \
  && [ -e "$out/prefix/include/luisa.hpp" ] && [ -e "$out/prefix/include/luisa.f90" ] \
  && [ -e "$out/prefix/include/luisa.mod" ] && [ -e "$out/prefix/lib/libluisa_fortran.a" ] \
  && echo "ok - make install puts luisa.hpp, luisa.f90, luisa.mod and libluisa_fortran.a under the prefix" \
  || { echo "not ok - make install of the bindings"; sed 's/^/# /' "$out/log"; }
cat >"$out/sim.f90" <<'F'
program sim
  use mpi_f08
  use luisa
  implicit none
  type(luisa_t) :: lz
  real(8), target :: x(10)
  integer :: st, i, provided
  call MPI_Init_thread(MPI_THREAD_MULTIPLE, provided)   ! as every test program: any mode (LUISA_MODE)
  x = [(i, i = 1, 10)]
  call luisa_init(MPI_COMM_WORLD, 'installed.lua', lz, st)
  call luisa_array(lz, 'x', LUISA_F64, [10], st)
  call luisa_chunk(lz, 'x', [1], [10], st)
  call luisa_publish(lz, 'x', 1, x, st)
  st = luisa_step(lz, 0)
  call luisa_finalize(lz)
  call MPI_Finalize()
end program
F
cat >"$out/sim.cpp" <<'C'
#include <luisa.hpp>
int main(int argc, char **argv)
{
  int provided;   // as every test program: any mode (LUISA_MODE)
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  {
    luisa::context lz(MPI_COMM_WORLD, "installed.lua");
    double x[10];
    for (int i = 0; i < 10; i++) x[i] = i + 1;
    lz.array<double>("x", { 10 });
    lz.publish("x", lz.chunk("x", { 0 }, { 10 }), x);
    lz.step(0);
  }
  MPI_Finalize();
}
C
printf 'local luisa = require "luisa"\nluisa.every(1, { s = luisa.array("x"):sum() }, function(_, r) print("sum " .. r.s) end)\n' \
  >"$out/installed.lua"
# A sanitized library needs its runtime loaded first: build the programs alike.
case $LUISA_SANITIZE in
  thread) san=-fsanitize=thread ;;
  '') san= ;;
  *) san=-fsanitize=address,undefined ;;
esac
libs="-L$out/prefix/lib -Wl,-rpath,$out/prefix/lib -lluisa"
mpif90 $san -I"$out/prefix/include" "$out/sim.f90" -o "$out/simf" -lluisa_fortran $libs 2>"$out/cc" \
  && (cd "$out" && mpi 1 ./simf) >"$out/run" 2>&1 && [ "$(cat "$out/run")" = "sum 55" ] \
  && echo "ok - a Fortran program builds with the installed module and runs its script" \
  || { echo "not ok - Fortran against the installed binding"; cat "$out/cc" "$out/run" | sed 's/^/# /'; }
mpicxx $san -std=c++17 -DOMPI_SKIP_MPICXX -I"$out/prefix/include" "$out/sim.cpp" -o "$out/simc" $libs 2>"$out/cc" \
  && (cd "$out" && mpi 1 ./simc) >"$out/run" 2>&1 && [ "$(cat "$out/run")" = "sum 55" ] \
  && echo "ok - a C++ program builds with the installed luisa.hpp and runs its script" \
  || { echo "not ok - C++ against the installed binding"; cat "$out/cc" "$out/run" | sed 's/^/# /'; }
