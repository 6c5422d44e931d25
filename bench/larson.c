/*
 * larson: a server simulation after Larson and Krishnan ("Memory allocation
 * for long-running server applications", ISMM 1998), written from that
 * description.
 *
 * `threads` chains run at once. Each chain owns an array of `slots` blocks,
 * first filled by the main thread. A thread of a chain replaces `ops` random
 * blocks (free the old one, allocate a new one of a size uniform in
 * [min, max]), then starts its successor, hands it the array and exits; the
 * chain ends after `gens` threads. So most frees release blocks that another
 * thread allocated (the main thread, or a predecessor that has since exited),
 * while the other chains run concurrently: the remote-free and
 * abandoned-heap paths of the allocator, under thread churn.
 *
 *   larson threads=2 slots=1000 ops=20000 gens=50 min=8 max=1000 seed=1
 */
#include "common.h"

typedef struct chain {
  void **slot;
  size_t *len;
  long slots, ops, gens, gen;
  size_t min, max;
  uint64_t rng;
  uint64_t checksum;
  pthread_mutex_t *lock;
  pthread_cond_t *done_cv;
  int *running;
} chain;

static void *worker(void *arg) {
  chain *c = (chain *)arg;
  for (long k = 0; k < c->ops; k++) {
    long i = (long)rng_below(&c->rng, (uint64_t)c->slots);
    if (block_check(c->slot[i], c->len[i], (uint64_t)i)) fail("block corrupted", c->len[i]);
    free(c->slot[i]);
    size_t s = rng_range(&c->rng, c->min, c->max);
    void *p = malloc(s);
    if (!p) fail("malloc returned NULL", s);
    block_tag(p, s, (uint64_t)i);
    c->slot[i] = p;
    c->len[i] = s;
    c->checksum += (uintptr_t)p & 0xff0;
  }
  if (++c->gen < c->gens) {
    pthread_t next;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&next, &attr, worker, c) != 0) fail("pthread_create", 0);
    pthread_attr_destroy(&attr);
  } else {
    pthread_mutex_lock(c->lock);
    --*c->running;
    pthread_cond_signal(c->done_cv);
    pthread_mutex_unlock(c->lock);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_which(argc, argv);
  int threads = (int)arg_long(argc, argv, "threads", 2);
  long slots = arg_long(argc, argv, "slots", 1000);
  long ops = arg_long(argc, argv, "ops", 20000);
  long gens = arg_long(argc, argv, "gens", 50);
  size_t min = (size_t)arg_long(argc, argv, "min", 8);
  size_t max = (size_t)arg_long(argc, argv, "max", 1000);
  uint64_t seed = (uint64_t)arg_long(argc, argv, "seed", 1);
  if (threads < 1 || threads > 256 || slots < 1 || gens < 1 || min < 1 || max < min) fail("bad arguments", 0);

  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
  int running = threads;
  chain *ch = calloc((size_t)threads, sizeof(chain));
  if (!ch) fail("calloc", 0);
  uint64_t rng = seed;
  for (int t = 0; t < threads; t++) {
    chain *c = &ch[t];
    *c = (chain){.slots = slots,
                 .ops = ops,
                 .gens = gens,
                 .min = min,
                 .max = max,
                 .rng = seed * 31337 + (uint64_t)t,
                 .lock = &lock,
                 .done_cv = &done_cv,
                 .running = &running};
    c->slot = xmalloc(sizeof(void *) * (size_t)slots);
    c->len = xmalloc(sizeof(size_t) * (size_t)slots);
    for (long i = 0; i < slots; i++) {
      c->len[i] = rng_range(&rng, min, max);
      c->slot[i] = xmalloc(c->len[i]);
      block_tag(c->slot[i], c->len[i], (uint64_t)i);
    }
  }
  double t0 = now_sec();
  for (int t = 0; t < threads; t++) {
    pthread_t tid;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&tid, &attr, worker, &ch[t]) != 0) fail("pthread_create", (size_t)t);
    pthread_attr_destroy(&attr);
  }
  pthread_mutex_lock(&lock);
  while (running > 0) pthread_cond_wait(&done_cv, &lock);
  pthread_mutex_unlock(&lock);
  double el = now_sec() - t0;
  uint64_t sum = 0;
  for (int t = 0; t < threads; t++) {
    for (long i = 0; i < slots; i++) {
      if (block_check(ch[t].slot[i], ch[t].len[i], (uint64_t)i)) fail("block corrupted", 0);
      free(ch[t].slot[i]);
    }
    free(ch[t].slot);
    free(ch[t].len);
    sum += ch[t].checksum;
  }
  free(ch);
  long total = (long)threads * ops * gens;
  printf("ok larson threads=%d ops=%ld time=%.4f ns_per_op=%.1f sum=%llu\n", threads, total, el,
         el * 1e9 / (double)total, (unsigned long long)(sum & 0xffff));
  return 0;
}
