#!/bin/sh
# The inputs the fuzz targets saved (t/data/fuzz/TARGET/: crashes found, and
# a small corpus), replayed through the ordinary build (fuzz/replay.c): each
# target must get through all of its inputs without dying. Inputs under
# t/data/fuzz/known/TARGET/ reproduce engine defects not fixed yet: each is
# replayed alone and reported TODO while it still kills the process.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
targets="api decl script codec"
known=$(ls t/data/fuzz/known/*/* 2>/dev/null | wc -l)
echo "1..$((4 + known))"
for t in $targets; do
  set -- t/data/fuzz/$t/*
  if [ ! -e "$1" ]; then
    echo "ok - $t: no saved inputs # SKIP"
    continue
  fi
  mpi 1 "$B/replay/$t" "$@" >"$out/tap" 2>"$out/err"
  rc=$?
  n=$(grep -c '^ok ' "$out/tap")
  if [ "$rc" = 0 ] && [ "$n" = "$#" ]; then
    echo "ok - $t: $n saved inputs replay through the ordinary build"
  else
    echo "not ok - $t: exit status $rc after $n of $# inputs; the next one was:"
    grep -v '^ok ' "$out/tap" | sed 's/^/#   /'
    grep -v '^luisa\[' "$out/err" | tail -20 | sed 's/^/#   /'
  fi
done
for f in t/data/fuzz/known/*/*; do
  [ -e "$f" ] || continue
  t=$(basename "$(dirname "$f")")
  if mpi 1 "$B/replay/$t" "$f" >/dev/null 2>&1; then
    echo "ok - $t: $f no longer kills the process (the defect is fixed: move it beside the others)"
  else
    echo "not ok - $t: $f kills the process # TODO engine defect: see docs/bad-inputs-faults.md"
  fi
done
