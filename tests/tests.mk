# tests/tests.mk: the test suites, included by the top-level Makefile.
#
#   test-unit      the seed API, bad pointers (death tests), threads, memory
#                  (RSS, metadata, out of memory) and the reports, against
#                  build/libhahalloc.so
#   test-drop-in   the malloc family, LD_PRELOAD, C++ new/delete
#   test-asan      the seed API and the thread stress against the ASan+UBSan
#                  build (build/asan/libhahalloc.a)
#   test-tsan      the thread tests against the ThreadSanitizer build
#                  (build/tsan/libhahalloc.a, `make tsan` builds both); no
#                  race may be reported (tests/tsan.supp says why each
#                  suppression, if any, is benign)
#   test-valgrind  the seed API tests under valgrind
#   test-clients   real programs under LD_PRELOAD, their results compared
#                  with a plain run (tests/clients/run.py)
#
# Each runs its cmocka binaries in turn and fails when one of them fails.
# Test binaries are built in build/tests/. The suites run with
# HAHALLOC_SUMMARY=0 so that their output is cmocka's; the tests that are
# about the summary set their children's environment themselves.

TEST_TARGETS += test-unit test-drop-in test-asan test-tsan test-valgrind test-clients

.PHONY: test-unit test-drop-in test-asan test-tsan test-valgrind test-clients test-binaries

TB          := build/tests
TEST_CC     ?= $(CC)
TEST_CXX    ?= g++
# -fno-builtin: calls such as malloc(SIZE_MAX) or free(&local) are made as
# written instead of being folded or warned away by the compiler.
TEST_CFLAGS := -std=gnu11 -O2 -g -pthread -fno-builtin -fno-omit-frame-pointer \
               -Wall -Wextra \
               -Iinclude -Itests -DHH_BUILD_DIR='"$(CURDIR)/build"' $(EXTRA_TEST_CFLAGS)
TEST_SOLIB  := -Lbuild -Wl,-rpath,$(CURDIR)/build -lhahalloc
TEST_LIBS   := -lcmocka -pthread -ldl
TEST_HDR    := tests/common.h include/hahalloc.h
# Every test binary runs under a time limit, so a deadlock fails the suite.
TEST_RUN    := HAHALLOC_SUMMARY=0 timeout -k 10 600

UNIT_TESTS   := test_api test_errors test_threads test_memory test_report
DROPIN_TESTS := test_dropin
ASAN_TESTS   := test_api test_threads

test-binaries: $(UNIT_TESTS:%=$(TB)/%) $(DROPIN_TESTS:%=$(TB)/%) $(TB)/preload_probe \
               $(TB)/cxx_new $(TB)/cxx_new_preload

$(TB)/common.o: tests/common.c $(TEST_HDR)
	@mkdir -p $(TB)
	$(TEST_CC) $(TEST_CFLAGS) -c $< -o $@

$(TB)/test_%: tests/test_%.c $(TB)/common.o $(TEST_HDR) build/libhahalloc.so
	$(TEST_CC) $(TEST_CFLAGS) -o $@ $< $(TB)/common.o $(TEST_SOLIB) $(TEST_LIBS)

# A program that never heard of hahalloc, for LD_PRELOAD.
$(TB)/preload_probe: tests/preload_probe.c
	@mkdir -p $(TB)
	$(TEST_CC) $(TEST_CFLAGS) -o $@ $< -ldl

$(TB)/cxx_new: tests/cxx_new.cpp include/hahalloc.h build/libhahalloc.so
	@mkdir -p $(TB)
	$(TEST_CXX) -std=c++17 -O2 -g -Wall -Wextra -fno-builtin -Iinclude -o $@ $< $(TEST_SOLIB) -ldl

$(TB)/cxx_new_preload: tests/cxx_new.cpp
	@mkdir -p $(TB)
	$(TEST_CXX) -std=c++17 -O2 -g -Wall -Wextra -fno-builtin -DVIA_DLSYM -o $@ $< -ldl

test-unit: lib $(UNIT_TESTS:%=$(TB)/%)
	@echo "== test-unit: the seed API, bad input, threads, memory, reports"
	@set -e; for t in $(UNIT_TESTS); do $(TEST_RUN) $(TB)/$$t; done

