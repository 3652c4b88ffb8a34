# bindings.mk: build, test and install rules for the Fortran and C++ bindings,
# included by the Makefile (which defines B, CFLAGS, SAN_FLAGS, LINK_LUISA).
#   make bindings            build/bindings/libluisa_fortran.a and luisa.mod
#   make install-bindings    luisa.hpp, luisa.f90, luisa.mod, libluisa_fortran.a
# Fortran users link  -lluisa_fortran -lluisa;  C++ users only include luisa.hpp.

BIND_FC  := mpif90
BIND_CXX := mpicxx
BIND     := $(B)/bindings
# Optimisation and debug flags follow CFLAGS; the language flags are our own.
BIND_OPT := $(filter -O% -g%,$(CFLAGS))
BIND_FFLAGS   := $(BIND_OPT) -std=f2018 -Wall -Wextra -Werror -fPIC $(SAN_FLAGS)
# OMPI_SKIP_MPICXX: the deprecated MPI C++ bindings are not wanted (nor linked).
BIND_CXXFLAGS := $(BIND_OPT) -std=c++17 -Wall -Wextra -Werror -DOMPI_SKIP_MPICXX -DMPICH_SKIP_MPICXX $(SAN_FLAGS)

BINDING_TESTS := $(B)/t/bindings_fortran $(B)/t/bindings_cpp

.PHONY: bindings install-bindings
bindings: $(BIND)/libluisa_fortran.a

$(BIND)/luisa_fortran.o: bindings/luisa_fortran.c engine/luisa.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -Iengine -c $< -o $@

# Also writes $(BIND)/luisa.mod (-J), which the test build and install read.
$(BIND)/luisa.o: bindings/luisa.f90
	@mkdir -p $(@D)
	$(BIND_FC) $(BIND_FFLAGS) -J$(BIND) -c $< -o $@

$(BIND)/libluisa_fortran.a: $(BIND)/luisa.o $(BIND)/luisa_fortran.o
	rm -f $@
	ar rcs $@ $^

$(B)/t/bindings_fortran: t/bindings_fortran.f90 $(BIND)/libluisa_fortran.a $(B)/libluisa.so
	@mkdir -p $(@D)
	$(BIND_FC) $(BIND_FFLAGS) -I$(BIND) -J$(@D) $< -o $@ $(BIND)/libluisa_fortran.a $(LINK_LUISA)

$(B)/t/bindings_cpp: t/bindings_cpp.cpp bindings/luisa.hpp engine/luisa.h $(B)/libluisa.so
	@mkdir -p $(@D)
	$(BIND_CXX) $(BIND_CXXFLAGS) -Iengine -Ibindings $< -o $@ $(LINK_LUISA)

install: install-bindings
install-bindings: $(BIND)/libluisa_fortran.a
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib
	install -m 644 bindings/luisa.hpp bindings/luisa.f90 $(BIND)/luisa.mod $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BIND)/libluisa_fortran.a $(DESTDIR)$(PREFIX)/lib/
