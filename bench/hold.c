/*
 * hold: a large heap of small blocks, built up and torn down.
 *
 * One thread allocates `count` blocks of 16-64 bytes and keeps them all
 * (as an interpreter's objects, a database's cache or a compiler's tree
 * do), writing a tag into each, then checks and frees them: the first
 * half in allocation order, the second half from the end, as teardowns of
 * lists and hashes go. An allocator whose cost per call grows with the
 * memory it holds (a walk of every page, of every full page) shows here,
 * and not in the churns, whose working sets stay small.
 *
 *   hold count=24000000 seed=1
 */
#include "common.h"

int main(int argc, char **argv) {
  bench_which(argc, argv);
  long count = arg_long(argc, argv, "count", 24000000);
  uint64_t rng = (uint64_t)arg_long(argc, argv, "seed", 1);
  if (count < 2) fail("bad count", 0);
  void **p = xmalloc((size_t)count * sizeof *p);
  uint8_t *len = xmalloc((size_t)count);
  double t0 = now_sec();
  for (long i = 0; i < count; i++) {
    len[i] = (uint8_t)rng_range(&rng, 16, 64);
    p[i] = xmalloc(len[i]);
    block_tag(p[i], len[i], (uint64_t)i);
  }
  double t1 = now_sec();
  long half = count / 2;
  for (long i = 0; i < half; i++) {
    if (block_check(p[i], len[i], (uint64_t)i)) fail("block corrupted", (size_t)i);
    free(p[i]);
  }
  for (long i = count - 1; i >= half; i--) {
    if (block_check(p[i], len[i], (uint64_t)i)) fail("block corrupted", (size_t)i);
    free(p[i]);
  }
  double t2 = now_sec();
  free(len);
  free(p);
  printf("ok hold count=%ld build %.3f s teardown %.3f s\n", count, t1 - t0, t2 - t1);
  return 0;
}