test-drop-in: lib $(DROPIN_TESTS:%=$(TB)/%) $(TB)/preload_probe $(TB)/cxx_new $(TB)/cxx_new_preload
	@echo "== test-drop-in: the malloc family, LD_PRELOAD, C++"
	@set -e; for t in $(DROPIN_TESTS); do $(TEST_RUN) $(TB)/$$t; done
	@echo "== test-drop-in again, with the report on (ranges zeroed as they are handed out), then with the guard"
	@set -e; for t in $(DROPIN_TESTS); do \
	  HAHALLOC_SUMMARY=1 HAHALLOC_OUTPUT=$(CURDIR)/$(TB)/$$t-report.txt timeout -k 10 600 $(TB)/$$t; \
	  HAHALLOC_SUMMARY=1 HAHALLOC_GUARD=1 HAHALLOC_OUTPUT=$(CURDIR)/$(TB)/$$t-guard.txt timeout -k 10 600 $(TB)/$$t; done

# ---------------------------------------------------------------- ASan+UBSan

TB_ASAN          := $(TB)/asan
TEST_ASAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -DHH_TEST_ASAN

$(TB_ASAN)/common.o: tests/common.c $(TEST_HDR)
	@mkdir -p $(TB_ASAN)
	$(TEST_CC) $(TEST_CFLAGS) $(TEST_ASAN_FLAGS) -c $< -o $@

$(TB_ASAN)/test_%: tests/test_%.c $(TB_ASAN)/common.o $(TEST_HDR) build/asan/libhahalloc.a
	$(TEST_CC) $(TEST_CFLAGS) $(TEST_ASAN_FLAGS) -o $@ $< $(TB_ASAN)/common.o build/asan/libhahalloc.a $(TEST_LIBS)

test-asan: asan $(ASAN_TESTS:%=$(TB_ASAN)/%)
	@echo "== test-asan: the seed API and the thread stress against the ASan+UBSan build"
	@set -e; for t in $(ASAN_TESTS); do \
	  ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(TEST_RUN) $(TB_ASAN)/$$t; done

# ---------------------------------------------------------------- ThreadSanitizer

TB_TSAN         := $(TB)/tsan
TEST_TSAN_FLAGS := -fsanitize=thread -DHH_TEST_TSAN
TSAN_TESTS      := test_threads test_api

$(TB_TSAN)/common.o: tests/common.c $(TEST_HDR)
	@mkdir -p $(TB_TSAN)
	$(TEST_CC) $(TEST_CFLAGS) $(TEST_TSAN_FLAGS) -c $< -o $@

$(TB_TSAN)/test_%: tests/test_%.c $(TB_TSAN)/common.o $(TEST_HDR) build/tsan/libhahalloc.a
	$(TEST_CC) $(TEST_CFLAGS) $(TEST_TSAN_FLAGS) -o $@ $< $(TB_TSAN)/common.o build/tsan/libhahalloc.a $(TEST_LIBS)

tsan: build/tsan/libhahalloc.a $(TSAN_TESTS:%=$(TB_TSAN)/%)

# halt_on_error: a race fails the run at once (exit 66), whatever the test says.
# die_after_fork=0: the fork test starts threads in the child of a threaded
# process, which TSan supports without promising to find races there.
test-tsan: tsan
	@echo "== test-tsan: the thread tests against the ThreadSanitizer build"
	@set -e; for t in $(TSAN_TESTS); do \
	  TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 die_after_fork=0 suppressions=$(CURDIR)/tests/tsan.supp" \
	  $(TEST_RUN) $(TB_TSAN)/$$t; done

# ---------------------------------------------------------------- valgrind

test-valgrind: lib $(TB)/test_api
	@echo "== test-valgrind: the seed API tests under valgrind"
	@command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
	$(TEST_RUN) valgrind -q --error-exitcode=1 --leak-check=no $(TB)/test_api

# ---------------------------------------------------------------- real programs

# Each client's preloaded job runs twice, both compared with its one plain
# run. First with no HAHALLOC_* variable, as a user meets
# the library first: a silent drop-in malloc, whose results must be those
# of the C library's. Then with the reports sent to files (HAHALLOC_OUTPUT):
# every process must have written a complete report, and the results must
# still be the same: nothing of a report lands in a program's output (the
# git client collects fsck's stderr too).
CLIENT_REPORTS := build/tests/client-reports
test-clients: lib
	@echo "== test-clients: real programs with LD_PRELOAD=build/libhahalloc.so, then again with each process writing its exit report to a file"
	@rm -rf $(CLIENT_REPORTS) && mkdir -p $(CLIENT_REPORTS)
	python3 tests/clients/run.py build/libhahalloc.so --again HAHALLOC_OUTPUT=$(CURDIR)/$(CLIENT_REPORTS)/%p.txt
	@n=$$(ls $(CLIENT_REPORTS) | wc -l); \
	 bad=$$(grep -L 'LEAK SUMMARY' $(CLIENT_REPORTS)/*.txt | wc -l); \
	 echo "exit reports written by the clients' processes: $$n, incomplete: $$bad"; \
	 [ $$n -gt 50 ] && [ $$bad -eq 0 ]
