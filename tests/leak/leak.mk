# tests/leak: the leak report on programs that leak in known ways (run.py),
# valgrind's and LeakSanitizer's vocabulary, suppressions, stacks, the
# leak-check API and the profile (familiar.py), and the comparison with
# valgrind on real programs. `make bench-tracking` measures
# what tracking costs.
LEAK_BIN := build/tests/leak
LEAK_CC  := $(CC) -std=gnu11 -g -pthread -Iinclude -Wall -Wextra -Wno-unused-result
LEAK_PROGS := $(LEAK_BIN)/leaky_O0 $(LEAK_BIN)/leaky_O2 $(LEAK_BIN)/leaky_api $(LEAK_BIN)/leaky_cxx \
              $(LEAK_BIN)/heuristics $(LEAK_BIN)/vector_end \
              $(LEAK_BIN)/scenarios $(LEAK_BIN)/churn $(LEAK_BIN)/live $(LEAK_BIN)/nopie \
              $(LEAK_BIN)/quick_exit_old $(LEAK_BIN)/no_pagemap_scan
# the programs of tests/leak/familiar.py
FAMILIAR_PROGS := $(LEAK_BIN)/containers_O0 $(LEAK_BIN)/containers_O2 $(LEAK_BIN)/userline_g \
              $(LEAK_BIN)/userline_nog $(LEAK_BIN)/userline_strip $(LEAK_BIN)/checks $(LEAK_BIN)/peak
LEAK_RPATH := -Lbuild -lhahalloc -Wl,-rpath,$(abspath build)

# built without PIE, taking malloc's address: its canonical address is then
# the program's PLT stub
$(LEAK_BIN)/nopie: tests/leak/nopie.c
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O1 -fno-pic -no-pie $< -o $@
$(LEAK_BIN)/leaky_O0: tests/leak/leaky.c
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O0 $< -o $@
$(LEAK_BIN)/leaky_O2: tests/leak/leaky.c
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O2 $< -o $@
$(LEAK_BIN)/leaky_api: tests/leak/leaky.c build/libhahalloc.so
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O0 -DUSE_API $< $(LEAK_RPATH) -o $@
$(LEAK_BIN)/leaky_cxx: tests/leak/leaky_cxx.cpp
	@mkdir -p $(dir $@)
	$(CXX) -O0 -g -Wall -Wextra $< -o $@
$(LEAK_BIN)/quick_exit_old: tests/leak/quick_exit_old.cpp
	@mkdir -p $(dir $@)
	$(CXX) -O1 -g -Wall -Wextra $< -o $@
$(LEAK_BIN)/heuristics: tests/leak/heuristics.cpp
	@mkdir -p $(dir $@)
	$(CXX) -O1 -g -Wall -Wextra $< -o $@
$(LEAK_BIN)/vector_end: tests/leak/vector_end.cpp
	@mkdir -p $(dir $@)
	$(CXX) -O1 -g -Wall -Wextra $< -o $@
$(LEAK_BIN)/scenarios: tests/leak/scenarios.c build/libhahalloc.so $(LEAK_BIN)/libdyntls.so
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O1 $< $(LEAK_RPATH) -ldl -o $@
# opened with dlopen by the scenario dlopen_tls_joined
$(LEAK_BIN)/libdyntls.so: tests/leak/dyntls.c
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O1 -shared -fPIC $< -o $@
# runs a program with PAGEMAP_SCAN refused: the scan's mincore fallback
$(LEAK_BIN)/no_pagemap_scan: tests/leak/no_pagemap_scan.c $(LEAK_BIN)/libno_pagemap_scan.so
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O1 $< -o $@
$(LEAK_BIN)/libno_pagemap_scan.so: tests/leak/no_pagemap_scan.c
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O1 -DSHIM -shared -fPIC $< -o $@
$(LEAK_BIN)/live: tests/leak/live.c
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O2 $< -o $@
$(LEAK_BIN)/churn: tests/leak/churn.c
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O2 $< -o $@

$(LEAK_BIN)/containers_O0: tests/leak/containers.cpp
	@mkdir -p $(dir $@)
	$(CXX) -O0 -g -Wall -Wextra $< -o $@
$(LEAK_BIN)/containers_O2: tests/leak/containers.cpp
	@mkdir -p $(dir $@)
	$(CXX) -O2 -g -Wall -Wextra $< -o $@
$(LEAK_BIN)/userline_g: tests/leak/userline.c
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O0 $< -o $@
# the same without -g: no line table, names from the symbol table only
$(LEAK_BIN)/userline_nog: tests/leak/userline.c
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O0 -g0 $< -o $@
# stripped: no symbol table but the exported functions'
$(LEAK_BIN)/userline_strip: $(LEAK_BIN)/userline_g
	strip -o $@ $<
$(LEAK_BIN)/checks: tests/leak/checks.c build/libhahalloc.so
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O1 $< $(LEAK_RPATH) -o $@
$(LEAK_BIN)/peak: tests/leak/peak.c
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O1 $< -o $@

.PHONY: test-leak test-leak-valgrind bench-tracking
test-leak: lib $(LEAK_PROGS) $(FAMILIAR_PROGS)
	python3 tests/leak/run.py build
	python3 tests/leak/familiar.py build

test-leak-valgrind: lib
	python3 tests/leak/valgrind_compare.py build

bench-tracking: lib $(LEAK_PROGS) build/bench/churn
	python3 tests/leak/bench_tracking.py build

TEST_TARGETS += test-leak test-leak-valgrind
