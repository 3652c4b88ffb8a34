#!/bin/sh
# The memory budget (opts.store_bytes) on t/ranks.c's chunks: 3 blocks of
# T (f64), I (i32) and W (f64), 4x6 each, 480 bytes a block per step.
# T and T three steps ago (window.lua) keep 3 versions of T: 3 x 576 =
# 1728 bytes of windows on 1 rank. A slow analysis in thread mode, max_lag
# 3, holds up to 4 steps of copies (4 x 1440 bytes) without a budget; with
# one of 1728 + 2 x 1440 = 4608 bytes the simulation waits, the results
# are the same bytes and the peak stays at the budget. A budget below the
# windows refuses the plan at the first step, saying how much it needs, in
# every mode; ranks mode's simulation ranks refuse one that cannot hold one
# step's chunks in flight.
. t/lib.sh
. t/ranks.sh
D=t/data/memory
export LUISA_TRUSTED=1   # window.lua sleeps through FFI
col() { awk -v c="$2" -v s="$3" '$1 == s { print $c }' "$out/$1.out"; }   # col NAME COLUMN STEP

LUISA_MODE=inline run inl 1 $D/window.lua 3 10
LUISA_MODE=thread LUISA_MAX_LAG=3 run free 1 $D/window.lua 3 10
LUISA_LOG_LEVEL=info LUISA_MODE=thread LUISA_MAX_LAG=3 LUISA_STORE_BYTES=4608 run held 1 $D/window.lua 3 10
cut -d' ' -f1-3 "$out/inl.out" >"$out/inl.res"
cut -d' ' -f1-3 "$out/free.out" >"$out/free.res"
cut -d' ' -f1-3 "$out/held.out" >"$out/held.res"
check "[ \$(wc -l <'$out/inl.res') = 10 ] && [ \"\$(col inl 3 3)\" = - ] && [ \"\$(col inl 3 4)\" != - ]" \
  "inline: 10 steps, T:prev(3) known from step 4" "$(cat "$out/inl.out")"
same inl.res free.res "thread mode, no budget: the results inline has"
same inl.res held.res "thread mode, a budget of 4608 bytes: the same results"
same inl.txt held.txt "a budget of 4608 bytes: the simulation sees what it sees inline"
check "[ \"\$(col free 5 10)\" -gt 4608 ]" "no budget: the copies of 4 steps in flight take more than 4608 bytes" \
  "$(cat "$out/free.out")"
check "[ \"\$(col held 5 10)\" -le 4608 ] && [ \"\$(col held 5 10)\" -ge 1728 ]" \
  "a budget of 4608 bytes: the peak held stays within it" "$(cat "$out/held.out")"
check "[ \"\$(col held 6 10)\" -gt 0 ] && [ \"\$(col free 6 10)\" = 0 ]" \
  "the simulation waited for the budget, never without one" "$(cat "$out/held.out")"
check "grep -q 'summary: memory: at most [0-9]* bytes of data held on rank 0 (budget 4608); held back by the budget [1-9]' '$out/held.err'" \
  "the summary tells the peak, the budget and the waits" "$(grep summary "$out/held.err")"

# Too small for the windows: refused at the first step, in every mode.
need="opts.store_bytes (LUISA_STORE_BYTES) is 1000 bytes, but one step needs 1728: 1728 for windows and 0 for transfers; raise it to at least 1728, or set opts.spill_dir"
LUISA_MODE=inline LUISA_STORE_BYTES=1000 run small 1 $D/window.lua 3 3
check "line small 1 | grep -qF '1 status 1 ' && line small 1 | grep -qF '$need' && line small 3 | grep -q '^3 status 0 ' &&
       [ ! -s '$out/small.out' ]" "inline, 1000 bytes: refused at the first step, naming what it needs" \
  "$(cat "$out/small.txt")"
LUISA_MODE=thread LUISA_MAX_LAG=0 LUISA_STORE_BYTES=1000 run tsmall 1 $D/window.lua 3 3
check "line tsmall 1 | grep -qF '$need'" "thread mode, 1000 bytes: the same refusal" "$(cat "$out/tsmall.txt")"
# 2 ranks inline: rank 0 holds blocks 0 and 2 (1152 bytes of windows), rank 1 block 1 (576).
LUISA_MODE=inline LUISA_STORE_BYTES=1000 run small2 2 $D/window.lua 3 3
check "line small2 1 | grep -qF 'could not be compiled on rank 0: opts.store_bytes (LUISA_STORE_BYTES) is 1000 bytes, but one step needs 1152'" \
  "2 ranks: the rank short of it is named, with its own need" "$(cat "$out/small2.txt")"

# Ranks mode, 3+1: each simulation rank sends one block, 672 bytes a step
# (T travels as its whole buffer with ghost cells, 384 bytes, I and W
# packed); the analytics rank holds 1728 bytes of windows and receives 2016.
LUISA_MODE=ranks LUISA_ANALYTICS_RANKS=1 LUISA_MAX_LAG=0 LUISA_STORE_BYTES=400 run rsmall 4 $D/window.lua 3 3
check "line rsmall 1 | grep -qF \"opts.store_bytes (LUISA_STORE_BYTES) cannot hold one step's chunks in flight: they need up to 672 bytes on a simulation rank (the first short of it is rank 0)\" &&
       line rsmall 2 | grep -q '^2 status 0 '" "ranks mode, 400 bytes: refused on the simulation ranks at the first step" \
  "$(cat "$out/rsmall.txt")"
