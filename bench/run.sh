#!/bin/sh
# run.sh: runs every benchmark for `make bench` and prints their tables.
# Timings are measured and printed as ratios, never asserted.
B=${1:-build}
export OMPI_MCA_btl_vader_single_copy_mechanism=none   # no ptrace in containers
# --bind-to none: every mpirun binds its rank 0 to core 0, so on a shared
# machine two jobs would fight for one core while the other idles.
MPI="mpirun --allow-run-as-root --oversubscribe --bind-to none"
failed=0
run() { np=$1; shift; $MPI -np "$np" "$@" </dev/null || failed=1; }   # mpirun reads stdin
# Benchmark 7 binds its one rank to core 0: thread mode's analytics thread then takes core 1.
run_bound() { np=$1; shift; mpirun --allow-run-as-root --bind-to core -np "$np" "$@" </dev/null || failed=1; }

cores=$(nproc)
echo "luisa benchmarks: $cores cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(mpirun --version | head -1)"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine slows every figure)"
[ "$2" = sanitized ] && echo "!!!!! SANITIZE build: these figures time the sanitizers, not luisa"
echo "Every figure is the minimum over repetitions: on a shared machine noise only adds."
echo "Ranks marked * outnumber the $cores cores (oversubscribed): their MPI latencies include scheduling."
echo

echo "== 1. Kernel throughput: ((T - 1) * 2):abs():sum() over 64 MiB of float64 per rank"
echo "   engine (luisa_publish + luisa_step) against a C loop (-O2) + MPI_Reduce, and the limit:"
echo "   the same expression with 8 accumulators, -O3 -march=native (vectorised), and a plain read (target engine/limit >= 0.85)"
run 1 "$B/bench/kernel" bench/kernel.lua --header
run 2 "$B/bench/kernel" bench/kernel.lua
echo

echo "== 2. Per-step cost: global mean and max of an NxN float64 block per rank"
echo "   engine (luisa_publish + luisa_step) against hand-written MPI: a tuned C loop (two max"
echo "   accumulators) then two MPI_Reduce (sum, max) or one MPI_Reduce with a user operation,"
echo "   or the plain C loop; engine-hand and engine/hand use the fastest of these three."
echo "   For reference, tuned C + MPI_Allreduce: every rank learns the result, and waits for"
echo "   the others every step, as the engine's ranks do (they all learn the step's status)."
echo "   engine-hand at 256x256 is the engine's fixed cost per step (target < 50 us);"
echo "   engine/hand at 1024x1024: target <= 1.3. The 1x1 rows are all fixed cost; 1 rank"
echo "   has no MPI traffic to speak of, so it shows the local work alone."
echo "   Data: random (maximum first), or ramp: a smooth rising field (see docs/benchmarks.md)."
run 1 "$B/bench/overhead" bench/meanmax.lua random 256 1024 1 --header
run 2 "$B/bench/overhead" bench/meanmax.lua random 256 1024 1
run 4 "$B/bench/overhead" bench/meanmax.lua random 256 1024 1
run 1 "$B/bench/overhead" bench/meanmax.lua ramp 256 1024
run 2 "$B/bench/overhead" bench/meanmax.lua ramp 256 1024
echo

echo "== 3. Plan scaling: 4096x256 float64 per rank in 1 to 4096 chunks, sum and max, 2 ranks"
echo "   step = luisa_step only; per-chunk = (step(n) - step(1)) / n (target < 2 us = 2000 ns);"
echo "   compile = first luisa_step - an ordinary step; per added chunk: slope from the row above"
echo "   (constant if compiling is linear in the chunks); C step: tuned C loop over the same chunks"
run 2 "$B/bench/chunks" bench/summax.lua --header
echo

