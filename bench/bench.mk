# Benchmarks (included by the top-level Makefile).
#
# The benchmark programs are plain C, built -O2 -pthread and NOT linked to
# hahalloc: the driver (bench/run.py) injects each allocator with LD_PRELOAD,
# so the same binary runs under glibc (no preload), hahalloc, mimalloc,
# jemalloc and tcmalloc.
#
#   make bench            full run (under 20 minutes on 2 cores): table in
#                         docs/BENCHMARKS.md, plots in py/img/
#   make bench QUICK=1    short run (under 2 minutes): tables printed and in
#                         build/bench/BENCHMARKS.md, plots in build/bench/img/;
#                         the committed results are left as they are
#   make bench-docs       docs/BENCHMARKS.md and py/img/ from the last full
#                         run's build/bench/results.json, running nothing
#   make bench-smoke      every benchmark once, tiny, under hahalloc and glibc
#   bench/callgrind.sh build/libhahalloc.so
#                         instructions per malloc/free pair on the churn

BENCH_CC     ?= $(CC)
BENCH_CFLAGS := -std=gnu11 -O2 -g -pthread -Wall -Wextra $(BENCH_EXTRA_CFLAGS)
BENCH_NAMES  := $(basename $(notdir $(wildcard bench/*.c)))
BENCH_BINS   := $(BENCH_NAMES:%=build/bench/%)
BENCH_PY     := /usr/bin/python3
BENCH_QUICK  := $(filter-out 0,$(QUICK))
BENCH_ARGS   := $(if $(BENCH_QUICK),--quick,--write-docs) $(BENCH_OPTS)
BENCH_IMG    := $(if $(BENCH_QUICK),build/bench/img,py/img)

ALL_EXTRA += $(BENCH_BINS)

.PHONY: bench bench-bins bench-smoke bench-plots bench-docs

build/bench/%: bench/%.c bench/common.h
	@mkdir -p build/bench
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ $< -lm

bench-bins: $(BENCH_BINS)

# Runs the workloads, prints the tables, writes build/bench/results.json and
# build/bench/BENCHMARKS.md, then draws the plots. A full run of every
# workload also writes docs/BENCHMARKS.md and py/img/*.png; QUICK=1 (or
# BENCH_OPTS=--only/--reps) leaves them alone.
bench: lib $(BENCH_BINS)
	$(BENCH_PY) bench/run.py $(BENCH_ARGS)
	$(BENCH_PY) py/plot.py build/bench/results.json --out $(BENCH_IMG)

# Redraw the plots from the last results without running anything (into
# build/bench/img: bench-docs updates the committed ones).
bench-plots:
	$(BENCH_PY) py/plot.py build/bench/results.json

# The committed results from the last full run's results, running nothing.
bench-docs:
	$(BENCH_PY) bench/run.py --report-only
	$(BENCH_PY) py/plot.py build/bench/results.json --out py/img

bench-smoke: lib $(BENCH_BINS)
	$(BENCH_PY) bench/run.py --smoke