LUISA_MODE=ranks LUISA_ANALYTICS_RANKS=1 LUISA_MAX_LAG=0 LUISA_STORE_BYTES=2000 run rana 4 $D/window.lua 3 3
check "line rana 1 | grep -qF 'is 2000 bytes, but one step needs 3744: 1728 for windows and 2016 for transfers'" \
  "ranks mode, 2000 bytes: the analytics rank refuses the plan, counting the chunks it receives" "$(cat "$out/rana.txt")"
LUISA_MODE=ranks LUISA_ANALYTICS_RANKS=1 LUISA_MAX_LAG=2 LUISA_STORE_BYTES=4200 run rheld 4 $D/window.lua 3 10
cut -d' ' -f1-3 "$out/rheld.out" >"$out/rheld.res"
same inl.res rheld.res "ranks mode 3+1, max_lag 2, a budget of 4200 bytes: the results inline has"
check "[ \"\$(col rheld 5 10)\" -le 4200 ]" "ranks mode: the analytics rank's peak stays within the budget" \
  "$(cat "$out/rheld.out")"

# Spill (opts.spill_dir): T's older versions go to disk past the budget and
# come back when T:prev(3) reads them. With it, a step needs one version of
# T (576) and the frame a 192-byte chunk is compressed in (255): 831.
LUISA_MODE=thread LUISA_MAX_LAG=0 LUISA_STORE_BYTES=1200 LUISA_SPILL_DIR="$out/spill" run spill 1 $D/window.lua 3 10
cut -d' ' -f1-3 "$out/spill.out" >"$out/spill.res"
same inl.res spill.res "spill, 1200 bytes: the results inline has, read back from disk"
check "[ \"\$(col spill 7 10)\" -gt 0 ] && [ \"\$(col spill 5 10)\" -le 1200 ]" \
  "spill: files were written, the peak stays within the budget" "$(cat "$out/spill.out")"
check "[ ! -e '$out/spill' ]" "spill: the directory it made is gone after luisa_finalize" "$(ls -la "$out/spill" 2>&1)"
mkdir "$out/kept"
LUISA_MODE=inline LUISA_STORE_BYTES=1000 LUISA_SPILL_DIR="$out/kept" run spill2 2 $D/window.lua 3 10
LUISA_MODE=inline run inl2 2 $D/window.lua 3 10
cut -d' ' -f1-3 "$out/spill2.out" >"$out/spill2.res"
cut -d' ' -f1-3 "$out/inl2.out" >"$out/inl2.res"
same inl2.res spill2.res "spill, inline on 2 ranks: the results without a budget"
check "[ -d '$out/kept' ] && [ -z \"\$(ls -A '$out/kept')\" ] && [ \"\$(col spill2 7 10)\" -gt 0 ]" \
  "spill into a directory that was there: its files removed, the directory kept" "$(ls -la "$out/kept")"
LUISA_MODE=ranks LUISA_ANALYTICS_RANKS=1 LUISA_MAX_LAG=1 LUISA_STORE_BYTES=3200 LUISA_SPILL_DIR="$out/rspill" \
  run rspill 4 $D/window.lua 3 10
cut -d' ' -f1-3 "$out/rspill.out" >"$out/rspill.res"
same inl.res rspill.res "spill on the analytics rank of 3+1: the results inline has"
check "[ \"\$(col rspill 7 10)\" -gt 0 ] && [ ! -e '$out/rspill' ]" "ranks mode: spilled, and cleaned up" \
  "$(cat "$out/rspill.out")"
touch "$out/file"
LUISA_MODE=inline LUISA_STORE_BYTES=1200 LUISA_SPILL_DIR="$out/file/sub" run nospill 1 $D/window.lua 3 10
cut -d' ' -f1-3 "$out/nospill.out" >"$out/nospill.res"
same inl.res nospill.res "a spill directory that cannot be made: nothing is lost, the results stand"
check "grep -q 'window versions stay in memory, over opts.store_bytes: opts.spill_dir $out/file/sub cannot be made: Not a directory' '$out/nospill.err'" \
  "... and the reason is told" "$(cat "$out/nospill.err")"
LUISA_MODE=inline LUISA_STORE_BYTES=500 LUISA_SPILL_DIR="$out/spill" run spillsmall 1 $D/window.lua 3 3
check "line spillsmall 1 | grep -q 'is 500 bytes, but one step needs 831: 831 for windows and 0 for transfers; raise it to at least 831$'" \
  "spill, 500 bytes: refused, counting one version and the frame" "$(cat "$out/spillsmall.txt")"

# Options from the environment, checked.
want_rc=1 LUISA_MODE=inline LUISA_STORE_BYTES=lots run badenv 1 $D/window.lua 3 3
check "grep -q 'LUISA_STORE_BYTES' '$out/badenv.err'" "LUISA_STORE_BYTES that does not parse: luisa_init refuses, naming it" \
  "$(cat "$out/badenv.err")"
echo "1..$n"
