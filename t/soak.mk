# soak.mk: make soak: 10,000 Gray-Scott steps on 2 ranks with windows, steering, region moves
# and a reload every 500 steps, checking that memory stays flat (t/soak.c). Not part of make test.
.PHONY: soak
soak: deps
	@$(MAKE) --no-print-directory all $(B)/t/soak
	@LUISA_BUILD=$(B) sh -c '. t/lib.sh && mpi 2 $(B)/t/soak'
