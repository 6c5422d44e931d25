# hahalloc: build, test, bench and install.
# `make` builds build/libhahalloc.so (soname libhahalloc.so.1), build/libhahalloc.a
# and the command-line tool build/hahalloc.

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := 1.0.0

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
# The allocator must not call itself through builtins, and keeps frame
# pointers so that call sites can be captured cheaply and safely. No
# straight-line vectorizing: it turns the fast paths' few scalar stores
# into longer vector sequences.
LIBFLAGS := -DHH_VERSION=\"$(VERSION)\" -std=gnu11 -O2 -g -fPIC -pthread -fvisibility=hidden \
            -fno-omit-frame-pointer -fno-builtin-malloc -fno-builtin-free \
            -fno-builtin-calloc -fno-builtin-realloc -ftls-model=initial-exec \
            -fno-tree-slp-vectorize -Iinclude -Isrc $(WARN) $(EXTRA_CFLAGS)
# No stack protector in the allocator: a protected function loads and checks
# a canary, which the fast paths, frameless tail calls of a few instructions,
# must not pay (and where distributions turn the protector on by default, it
# would). The report's parsers read what comes from outside (/proc/self/maps,
# ELF files, suppression files, the symboliser's output) into buffers on the
# stack, which is what the protector is for: they always have it.
PROTECT  := -fno-stack-protector
PARSERS  := maps elf supp symbols
$(foreach d,build/obj build/asan/obj build/tsan/obj,$(PARSERS:%=$(d)/src/report/%.o)): PROTECT := -fstack-protector-strong

