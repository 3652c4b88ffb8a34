# luisa: build, install, test, demo.
#   make            libraries in build/
#   make test       install missing packages, build, run the TAP suite
#   make demo       install missing packages, build, run Gray-Scott on 4 ranks
#   make test SANITIZE=1   the suite under AddressSanitizer and UBSan (build/san):
#                          also float-to-integer casts out of range, pointer
#                          overflow and strict bounds; any report fails the run
#   make test SANITIZE=thread  the suite under ThreadSanitizer (build/tsan):
#                          the budget's watchdog, thread mode's analytics
#                          threads; make test TSAN=1 is the same
#   make test VALGRIND=1   the suite under valgrind memcheck
#   make install PREFIX=/usr/local

PREFIX   ?= /usr/local
CC       := mpicc
SANITIZE ?=
ifeq ($(TSAN),1)
SANITIZE := thread
endif
B        := build$(if $(SANITIZE),/$(if $(filter thread,$(SANITIZE)),tsan,san))

DEB_PACKAGES := libluajit-5.1-dev luajit libopenmpi-dev openmpi-bin libhwloc-dev gfortran g++ \
                libzstd-dev pkg-config perl gcc make

LUAJIT_CFLAGS := $(shell pkg-config --cflags luajit 2>/dev/null)
LUAJIT_LIBS   := $(shell pkg-config --libs luajit 2>/dev/null)
HWLOC_LIBS    := $(shell pkg-config --libs hwloc 2>/dev/null || echo -lhwloc)
ZSTD_LIBS     := $(shell pkg-config --libs libzstd 2>/dev/null || echo -lzstd)
comma := ,
space := $(subst ,, )
# undefined covers signed overflow, shifts and division by zero; gcc leaves
# float-cast-overflow (UB in C) and bounds-strict out of it. Float division by
# zero is IEEE 754's, not checked.
SAN_CHECKS    := address undefined float-cast-overflow pointer-overflow bounds-strict
SAN_FLAGS     := $(if $(SANITIZE),-fsanitize=$(subst $(space),$(comma),$(SAN_CHECKS)) -fno-omit-frame-pointer \
                   -fno-sanitize-recover=all)
ifeq ($(SANITIZE),thread)
SAN_FLAGS     := -fsanitize=thread -fno-omit-frame-pointer
endif

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror $(SAN_FLAGS)
LIB_CFLAGS := $(CFLAGS) -fPIC -fvisibility=hidden -DLUISA_BUILDING -Iengine $(LUAJIT_CFLAGS)
LDLIBS  := $(LUAJIT_LIBS) $(HWLOC_LIBS) $(ZSTD_LIBS) -lm -lpthread

