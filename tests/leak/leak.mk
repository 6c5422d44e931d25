# tests/leak: the leak report on programs that leak in known ways, and the
# comparison with valgrind on real programs. `make bench-tracking` measures
# what tracking costs.
LEAK_BIN := build/tests/leak
LEAK_CC  := $(CC) -std=gnu11 -g -pthread -Iinclude -Wall -Wextra -Wno-unused-result
LEAK_PROGS := $(LEAK_BIN)/leaky_O0 $(LEAK_BIN)/leaky_O2 $(LEAK_BIN)/leaky_api $(LEAK_BIN)/leaky_cxx \
              $(LEAK_BIN)/scenarios $(LEAK_BIN)/churn $(LEAK_BIN)/live
LEAK_RPATH := -Lbuild -lhahalloc -Wl,-rpath,$(abspath build)

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
$(LEAK_BIN)/scenarios: tests/leak/scenarios.c build/libhahalloc.so
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O1 $< $(LEAK_RPATH) -o $@
$(LEAK_BIN)/live: tests/leak/live.c
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O2 $< -o $@
$(LEAK_BIN)/churn: tests/leak/churn.c
	@mkdir -p $(dir $@)
	$(LEAK_CC) -O2 $< -o $@

.PHONY: test-leak test-leak-valgrind bench-tracking
test-leak: lib $(LEAK_PROGS)
	python3 tests/leak/run.py build

test-leak-valgrind: lib
	python3 tests/leak/valgrind_compare.py build

bench-tracking: lib $(LEAK_PROGS) build/bench/churn
	python3 tests/leak/bench_tracking.py build

TEST_TARGETS += test-leak test-leak-valgrind
