# Benchmarks (included by the top-level Makefile).
#
# The benchmark programs are plain C, built -O2 -pthread and NOT linked to
# hahalloc: the driver (bench/run.py) injects each allocator with LD_PRELOAD,
# so the same binary runs under glibc (no preload), hahalloc, mimalloc,
# jemalloc and tcmalloc.
#
#   make bench MIMALLOC_BENCH=DIR
#                         full run (1-1.5 hours on 2 cores: under mimalloc
#                         and jemalloc, malloc-large alone takes 4-5 minutes
#                         a run on this VM, where a page fault costs ~24 us) of
#                         mimalloc-bench's programs and ours: tables in
#                         docs/BENCHMARKS.md and README.md, plots in py/img/.
#                         DIR is a checkout of github.com/daanx/mimalloc-bench
#                         whose benchmarks its own build has built (nothing
#                         here builds it: see README.md)
#   make bench            our workloads only (about 15 minutes); the
#                         committed results are left as they are
#   make bench QUICK=1    short run (under 2 minutes): tables printed and in
#                         build/bench/BENCHMARKS.md, plots in build/bench/img/;
#                         the committed results are left as they are
#   make bench-docs       docs/BENCHMARKS.md and py/img/ from the last full
#                         run's build/bench/results.json, running nothing
#   make bench-smoke      every benchmark once, tiny, under hahalloc and glibc
#   make bench-check      the dependencies only: matplotlib for /usr/bin/python3,
#                         the peers' Debian packages, MIMALLOC_BENCH's programs
#
# BENCH_COLUMNS=a,b,... picks the columns (default hahalloc, hahalloc-report,
# glibc, mimalloc, jemalloc, tcmalloc; also hahalloc-nosummary), and
# BENCH_OPTS passes more options to bench/run.py (--only, --reps,
# --add-columns, --allow-missing: see bench/run.py --help).
#   bench/callgrind.sh build/libhahalloc.so
#                         instructions per malloc/free pair on the churn

BENCH_CC     ?= $(CC)
BENCH_CFLAGS := -std=gnu11 -O2 -g -pthread -Wall -Wextra $(BENCH_EXTRA_CFLAGS)
BENCH_NAMES  := $(basename $(notdir $(wildcard bench/*.c)))
BENCH_BINS   := $(BENCH_NAMES:%=build/bench/%)
BENCH_PY     := /usr/bin/python3
BENCH_QUICK  := $(filter-out 0,$(QUICK))
BENCH_ARGS   := $(if $(BENCH_QUICK),--quick,--write-docs) \
                $(if $(MIMALLOC_BENCH),--mimalloc-bench=$(MIMALLOC_BENCH)) \
                $(if $(BENCH_COLUMNS),--columns=$(BENCH_COLUMNS)) $(BENCH_OPTS)
BENCH_IMG    := $(if $(BENCH_QUICK),build/bench/img,py/img)

ALL_EXTRA += $(BENCH_BINS)

.PHONY: bench bench-bins bench-smoke bench-plots bench-docs bench-check

build/bench/%: bench/%.c bench/common.h
	@mkdir -p build/bench
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ $< -lm

bench-bins: $(BENCH_BINS)

# Runs the workloads, prints the tables, writes build/bench/results.json and
# build/bench/BENCHMARKS.md, then draws the plots. A full run of every
# workload also writes docs/BENCHMARKS.md and py/img/*.png; QUICK=1 (or
# BENCH_OPTS=--only/--reps) leaves them alone.
# The dependencies are checked before anything is built or run.
bench: bench-check
	@$(MAKE) --no-print-directory lib bench-bins
	$(BENCH_PY) bench/run.py $(BENCH_ARGS)
	$(BENCH_PY) py/plot.py build/bench/results.json --out $(BENCH_IMG)

bench-check:
	@test -x $(BENCH_PY) || { echo "make bench: $(BENCH_PY) not found (apt-get install python3)"; exit 2; }
	@$(BENCH_PY) bench/run.py --check-external $(BENCH_ARGS)

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
