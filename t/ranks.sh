# ranks.sh: sourced after t/lib.sh by the tests that drive t/ranks.c
# (t/052-ranks.t, t/053-memory.t): a scratch directory, TAP lines, runs.
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
limit=120
[ -n "$LUISA_VALGRIND" ] && limit=1200
[ -n "$LUISA_SANITIZE" ] && limit=400
D=t/data/ranks
n=0
say() { n=$((n + 1)); echo "$1 $n - $2"; }
check() { if eval "$1"; then say ok "$2"; else say "not ok" "$2"; [ -n "$3" ] && echo "$3" | sed 's/^/#   /'; fi; }

# run NAME NP SCRIPT BLOCKS STEPS [handover], the environment before it: the
# simulation's lines in NAME.txt, the analysis' in NAME.out, stderr in
# NAME.err, the counters in NAME.prog. Asserts the exit status.
run() {
  name=$1 np=$2; shift 2
  rm -f "$out/$name".*
  LUISA_TEST_OUT="$out/$name.out" LUISA_TEST_PROGRESS="$out/$name.prog" LUISA_OUTPUT_DIR="$out" \
    timeout -k 5 "$limit" sh -c '. t/lib.sh && mpi "$@"' mpi "$np" "$B/t/ranks" "$@" >"$out/$name.txt" \
    2>"$out/$name.err"
  rc=$?
  check "[ $rc -eq ${want_rc:-0} ] && ! grep -q Sanitizer '$out/$name.err'" \
    "$name: $np ranks, exits with ${want_rc:-0}$([ $rc = 124 ] && echo ', timed out')" "$(tail -20 "$out/$name.err")"
}
same() {   # same A B WHAT: both files equal, and not empty
  check "[ -s '$out/$1' ] && cmp -s '$out/$1' '$out/$2'" "$3" "$(diff "$out/$1" "$out/$2" | head -10)"
}
line() { sed -n "/^$2 /p" "$out/$1.txt"; }
