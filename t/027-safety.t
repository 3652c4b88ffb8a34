#!/bin/sh
# Hostile and careless scripts: runaway loops, memory bombs, bytecode,
# out-of-bounds map reads and sandbox escapes, each a clear error on every
# rank while the simulation runs on with its data untouched (t/safety.c).
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out" /tmp/luisa-escape-test' EXIT
checks=7   # as counted in t/safety.c
cases="spin_callback spin_trusted spin_load spin_map pcall_spin tostring_loop error_table memory_bomb memory_big memory_load
bytecode_script bytecode_trusted bytecode_module map_bounds escapes"
wide="spin_map memory_bomb map_bounds escapes"   # also on 4 ranks
runs=0
for c in $cases; do runs=$((runs + 2)); done
for c in $wide; do runs=$((runs + 1)); done
echo "1..$((runs * checks))"
next=1
run() {   # np case
  np=$1 name=$2
  rm -rf "$out/d" && mkdir -p "$out/d" && cp t/data/safety/*.lua "$out/d/"
  # LuaJIT bytecode where a script or a module would be.
  luajit -b t/data/safety/healthy.lua "$out/d/bytecode.lua"
  luajit -b t/data/safety/healthy.lua "$out/d/bc_module.lua"
  timeout 60 mpirun --allow-run-as-root --oversubscribe -np "$np" $WRAP "$B/t/safety" "$name" "$next" "$out/d" \
    </dev/null >"$out/tap" 2>"$out/err"
  rc=$?
  cat "$out/tap"
  tap_fill "$out/tap" "$checks" "$name, $np ranks" "$rc"
  if [ "$rc" -ne 0 ]; then
    echo "# $name on $np ranks exited with $rc; stderr:"
    sed 's/^/#   /' "$out/err"
  fi
  next=$((next + checks))
}
for np in 1 2; do
  for c in $cases; do run "$np" "$c"; done
done
for c in $wide; do run 4 "$c"; done
