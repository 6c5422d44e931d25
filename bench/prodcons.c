/*
 * prodcons: cross-thread producer/consumer (issue 2, workload 3).
 *
 * `pairs` producer/consumer pairs (default 1, i.e. 2 threads). Each producer
 * allocates blocks of the small mix (size_small_mix), writes a tag into them
 * and pushes them into a single-producer/single-consumer ring; its consumer
 * pops them, checks the tag and frees them. Every free is thus a free of a
 * block owned by another, still running, thread: the allocator's remote-free
 * path. The ring holds `ring` pointers (default 1024, a power of two) so that
 * a bounded number of blocks is in flight; a thread facing a full or empty
 * ring spins briefly, then sleeps on a futex.
 *
 * With hold=N each producer first allocates N blocks of 16-64 bytes and
 * keeps them until it is done, as a server holding a large heap beside its
 * traffic does: a cost that grows with the pages a heap holds (its full
 * pages) shows then on every remote free's wake-up.
 *
 *   prodcons pairs=1 items=4000000 ring=1024 seed=1 hold=0
 */
#include "common.h"
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
  _Alignas(64) _Atomic uint32_t head; /* items the consumer has taken (mod 2^32) */
  _Atomic int consumer_sleeps;
  _Alignas(64) _Atomic uint32_t tail; /* items the producer has published */
  _Atomic int producer_sleeps;
  _Alignas(64) uint32_t cap;
  void **buf;
  size_t *len;
  long items;
  long hold;
  uint64_t seed;
  uint64_t checksum;
} ring_t;

/*
 * Waiting: spin briefly, yield a few times, then sleep on a futex. On a busy
 * 2-core machine the other thread is often not running at all: spinning
 * long only burns the time slice it needs (measured: 20,000 spins made the
 * run 10x slower), and yielding forever lets a descheduled partner stall the
 * run; this mix gave the fastest and steadiest times under every allocator.
 */
static void futex_wait(_Atomic uint32_t *addr, uint32_t seen) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Waits until `*idx` differs from `seen`; returns the new value. */
static uint32_t wait_change(_Atomic uint32_t *idx, _Atomic int *sleeps, uint32_t seen) {
  for (int i = 0; i < 64 + 8; i++) {
    uint32_t v = atomic_load_explicit(idx, memory_order_acquire);
    if (v != seen) return v;
    if (i < 64)
      __builtin_ia32_pause();
    else
      sched_yield();
  }
  for (;;) {
    atomic_store(sleeps, 1); /* seq_cst: ordered before the re-check below */
    uint32_t v = atomic_load(idx);
    if (v != seen) {
      atomic_store_explicit(sleeps, 0, memory_order_relaxed);
      return v;
    }
    futex_wait(idx, seen);
    atomic_store_explicit(sleeps, 0, memory_order_relaxed);
  }
}

static void publish(_Atomic uint32_t *idx, _Atomic int *sleeps, uint32_t v) {
  atomic_store(idx, v); /* seq_cst: ordered before reading `sleeps` */
  if (atomic_load(sleeps)) futex_wake(idx);
}

static void *producer(void *arg) {
  ring_t *r = (ring_t *)arg;
  uint64_t rng = r->seed;
  uint32_t head_seen = 0, tail = 0;
  void **held = r->hold ? xmalloc((size_t)r->hold * sizeof *held) : NULL;
  for (long i = 0; i < r->hold; i++) {
    held[i] = xmalloc(rng_range(&rng, 16, 64));
    block_tag(held[i], 16, (uint64_t)i);
  }
  for (long k = 0; k < r->items; k++) {
    size_t sz = size_small_mix(&rng);
    void *p = bench_malloc(sz);
    if (!p) fail("malloc returned NULL", sz);
    block_tag(p, sz, (uint64_t)k);
    while (tail - head_seen >= r->cap) {
      uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);
      head_seen = h != head_seen ? h : wait_change(&r->head, &r->producer_sleeps, head_seen);
    }
    r->buf[tail % r->cap] = p;
    r->len[tail % r->cap] = sz;
    tail++;
    /* Publish in small batches so the two threads do not ping-pong the
     * index's cache line on every item. */
    if ((tail & 15) == 0 || k + 1 == r->items) publish(&r->tail, &r->consumer_sleeps, tail);
  }
  for (long i = 0; i < r->hold; i++) {
    if (block_check(held[i], 16, (uint64_t)i)) fail("held block corrupted", (size_t)i);
    free(held[i]);
  }
  free(held);
  return NULL;
}

static void *consumer(void *arg) {
  ring_t *r = (ring_t *)arg;
  uint32_t head = 0, tail_seen = 0;
  uint64_t sum = 0;
  for (long k = 0; k < r->items; k++) {
    while (head == tail_seen) {
      uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
      tail_seen = t != tail_seen ? t : wait_change(&r->tail, &r->consumer_sleeps, tail_seen);
    }
    void *p = r->buf[head % r->cap];
    size_t sz = r->len[head % r->cap];
    if (block_check(p, sz, (uint64_t)k)) fail("block corrupted in transit", sz);
    sum += sz;
    bench_free(p);
    head++;
    if ((head & 15) == 0 || k + 1 == r->items) publish(&r->head, &r->producer_sleeps, head);
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
  long hold = arg_long(argc, argv, "hold", 0);
  if (pairs < 1 || pairs > 64 || cap < 16 || (cap & (cap - 1)) || items < 1 || hold < 0)
    fail("bad arguments (ring must be a power of two, at least 16)", 0);

  ring_t *rings = aligned_alloc(64, sizeof(ring_t) * (size_t)pairs);
  pthread_t tid[128];
  if (!rings) fail("aligned_alloc", 0);
  memset(rings, 0, sizeof(ring_t) * (size_t)pairs);
  for (int i = 0; i < pairs; i++) {
    rings[i].cap = (uint32_t)cap;
    rings[i].buf = calloc((size_t)cap, sizeof(void *));
    rings[i].len = calloc((size_t)cap, sizeof(size_t));
    rings[i].items = items;
    rings[i].hold = hold;
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
  printf("ok prodcons pairs=%d items=%ld hold=%ld time=%.4f ns_per_item=%.1f sum=%llu\n", pairs, items, hold, el,
         el * 1e9 / (double)items, (unsigned long long)sum);
  return 0;
}
