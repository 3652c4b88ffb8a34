#!/bin/sh
# The Gray-Scott example end to end: the engine's statistics equal the
# solver's own MPI reduction, and do not depend on the number of ranks.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..8"
run() {   # ranks, script, output name
  mpi "$1" "$B/examples/gray_scott" --size 48 --steps 60 --progress 0 --check --script "$2" \
    >"$out/$3.out" 2>"$out/$3.err"
}
run 1 examples/gray-scott/stats.lua demo1
run 4 examples/gray-scott/stats.lua demo4
run 3 t/data/gray_scott_full.lua full3

lines=$(grep -c '^step' "$out/demo4.out")
[ "$lines" = 7 ] && echo "ok - stats.lua reports at steps 0, 10, ..., 60" \
  || echo "not ok - stats.lua printed $lines lines, expected 7"
cmp -s "$out/demo1.out" "$out/demo4.out" && echo "ok - stats.lua output is the same on 1 and 4 ranks" \
  || { echo "not ok - stats.lua output differs between 1 and 4 ranks"; diff "$out/demo1.out" "$out/demo4.out" | sed 's/^/# /'; }
h1=$(sed -n 's/.*check hash //p' "$out/demo1.err"); h4=$(sed -n 's/.*check hash //p' "$out/demo4.err")
[ -n "$h1" ] && [ "$h1" = "$h4" ] && echo "ok - the fields are bit-identical on 1 and 4 ranks" \
  || echo "not ok - field hash $h1 on 1 rank, $h4 on 4 ranks"
grep -q "step    60" "$out/demo1.out" && echo "ok - the run reaches step 60 with analytics" \
  || echo "not ok - no statistics at step 60"
# The solver's check line: "check U mean M min m max x"; the script's: "60 U M m x V ...".
for f in U V; do
  awk -v f="$f" '
    FNR == NR && $1 == "60" { for (i = 2; i <= NF; i++) if ($i == f) { e[1] = $(i+1); e[2] = $(i+2); e[3] = $(i+3) } next }
    $2 == "check" && $3 == f { c[1] = $5; c[2] = $7; c[3] = $9 }
    END {
      bad = (e[1] == "" || c[1] == "")
      for (k = 1; k <= 3 && !bad; k++) { d = e[k] - c[k]; if (d < 0) d = -d; if (d > 1e-12) bad = 1 }
      printf "%sok - %s mean, min, max at step 60 equal the solver'\''s own reduction\n", bad ? "not " : "", f
      if (bad) printf "# engine %s %s %s, solver %s %s %s\n", e[1], e[2], e[3], c[1], c[2], c[3]
    }' "$out/full3.out" "$out/full3.err"
done

# Ranks mode on 4 + 1 ranks, chunks sent as zstd frames: the same report and
# the same fields as 4 ranks inline.
LUISA_MODE=ranks LUISA_ANALYTICS_RANKS=1 LUISA_COMPRESS=1 run 5 examples/gray-scott/stats.lua ranks5
cmp -s "$out/demo4.out" "$out/ranks5.out" && echo "ok - ranks mode, 4 + 1 ranks: stats.lua prints what 4 ranks inline print" \
  || { echo "not ok - ranks mode output differs"; diff "$out/demo4.out" "$out/ranks5.out" | head -5 | sed 's/^/# /'; }
h5=$(sed -n 's/.*check hash //p' "$out/ranks5.err")
[ -n "$h5" ] && [ "$h5" = "$h4" ] && grep -q "on 4 ranks" "$out/ranks5.err" \
  && echo "ok - and the simulation, on the 4 ranks luisa_comm gives, ends with the same fields" \
  || { echo "not ok - ranks mode field hash '$h5'"; tail -3 "$out/ranks5.err" | sed 's/^/# /'; }
