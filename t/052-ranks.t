#!/bin/sh
# Ranks mode (t/ranks.c): dedicated analytics ranks write, byte for byte,
# what inline (max_lag 0) and thread mode (same max_lag) write on the same
# chunks, on 1+1, 3+1, 2+2 and 6+2 ranks, raw and compressed, with a
# handed-over chunk; steering, stops and errors land max_lag calls later
# on every simulation rank; a slow analysis holds the simulation exactly
# max_lag steps ahead; luisa_wants follows the plan; a reload and
# luisa.state carry over; an unpublished chunk and ranks out of step are
# told, never a hang; refusals at luisa_init. Every run is under timeout.
. t/lib.sh
. t/ranks.sh

export LUISA_ANALYTICS_RANKS=1
# 1+1, 3+1 and 2+2 against inline on the analytics ranks' chunks.
LUISA_MODE=inline run in1 1 $D/all.lua 1 10
LUISA_MODE=ranks LUISA_MAX_LAG=0 run rk11 2 $D/all.lua 1 10
same in1.out rk11.out "1+1, max_lag 0: the analysis writes what inline writes"
same in1.txt rk11.txt "1+1, max_lag 0: the simulation sees what inline sees"
LUISA_MODE=inline run in3 1 $D/all.lua 3 12
LUISA_MODE=ranks LUISA_MAX_LAG=0 run rk31 4 $D/all.lua 3 12
same in3.out rk31.out "3+1, max_lag 0: the analysis writes what inline writes"
same in3.txt rk31.txt "3+1, max_lag 0: the simulation sees what inline sees (parameters, W after assignments)"
check "[ \"\$(line rk31 5 | cut -d' ' -f5)\" = 0x1.4p+1 ] && [ \"\$(line rk31 4 | cut -d' ' -f5)\" = 0x1p+0 ]" \
  "3+1, max_lag 0: luisa.set at step 5 is in the simulation's variable when luisa_step(5) returns"
LUISA_MODE=inline run in2 2 $D/all.lua 2 12
LUISA_MODE=ranks LUISA_MAX_LAG=0 LUISA_ANALYTICS_RANKS=2 run rk22 4 $D/all.lua 2 12
same in2.out rk22.out "2+2, max_lag 0: the analysis writes what inline writes"
same in2.txt rk22.txt "2+2, max_lag 0: the simulation sees what inline sees"