SRC     := $(sort $(wildcard src/*.c src/report/*.c))
OBJ     := $(SRC:%.c=build/obj/%.o)
# in the shared library only (src/shared/exit.c says why), but for seccomp.c
SO_SRC  := $(wildcard src/shared/*.c)
SO_OBJ  := $(SO_SRC:%.c=build/obj/%.o)
HDR     := $(wildcard include/*.h src/*.h src/report/*.h)
# ASan+UBSan build of the same code, with the malloc override left out so the
# sanitizer keeps its own malloc; tests reach the allocator through the seed API.
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -DHH_NO_OVERRIDE
ASAN_OBJ   := $(SRC:%.c=build/asan/obj/%.o)
# ThreadSanitizer build, the same way: no override, the tests use the seed API.
TSAN_FLAGS := -fsanitize=thread -DHH_NO_OVERRIDE
TSAN_OBJ   := $(SRC:%.c=build/tsan/obj/%.o)

.PHONY: lib all test tests check bench asan tsan install uninstall clean format check-format demo
lib: build/libhahalloc.so build/libhahalloc.a build/hahalloc

build/obj/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(PROTECT) $(LIBFLAGS) -c $< -o $@

build/asan/obj/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(PROTECT) $(LIBFLAGS) $(ASAN_FLAGS) -c $< -o $@

build/tsan/obj/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(PROTECT) $(LIBFLAGS) $(TSAN_FLAGS) -c $< -o $@

# libgcc's unwinder (the report's stack walks) is linked in, hidden, rather
# than taken from libgcc_s.so.1: a C program then loads one object less at
# start-up (about 0.13 ms of every process on the bench machine, most of what
# separated a bare LD_PRELOAD's start from mimalloc's), and the copy finds
# frame information through _dl_find_object like the shared one.
# Bound at load (-z now), with its relocations read-only after (-z relro):
# the loader's lazy binding of a first call (memchr in the report's first
# site capture on a new stack) saves the vector registers on the caller's
# stack, 1-2 KiB a coroutine of 4 KiB did not have (SIGSEGV inside malloc);
# and an allocator that setuid programs link keeps no writable GOT.
build/libhahalloc.so: $(OBJ) $(SO_OBJ) src/shared/hahalloc.map
	$(CC) -shared -pthread -static-libgcc -Wl,--exclude-libs,ALL -Wl,-soname,libhahalloc.so.1 -Wl,-z,nodelete \
	  -Wl,-z,now -Wl,-z,relro -Wl,--version-script=src/shared/hahalloc.map \
	  -o $@ $(OBJ) $(SO_OBJ) -ldl
	ln -sf libhahalloc.so build/libhahalloc.so.1

# A static link takes seccomp.c's prctl and syscall too: libc.a's prctl is
# weak, and nothing in libc.a calls syscall().
build/libhahalloc.a: $(OBJ) build/obj/src/shared/seccomp.o
	rm -f $@
	ar rcs $@ $(OBJ) build/obj/src/shared/seccomp.o

build/asan/libhahalloc.a: $(ASAN_OBJ)
	rm -f $@
	ar rcs $@ $(ASAN_OBJ)

asan: build/asan/libhahalloc.a

build/tsan/libhahalloc.a: $(TSAN_OBJ)
	rm -f $@
	ar rcs $@ $(TSAN_OBJ)

# Fragments owned by each part of the tree.
include tools/tools.mk
include tests/tests.mk
include tests/leak/leak.mk
include tests/safety/safety.mk
include bench/bench.mk

# `make test` runs every suite that a fragment adds to TEST_TARGETS, in order,
# and stops at the first that fails. What the suites build (the sanitizer
# libraries, the test programs) is built first, on both cores: the suites
# themselves run one at a time, as some of their checks are timed.
test: lib
	@tests/deps.sh
	@$(MAKE) --no-print-directory -j2 test-binaries asan tsan $(LEAK_PROGS) $(FAMILIAR_PROGS) $(SAFE_PROGS) >/dev/null
	@set -e; for t in $(TEST_TARGETS); do $(MAKE) --no-print-directory $$t; done; \
	echo "make test: all suites passed ($(TEST_TARGETS))"

all: lib asan build/examples/leaky $(ALL_EXTRA)

tests: test
check: test

# The main job in one command: a leaking example and its heap summary.
build/examples/leaky: examples/leaky.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O0 -g -Wall -Wextra -o $@ $<

demo: lib build/examples/leaky
	build/hahalloc -- build/examples/leaky

# hahalloc.pc is written at install time, for the PREFIX of that install.
# --no-as-needed (in push/pop-state, so the link's other libraries keep the
# mode they had): gcc passes --as-needed on Debian, which drops the library
# from a program that never calls malloc itself (only strdup, say), and the
# program then runs on glibc with no report.
PC_LIBS := -L$${libdir} -Wl,--push-state,--no-as-needed -lhahalloc -Wl,--pop-state

install: lib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: hahalloc\nDescription: fast thread-safe allocator with leak reports\nVersion: %s\nLibs: %s\nLibs.private: -pthread -ldl\nCflags: -I$${includedir}\n' '$(PREFIX)' '$(VERSION)' '$(PC_LIBS)' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/hahalloc.pc
	install -m 644 include/hahalloc.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 build/libhahalloc.so $(DESTDIR)$(PREFIX)/lib/libhahalloc.so.$(VERSION)
	ln -sf libhahalloc.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libhahalloc.so.1
	ln -sf libhahalloc.so.1 $(DESTDIR)$(PREFIX)/lib/libhahalloc.so
	install -m 644 build/libhahalloc.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 build/hahalloc $(DESTDIR)$(PREFIX)/bin/
	if [ -f docs/hahalloc.1 ]; then install -m 644 docs/hahalloc.1 $(DESTDIR)$(PREFIX)/share/man/man1/; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/hahalloc.h $(DESTDIR)$(PREFIX)/lib/libhahalloc.* \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/hahalloc.pc $(DESTDIR)$(PREFIX)/bin/hahalloc \
	      $(DESTDIR)$(PREFIX)/share/man/man1/hahalloc.1

# The project's code; the leak suite's programs (tests/leak) are left as
# written: their reports are checked line by line.
FORMAT_FILES := $(SRC) $(SO_SRC) $(HDR) $(wildcard tests/*.c tests/*.h tests/*.cpp bench/*.c bench/*.h tools/*.c)
format:
	clang-format -i $(FORMAT_FILES)

# Fails when a file is not as `make format` would leave it (CI runs it).
check-format:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build
