#!/bin/sh
# diff, laplacian, stencil and slices (t/stencil.lua) against plain C loops over global data, on
# uneven decompositions, then the bad uses of t/data/stencil_errors.lua, each named by file:line.
. t/lib.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# ranks dtype shape A-blocks B-blocks ghost order. B's block k is on rank k+1, so its chunks differ
# from A's; blocks of one element are narrower than the 3x5 stencil's reach; "1,3" and "2,1" on 4
# ranks leave ranks without a chunk of A or B.
configs="
1 f64 9,7 1,1 1,1 0 c
1 f64 12,10 3,2 2,3 1 f
2 f64 16,12 3,2 2,3 1 c
2 f32 13,11 4,3 1,5 2 f
2 i32 12,9 3,3 2,1 1 c
3 f64 9,8,7 2,2,3 3,1,2 1 f
3 f32 8,7,9 3,2,2 1,1,4 0 c
4 f64 13,11 1,3 3,1 0 c
4 i32 10,9,8 2,3,1 1,2,3 1 f
4 f64 31,17 5,4 3,6 1 f
4 f32 20,7 2,1 1,1 2 c
"
errors=t/data/stencil_errors.lua
n=$(echo "$configs" | grep -c .)
bad='^luisa\.every.*-- bad: '   # the bad callbacks, one per line
nbad=$(grep -c "$bad" "$errors")
echo "1..$((n + 2 + nbad))"

mpi 1 "$B/t/stencil" selftest 2>"$out/err" || { echo "# stderr:"; sed 's/^/#   /' "$out/err"; }

echo "$configs" | while read -r np dtype shape ablocks bblocks ghost order; do
  [ -n "$np" ] || continue
  rm -f "$out/r"
  LUISA_TEST_OUT="$out/r" mpi "$np" "$B/t/stencil" "$dtype" "$shape" "$ablocks" "$bblocks" "$ghost" "$order" 2 \
    t/stencil.lua 2>"$out/err" || { echo "# stderr:"; sed 's/^/#   /' "$out/err"; }
done

# Every bad callback fails at step 1 on every rank, the good one goes on; each bad line is
# named as file:line in luisa_error (printed on stderr by the driver) or in rank 0's log.
rm -f "$out/r"
LUISA_TEST_OUT="$out/r" mpi 2 "$B/t/stencil" f64 16,12 3,2 2,3 1 c 3 "$errors" errors 2>"$out/err" \
  || { echo "# stderr:"; sed 's/^/#   /' "$out/err"; }
grep -n "$bad" "$errors" | while IFS=: read -r line text; do
  what=${text##*-- bad: }
  if grep -qF "$errors:$line:" "$out/err"; then
    echo "ok - $errors:$line reported ($what)"
    grep -F "$errors:$line:" "$out/err" | head -1 | cut -c1-300 | sed 's/^/#   /'
  else
    echo "not ok - $errors:$line reported ($what)"
    echo "#   \"$errors:$line:\" is in neither luisa_error nor the log"
  fi
done
