/*
 * churn: small-object churn (issue 2, workloads 1 and 2).
 *
 * Each thread owns a working set of `slots` blocks (default 4096). Every step
 * frees one random slot and allocates a new block of a random size into it:
 * sizes mostly 8-128 bytes with a tail to 32 KiB (size_small_mix). Each new
 * block gets a tag in its first and last bytes, checked before it is freed.
 * With threads=2 each thread has its own working set: no block crosses
 * threads, so this measures the allocator's thread-local fast path and its
 * scalability.
 *
 *   churn threads=1 steps=10000000 slots=4096 seed=1
 */
#include "common.h"

typedef struct {
  long steps, slots;
  uint64_t seed;
  uint64_t checksum;
} job;

static void *run(void *arg) {
  job *j = (job *)arg;
  uint64_t rng = j->seed;
  long n = j->slots;
  void **slot = calloc((size_t)n, sizeof(void *));
  size_t *size = calloc((size_t)n, sizeof(size_t));
  uint64_t sum = 0;
  if (!slot || !size) fail("calloc of slot arrays", 0);
  for (long i = 0; i < n; i++) {
    size[i] = size_small_mix(&rng);
    slot[i] = bench_malloc(size[i]);
    if (!slot[i]) fail("malloc returned NULL", size[i]);
    block_tag(slot[i], size[i], (uint64_t)(uintptr_t)&slot[i]);
  }
  for (long s = 0; s < j->steps; s++) {
    long i = (long)rng_below(&rng, (uint64_t)n);
    if (block_check(slot[i], size[i], (uint64_t)(uintptr_t)&slot[i])) fail("block corrupted", size[i]);
    bench_free(slot[i]);
    size_t sz = size_small_mix(&rng);
    void *p = bench_malloc(sz);
    if (!p) fail("malloc returned NULL", sz);
    block_tag(p, sz, (uint64_t)(uintptr_t)&slot[i]);
    slot[i] = p;
    size[i] = sz;
    sum += (uintptr_t)p & 0xff0;
  }
  for (long i = 0; i < n; i++) {
    if (block_check(slot[i], size[i], (uint64_t)(uintptr_t)&slot[i])) fail("block corrupted", size[i]);
    bench_free(slot[i]);
  }
  free(slot);
  free(size);
  j->checksum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  bench_which(argc, argv);
  int threads = (int)arg_long(argc, argv, "threads", 1);
  long steps = arg_long(argc, argv, "steps", 10000000);
  long slots = arg_long(argc, argv, "slots", 4096);
  uint64_t seed = (uint64_t)arg_long(argc, argv, "seed", 1);
  if (threads < 1 || threads > 256 || slots < 1 || steps < 0) fail("bad arguments", 0);

  job jobs[256];
  for (int t = 0; t < threads; t++) jobs[t] = (job){steps, slots, seed * 7919 + (uint64_t)t, 0};
  double t0 = now_sec();
  run_jobs(run, jobs, sizeof jobs[0], threads);
  double el = now_sec() - t0;
  uint64_t sum = 0;
  for (int t = 0; t < threads; t++) sum += jobs[t].checksum;
  /* A malloc/free pair per step per thread, plus filling and emptying. */
  long pairs = (steps + slots) * threads;
  printf("ok churn threads=%d steps=%ld slots=%ld pairs=%ld time=%.4f ns_per_pair=%.1f sum=%llu\n", threads, steps,
         slots, pairs, el, el * 1e9 / (double)pairs * threads, (unsigned long long)(sum & 0xffff));
  return 0;
}
