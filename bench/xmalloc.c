/*
 * xmalloc: producers that only allocate and consumers that only free, after
 * the description of xmalloc-test (Lever and Boreham, "malloc() performance
 * in a multithreaded Linux environment", USENIX 2000); our own code.
 *
 * `producers` threads allocate blocks (sizes uniform in [min, max]), write
 * into them and gather them in batches of `batch` pointers; a full batch goes
 * onto a shared queue (a mutex and two condition variables; at most `depth`
 * batches wait, so producers block when consumers fall behind). `consumers`
 * threads take batches, check and free every block, and free the batch
 * itself. No thread ever frees its own memory: every free is remote, and
 * the consumers' heaps stay empty.
 *
 *   xmalloc producers=2 consumers=2 items=4000000 batch=256 depth=64 min=16 max=128
 */
#include "common.h"

typedef struct batch {
  struct batch *next;
  long n;
  void *p[];
} batch;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  batch *head, *tail;
  long queued, depth;
  int producers_left;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, 0};

static long per_producer, batch_size;
static size_t min_size, max_size;
static uint64_t base_seed;

static void push(batch *b) {
  pthread_mutex_lock(&q.lock);
  while (q.queued >= q.depth) pthread_cond_wait(&q.not_full, &q.lock);
  b->next = NULL;
  if (q.tail)
    q.tail->next = b;
  else
    q.head = b;
  q.tail = b;
  q.queued++;
  pthread_cond_signal(&q.not_empty);
  pthread_mutex_unlock(&q.lock);
}

static batch *pop(void) {
  pthread_mutex_lock(&q.lock);
  while (!q.head && q.producers_left > 0) pthread_cond_wait(&q.not_empty, &q.lock);
  batch *b = q.head;
  if (b) {
    q.head = b->next;
    if (!q.head) q.tail = NULL;
    q.queued--;
    pthread_cond_signal(&q.not_full);
  }
  pthread_mutex_unlock(&q.lock);
  return b;
}

static void *producer(void *arg) {
  uint64_t rng = base_seed * 7 + (uint64_t)(uintptr_t)arg;
  batch *b = NULL;
  for (long k = 0; k < per_producer; k++) {
    if (!b) {
      b = xmalloc(sizeof(batch) + sizeof(void *) * (size_t)batch_size);
      b->n = 0;
    }
    size_t s = rng_range(&rng, min_size, max_size);
    char *p = xmalloc(s);
    block_tag(p, s, s);
    p[s / 2] = (char)s;
    b->p[b->n++] = p;
    if (b->n == batch_size || k + 1 == per_producer) {
      push(b);
      b = NULL;
    }
  }
  pthread_mutex_lock(&q.lock);
  if (--q.producers_left == 0) pthread_cond_broadcast(&q.not_empty);
  pthread_mutex_unlock(&q.lock);
  return NULL;
}

static void *consumer(void *arg) {
  uint64_t *freed = (uint64_t *)arg;
  batch *b;
  while ((b = pop()) != NULL) {
    for (long i = 0; i < b->n; i++) {
      unsigned char *p = b->p[i];
      /* The size is not stored: the tag is the size itself, recover it. */
      uint64_t s;
      memcpy(&s, p, 8);
      s &= 0x00ffffffffffffffULL;
      if (s < min_size || s > max_size || block_check(p, s, s)) fail("block corrupted", s);
      free(p);
    }
    *freed += (uint64_t)b->n;
    free(b);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_which(argc, argv);
  int producers = (int)arg_long(argc, argv, "producers", 2);
  int consumers = (int)arg_long(argc, argv, "consumers", 2);
  long items = arg_long(argc, argv, "items", 4000000);
  batch_size = arg_long(argc, argv, "batch", 256);
  q.depth = arg_long(argc, argv, "depth", 64);
  min_size = (size_t)arg_long(argc, argv, "min", 16);
  max_size = (size_t)arg_long(argc, argv, "max", 128);
  base_seed = (uint64_t)arg_long(argc, argv, "seed", 1);
  if (producers < 1 || consumers < 1 || producers + consumers > 256 || batch_size < 1 || q.depth < 1 || min_size < 16 ||
      max_size < min_size || max_size >= (1UL << 48))
    fail("bad arguments (min must be at least 16)", 0);
  per_producer = items / producers;
  q.producers_left = producers;

  pthread_t tid[256];
  uint64_t freed[256] = {0};
  double t0 = now_sec();
  for (int i = 0; i < consumers; i++)
    if (pthread_create(&tid[i], NULL, consumer, &freed[i])) fail("pthread_create", 0);
  for (int i = 0; i < producers; i++)
    if (pthread_create(&tid[consumers + i], NULL, producer, (void *)(uintptr_t)i)) fail("pthread_create", 0);
  for (int i = 0; i < producers + consumers; i++) pthread_join(tid[i], NULL);
  double el = now_sec() - t0;
  uint64_t total = 0;
  for (int i = 0; i < consumers; i++) total += freed[i];
  if (total != (uint64_t)(per_producer * producers)) fail("lost blocks", (size_t)total);
  printf("ok xmalloc producers=%d consumers=%d items=%llu time=%.4f ns_per_item=%.1f\n", producers, consumers,
         (unsigned long long)total, el, el * 1e9 / (double)total);
  return 0;
}
