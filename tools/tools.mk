# The command-line tool build/hahalloc.
build/hahalloc: tools/hahalloc.c
	@mkdir -p build
	$(CC) -std=gnu11 -O2 $(WARN) -o $@ $<
