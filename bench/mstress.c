/*
 * mstress: threads repeatedly created and destroyed, with objects migrating
 * between them (in the spirit of mimalloc-bench's mstress, written from its
 * description).
 *
 * The run has `iters` rounds. Each round starts `threads` threads and joins
 * them. A thread keeps `local` slots of objects and takes `steps` steps: 60%
 * replace a random local object, 30% free one, 10% swap a local object with
 * a random slot of a global transfer array (one atomic exchange), so objects
 * travel to threads that did not allocate them, often after their allocator
 * has exited. A thread leaves half of its objects in the transfer array when
 * it exits and frees the rest. Sizes: 90% 16-256 B, 9% up to 8 KiB, 1% up to
 * 256 KiB. Every object carries its size as a tag, checked at each free.
 *
 *   mstress threads=4 iters=40 steps=40000 local=512 transfer=1024 seed=1
 */
#include "common.h"
#include <stdatomic.h>

static long steps, nlocal, ntransfer;
static _Atomic(void *) *transfer;
static uint64_t base_seed;

static size_t obj_size(uint64_t *rng) {
  uint64_t r = rng_below(rng, 100);
  if (r < 90) return rng_range(rng, 16, 256);
  if (r < 99) return rng_range(rng, 257, 8192);
  return rng_range(rng, 8193, 256 << 10);
}

static void *obj_new(uint64_t *rng) {
  size_t s = obj_size(rng);
  void *p = xmalloc(s);
  block_tag(p, s, s);
  return p;
}

static void obj_free(void *p) {
  if (!p) return;
  uint64_t s;
  memcpy(&s, p, 8);
  if (s < 16 || s > (256 << 10) || block_check(p, s, s)) fail("object corrupted", s);
  free(p);
}

static void *worker(void *arg) {
  uint64_t rng = (uint64_t)(uintptr_t)arg;
  void **local = calloc((size_t)nlocal, sizeof(void *));
  if (!local) fail("calloc", 0);
  for (long k = 0; k < steps; k++) {
    uint64_t r = rng_below(&rng, 100);
    long i = (long)rng_below(&rng, (uint64_t)nlocal);
    if (r < 60) {
      obj_free(local[i]);
      local[i] = obj_new(&rng);
    } else if (r < 90) {
      obj_free(local[i]);
      local[i] = NULL;
    } else {
      long j = (long)rng_below(&rng, (uint64_t)ntransfer);
      local[i] = atomic_exchange(&transfer[j], local[i]);
    }
  }
  for (long i = 0; i < nlocal; i++) {
    if (i & 1) {
      long j = (long)rng_below(&rng, (uint64_t)ntransfer);
      obj_free(atomic_exchange(&transfer[j], local[i]));
    } else {
      obj_free(local[i]);
    }
  }
  free(local);
  return NULL;
}

int main(int argc, char **argv) {
  bench_which(argc, argv);
  int threads = (int)arg_long(argc, argv, "threads", 4);
  long iters = arg_long(argc, argv, "iters", 40);
  steps = arg_long(argc, argv, "steps", 40000);
  nlocal = arg_long(argc, argv, "local", 512);
  ntransfer = arg_long(argc, argv, "transfer", 1024);
  base_seed = (uint64_t)arg_long(argc, argv, "seed", 1);
  if (threads < 1 || threads > 256 || iters < 1 || nlocal < 1 || ntransfer < 1) fail("bad arguments", 0);
  transfer = calloc((size_t)ntransfer, sizeof(*transfer));
  if (!transfer) fail("calloc", 0);

  double t0 = now_sec();
  for (long it = 0; it < iters; it++) {
    pthread_t tid[256];
    for (int t = 0; t < threads; t++)
      if (pthread_create(&tid[t], NULL, worker, (void *)(uintptr_t)(base_seed * 1000003 + (uint64_t)(it * 256 + t))))
        fail("pthread_create", 0);
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
  }
  double el = now_sec() - t0;
  for (long j = 0; j < ntransfer; j++) obj_free(atomic_load(&transfer[j]));
  free(transfer);
  printf("ok mstress threads=%d iters=%ld steps=%ld time=%.4f\n", threads, iters, steps, el);
  return 0;
}