ENGINE_SRC := $(wildcard engine/*.c)
LUA_SRC    := lua/luisa.lua $(wildcard lua/luisa/*.lua)
OBJ        := $(ENGINE_SRC:engine/%.c=$(B)/obj/%.o) $(B)/obj/lua_embed.o

TEST_SRC  := $(wildcard t/*.c)
TEST_BIN  := $(TEST_SRC:t/%.c=$(B)/t/%) $(B)/t/ranks_corrupt
EXAMPLES  := $(B)/examples/gray_scott $(B)/examples/heat2d

MPIRUN := mpirun --allow-run-as-root --oversubscribe

.PHONY: all deps test demo install clean $(B)/luisa.pc   # the .pc carries PREFIX: always rewritten
all: $(B)/libluisa.so $(B)/libluisa.a

# Missing Debian packages are installed when root, otherwise named.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing packages; run as root:  apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

$(B)/obj/%.o: engine/%.c $(wildcard engine/*.h)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

# The Lua modules are compiled into the library as source text, so a
# simulation never looks for them at run time and nothing loads bytecode.
# Their chunk names start with "=luisa", which marks the engine's own code.
$(B)/lua_embed.c: $(LUA_SRC) lua/embed.lua
	@mkdir -p $(@D)
	luajit lua/embed.lua $(LUA_SRC) > $@.tmp && mv $@.tmp $@

$(B)/obj/lua_embed.o: $(B)/lua_embed.c engine/context.h
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(B)/libluisa.so: $(OBJ)
	$(CC) -shared $(SAN_FLAGS) -Wl,-soname,libluisa.so.0 -o $@.0 $(OBJ) $(LDLIBS)
	ln -sf libluisa.so.0 $@

$(B)/libluisa.a: $(OBJ)
	rm -f $@
	ar rcs $@ $(OBJ)

# Tests and examples link the shared library, as a simulation would.
LINK_LUISA = -L$(B) -Wl,-rpath,$(CURDIR)/$(B) -lluisa $(LDLIBS)

$(B)/t/%: t/%.c t/tap.h engine/luisa.h $(B)/libluisa.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iengine -It $< -o $@ $(LINK_LUISA)

# engine/pin.c's functions are internal (hidden in libluisa.so): its test links the object.
$(B)/t/pin: t/pin.c t/tap.h engine/pin.h $(B)/obj/pin.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iengine -It $< $(B)/obj/pin.o -o $@ $(HWLOC_LIBS) -lpthread

# So are engine/codec.c's; its calloc is wrapped, so that the test can refuse it.
$(B)/t/codec: t/codec.c t/tap.h engine/codec.h $(B)/obj/codec.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iengine -It $< $(B)/obj/codec.o -o $@ -Wl,--wrap=calloc $(ZSTD_LIBS) -lm

# And engine/route.c's, with calloc wrapped too: route_plan's scratch can be refused.
$(B)/t/route: t/route.c t/tap.h engine/route.h $(B)/obj/route.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iengine -It $< $(B)/obj/route.o -o $@ -Wl,--wrap=calloc

# t/ranks.c again, static, with zstd's compress wrapped to corrupt one frame.
$(B)/t/ranks_corrupt: t/ranks.c $(B)/libluisa.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DRANKS_CORRUPT -Iengine $< -o $@ $(B)/libluisa.a -Wl,--wrap=ZSTD_compress2 $(LDLIBS)

$(B)/examples/gray_scott: examples/gray-scott/gray_scott.c engine/luisa.h $(B)/libluisa.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iengine $< -o $@ $(LINK_LUISA)

$(B)/examples/heat2d: examples/heat2d/heat2d.c engine/luisa.h $(B)/libluisa.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iengine $< -o $@ $(LINK_LUISA)

# VALGRIND=1 runs every MPI process under memcheck; any report fails the run.
# TESTS=t/026-reload.t runs some of the tests only.
TESTS ?= t/
test: deps
	@$(MAKE) --no-print-directory all $(TEST_BIN) $(EXAMPLES) $(BINDING_TESTS)
	@rm -rf $(B)/valgrind
	LUISA_BUILD=$(B) LUISA_SANITIZE=$(SANITIZE) $(if $(VALGRIND),LUISA_VALGRIND=$(CURDIR)/$(B)/valgrind) prove $(TESTS)
	@if [ -n "$(VALGRIND)" ]; then \
	  bad=$$(find $(B)/valgrind -name '*.log' -size +0); \
	  if [ -n "$$bad" ]; then cat $$bad; echo "valgrind reported errors in: $$bad"; exit 1; fi; \
	  echo "valgrind: no errors"; fi

demo: deps
	@$(MAKE) --no-print-directory all $(EXAMPLES)
	$(MPIRUN) -np 4 $(B)/examples/gray_scott --size 256 --steps 300 \
	    --script examples/gray-scott/stats.lua

$(B)/luisa.pc: Makefile
	@mkdir -p $(@D)
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: luisa\nDescription: Lua In Situ Analytics for MPI simulations\nVersion: 0.1.0\nRequires.private: luajit\nCflags: -I$${includedir}\nLibs: -L$${libdir} -lluisa\nLibs.private: -lm -lhwloc -lzstd\n' $(PREFIX) > $@

install: all $(B)/luisa.pc
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/share/luisa/lua/luisa
	install -m 644 engine/luisa.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(B)/libluisa.so.0 $(DESTDIR)$(PREFIX)/lib/libluisa.so.0
	ln -sf libluisa.so.0 $(DESTDIR)$(PREFIX)/lib/libluisa.so
	install -m 644 $(B)/libluisa.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(B)/luisa.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 644 lua/luisa.lua $(DESTDIR)$(PREFIX)/share/luisa/lua/
	install -m 644 lua/luisa/*.lua $(DESTDIR)$(PREFIX)/share/luisa/lua/luisa/

clean:
	rm -rf build

# Fortran and C++ bindings: their build and test rules (BINDING_TESTS).
include bindings/bindings.mk
include bench/bench.mk
include t/soak.mk
# Allocation failure injection (make faults).
include t/faults.mk
# libFuzzer targets (make fuzz).
include fuzz/fuzz.mk
