#!/bin/sh
# Allocation failure injection (t/faults/life.c): every engine allocation of
# one analysis life refused in turn, on 1 rank, then on 2 with rank 1
# failing. A run that dies (crash, hang) is reported for the N it was at
# and started again after it, so every N is tried; TAP numbers are ours.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [ -n "$LUISA_VALGRIND" ]; then
  echo "1..0 # SKIP the fault build counts and checks every engine block itself"
  exit 0
fi
count=0
emit() {   # TAP lines on stdin, renumbered; comments pass
  while IFS= read -r line; do
    case $line in '#'*) echo "$line"; continue ;; esac
    count=$((count + 1))
    echo "$line" | sed "s/^\(not \)\{0,1\}ok\( [0-9]*\)\{0,1\} - /\1ok $count - /"
  done
}
run() {   # np
  np=$1 first=1 died=
  while :; do
    rm -f "$out/progress" "$out/symptom"
    timeout 120 sh -c ". t/lib.sh; mpi $np $B/fault/faults $out $first $died" >"$out/tap" 2>"$out/err"
    rc=$?
    grep -E '^(not )?ok |^#' "$out/tap" >"$out/lines"
    emit <"$out/lines"
    grep -q '^done$' "$out/tap" && return
    last=$(cat "$out/progress" 2>/dev/null)
    how=$(cat "$out/symptom" 2>/dev/null)
    [ "$rc" = 124 ] && how=hang
    if [ -z "$last" ] || [ "$last" = "$died_at" ]; then
      count=$((count + 1))
      echo "not ok $count - $np ranks: the driver died outside a life (exit status $rc); stderr:"
      tail -20 "$out/err" | sed 's/^/#   /'
      return
    fi
    echo "# $np ranks: the run died at N=$last (${how:-crash}); it goes on from N=$((last + 1))"
    grep -m 12 '(.*)\[0x' "$out/err" | sed 's/^/#   /'   # a crash's stack, from the driver's handler
    died_at=$last
    first=$((last + 1)) died="$last ${how:-crash}"
  done
}
died_at=
run 1
died_at=
LUISA_FAULT_RANK=1 run 2
echo "1..$count"
