/*
 * large: allocations of several MiB.
 *
 * `live` slots each hold a large block; every step frees a random slot and
 * allocates a new block of a size log-uniform in [min, max] (default 1-32
 * MiB), then writes one byte in every 4 KiB page of it, as a program that
 * uses its buffer would (so an allocator that returns memory to the OS pays
 * the page faults again, and one that keeps it pays in RSS). Every 8th step
 * grows the new block by half with realloc instead, as a growing buffer
 * would.
 *
 *   large steps=600 live=4 min=1M max=32M seed=1
 */
#include "common.h"

static void touch(unsigned char *p, size_t from, size_t to, unsigned char v) {
  for (size_t o = from; o < to; o += 4096) p[o] = v;
  if (to > from) p[to - 1] = v;
}

int main(int argc, char **argv) {
  bench_which(argc, argv);
  long steps = arg_long(argc, argv, "steps", 600);
  long live = arg_long(argc, argv, "live", 4);
  size_t min = (size_t)arg_long(argc, argv, "min", 1L << 20);
  size_t max = (size_t)arg_long(argc, argv, "max", 32L << 20);
  uint64_t rng = (uint64_t)arg_long(argc, argv, "seed", 1);
  if (live < 1 || live > 1024 || min < 4096 || max < min) fail("bad arguments", 0);
  unsigned char *p[1024] = {0};
  size_t len[1024] = {0};
  double t0 = now_sec();
  for (long k = 0; k < steps; k++) {
    long i = (long)rng_below(&rng, (uint64_t)live);
    if (p[i]) {
      if (p[i][0] != (unsigned char)i || p[i][len[i] - 1] != (unsigned char)i) fail("block corrupted", len[i]);
      free(p[i]);
    }
    size_t s = rng_log_range(&rng, min, max);
    p[i] = xmalloc(s);
    touch(p[i], 0, s, (unsigned char)i);
    if ((k & 7) == 7) {
      size_t s2 = s + s / 2;
      unsigned char *q = realloc(p[i], s2);
      if (!q) fail("realloc returned NULL", s2);
      if (q[0] != (unsigned char)i || q[s - 1] != (unsigned char)i) fail("realloc lost data", s);
      touch(q, s, s2, (unsigned char)i);
      p[i] = q;
      s = s2;
    }
    len[i] = s;
  }
  for (long i = 0; i < live; i++) free(p[i]);
  printf("ok large steps=%ld live=%ld time=%.4f\n", steps, live, now_sec() - t0);
  return 0;
}