echo "== 4. W1, the issue's workload: per step the global mean and max of T and T:diff(0):std(),"
echo "   NxN float64 row slabs per rank (decomposed along axis 0: diff's halo row comes from the"
echo "   rank below). Engine (luisa_publish + luisa_step) against hand-written MPI: MPI_Sendrecv"
echo "   of the halo row, one fused tuned C pass, one MPI_Reduce or MPI_Allreduce of (sum, max,"
echo "   count, mean, M2) with a user operation (Chan's combine); engine-hand and engine/hand use"
echo "   the faster. For reference, hand 2 pass: sum and max, then the differences, in two passes"
echo "   (as the engine did before it fused them). Each step reads the next of 3 buffers of different data."
echo "   engine/hand at 1024x1024: target <= 1.3; engine-hand at 256x256: target < 50 us;"
echo "   the 1x1 rows are all fixed cost. spread: the engine's median - minimum."
run 2 "$B/bench/w1" bench/w1.lua 256 1024 1 --header
run 4 "$B/bench/w1" bench/w1.lua 256 1024 1
echo

echo "== 5. Memory: luisa.window(T, 3), (W[0] - 2*W[1] + W[2]):abs():max() every step, 1000 steps,"
echo "   256x256 float64 per rank, new data every step, 2 ranks: rank 0's luisa.stats() (store"
echo "   objects, bytes_held), its resident set and Lua heap (informational: both move with"
echo "   malloc and the garbage collector). The store should hold exactly 2 earlier versions."
run 2 "$B/bench/window" bench/window.lua 256 1000
echo

echo "== 6. What the time budget and the sandbox cost per step, 1 rank, 64 Ki float64"
echo "   stats: a fused sum and max, then a callback with a 100-iteration Lua loop; map: luisa.map"
echo "   with a plain Lua loop over the block. budget 0: the script's functions run under the JIT;"
echo "   budget 60 s (the default): interpreted, so the watchdog's hook can stop them, and a watchdog"
echo "   armed per callback; sandboxed: luisa.map gets a bounds-checked array as well."
for script in stats map; do
  LUISA_STEP_BUDGET=0 LUISA_TRUSTED=1 run 1 "$B/bench/budget" bench/budget_$script.lua 65536 \
    "$script, budget 0, trusted" $([ $script = stats ] && echo --header)
  LUISA_STEP_BUDGET=60 LUISA_TRUSTED=1 run 1 "$B/bench/budget" bench/budget_$script.lua 65536 "$script, budget 60 s, trusted"
  LUISA_STEP_BUDGET=60 LUISA_TRUSTED=0 run 1 "$B/bench/budget" bench/budget_$script.lua 65536 "$script, budget 60 s, sandboxed"
done
echo

echo "== 7. Simulation slowdown: a Gray-Scott loop, 1 rank, 1024x1024 cells (its own kernel, about 3 ms a"
echo "   step), with a heavy analysis (laplacian, std and 64-bin histogram of U and V) every EVERY steps:"
echo "   the loop's wall time with no luisa, inline, and thread mode publishing (luisa_step copies U and V)"
echo "   or handing the buffers over (luisa_publish_handover: no copy, the simulation takes spare buffers)."
echo "   sim ms: the simulation's own kernel per step. Every 6 steps the analysis costs about as much as the"
echo "   simulation (inline nearly doubles the loop) and can keep up: target thread/none <= 1.05. Every 2"
echo "   steps it is slower than the simulation (lag-bound): after each luisa_step, steps - analysed must"
echo "   never exceed max_lag, and reach it. The rank is bound to core 0 (--bind-to core) so that the"
echo "   analytics thread gets core 1 (cpuset auto)."
run_bound 1 "$B/bench/slowdown" bench/slowdown.lua 1024 120 6 1 --header
run_bound 1 "$B/bench/slowdown" bench/slowdown.lua 1024 40 2 1 3
echo "   In transit (ranks mode), 2 ranks bound to cores 0 and 1: rank 0 simulates, rank 1 serves the analytics"
echo "   (LUISA_MODE_RANKS, analytics_ranks 1), raw and as zstd level 1 frames. none: rank 0 alone while rank 1"
echo "   waits (same run); MPI_Send by hand: U and V's interiors sent to rank 1 every EVERY steps, the floor of"
echo "   moving the data. Ranks mode reports a call max_lag calls later: the lag is always max_lag."
run_bound 2 "$B/bench/slowdown" bench/slowdown.lua 1024 120 6 1
run_bound 2 "$B/bench/slowdown" bench/slowdown.lua 1024 40 2 1 3
# With single_copy_mechanism=none (set above for containers without ptrace)
# a large MPI_Isend moves only while its sender is inside MPI: in luisa_step.
# Where the kernel lets a rank read another's memory (CMA), the receiver
# copies alone, as an RDMA network would: those rows show the overlap.
if OMPI_MCA_btl_vader_single_copy_mechanism=cma mpirun --allow-run-as-root -np 2 --bind-to none \
     "$B/bench/slowdown" bench/slowdown.lua 64 6 6 1 </dev/null >/dev/null 2>&1; then
  echo "   The same with Open MPI's single-copy mechanism cma (the receiver copies; the sender need not be in MPI):"
  OMPI_MCA_btl_vader_single_copy_mechanism=cma run_bound 2 "$B/bench/slowdown" bench/slowdown.lua 1024 120 6 1
