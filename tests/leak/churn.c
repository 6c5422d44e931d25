/* Small-object churn (issue 2's workload): a working set of blocks, sizes
 * mostly 8-128 bytes with a tail to 32 KiB, one random block replaced per
 * step. Allocations come from a few call sites at different depths, as in
 * a real program. At the end a slice of the set is dropped (leaked), so a
 * leak-finding run has something to find.
 *
 * usage: churn STEPS [WORKING_SET] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static size_t pick_size(void) {
  uint64_t r = next();
  if ((r & 63) == 0) return 129 + (r >> 8) % (32 * 1024 - 129);
  return 8 + (r >> 8) % 121;
}

__attribute__((noinline)) static void *make_a(size_t n) { return malloc(n); }
__attribute__((noinline)) static void *make_b(size_t n) {
  void *p = make_a(n);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

int main(int argc, char **argv) {
  long steps = argc > 1 ? atol(argv[1]) : 10000000;
  size_t ws = argc > 2 ? (size_t)atol(argv[2]) : 4096;
  void **set = calloc(ws, sizeof *set);
  for (size_t i = 0; i < ws; i++) set[i] = make_a(pick_size());
  for (long s = 0; s < steps; s++) {
    size_t i = next() % ws, n = pick_size();
    free(set[i]);
    char *p = (s & 1) ? make_a(n) : make_b(n);
    p[0] = (char)s;
    set[i] = p;
  }
  size_t leaked = ws / 16;
  for (size_t i = 0; i < leaked; i++) set[i] = NULL; /* lost */
  unsigned long sum = 0;
  for (size_t i = leaked; i < ws; i++) sum += (unsigned char)((char *)set[i])[0];
  printf("churn: %ld steps, checksum %lu\n", steps, sum);
  return 0;
}
