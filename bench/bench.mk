# Benchmarks (included by the top-level Makefile).
#
# The benchmark programs are plain C, built -O2 -pthread and NOT linked to
# hahalloc: the driver (bench/run.py) injects each allocator with LD_PRELOAD,
# so the same binary runs under glibc (no preload), hahalloc, mimalloc,
# jemalloc and tcmalloc.
#
#   make bench            full run (under 20 minutes on 2 cores): table in
#                         docs/BENCHMARKS.md, plots in py/img/
#   make bench QUICK=1    short run (under 2 minutes), same outputs
#   make bench-smoke      every benchmark once, tiny, under hahalloc and glibc
#   bench/callgrind.sh build/libhahalloc.so
#                         instructions per malloc/free pair on the churn

BENCH_CC     ?= $(CC)
BENCH_CFLAGS := -std=gnu11 -O2 -g -pthread -Wall -Wextra $(BENCH_EXTRA_CFLAGS)
BENCH_NAMES  := $(basename $(notdir $(wildcard bench/*.c)))
BENCH_BINS   := $(BENCH_NAMES:%=build/bench/%)
BENCH_PY     := /usr/bin/python3
BENCH_ARGS   := $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_OPTS)

ALL_EXTRA += $(BENCH_BINS)

.PHONY: bench bench-bins bench-smoke bench-plots

build/bench/%: bench/%.c bench/common.h
	@mkdir -p build/bench
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ $< -lm

bench-bins: $(BENCH_BINS)

# Runs the workloads, prints the tables, writes docs/BENCHMARKS.md and
# build/bench/results.json, then draws py/img/*.png from the results.
bench: lib $(BENCH_BINS)
	$(BENCH_PY) bench/run.py $(BENCH_ARGS)
	$(BENCH_PY) py/plot.py build/bench/results.json

# Redraw the plots from the last results without running anything.
bench-plots:
	$(BENCH_PY) py/plot.py build/bench/results.json

bench-smoke: lib $(BENCH_BINS)
	$(BENCH_PY) bench/run.py --smoke