else
  echo "   (cma is not available here: no rows with the receiver copying alone)"
fi
echo

echo "== 8. zstd on Gray-Scott fields: U and V of a 512x512 Gray-Scott run after 8000 steps (slowdown.c's"
echo "   equations, the spots spreading), and 16 MiB float64 fields, one zstd frame each as ranks mode sends"
echo "   them (ZSTD_compress2, content size and checksum), levels 1, 3 and 9. raw/zstd: the bytes' ratio; speeds"
echo "   in MB (1e6 bytes) of raw data a second; memcpy of the same buffer: the floor of moving it in memory."
run 1 "$B/bench/codec" 512 8000 --header
echo

echo "== 9. Memory under a slow analysis: 1 rank, thread mode, max_lag 4, a 512x512 float64 field (2 MiB)"
echo "   published every step, T against T two steps ago (a window of 2 versions, 4 MiB) analysed in 20 ms"
echo "   while the simulation takes a few: held = most memory_held seen, peak = memory_peak (MiB); waits:"
echo "   times the budget held luisa_step back; spilled: files written to the spill directory. Without a"
echo "   budget the copies of the steps in flight pile up (max_lag + 2 pooled); with one, the peak is flat"
echo "   at it and the loop takes what the analyses take either way (the analysis is the bottleneck)."
spill=$(mktemp -d)/spill
run_bound 1 "$B/bench/memory" 512 40 "$spill" --header
[ -e "$spill" ] && echo "!!!!! the spill directory $spill is left behind" && failed=1
rmdir "$(dirname "$spill")" 2>/dev/null
echo

echo "== 10. Data patterns: one reduction of a 1024x1024 float64 row slab per rank every step, on six"
echo "   patterns: random (maximum first), rising and falling along memory order, constant, a sawtooth"
echo "   (period 1000 elements), random with every 64th value NaN. Engine (luisa_publish + luisa_step,"
echo "   inline, one context per pattern) against hand-written C + MPI_Reduce (W1: as benchmark 4)."
echo "   engine/random: the pattern's engine time over random data's: target <= 1.1 for every pattern."
run_bound 1 "$B/bench/patterns" bench/patterns.lua --header
run_bound 2 "$B/bench/patterns" bench/patterns.lua
echo

echo "== 11. Plan scaling in ranks: one rank's compile (luisa.describe, no MPI, no engine) on synthetic"
echo "   decompositions of 16 to 100,000 ranks, one chunk each: row slabs, 2D and 3D blocks; a reduction"
echo "   (nothing moves) and two stencils. plan ms: partition.plan within describe, building the chunk index"
echo "   (the arrays are new tables at each compile, as push_arrays makes them): target < 50 ms at 100,000"
echo "   ranks; again: describing again with the index kept, the per-rank part: flat within 2x from 1,000"
echo "   to 100,000 ranks. arrays: those tables made in Lua, boxes KiB their size (O(P), the engine's part)."
luajit bench/plan_scaling.lua || failed=1
echo

if [ $failed != 0 ]; then
  echo "!!!!! SOME BENCHMARK FAILED OR COMPUTED A WRONG ANSWER: see the warnings above"
  exit 1
fi
