#!/bin/sh
# Instructions per malloc/free pair on the small-object churn, with callgrind.
#
#   bench/callgrind.sh LIB [STEPS] [churn args...]
#
# LIB is a path to a malloc library to preload (build/libhahalloc.so), or one
# of: glibc (no preload), mimalloc, jemalloc, tcmalloc, hahalloc. STEPS
# defaults to 1000000 (a few seconds under callgrind). Extra arguments go to
# build/bench/churn (e.g. threads=2, slots=65536).
#
# Only the instructions executed inside bench_malloc and bench_free (the
# churn's non-inlined wrappers around malloc and free) are collected
# (--toggle-collect), so the totals are the allocator's own cost, the
# wrapper's few instructions included. Prints instructions per malloc, per
# free and per pair, then the functions where they are spent. The raw
# profile stays in build/bench/callgrind.NAME.out for callgrind_annotate or
# kcachegrind. Instruction counts are repeatable on a noisy machine, which
# wall times are not. HAHALLOC_* variables are passed through.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIB=${1:?usage: bench/callgrind.sh LIB [STEPS] [churn args...]}
STEPS=${2:-1000000}
[ $# -ge 2 ] && shift 2 || shift 1
SLOTS=4096

case "$LIB" in
  glibc) PRE=""; NAME=glibc ;;
  hahalloc) PRE="$ROOT/build/libhahalloc.so"; NAME=hahalloc ;;
  mimalloc) PRE=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2; NAME=mimalloc ;;
  jemalloc) PRE=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2; NAME=jemalloc ;;
  tcmalloc) PRE=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4; NAME=tcmalloc ;;
  *) PRE=$(readlink -f "$LIB"); NAME=$(basename "$LIB" | sed 's/\.so.*//; s/^lib//') ;;
esac
if [ -n "$PRE" ] && [ ! -f "$PRE" ]; then echo "callgrind.sh: no such library: $PRE" >&2; exit 2; fi
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
BIN="$ROOT/build/bench/churn"
[ -x "$BIN" ] || make -C "$ROOT" --no-print-directory build/bench/churn >/dev/null
OUT="$ROOT/build/bench/callgrind.$NAME.out"
LOG="$ROOT/build/bench/callgrind.$NAME.log"

echo "callgrind: churn steps=$STEPS slots=$SLOTS $* under ${PRE:-glibc (no preload)}"
env ${PRE:+LD_PRELOAD="$PRE"} valgrind --tool=callgrind --callgrind-out-file="$OUT" \
  --toggle-collect=bench_malloc --toggle-collect=bench_free \
  "$BIN" steps="$STEPS" slots="$SLOTS" "$@" >"$LOG.stdout" 2>"$LOG"
cat "$LOG.stdout"
PAIRS=$(sed -n 's/.* pairs=\([0-9]*\).*/\1/p' "$LOG.stdout")
[ -n "$PAIRS" ] || { echo "callgrind.sh: the churn did not finish; see $LOG" >&2; exit 1; }

callgrind_annotate --auto=no --inclusive=yes "$OUT" >"$OUT.incl.txt" 2>/dev/null
callgrind_annotate --auto=no --inclusive=no "$OUT" >"$OUT.excl.txt" 2>/dev/null
# Lines look like "12,345,678 (45.67%)  file.c:function [object]"
ir_of() { awk -v f="$1" '{ for (i = 1; i <= NF; i++) if ($i ~ ":"f"$" || $i == f) { gsub(",", "", $1); print $1; exit } }' "$OUT.incl.txt"; }
M=$(ir_of bench_malloc); F=$(ir_of bench_free)
TOTAL=$(sed -n 's/^summary: *//p; s/^events: *//;' "$OUT" | tail -1)
awk -v m="${M:-0}" -v f="${F:-0}" -v p="$PAIRS" -v t="${TOTAL:-0}" 'BEGIN {
  printf "pairs (malloc+free): %d\n", p
  printf "instructions per malloc: %.1f\n", m / p
  printf "instructions per free:   %.1f\n", f / p
  printf "instructions per pair:   %.1f   (all collected: %.1f)\n", (m + f) / p, t / p
}'
echo "where they go (exclusive, top 15):"
awk '/^-+$/ { n++; next } n >= 4 && /PROGRAM TOTALS/ { next } n >= 4 && NF >= 2 && $1 ~ /^[0-9,]+$/ { print; if (++k == 15) exit }' "$OUT.excl.txt"
echo "profile: $OUT (callgrind_annotate --inclusive=yes $OUT)"
