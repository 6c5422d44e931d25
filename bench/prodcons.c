/*
 * prodcons: cross-thread producer/consumer (issue 2, workload 3).
 *
 * `pairs` producer/consumer pairs (default 1, i.e. 2 threads). Each producer
 * allocates blocks of the small mix (size_small_mix), writes a tag into them
 * and pushes them into a single-producer/single-consumer ring; its consumer
 * pops them, checks the tag and frees them. Every free is thus a free of a
 * block owned by another, still running, thread: the allocator's remote-free
 * path. The ring holds `ring` pointers (default 1024) so that a bounded number
 * of blocks is in flight; a full or empty ring spins briefly, then yields.
 *
 *   prodcons pairs=1 items=4000000 ring=1024 seed=1
 */
#include "common.h"
#include <sched.h>
#include <stdatomic.h>

typedef struct {
  _Alignas(64) _Atomic long head; /* next index the consumer reads */
  _Alignas(64) _Atomic long tail; /* next index the producer writes */
  _Alignas(64) long cap;
  void **buf;
  size_t *len;
  long items;
  uint64_t seed;
  uint64_t checksum;
} ring_t;

static void backoff(int *spins) {
  if (++*spins < 64)
    __builtin_ia32_pause();
  else {
    *spins = 0;
    sched_yield();
  }
}

static void *producer(void *arg) {
  ring_t *r = (ring_t *)arg;
  uint64_t rng = r->seed;
  long head_seen = 0, tail = 0;
  for (long k = 0; k < r->items; k++) {
    size_t sz = size_small_mix(&rng);
    void *p = bench_malloc(sz);
    if (!p) fail("malloc returned NULL", sz);
    block_tag(p, sz, (uint64_t)k);
    int spins = 0;
    while (tail - head_seen >= r->cap) {
      head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
      if (tail - head_seen >= r->cap) backoff(&spins);
    }
    r->buf[tail % r->cap] = p;
    r->len[tail % r->cap] = sz;
    tail++;
    /* Publish in small batches so the two threads do not ping-pong the
     * index's cache line on every item. */
    if ((tail & 15) == 0 || k + 1 == r->items)
      atomic_store_explicit(&r->tail, tail, memory_order_release);
  }
  return NULL;
}

static void *consumer(void *arg) {
  ring_t *r = (ring_t *)arg;
  long head = 0, tail_seen = 0;
  uint64_t sum = 0;
  for (long k = 0; k < r->items; k++) {
    int spins = 0;
    while (head >= tail_seen) {
      tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
      if (head >= tail_seen) backoff(&spins);
    }
    void *p = r->buf[head % r->cap];
    size_t sz = r->len[head % r->cap];
    if (block_check(p, sz, (uint64_t)k)) fail("block corrupted in transit", sz);
    sum += sz;
    bench_free(p);
    head++;
    if ((head & 15) == 0 || k + 1 == r->items)
      atomic_store_explicit(&r->head, head, memory_order_release);
  }
  r->checksum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  bench_which(argc, argv);
  int pairs = (int)arg_long(argc, argv, "pairs", 1);
  long items = arg_long(argc, argv, "items", 4000000);
  long cap = arg_long(argc, argv, "ring", 1024);
  uint64_t seed = (uint64_t)arg_long(argc, argv, "seed", 1);
  if (pairs < 1 || pairs > 64 || cap < 16 || items < 1) fail("bad arguments", 0);

  ring_t *rings = aligned_alloc(64, sizeof(ring_t) * (size_t)pairs);
  pthread_t tid[128];
  if (!rings) fail("aligned_alloc", 0);
  memset(rings, 0, sizeof(ring_t) * (size_t)pairs);
  for (int i = 0; i < pairs; i++) {
    rings[i].cap = cap;
    rings[i].buf = calloc((size_t)cap, sizeof(void *));
    rings[i].len = calloc((size_t)cap, sizeof(size_t));
    rings[i].items = items;
    rings[i].seed = seed * 104729 + (uint64_t)i;
    if (!rings[i].buf || !rings[i].len) fail("calloc", 0);
  }
  double t0 = now_sec();
  for (int i = 0; i < pairs; i++) {
    if (pthread_create(&tid[2 * i], NULL, consumer, &rings[i]) ||
        pthread_create(&tid[2 * i + 1], NULL, producer, &rings[i]))
      fail("pthread_create", (size_t)i);
  }
  for (int i = 0; i < 2 * pairs; i++) pthread_join(tid[i], NULL);
  double el = now_sec() - t0;
  uint64_t sum = 0;
  for (int i = 0; i < pairs; i++) {
    sum += rings[i].checksum;
    free(rings[i].buf);
    free(rings[i].len);
  }
  free(rings);
  printf("ok prodcons pairs=%d items=%ld time=%.4f ns_per_item=%.1f sum=%llu\n", pairs, items, el,
         el * 1e9 / (double)items, (unsigned long long)sum);
  return 0;
}
