# bindings.mk: build and test rules for the Fortran and C++ bindings.
BINDING_TESTS :=
