#!/bin/sh
# make install puts a usable luisa under a prefix: a simulation built with
# only pkg-config's flags links it and runs a script.
. t/lib.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "1..4"
make --no-print-directory -s install PREFIX="$tmp/prefix" SANITIZE="$LUISA_SANITIZE" >"$tmp/log" 2>&1 \
  && echo "ok - make install PREFIX=..." || { echo "not ok - make install failed"; sed 's/^/# /' "$tmp/log"; }
missing=""
for f in include/luisa.h lib/libluisa.so lib/libluisa.a lib/pkgconfig/luisa.pc share/luisa/lua/luisa.lua \
         share/luisa/lua/luisa/plan.lua; do
  [ -e "$tmp/prefix/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && echo "ok - header, libraries, Lua modules and luisa.pc are installed" \
  || echo "not ok - missing:$missing"
cat >"$tmp/sim.c" <<'C'
#include <stdio.h>
#include <luisa.h>
int main(int argc, char **argv)
{
  int provided;   /* as every test program: any mode (LUISA_MODE) */
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  luisa *lz;
  luisa_options o = luisa_options_default();
  o.script = argv[1];
  int64_t shape[1] = { 10 }, off[1] = { 0 };
  double x[10];
  for (int i = 0; i < 10; i++) x[i] = i + 1;
  int st = luisa_init(MPI_COMM_WORLD, &o, &lz);
  st |= luisa_array(lz, "x", LUISA_F64, 1, shape);
  st |= luisa_chunk(lz, "x", off, shape, NULL);
  st |= luisa_publish(lz, "x", 0, x);
  st |= luisa_step(lz, 0);
  luisa_finalize(lz);
  MPI_Finalize();
  return st;
}
C
printf 'local luisa = require "luisa"\nluisa.every(1, { s = luisa.array("x"):sum() }, function(_, r) print("sum " .. r.s) end)\n' >"$tmp/s.lua"
# A sanitized library needs its runtime loaded first: build the program alike.
san=${LUISA_SANITIZE:+-fsanitize=address,undefined}
PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" mpicc $san "$tmp/sim.c" -o "$tmp/sim" \
  $(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --cflags --libs luisa) -Wl,-rpath,"$tmp/prefix/lib" \
  2>"$tmp/cc" && echo "ok - a simulation builds with pkg-config --cflags --libs luisa" \
  || { echo "not ok - building against the installed luisa"; sed 's/^/# /' "$tmp/cc"; }
out=$(mpi 1 "$tmp/sim" "$tmp/s.lua" 2>&1)
[ "$out" = "sum 55" ] && echo "ok - it runs the script: sum of 1..10 is 55" \
  || { echo "not ok - expected 'sum 55'"; echo "$out" | sed 's/^/# /'; }
