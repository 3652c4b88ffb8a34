# fuzz.mk: libFuzzer targets (make fuzz, not part of make test), included by
# the Makefile. The engine is compiled again with clang, instrumented for
# coverage with AddressSanitizer and UBSan, into build/fuzz/; each target in
# fuzz/ runs FUZZ_SECONDS (60 by default) from a corpus seeded with
# t/data/fuzz/TARGET/ (and, for the script target, the repository's scripts).
# What a target saves (crash-*, timeout-*, oom-*) lands in
# build/fuzz/found/TARGET/; copied to t/data/fuzz/TARGET/, it is replayed by
# t/036-fuzz-replay.t through the ordinary build.
FUZZ          := build/fuzz
FUZZ_CC       := clang
FUZZ_TARGETS  := api decl script codec
FUZZ_SECONDS  ?= 60
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS   := -O1 -g -std=c11 -D_POSIX_C_SOURCE=200809L -Wall $(FUZZ_SAN) \
                 $(shell mpicc --showme:compile 2>/dev/null) $(LUAJIT_CFLAGS)
FUZZ_LIBS     := $(shell mpicc --showme:link 2>/dev/null) $(LDLIBS)
FUZZ_OBJ      := $(ENGINE_SRC:engine/%.c=$(FUZZ)/obj/%.o) $(FUZZ)/obj/lua_embed.o
FUZZ_FLAGS    := -close_fd_mask=3 -rss_limit_mb=2048 -timeout=20 -max_len=4096 -print_final_stats=1
.SECONDARY: $(FUZZ_OBJ)   # kept: they are made by a chain of pattern rules

$(FUZZ)/obj/%.o: engine/%.c $(wildcard engine/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -DLUISA_BUILDING -Iengine -c $< -o $@

$(FUZZ)/obj/lua_embed.o: $(B)/lua_embed.c engine/context.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DLUISA_BUILDING -Iengine -c $< -o $@

$(FUZZ)/%: fuzz/%.c fuzz/fuzz.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Iengine -Ifuzz $< $(FUZZ_OBJ) -o $@ $(FUZZ_LIBS)

# The same targets with a main() that replays files, built as the tests are.
$(B)/replay/%: fuzz/%.c fuzz/replay.c fuzz/fuzz.h engine/luisa.h $(B)/libluisa.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iengine -Ifuzz fuzz/replay.c $< -o $@ $(LINK_LUISA)
# The codec is internal (hidden in libluisa.so): its replay links the object.
$(B)/replay/codec: fuzz/codec.c fuzz/replay.c fuzz/fuzz.h engine/codec.h $(B)/obj/codec.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iengine -Ifuzz fuzz/replay.c $< $(B)/obj/codec.o -o $@ $(ZSTD_LIBS)
TEST_BIN += $(FUZZ_TARGETS:%=$(B)/replay/%)

.PHONY: fuzz
fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(FUZZ)/%)
	@found=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ)/corpus/$$t $(FUZZ)/found/$$t; \
	  cp t/data/fuzz/$$t/* $(FUZZ)/corpus/$$t/ 2>/dev/null; \
	  if [ $$t = script ]; then for f in t/data/*.lua t/data/*/*.lua examples/*/*.lua; do \
	    cp $$f $(FUZZ)/corpus/$$t/$$(echo $$f | tr / _); done; fi; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  : "leaks are left to valgrind and make faults: the slow unwinding LeakSanitizer's MPI suppressions need"; \
	  : "makes every Lua allocation (they go through the engine's capped allocator) too slow to fuzz"; \
	  ASAN_OPTIONS=detect_leaks=0 LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp \
	    UBSAN_OPTIONS=print_stacktrace=1 \
	    $(FUZZ)/$$t $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) $$([ -f fuzz/$$t.dict ] && echo -dict=fuzz/$$t.dict) \
	    -artifact_prefix=$(FUZZ)/found/$$t/ $(FUZZ)/corpus/$$t >$(FUZZ)/$$t.log 2>&1 \
	    || { found=1; echo "fuzz: $$t found something:"; grep -A30 -m1 -E '^==[0-9]+==ERROR|runtime error|^decl:|deadly signal|timeout after' $(FUZZ)/$$t.log; }; \
	  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+.*DONE' $(FUZZ)/$$t.log; \
	done; ls -l $(FUZZ)/found/*/ 2>/dev/null | grep -v '^total' ; exit $$found
