# bench.mk: the benchmarks (make bench): built into $(B)/bench, run by
# bench/run.sh, figures recorded in docs/benchmarks.md. Timings are printed, never asserted.
BENCH_PROGS := kernel overhead chunks w1 window budget slowdown codec memory patterns
BENCH_BIN   := $(BENCH_PROGS:%=$(B)/bench/%)

# -rdynamic: the scripts write their results into bench_out through ffi.C.
# LINK_LUISA carries -lzstd too (LDLIBS), which codec calls directly.
$(B)/bench/%: bench/%.c bench/common.c bench/w1part.c bench/bench.h engine/luisa.h $(B)/libluisa.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -rdynamic -Iengine -Ibench $< bench/common.c bench/w1part.c $(filter %.o,$^) -o $@ $(LINK_LUISA)

# Benchmark 1's limit: the best C this compiler makes for this machine.
$(B)/bench/limit.o: bench/limit.c bench/limit.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -O3 -march=native -Ibench -c $< -o $@
$(B)/bench/kernel: $(B)/bench/limit.o

.PHONY: bench
bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@sh bench/run.sh $(B) $(if $(SANITIZE),sanitized)
