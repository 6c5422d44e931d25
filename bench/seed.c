/*
 * seed: the five scenarios of the seed README, each swept over a parameter so
 * that it can be plotted as the seed did (time against the parameter, one
 * line per allocator). Every point prints "point <param> <seconds>".
 *
 *   seed mode=alloc   [count=32768] [max=32768] [reps=8]
 *       2^15 allocations of one size, then their frees, for sizes 8 B..max
 *       (powers of two). Param: block size in bytes; time per 2^15 mallocs
 *       and their frees (repetitions fall above 512 B, where page faults
 *       dominate).
 *   seed mode=calloc  [count=32] [max=16M] [reps=8]
 *       2^5 callocs of one size (zero checked at both ends and the middle,
 *       then dirtied), then their frees, for sizes 1 KiB..max. Param: block
 *       size; time per 2^5 callocs and frees.
 *   seed mode=fixed   [ops=N] [xmax=1024]
 *       N random steps over a buffer of x slots (x = 2..xmax): an empty slot
 *       gets a 1 MiB malloc, a full one is freed, so about x/2 pointers stay
 *       live. The seed used N = 2^20. Param: x; time per point.
 *   seed mode=random  [ops=N] [xmax=1024]
 *       The same with sizes log-uniform between 8 B and 1 MiB.
 *   seed mode=realloc [blocks=16] [max=4M] [reps=4]
 *       `blocks` blocks grown by reallocs from 16 B to S in steps of 1.25x,
 *       then shrunk back to 16 B, the blocks interleaved step by step so
 *       that neighbours get in the way of growing in place; S = 64 B..max
 *       (powers of four). The prefix is checked on every step. Param: S;
 *       time per grow-and-shrink cycle.
 */
#include "common.h"

static double point_alloc(size_t size, long count, long reps) {
  void **p = calloc((size_t)count, sizeof(void *));
  if (!p) fail("calloc", 0);
  double t0 = now_sec();
  for (long r = 0; r < reps; r++) {
    for (long i = 0; i < count; i++) {
      p[i] = malloc(size);
      if (!p[i]) fail("malloc returned NULL", size);
      block_tag(p[i], size, (uint64_t)i);
    }
    for (long i = 0; i < count; i++) {
      if (block_check(p[i], size, (uint64_t)i)) fail("block corrupted", size);
      free(p[i]);
    }
  }
  double el = (now_sec() - t0) / (double)reps;
  free(p);
  return el;
}

static double point_calloc(size_t size, long count, long reps) {
  unsigned char **p = calloc((size_t)count, sizeof(void *));
  if (!p) fail("calloc", 0);
  double t0 = now_sec();
  for (long r = 0; r < reps; r++) {
    for (long i = 0; i < count; i++) {
      p[i] = calloc(1, size);
      if (!p[i]) fail("calloc returned NULL", size);
      if (p[i][0] | p[i][size / 2] | p[i][size - 1]) fail("calloc memory not zero", size);
      p[i][0] = p[i][size / 2] = p[i][size - 1] = 0xa5; /* dirty it for the next round */
    }
    for (long i = 0; i < count; i++) free(p[i]);
  }
  double el = (now_sec() - t0) / (double)reps;
  free(p);
  return el;
}

static double point_buffer(long x, long ops, int random_size, uint64_t *rng) {
  void **p = calloc((size_t)x, sizeof(void *));
  size_t *sz = calloc((size_t)x, sizeof(size_t));
  if (!p || !sz) fail("calloc", 0);
  double t0 = now_sec();
  for (long k = 0; k < ops; k++) {
    long i = (long)rng_below(rng, (uint64_t)x);
    if (p[i]) {
      if (block_check(p[i], sz[i], (uint64_t)i)) fail("block corrupted", sz[i]);
      free(p[i]);
      p[i] = NULL;
    } else {
      size_t s = random_size ? rng_log_range(rng, 8, (size_t)1 << 20) : (size_t)1 << 20;
      p[i] = malloc(s);
      if (!p[i]) fail("malloc returned NULL", s);
      block_tag(p[i], s, (uint64_t)i);
      sz[i] = s;
    }
  }
  for (long i = 0; i < x; i++) free(p[i]);
  double el = now_sec() - t0;
  free(p);
  free(sz);
  return el;
}