# The same lag as thread mode: the same bytes, the same landing steps.
LUISA_MODE=thread LUISA_MAX_LAG=2 run th3 1 $D/all.lua 3 12
LUISA_MODE=ranks LUISA_MAX_LAG=2 run rk32 4 $D/all.lua 3 12
LUISA_MODE=ranks LUISA_MAX_LAG=2 run rk32b 4 $D/all.lua 3 12
same th3.out rk32.out "3+1, max_lag 2: the analysis writes what thread mode writes"
same th3.txt rk32.txt "3+1, max_lag 2: the simulation sees what thread mode sees"
same rk32.txt rk32b.txt "3+1, max_lag 2: a second run has the same history"
same rk32.out rk32b.out "3+1, max_lag 2: a second run writes the same"
check "[ \"\$(line rk32 7 | cut -d' ' -f5)\" = 0x1.4p+1 ] && [ \"\$(line rk32 6 | cut -d' ' -f5)\" = 0x1p+0 ] &&
       [ \"\$(line rk32 8 | cut -d' ' -f7-11)\" = '3 label b on 0' ] && [ \"\$(line rk32 7 | cut -d' ' -f7)\" = 1 ]" \
  "3+1, max_lag 2: gain set at step 5 lands at luisa_step(7), period, label and on set at 6 at luisa_step(8)"
LUISA_MODE=thread LUISA_MAX_LAG=1 run th6 2 $D/all.lua 6 12 handover
LUISA_LOG_LEVEL=info LUISA_MODE=ranks LUISA_MAX_LAG=1 LUISA_ANALYTICS_RANKS=2 LUISA_COMPRESS=3 run rk62 8 $D/all.lua 6 12 handover
same th6.out rk62.out "6+2, max_lag 1, zstd level 3, a chunk handed over: the analysis writes what thread mode writes"
same th6.txt rk62.txt "6+2, max_lag 1, zstd level 3: the simulation sees what thread mode sees"
check "awk '{ exit !(\$6 == \$8 && \$8 >= 12 && \$12 == 11) }' '$out/rk62.prog'" \
  "6+2: each of the handed-over buffers came back once; the one of step t - 1, handed over again at step t, refused naming t - 1 (11 times)" \
  "$(cat "$out/rk62.prog")"
LUISA_MODE=ranks LUISA_MAX_LAG=1 run rk62raw 8 $D/all.lua 6 12 handover
same th6.out rk62raw.out "6+2 raw: I's handed-over chunk sent from its own buffer, T's packed: what thread mode writes"
check "awk '{ exit !(\$6 == \$8 && \$8 >= 12 && \$12 == 11) }' '$out/rk62raw.prog'" \
  "6+2 raw: each handed-over buffer came back once; step t - 1's, handed over again at step t, refused (11 times)" \
  "$(cat "$out/rk62raw.prog")"
check "grep -q 'analytics rank 0 (node 0): simulation ranks 0, 2, 4, ' '$out/rk62.err' &&
       grep -q 'analytics rank 1 (node 0): simulation ranks 1, 3, 5, ' '$out/rk62.err'" \
  "6+2: the route, logged at info, balances the six equal simulation ranks over the two" "$(grep -A3 'ranks mode' "$out/rk62.err")"

# Stops and errors max_lag calls later, on every simulation rank.
LUISA_MODE=ranks LUISA_MAX_LAG=1 run stop 4 $D/stop.lua 3 12
check "[ \"\$(tail -1 '$out/stop.txt' | cut -d' ' -f1-3)\" = '5 status 2' ] && ! grep -q differs '$out/stop.txt'" \
  "stop at step 4, max_lag 1: LUISA_STOP from luisa_step(5) on every simulation rank, the run ends there" \
  "$(cat "$out/stop.txt")"
LUISA_MODE=ranks LUISA_MAX_LAG=1 run errors 4 $D/error.lua 3 8
# The script never steers: the root's word on step 3 comes with step 4's analysis.
check "line errors 5 | grep -q '^5 status 1 .*error.lua:6: raised at step 3' && ! grep -q differs '$out/errors.txt' &&
       [ \"\$(grep -c 'status 1' '$out/errors.txt')\" = 1 ]" \
  "a script error at step 3, max_lag 1: LUISA_WARN_SCRIPT with file:line from luisa_step(5) on every rank, once" \
  "$(cat "$out/errors.txt")"

# A slow analysis holds the simulation at max_lag, never more.
LUISA_MODE=ranks LUISA_MAX_LAG=2 LUISA_TRUSTED=1 run lag 4 $D/slow.lua 3 8
check "grep -q '^behind 2 waits [1-9]' '$out/lag.prog'" \
  "an analysis slower than the simulation: luisa_step returns exactly max_lag 2 steps ahead, and waits" \
  "$(cat "$out/lag.prog")"

# luisa_wants: I is read every 3 steps; the simulation publishes it at
# step 1 (nothing is known yet), then 3, 6, 9 and 12.
LUISA_MODE=inline run win 1 $D/wants.lua 3 12
LUISA_MODE=ranks LUISA_MAX_LAG=0 run wants 4 $D/wants.lua 3 12
check "grep -q 'wanted 5 again 0\$' '$out/wants.prog'" "luisa_wants follows the plan: I wanted at 5 of 12 steps" \
  "$(cat "$out/wants.prog")"
same win.out wants.out "what is not wanted is not sent, and the results stay inline's"

# A reload mid-run: the same steps as thread mode, luisa.state carried over.
cp $D/reload_a.lua "$out/live.lua"
LUISA_MODE=thread LUISA_MAX_LAG=1 LUISA_TEST_RELOAD="4:$D/reload_b.lua" run thr 1 "$out/live.lua" 3 10
cp $D/reload_a.lua "$out/live.lua"
LUISA_MODE=ranks LUISA_MAX_LAG=1 LUISA_TEST_RELOAD="4:$D/reload_b.lua" run reload 4 "$out/live.lua" 3 10
same thr.out reload.out "a reload asked before step 4 switches at the step thread mode switches"
check "grep -q '^5 a ' '$out/reload.out' && grep -q '^10 b .* 10\$' '$out/reload.out'" \
  "the new version runs, its count continuing from luisa.state" "$(cat "$out/reload.out")"

# luisa.stats() counts what arrived: at step 1 every chunk (nothing is known
# yet), then T alone. T travels as its whole buffer, ghost cells included
# (6 x 8 doubles, 384 bytes), I and W packed as they are (96, 192): 3 ranks
# x 672 bytes, then 3 x 384.
LUISA_MODE=ranks LUISA_MAX_LAG=0 run stats 4 $D/stats.lua 3 4
check "[ \"\$(cut -d' ' -f1,2,3 '$out/stats.out' | tr '\n' ' ')\" = '1 2016 2016 2 3168 3168 3 4320 4320 4 5472 5472 ' ]" \
  "luisa.stats(): transit_raw and transit_wire count the bytes received, raw" "$(cat "$out/stats.out")"
LUISA_MODE=ranks LUISA_MAX_LAG=0 LUISA_COMPRESS=3 run zstats 4 $D/stats.lua 3 4
check "awk '\$2 != (\$1 == 1 ? 2016 : 2016 + 1152 * (\$1 - 1)) || \$3 >= \$2 || \$4 != \"t\" { bad = 1 } END { exit bad || NR != 4 }' '$out/zstats.out'" \
  "luisa.stats() compressed: the same raw bytes, fewer on the wire" "$(cat "$out/zstats.out")"

# Mistakes are told, never a hang.
LUISA_MODE=ranks LUISA_MAX_LAG=0 LUISA_TEST_SKIP=1 run skip 4 $D/wants.lua 3 4
check "line skip 1 | grep -q '^1 status 1 .*chunk 0 of array \"T\" (offset \\[4, 0\\], shape \\[4, 6\\]) was not published on simulation rank 1; luisa.every at t/data/ranks/wants.lua:7' &&
       ! grep -q differs '$out/skip.txt'" \
  "a chunk never published: LUISA_WARN_SCRIPT on every rank, naming it in the simulation's numbers" "$(cat "$out/skip.txt")"
LUISA_MODE=ranks LUISA_MAX_LAG=0 LUISA_TEST_BADSTEP=3 run badstep 4 $D/wants.lua 3 6
check "line badstep 3 | grep -q '^3 status 22 .*different step numbers' && line badstep 6 | grep -q '^6 status 0 ' &&
       ! grep -q differs '$out/badstep.txt'" \
  "ranks out of step: LUISA_ERR_STEP on every rank, then analytics off and the run goes on" "$(cat "$out/badstep.txt")"

# A frame corrupted on its way (t/ranks.c's corrupt build flips one byte of
# simulation rank 0's 7th frame: step 3's T): told, the step not analysed,
# the callbacks still on, the run goes on.
rm -f "$out/corrupt".*
LUISA_TEST_OUT="$out/corrupt.out" LUISA_OUTPUT_DIR="$out" LUISA_MODE=ranks LUISA_MAX_LAG=1 LUISA_COMPRESS=1 \
  LUISA_TEST_CORRUPT=7 timeout -k 5 "$limit" sh -c '. t/lib.sh && mpi "$@"' mpi 4 "$B/t/ranks_corrupt" \
  $D/wants.lua 3 6 >"$out/corrupt.txt" 2>"$out/corrupt.err"
check "[ $? -eq 0 ]" "corrupt: 4 ranks, exits with 0" "$(tail -5 "$out/corrupt.err")"
check "line corrupt 4 | grep -q '^4 status 26 .*chunk 0 of array \"T\" from simulation rank 0 arrived corrupt.*step 3 is not analysed' &&
       line corrupt 5 | grep -q '^5 status 0 ' && ! grep -q differs '$out/corrupt.txt'" \
  "a corrupt frame: LUISA_ERR_DATA from luisa_step(4) on every rank, naming the chunk and its rank; then all is well" \
  "$(cat "$out/corrupt.txt")"
check "! grep -q '^3 T' '$out/corrupt.out' && grep -q '^2 T' '$out/corrupt.out' && grep -q '^6 T' '$out/corrupt.out' &&
       grep -q '^6 I' '$out/corrupt.out'" "the corrupt step alone is not analysed, the callbacks stay enabled" \
  "$(cat "$out/corrupt.out")"

# opts.timeout_s on the simulation's wait for an answer: an analysis of
# 50 ms a step against a 10 ms deadline is told once, then the simulation
# runs alone, and everyone leaves.
LUISA_MODE=ranks LUISA_MAX_LAG=0 LUISA_TRUSTED=1 LUISA_TIMEOUT=0.01 run timeout 4 $D/slow.lua 3 5
check "line timeout 1 | grep -q '^1 status 24 .*did not answer for call 1 within opts.timeout_s' &&
       [ \"\$(grep -c 'status 0 ' '$out/timeout.txt')\" = 4 ]" \
  "a deadline passed: LUISA_ERR_TIMEOUT once, then luisa_step returns LUISA_OK" "$(cat "$out/timeout.txt")"

# Refusals at luisa_init, on every rank.
want_rc=1 LUISA_MODE=ranks run alone 1 $D/all.lua 1 2
check "grep -q 'at least one simulation rank must be left' '$out/alone.err'" \
  "1 rank: no simulation rank would be left, refused" "$(cat "$out/alone.err")"
want_rc=1 LUISA_MODE=ranks LUISA_ANALYTICS_RANKS=banana run banana 2 $D/all.lua 1 2
check "grep -q 'LUISA_ANALYTICS_RANKS is \"banana\"' '$out/banana.err'" "LUISA_ANALYTICS_RANKS=banana is refused, named" \
  "$(cat "$out/banana.err")"
want_rc=1 LUISA_MODE=ranks LUISA_COMPRESS=99 run level 2 $D/all.lua 1 2
check "grep -q 'compress_level (or LUISA_COMPRESS) is 99' '$out/level.err'" "LUISA_COMPRESS=99 is refused, named" \
  "$(cat "$out/level.err")"
echo "1..$n"
