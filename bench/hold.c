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
 * With rounds=R the whole build and teardown runs R times, as a program
 * that processes batches does: an allocator that gives the memory back
 * during each teardown faults it in again in the next round.
 *
 *   hold count=24000000 rounds=1 seed=1
 */
#include "common.h"

int main(int argc, char **argv) {
  bench_which(argc, argv);
  long count = arg_long(argc, argv, "count", 24000000);
  long rounds = arg_long(argc, argv, "rounds", 1);
  uint64_t rng = (uint64_t)arg_long(argc, argv, "seed", 1);
  if (count < 2 || rounds < 1) fail("bad count or rounds", 0);
  void **p = xmalloc((size_t)count * sizeof *p);
  uint8_t *len = xmalloc((size_t)count);
  double build = 0, teardown = 0;
  for (long r = 0; r < rounds; r++) {
    double t0 = now_sec();
    for (long i = 0; i < count; i++) {
      len[i] = (uint8_t)rng_range(&rng, 16, 64);
      p[i] = xmalloc(len[i]);
      block_tag(p[i], len[i], (uint64_t)(i + r));
    }
    double t1 = now_sec();
    long half = count / 2;
    for (long i = 0; i < half; i++) {
      if (block_check(p[i], len[i], (uint64_t)(i + r))) fail("block corrupted", (size_t)i);
      free(p[i]);
    }
    for (long i = count - 1; i >= half; i--) {
      if (block_check(p[i], len[i], (uint64_t)(i + r))) fail("block corrupted", (size_t)i);
      free(p[i]);
    }
    build += t1 - t0;
    teardown += now_sec() - t1;
  }
  free(len);
  free(p);
  printf("ok hold count=%ld rounds=%ld build %.3f s teardown %.3f s\n", count, rounds, build, teardown);
  return 0;
}
