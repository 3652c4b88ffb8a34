# faults.mk: allocation failure injection (make faults, t/035-faults.t),
# included by the Makefile. The engine's own objects are linked again with
# their allocator calls wrapped (-Wl,--wrap) into $(B)/fault/libluisa.so,
# beside t/faults/fault.c, which counts them and refuses the chosen one.
FAULT      := $(B)/fault
FAULT_WRAP := malloc calloc realloc reallocarray free strdup strndup posix_memalign aligned_alloc
# Allocating libc calls whose blocks the wrappers would not see being made.
FAULT_UNSEEN := memalign|valloc|pvalloc|getline|getdelim|asprintf|vasprintf|realpath|open_memstream|wcsdup|scandir
FAULT_EMPTY :=
FAULT_LDFLAGS := -Wl,$(subst $(FAULT_EMPTY) $(FAULT_EMPTY),$(comma),$(FAULT_WRAP:%=--wrap=%))

$(FAULT)/fault.o: t/faults/fault.c t/faults/fault.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

# The Lua heap (engine/host.c's allocator) is left out: it is capped and
# tested by t/027-safety.t, and counting its thousands of blocks would make
# every life as many runs. host.o calls the C library's allocator directly.
FAULT_OBJ := $(filter-out $(B)/obj/host.o,$(OBJ)) $(FAULT)/host.o

$(FAULT)/host.o: $(B)/obj/host.o
	@mkdir -p $(@D)
	objcopy $(foreach f,malloc calloc realloc free,--redefine-sym $(f)=__real_$(f)) $< $@

$(FAULT)/libluisa.so: $(FAULT_OBJ) $(FAULT)/fault.o
	@u=$$(nm -u $(OBJ) | awk '{ print $$2 }' | grep -xE '$(FAULT_UNSEEN)' | sort -u | tr '\n' ' '); \
	  [ -z "$$u" ] || echo "faults.mk: warning: the engine allocates through $$u: not counted nor refused"
	$(CC) -shared $(SAN_FLAGS) -Wl,-soname,libluisa.so.0 $(FAULT_LDFLAGS) -o $@.0 $^ $(LDLIBS)
	ln -sf libluisa.so.0 $@

$(FAULT)/faults: t/faults/life.c t/faults/site.c t/faults/site.h t/faults/fault.h t/tap.h engine/luisa.h \
                 $(FAULT)/libluisa.so
	$(CC) $(CFLAGS) -Iengine -It -It/faults $< t/faults/site.c -o $@ \
	  -L$(FAULT) -Wl,-rpath,$(CURDIR)/$(FAULT) -lluisa $(LDLIBS)

# make test builds the driver too; t/035-faults.t runs it, leaving out on 2
# ranks the crashes and hangs t/faults/known lists, which make faults runs.
TEST_BIN += $(FAULT)/faults

.PHONY: faults
faults: deps
	@$(MAKE) --no-print-directory $(FAULT)/faults
	LUISA_BUILD=$(B) LUISA_SANITIZE=$(SANITIZE) LUISA_FAULTS_ALL=1 prove -v t/035-faults.t