static double point_realloc(size_t max, long blocks, long reps) {
  unsigned char **p = calloc((size_t)blocks, sizeof(void *));
  size_t steps[256];
  int n = 0;
  if (!p) fail("calloc", 0);
  for (double s = 16; n < 255; s *= 1.25) {
    size_t v = (size_t)s;
    if (v >= max) {
      steps[n++] = max;
      break;
    }
    steps[n++] = v;
  }
  double t0 = now_sec();
  for (long r = 0; r < reps; r++) {
    for (long b = 0; b < blocks; b++) {
      p[b] = malloc(16);
      if (!p[b]) fail("malloc returned NULL", 16);
      block_tag(p[b], 16, (uint64_t)b);
    }
    /* grow, then shrink back: steps[0..n-1] then steps[n-2..0] */
    for (int k = 1; k < 2 * n - 1; k++) {
      size_t s = k < n ? steps[k] : steps[2 * n - 2 - k];
      for (long b = 0; b < blocks; b++) {
        unsigned char *q = realloc(p[b], s);
        if (!q) fail("realloc returned NULL", s);
        if (block_check(q, 8, (uint64_t)b)) fail("realloc lost the prefix", s);
        q[s - 1] = (unsigned char)k;
        p[b] = q;
      }
    }
    for (long b = 0; b < blocks; b++) free(p[b]);
  }
  double el = (now_sec() - t0) / (double)reps;
  free(p);
  return el;
}

int main(int argc, char **argv) {
  bench_which(argc, argv);
  const char *mode = arg_str(argc, argv, "mode", "alloc");
  uint64_t rng = (uint64_t)arg_long(argc, argv, "seed", 1);
  double t0 = now_sec();
  int points = 0;
  if (strcmp(mode, "alloc") == 0) {
    long count = arg_long(argc, argv, "count", 1L << 15);
    long max = arg_long(argc, argv, "max", 1L << 15);
    long reps = arg_long(argc, argv, "reps", 8);
    /* Large sizes are dominated by page faults: fewer repetitions there. */
    for (size_t s = 8; s <= (size_t)max; s *= 2, points++) {
      long r = s <= 512 ? reps : reps * 512 / (long)s;
      printf("point %zu %.9f\n", s, point_alloc(s, count, r < 1 ? 1 : r));
    }
  } else if (strcmp(mode, "calloc") == 0) {
    long count = arg_long(argc, argv, "count", 1L << 5);
    long max = arg_long(argc, argv, "max", 16L << 20);
    long reps = arg_long(argc, argv, "reps", 8);
    for (size_t s = 1024; s <= (size_t)max; s *= 2, points++)
      printf("point %zu %.9f\n", s, point_calloc(s, count, reps));
  } else if (strcmp(mode, "fixed") == 0 || strcmp(mode, "random") == 0) {
    long ops = arg_long(argc, argv, "ops", 1L << 20);
    long xmax = arg_long(argc, argv, "xmax", 1024);
    int random_size = strcmp(mode, "random") == 0;
    for (long x = 2; x <= xmax; x *= 2, points++)
      printf("point %ld %.9f\n", x, point_buffer(x, ops, random_size, &rng));
  } else if (strcmp(mode, "realloc") == 0) {
    long blocks = arg_long(argc, argv, "blocks", 16);
    long max = arg_long(argc, argv, "max", 4L << 20);
    long reps = arg_long(argc, argv, "reps", 4);
    for (size_t s = 64; s <= (size_t)max; s *= 4, points++)
      printf("point %zu %.9f\n", s, point_realloc(s, blocks, reps));
  } else {
    fail("unknown mode", 0);
  }
  printf("ok seed mode=%s points=%d time=%.4f\n", mode, points, now_sec() - t0);
  return 0;
}
