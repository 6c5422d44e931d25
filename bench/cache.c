/*
 * cache: false sharing caused by the allocator, after the cache-scratch and
 * cache-thrash tests described with Hoard (Berger et al., "Hoard: a scalable
 * memory allocator for multithreaded applications", ASPLOS 2000); our code.
 *
 *   cache mode=thrash  threads=2 iters=200 reps=20000 size=8
 *       Active false sharing: each thread repeatedly allocates a small
 *       object, writes it `reps` times byte by byte, and frees it. An
 *       allocator that hands two threads objects on one cache line makes the
 *       line bounce between cores.
 *   cache mode=scratch threads=2 iters=200 reps=20000 size=8
 *       Passive false sharing: the main thread allocates one small object per
 *       thread, back to back (so they share cache lines), and gives one to
 *       each thread; each thread frees it first, then does the thrash loop.
 *       An allocator that reuses the freed object for the thread's next
 *       allocation keeps the threads on the main thread's shared line.
 */
#include "common.h"

static long iters, reps;
static size_t objsize;

static void *worker(void *arg) {
  if (arg) free(arg); /* scratch: the object that came from the main thread */
  unsigned long sum = 0;
  for (long i = 0; i < iters; i++) {
    volatile unsigned char *p = xmalloc(objsize);
    for (long r = 0; r < reps; r++)
      for (size_t k = 0; k < objsize; k++) {
        p[k] = (unsigned char)(r + (long)k);
        sum += p[k];
      }
    free((void *)p);
  }
  return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
  bench_which(argc, argv);
  const char *mode = arg_str(argc, argv, "mode", "thrash");
  int threads = (int)arg_long(argc, argv, "threads", 2);
  iters = arg_long(argc, argv, "iters", 200);
  reps = arg_long(argc, argv, "reps", 20000);
  objsize = (size_t)arg_long(argc, argv, "size", 8);
  int scratch = strcmp(mode, "scratch") == 0;
  if (!scratch && strcmp(mode, "thrash") != 0) fail("mode must be scratch or thrash", 0);
  if (threads < 1 || threads > 256 || objsize < 1) fail("bad arguments", 0);

  void *given[256];
  for (int t = 0; t < threads; t++) given[t] = scratch ? xmalloc(objsize) : NULL;
  pthread_t tid[256];
  double t0 = now_sec();
  for (int t = 0; t < threads; t++)
    if (pthread_create(&tid[t], NULL, worker, given[t])) fail("pthread_create", 0);
  unsigned long sum = 0;
  for (int t = 0; t < threads; t++) {
    void *r;
    pthread_join(tid[t], &r);
    sum += (unsigned long)(uintptr_t)r;
  }
  double el = now_sec() - t0;
  printf("ok cache mode=%s threads=%d time=%.4f sum=%lu\n", mode, threads, el, sum);
  return 0;
}
