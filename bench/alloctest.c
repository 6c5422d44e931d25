/*
 * alloctest: random allocations and frees with a Pareto-like size mix up to
 * 1 KiB, in the spirit of the alloc-test benchmark (single and multi-thread
 * variants in mimalloc-bench), written from its description.
 *
 * Each thread keeps `slots` slots (default 16384, a larger working set than
 * churn) and takes `steps` steps: pick a random slot; free its block if it
 * holds one; with probability 3/4 allocate a new one (so the working set
 * hovers near three quarters full). Sizes follow a Pareto law with minimum
 * 8 B and shape 1 (P(size > s) = 8/s), capped at 1 KiB: half the blocks are
 * at most 16 B, one in eight is above 64 B. The first 16 bytes and the last
 * byte of each block are written, and checked at the free.
 *
 *   alloctest threads=1 steps=8000000 slots=16384 seed=1
 */
#include "common.h"
#include <math.h>

typedef struct {
  long steps, slots;
  uint64_t seed, sum;
} job;

static size_t pareto_size(uint64_t *rng) {
  /* u in (0,1]; size = 8 / u, capped at 1024 */
  double u = (double)((rng_next(rng) >> 11) + 1) * (1.0 / 9007199254740992.0);
  double s = 8.0 / u;
  return s >= 1024.0 ? 1024 : (size_t)s;
}

static void *run(void *arg) {
  job *j = (job *)arg;
  uint64_t rng = j->seed, sum = 0;
  void **slot = calloc((size_t)j->slots, sizeof(void *));
  uint16_t *len = calloc((size_t)j->slots, sizeof(uint16_t));
  if (!slot || !len) fail("calloc", 0);
  for (long k = 0; k < j->steps; k++) {
    uint64_t r = rng_next(&rng);
    long i = (long)(((r >> 32) * (uint64_t)j->slots) >> 32);
    if (slot[i]) {
      if (block_check(slot[i], len[i], (uint64_t)i)) fail("block corrupted", len[i]);
      free(slot[i]);
      slot[i] = NULL;
    }
    if ((r & 3) != 0) {
      size_t s = pareto_size(&rng);
      char *p = xmalloc(s);
      if (s >= 16) memset(p + 8, (int)s, 8);
      block_tag(p, s, (uint64_t)i);
      slot[i] = p;
      len[i] = (uint16_t)s;
      sum += (uintptr_t)p & 0xff0;
    }
  }
  for (long i = 0; i < j->slots; i++) free(slot[i]);
  free(slot);
  free(len);
  j->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  bench_which(argc, argv);
  int threads = (int)arg_long(argc, argv, "threads", 1);
  long steps = arg_long(argc, argv, "steps", 8000000);
  long slots = arg_long(argc, argv, "slots", 16384);
  uint64_t seed = (uint64_t)arg_long(argc, argv, "seed", 1);
  if (threads < 1 || threads > 256 || slots < 1) fail("bad arguments", 0);
  job jobs[256];
  for (int t = 0; t < threads; t++) jobs[t] = (job){steps, slots, seed * 65537 + (uint64_t)t, 0};
  double t0 = now_sec();
  run_jobs(run, jobs, sizeof jobs[0], threads);
  double el = now_sec() - t0;
  uint64_t sum = 0;
  for (int t = 0; t < threads; t++) sum += jobs[t].sum;
  printf("ok alloctest threads=%d steps=%ld time=%.4f sum=%llu\n", threads, steps, el,
         (unsigned long long)(sum & 0xffff));
  return 0;
}
