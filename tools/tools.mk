# The command-line tool: build/hahalloc runs a program with the library
# preloaded (see docs/hahalloc.1).
build/hahalloc: tools/hahalloc.c src/optable.h src/procstart.h
	@mkdir -p build
	$(CC) -std=gnu11 -O2 -g $(WARN) -Isrc -DHH_VERSION=\"$(VERSION)\" -o $@ $<
