# tests/safety: the leak report never changes, crashes, hangs or endangers
# the program it watches, and arrives where it was asked for. See run.py.
SAFE_BIN := build/tests/safety
SAFE_CC  := $(CC) -std=gnu11 -g -O1 -pthread -Wall -Wextra -Iinclude
SAFE_PROGS := $(SAFE_BIN)/progs $(SAFE_BIN)/progs_linked $(SAFE_BIN)/late_main \
              $(SAFE_BIN)/static_prog $(SAFE_BIN)/static_linked $(SAFE_BIN)/libhook.so $(SAFE_BIN)/decode \
              $(SAFE_BIN)/liballoc_stripped.so $(SAFE_BIN)/trace_foreign $(SAFE_BIN)/tsan_prog \
              $(SAFE_BIN)/asan_dyn_prog $(SAFE_BIN)/tsan_dyn_prog

$(SAFE_BIN)/progs: tests/safety/progs.c
	@mkdir -p $(dir $@)
	$(SAFE_CC) $< -ldl -o $@
$(SAFE_BIN)/progs_linked: tests/safety/progs.c build/libhahalloc.so
	@mkdir -p $(dir $@)
	$(SAFE_CC) -DLINKED $< -Lbuild -Wl,--no-as-needed -lhahalloc -Wl,--as-needed -Wl,-rpath,$(abspath build) -ldl -o $@
$(SAFE_BIN)/liblate.so: tests/safety/late.c
	@mkdir -p $(dir $@)
	$(SAFE_CC) -fPIC -shared $< -o $@
$(SAFE_BIN)/liballoc_stripped.so: tests/safety/alloc_lib.c
	@mkdir -p $(dir $@)
	$(SAFE_CC) -fPIC -shared -s $< -o $@
$(SAFE_BIN)/libhook.so: tests/safety/hook.c
	@mkdir -p $(dir $@)
	$(SAFE_CC) -fPIC -shared $< -ldl -o $@
$(SAFE_BIN)/late_main: tests/safety/late_main.c $(SAFE_BIN)/liblate.so
	$(SAFE_CC) $< -L$(SAFE_BIN) -llate -Wl,-rpath,$(abspath $(SAFE_BIN)) -o $@
$(SAFE_BIN)/decode: tests/safety/decode.c src/report/syscall_number.h
	@mkdir -p $(dir $@)
	$(SAFE_CC) $< -o $@
# ThreadSanitizer's runtime linked in (clang's), its interceptors first
$(SAFE_BIN)/tsan_prog: tests/safety/tsan_prog.c
	@mkdir -p $(dir $@)
	clang -g -O1 -pthread -fsanitize=thread $< -o $@
# gcc's sanitizers: their runtimes are shared libraries the program needs
$(SAFE_BIN)/asan_dyn_prog: tests/safety/tsan_prog.c
	@mkdir -p $(dir $@)
	$(CC) -g -O1 -pthread -fsanitize=address $< -o $@
$(SAFE_BIN)/tsan_dyn_prog: tests/safety/tsan_prog.c
	@mkdir -p $(dir $@)
	$(CC) -g -O1 -pthread -fsanitize=thread $< -o $@
$(SAFE_BIN)/static_prog: tests/safety/static_prog.c
	@mkdir -p $(dir $@)
	$(SAFE_CC) -static $< -o $@
$(SAFE_BIN)/trace_foreign: tests/safety/trace_foreign.c build/libhahalloc.a
	@mkdir -p $(dir $@)
	$(SAFE_CC) $< build/libhahalloc.a -ldl -o $@
$(SAFE_BIN)/static_linked: tests/safety/static_prog.c build/libhahalloc.a
	@mkdir -p $(dir $@)
	$(SAFE_CC) -static $< build/libhahalloc.a -ldl -o $@

.PHONY: test-safety
test-safety: lib $(SAFE_PROGS)
	python3 tests/safety/run.py build

TEST_TARGETS += test-safety
