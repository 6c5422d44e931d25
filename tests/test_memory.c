/*
 * Memory given back and memory running out: RSS falls after big frees (large,
 * medium and tiny blocks, and across threads), metadata stays small, and under
 * an RLIMIT_AS limit allocation fails cleanly with ENOMEM and recovers.
 *
 * RSS is VmRSS from /proc/self/status. The arrays that hold the pointers are
 * mmap'd and touched before the baseline is taken, so they are not counted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "hahalloc.h"

/* Each measurement runs in a fresh process (this binary run again), so that
 * what one test leaves behind cannot hide or fake another's result. A child
 * prints its figures on stdout, and on a failed check a reason on stderr. */
#define CHILD_CHECK(cond, ...) \
  do {                         \
    if (!(cond)) {             \
      dprintf(2, __VA_ARGS__); \
      dprintf(2, "\n");        \
      exit(3);                 \
    }                          \
  } while (0)

static void run_fresh(const char *name, const char *arg, const char *const *env) {
  hh_child c;
  static const char *const summary_off[] = {"HAHALLOC_SUMMARY=0", NULL};
  hh_exec_self(name, arg, env ? env : summary_off, 120, &c);
  print_message("%s", c.out);
  if (!hh_child_exited_ok(&c)) fail_msg("%s %s: the child %s\n%s", name, arg, hh_child_describe(&c), c.err);
  hh_child_free(&c);
}

static long rss_kb(void) { return hh_status_kb("VmRSS"); }

static void **pointer_array(size_t count) {
  void **p = mmap(NULL, count * sizeof *p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHILD_CHECK(p != MAP_FAILED, "mmap of the pointer array failed");
  memset(p, 0, count * sizeof *p); /* resident before the baseline */
  return p;
}

static void pointer_array_free(void **p, size_t count) { munmap(p, count * sizeof *p); }

/* A stride coprime with count visits every index once in a scattered order. */
static size_t scatter(size_t i, size_t count) { return (i * 7919) % count; }

static void parse_sizes(const char *arg, size_t *v, int n) {
  for (int i = 0; i < n; i++) {
    char *end;
    v[i] = strtoul(arg, &end, 10);
    arg = *end ? end + 1 : end;
  }
}

/* "BLOCK:TOTAL:SLACK": allocates TOTAL bytes as blocks of BLOCK bytes,
 * touches them, frees them all in a scattered order and checks RSS falls
 * back to within SLACK bytes of where it started within a second, while
 * the program goes on allocating (a 1 MiB block every 100 ms). The heap
 * keeps what it just freed committed for one or two decay ticks, in case
 * the program builds the same again, and gives it back at the ticks its
 * next allocations meet (mapping.c). */
static int child_rss_blocks(const char *arg) {
  size_t v[3];
  parse_sizes(arg, v, 3);
  size_t block = v[0], total = v[1], slack = v[2], count = total / block;
  void **p = pointer_array(count);
  frhehe(hahalloc(16)); /* start-up is not part of the measure */
  long base = rss_kb();
  for (size_t i = 0; i < count; i++) {
    p[i] = hahalloc(block);
    CHILD_CHECK(p[i], "hahalloc(%zu) #%zu failed", block, i);
    memset(p[i], (int)(i | 1), block);
  }
  long peak = rss_kb();
  for (size_t i = 0; i < count; i++) frhehe(p[scatter(i, count)]);
  long freed = rss_kb(), after = freed;
  int waited = 0;
  while (after - base > (long)(slack / KiB) && waited < 1000) {
    usleep(100 * 1000);
    waited += 100;
    frhehe(hahalloc(1 << 20));
    after = rss_kb();
  }
  pointer_array_free(p, count);
  printf("%zu x %zu bytes: RSS %ld -> %ld -> %ld (freed) -> %ld KiB %d ms later\n", count, block, base, peak, freed,
         after, waited);
  CHILD_CHECK(peak - base >= (long)(total / KiB * 9 / 10),
              "RSS rose by only %ld KiB for %zu KiB of touched blocks: the measurement is wrong", peak - base,
              total / KiB);
  CHILD_CHECK(after - base <= (long)(slack / KiB),
              "%d ms after freeing %zu blocks of %zu bytes RSS is still %ld KiB above the start (%ld KiB at the peak)",
              waited, count, block, after - base, peak - base);
  return 0;
}

static void rss_falls_after_freeing_512MiB_of_1MiB_blocks(void **state) {
  (void)state;
  run_fresh("rss_blocks", "1048576:536870912:67108864", NULL);
}

static void rss_falls_after_freeing_512MiB_of_64KiB_blocks(void **state) {
  (void)state;
  run_fresh("rss_blocks", "65536:536870912:67108864", NULL);
}

static void rss_falls_after_freeing_256MiB_of_64_byte_blocks(void **state) {
  (void)state;
  run_fresh("rss_blocks", "64:268435456:67108864", NULL);
}

static void rss_falls_after_freeing_128MiB_of_16_byte_blocks(void **state) {
  (void)state;
  run_fresh("rss_blocks", "16:134217728:67108864", NULL);
}

static void rss_falls_after_freeing_one_512MiB_oversize_block(void **state) {
  (void)state;
  run_fresh("rss_blocks", "536870912:536870912:16777216", NULL);
}

/* Oversize blocks small enough for the cache of freed mappings keep their
 * memory for a moment only (a second), in case the program allocates them
 * again: after that, the next decay tick (any span traffic) gives it back. */
static int child_rss_cached_oversize(const char *arg) {
  (void)arg;
  enum { N = 8 };
  size_t block = (size_t)16 << 20;
  void *p[N];
  frhehe(hahalloc(1 << 20)); /* start-up, and the heap's first span: its decay clock runs */
  long base = rss_kb();
  for (int i = 0; i < N; i++) {
    p[i] = hahalloc(block);
    CHILD_CHECK(p[i], "hahalloc(%zu) failed", block);
    memset(p[i], i + 1, block);
  }
  long peak = rss_kb();
  for (int i = 0; i < N; i++) frhehe(p[i]);
  long freed = rss_kb();
  usleep(1500 * 1000);
  frhehe(hahalloc(1 << 20)); /* span traffic: a decay tick */
  long after = rss_kb();
  printf("%d x %zu bytes: RSS %ld -> %ld -> %ld (freed) -> %ld KiB 1.5 s later\n", N, block, base, peak, freed, after);
  CHILD_CHECK(peak - base >= (long)(N * block / KiB * 9 / 10), "RSS rose by only %ld KiB: the measurement is wrong",
              peak - base);
  CHILD_CHECK(after - base <= 16 * 1024,
              "1.5 s after %d blocks of %zu bytes were freed, RSS is %ld KiB above the start", N, block, after - base);
  return 0;
}

static void rss_falls_a_second_after_freeing_8_cached_16MiB_oversize_blocks(void **state) {
  (void)state;
  run_fresh("rss_cached_oversize", "", NULL);
}

/* A cached mapping that serves a smaller request keeps the pages of its tail
 * for the same second (the next bigger request would fault them in again),
 * then gives them back; the block's own bytes are untouched. */
static int child_rss_cached_tail(const char *arg) {
  (void)arg;
  size_t big = (size_t)24 << 20, small = (size_t)13 << 20;
  frhehe(hahalloc(1 << 20)); /* start-up, and the heap's first span: its decay clock runs */
  long base = rss_kb();
  uint8_t *p = hahalloc(big);
  CHILD_CHECK(p, "hahalloc(%zu) failed", big);
  memset(p, 1, big);
  frhehe(p);
  uint8_t *q = hahalloc(small); /* a 16 MiB request: the cached 24 MiB mapping serves it */
  CHILD_CHECK(q, "hahalloc(%zu) failed", small);
  memset(q, 2, small);
  long kept = rss_kb();
  usleep(1500 * 1000);
  frhehe(hahalloc(1 << 20)); /* span traffic: a decay tick */
  long after = rss_kb();
  printf("%zu bytes freed, %zu taken: RSS %ld -> %ld -> %ld KiB 1.5 s later\n", big, small, base, kept, after);
  CHILD_CHECK(q == p, "the %zu-byte block did not take the cached mapping: the test measures nothing", small);
  CHILD_CHECK(kept - base >= (long)(big / KiB * 9 / 10), "the tail was given back at once (RSS +%ld KiB)", kept - base);
  CHILD_CHECK(kept - after >= (long)((big - ((size_t)16 << 20)) / KiB * 9 / 10),
              "1.5 s later RSS fell by only %ld KiB: the tail of the mapping was kept", kept - after);
  for (size_t i = 0; i < small; i += 4093) CHILD_CHECK(q[i] == 2, "byte %zu of the block changed", i);
  CHILD_CHECK(q[small - 1] == 2, "the block's last byte changed");
  frhehe(q);
  return 0;
}

static void rss_falls_a_second_after_a_cached_mapping_serves_a_smaller_block(void **state) {
  (void)state;
  run_fresh("rss_cached_tail", "", NULL);
}

/* The tails of cached mappings taken for smaller blocks have a budget of
 * their own: at most 128 MiB stay resident beside the cache's 256. Twice,
 * five 44 MiB blocks, resident only in their last 20 MiB, are freed into
 * the cache, and each cached mapping then serves a 22 MiB block (24 MiB of
 * chunks): a 20 MiB tail each, 200 MiB in all without the budget, which
 * mincore counts. The measurement holds only if no tail was a second old (the decay's) when it
 * was made: the tails are touched alone, on huge pages where the kernel
 * allows them (page faults here take about 3 ms a MiB), and an attempt
 * that took longer is made again (helper-66: a loaded machine measured
 * 100 MiB, round 1's tails gone, which the library without the budget
 * would have passed too). */
static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* KiB of [p, p + n) resident, by mincore. */
static long resident_kb(const void *p, size_t n) {
  static unsigned char vec[(64 * MiB) / 4096];
  size_t pages = n / 4096;
  if (pages > sizeof vec || mincore((void *)p, n, vec) != 0) return -1;
  long kb = 0;
  for (size_t i = 0; i < pages; i++) kb += (vec[i] & 1) * 4;
  return kb;
}

static int child_rss_tails_budget(const char *arg) {
  (void)arg;
  enum { N = 5, ROUNDS = 2, ATTEMPTS = 5 };
  /* a page short of 44 MiB: the report's extra byte still fits */
  size_t big = 44 * MiB - 4096, small = 22 * MiB, need = 24 * MiB;
  uint8_t *p[N], *q[ROUNDS * N];
  frhehe(hahalloc(1 << 20)); /* start-up */
  double slowest = 0;
  for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
    int reused = 0;
    double first = 0;
    for (int r = 0; r < ROUNDS; r++) {
      for (int i = 0; i < N; i++) {
        CHILD_CHECK((p[i] = hahalloc(big)), "hahalloc(%zu) failed", big);
        madvise(p[i] + need, big - need, MADV_HUGEPAGE); /* a hint: refused, the test is only slower */
        memset(p[i] + need, 1, big - need);
      }
      for (int i = 0; i < N; i++) frhehe(p[i]);
      for (int i = 0; i < N; i++) {
        uint8_t *b = q[r * N + i] = hahalloc(small);
        if (first == 0) first = now_s(); /* the first tail */
        CHILD_CHECK(b, "hahalloc(%zu) failed", small);
        memset(b, 2, 4096);
        for (int j = 0; j < N; j++) reused += b == p[j];
      }
    }
    double took = now_s() - first;
    long kept_kb = 0; /* the tails' resident pages, past each block's chunks */
    for (int i = 0; i < ROUNDS * N; i++) kept_kb += resident_kb(q[i] + need, big - need);
    printf("attempt %d: %d tails of %zu KiB made in %.2f s: %ld KiB of them resident\n", attempt + 1, ROUNDS * N,
           (big - need) / KiB, took, kept_kb);
    CHILD_CHECK(reused == ROUNDS * N, "only %d of %d blocks took a cached mapping: the test measures nothing", reused,
                ROUNDS * N);
    for (int i = 0; i < ROUNDS * N; i++) {
      for (size_t j = 0; j < 4096; j += 64) CHILD_CHECK(q[i][j] == 2, "byte %zu of block %d changed", j, i);
      frhehe(q[i]);
    }
    if (took < 0.9) { /* no tail can have decayed */
      CHILD_CHECK(kept_kb <= (long)(128 * MiB / KiB) + 8 * 1024,
                  "%ld KiB resident in the tails: they went past their 128 MiB budget", kept_kb);
      CHILD_CHECK(kept_kb >= (long)(110 * MiB / KiB), "only %ld KiB of tails were kept: the test measures nothing",
                  kept_kb);
      return 0;
    }
    if (took > slowest) slowest = took;
    usleep(1100 * 1000); /* the last attempt's cached mappings and tails decay */
  }
  CHILD_CHECK(false, "no attempt of %d made its tails within 0.9 s (the slowest took %.2f s): nothing was measured",
              ATTEMPTS, slowest);
  return 0;
}

static void the_tails_of_cached_mappings_keep_within_a_budget(void **state) {
  (void)state;
  run_fresh("rss_tails_budget", "", NULL);
}

/* The tails' purge holds the cache's lock; a signal handler that frees an
 * oversize block on the thread making it must not wait for that lock for
 * ever (helper-65). A timer every 100 us frees one stashed 5 MiB block while
 * an oversize free purges six 8 MiB tails. */
enum { TAIL_STASH = 600 };
static void *tail_stash[TAIL_STASH];
static volatile sig_atomic_t tail_stashed, tail_freed_in_handler;
static void tail_on_alarm(int sig) {
  (void)sig;
  if (tail_stashed > 0) {
    frhehe(tail_stash[--tail_stashed]);
    tail_freed_in_handler++;
  }
}

static int child_tail_purge_signal(const char *arg) {
  (void)arg;
  for (int i = 0; i < TAIL_STASH; i++) CHILD_CHECK((tail_stash[i] = hahalloc(5 * MiB)), "hahalloc(5 MiB) failed");
  tail_stashed = TAIL_STASH;
  struct sigaction sa = {0};
  sa.sa_handler = tail_on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  for (int r = 0; r < 3; r++) {
    uint8_t *q[6];
    for (int i = 0; i < 6; i++) { /* six 24 MiB mappings, resident, cached */
      CHILD_CHECK((q[i] = hahalloc(24 * MiB)), "hahalloc(24 MiB) failed");
      memset(q[i], 1, 24 * MiB);
    }
    for (int i = 0; i < 6; i++) frhehe(q[i]);
    for (int i = 0; i < 6; i++) { /* each takes one: an 8 MiB tail each */
      CHILD_CHECK((q[i] = hahalloc(13 * MiB)), "hahalloc(13 MiB) failed");
      memset(q[i], 2, 13 * MiB);
    }
    usleep(1100 * 1000); /* the tails are due */
    void *big = hahalloc(60 * MiB);
    struct itimerval every = {{0, 100}, {0, 100}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &every, NULL);
    frhehe(big); /* its decay purges the six tails */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 20000000L);
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < 6; i++) {
      for (size_t j = 0; j < 13 * MiB; j += 4096) CHILD_CHECK(q[i][j] == 2, "byte %zu of block %d changed", j, i);
      frhehe(q[i]);
    }
  }
  printf("%d blocks freed in the signal handler, no hang\n", (int)tail_freed_in_handler);
  CHILD_CHECK(tail_freed_in_handler > 0, "no signal arrived: the test measures nothing");
  return 0;
}

static void a_signal_handler_frees_while_the_tails_are_purged(void **state) {
  (void)state;
  run_fresh("tail_purge_signal", "", NULL);
}

/* ------------------------------------------------------------ locked memory */

/* A block whose pages the program locked (mlock, or mlockall), filled and
 * freed, then asked for again by chahalloc: madvise refuses to give locked
 * pages back, so zeroing by purging them left the old bytes in place (every
 * byte of a reused 300 KB, 1 MiB or 5 MiB block), and a span whose purge
 * was refused was taken for clean. Each size at once and again after the
 * purge delay (with an allocation and a free after it, which run the decay). */
static int child_calloc_locked(const char *arg) {
  (void)arg;
  static const size_t sizes[] = {300000, 1 << 20, 5 << 20};
  for (int wait = 0; wait < 2; wait++) {
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
      size_t n = sizes[k];
      unsigned char *p = hahalloc(n);
      CHILD_CHECK(p != NULL, "hahalloc(%zu) failed", n);
      CHILD_CHECK(mlock(p, n) == 0, "mlock of %zu bytes: %s (RLIMIT_MEMLOCK: `ulimit -l`)", n, strerror(errno));
      memset(p, 0xAA, n);
      frhehe(p);
      if (wait) {
        usleep(300 * 1000);
        frhehe(hahalloc(100));
        frhehe(hahalloc(n));
      }
      unsigned char *q = chahalloc(n);
      CHILD_CHECK(q != NULL, "chahalloc(%zu) failed", n);
      size_t nonzero = 0;
      for (size_t i = 0; i < n; i++) nonzero += q[i] != 0;
      printf("%zu bytes%s: %s, %zu bytes not zero\n", n, wait ? " after the purge delay" : "",
             q == p ? "the same block" : "another block", nonzero);
      CHILD_CHECK(nonzero == 0, "chahalloc(%zu) after a locked block was freed: %zu bytes not zero", n, nonzero);
      munlock(q, n);
      frhehe(q);
    }
  }
  return 0;
}

static void calloc_of_memory_the_program_locked_is_zero(void **state) {
  (void)state;
  run_fresh("calloc_locked", "", NULL);
}

/* The library's purges, counted: its call to madvise resolves to this
 * definition first (the program's symbols come before libc's), which makes
 * the system call itself. */
static unsigned long madvise_calls, madvise_refused;
int madvise(void *addr, size_t len, int advice) {
  int r = (int)syscall(SYS_madvise, addr, len, advice);
  __atomic_fetch_add(&madvise_calls, 1, __ATOMIC_RELAXED);
  if (r != 0) __atomic_fetch_add(&madvise_refused, 1, __ATOMIC_RELAXED);
  return r;
}

static long locked_kb(void) { return hh_status_kb("VmLck"); }

/* Under mlockall every purge of a free span is refused. A refused span was
 * still counted as dirty, over every purge budget, so each free of a large
 * block tried every such span again: 3.3 million refused madvise calls in
 * 20,000 frees, 8x the time glibc and mimalloc take. And an empty mapping
 * whose purge was refused was never unmapped: the memory stayed locked. Here
 * 200 large blocks are freed in alternation (holes that cannot merge), then
 * 10,000 large blocks are allocated and freed with pauses that let the
 * purge delay pass; then everything is freed. */
static int child_churn_locked(const char *arg) {
  (void)arg;
  enum { HOLES = 200, LIVE = 16, ROUNDS = 10000 };
  static void *holes[HOLES], *live[LIVE];
  CHILD_CHECK(mlockall(MCL_CURRENT | MCL_FUTURE) == 0, "mlockall: %s (RLIMIT_MEMLOCK: `ulimit -l`)", strerror(errno));
  long start_kb = locked_kb();
  for (int i = 0; i < HOLES; i++) {
    holes[i] = hahalloc(300000 + (size_t)i * 1000);
    CHILD_CHECK(holes[i] != NULL, "hahalloc of a large block under mlockall failed");
  }
  for (int i = 0; i < HOLES; i += 2) frhehe(holes[i]);
  usleep(300 * 1000);
  unsigned s = 1;
  for (int i = 0; i < ROUNDS; i++) {
    s = s * 1103515245 + 12345;
    unsigned k = (s >> 8) % LIVE;
    frhehe(live[k]);
    live[k] = hahalloc(200000 + (s >> 4) % 100000);
    CHILD_CHECK(live[k] != NULL, "hahalloc of a large block under mlockall failed");
    memset(live[k], 1, 4096);
    if (i % 500 == 0) usleep(20 * 1000);
  }
  unsigned long refused = __atomic_load_n(&madvise_refused, __ATOMIC_RELAXED);
  long peak_kb = locked_kb();
  for (int i = 1; i < HOLES; i += 2) frhehe(holes[i]);
  for (int k = 0; k < LIVE; k++) frhehe(live[k]);
  for (int t = 0; t < 10; t++) { /* the purge delay, with allocations that run the decay */
    usleep(50 * 1000);
    frhehe(hahalloc(300000));
    frhehe(hahalloc(100));
  }
  long end_kb = locked_kb();
  unsigned long calls = __atomic_load_n(&madvise_calls, __ATOMIC_RELAXED);
  printf("%d large frees under mlockall: %lu purges refused; locked: %ld kB before, %ld kB at the peak, %ld kB "
         "after every block was freed (%lu madvise calls in all)\n",
         ROUNDS, refused, start_kb, peak_kb, end_kb, calls);
  CHILD_CHECK(calls > 0, "no madvise call was seen: the counter does not see the library's calls");
  CHILD_CHECK(refused <= ROUNDS / 10, "%lu refused purges in %d frees: refused spans are tried again and again",
              refused, ROUNDS);
  CHILD_CHECK(end_kb - start_kb <= (peak_kb - start_kb) / 4,
              "%ld kB still locked after every block was freed (%ld kB at the peak): memory that cannot be "
              "purged was not unmapped",
              end_kb, peak_kb);
  return 0;
}

static void large_frees_under_mlockall_do_not_retry_refused_purges_and_give_memory_back(void **state) {
  (void)state;
  run_fresh("churn_locked", "", NULL);
}

/* The library's mappings, counted as its purges are above. */
static unsigned long mmap_calls;
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  __atomic_fetch_add(&mmap_calls, 1, __ATOMIC_RELAXED);
  return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

/* Under mlockall, rounds of 64 large blocks (1-3 MiB) allocated and freed:
 * the mappings a round empties must stay for the next one. Unmapping an
 * empty mapping as soon as its purge was refused mapped them all again in
 * every round (5,590 mmap calls in 300 rounds; each new mapping is faulted
 * in and locked whole: 4.6 s, jemalloc 0.04 s). */
static int child_rounds_locked(const char *arg) {
  (void)arg;
  enum { BLOCKS = 64, ROUNDS = 40 };
  static void *p[BLOCKS];
  CHILD_CHECK(mlockall(MCL_CURRENT | MCL_FUTURE) == 0, "mlockall: %s (RLIMIT_MEMLOCK: `ulimit -l`)", strerror(errno));
  unsigned long first = 0;
  for (int r = 0; r < ROUNDS; r++) {
    for (int k = 0; k < BLOCKS; k++) {
      p[k] = hahalloc((size_t)(1 + k % 3) << 20);
      CHILD_CHECK(p[k] != NULL, "hahalloc of a large block under mlockall failed");
      memset(p[k], 1, 4096);
    }
    for (int k = 0; k < BLOCKS; k++) frhehe(p[k]);
    if (r == 0) first = __atomic_load_n(&mmap_calls, __ATOMIC_RELAXED);
  }
  unsigned long later = __atomic_load_n(&mmap_calls, __ATOMIC_RELAXED) - first;
  printf("under mlockall: %lu mmap calls in the first round of %d large blocks, %lu in the %d rounds after it\n", first,
         BLOCKS, later, ROUNDS - 1);
  CHILD_CHECK(later <= first,
              "%lu mmap calls in %d rounds after a first of %lu: emptied mappings are unmapped and "
              "mapped again",
              later, ROUNDS - 1, first);
  return 0;
}

static void rounds_of_large_blocks_under_mlockall_keep_their_mappings(void **state) {
  (void)state;
  run_fresh("rounds_locked", "", NULL);
}

/* ------------------------------------------------------------ across threads */

typedef struct job {
  void **p;
  size_t count, block;
} job;

static void *allocate_job(void *arg) {
  job *j = arg;
  for (size_t i = 0; i < j->count; i++) {
    j->p[i] = hahalloc(j->block);
    if (j->p[i]) memset(j->p[i], 0x5c, j->block);
  }
  return NULL;
}

/* "BLOCK:TOTAL": a thread allocates TOTAL bytes as BLOCK-byte blocks and
 * exits; the main thread frees them all. The owner is gone, yet RSS must
 * fall. */
static int child_rss_exited(const char *arg) {
  size_t v[2];
  parse_sizes(arg, v, 2);
  size_t block = v[0], total = v[1], count = total / block;
  void **p = pointer_array(count);
  frhehe(hahalloc(16));
  long base = rss_kb();
  job j = {p, count, block};
  pthread_t t;
  pthread_create(&t, NULL, allocate_job, &j);
  pthread_join(t, NULL);
  long peak = rss_kb();
  for (size_t i = 0; i < count; i++) {
    CHILD_CHECK(p[i], "hahalloc(%zu) #%zu failed in the thread", block, i);
    frhehe(p[i]);
  }
  long after = rss_kb();
  pointer_array_free(p, count);
  printf("%zu x %zu bytes from an exited thread: RSS %ld -> %ld -> %ld KiB\n", count, block, base, peak, after);
  CHILD_CHECK(peak - base >= (long)(total / KiB * 9 / 10), "RSS rose by only %ld KiB: the measurement is wrong",
              peak - base);
  CHILD_CHECK(after - base <= (long)(64 * MiB / KiB),
              "RSS still %ld KiB above the start after freeing the blocks of an exited thread", after - base);
  return 0;
}

static void rss_falls_when_4KiB_blocks_of_an_exited_thread_are_freed(void **state) {
  (void)state;
  run_fresh("rss_exited", "4096:268435456", NULL);
}

static void rss_falls_when_1MiB_blocks_of_an_exited_thread_are_freed(void **state) {
  (void)state;
  run_fresh("rss_exited", "1048576:268435456", NULL);
}

/* A thread allocates 2 million 100-byte blocks, frees all but 1 in 200,
 * and exits; the main thread frees the rest: 1.1 MiB of frees, below the
 * bytes that make a freeing thread sweep an exited thread's heap, empty
 * its 224 MiB of pages. "trim": malloc_trim then, and RSS must have fallen
 * at once; "decay": the main thread goes on allocating (1,000 blocks of
 * up to 60,000 bytes every 100 ms) and RSS must fall within 1.5 s. Before,
 * neither did: nobody collected those frees (helper-71: 465 MiB kept). */
static void *sparse_job(void *arg) {
  job *j = arg;
  for (size_t i = 0; i < j->count; i++) {
    j->p[i] = malloc(j->block);
    if (j->p[i]) memset(j->p[i], 0x5c, j->block);
  }
  for (size_t i = 0; i < j->count; i++)
    if (i % 200) {
      free(j->p[i]);
      j->p[i] = NULL;
    }
  return NULL;
}

static int child_rss_exited_sparse(const char *how) {
  size_t count = 2000000, block = 100;
  void **p = pointer_array(count);
  free(malloc(16));
  long base = rss_kb();
  job j = {p, count, block};
  pthread_t t;
  pthread_create(&t, NULL, sparse_job, &j);
  pthread_join(t, NULL);
  long peak = rss_kb();
  for (size_t i = 0; i < count; i += 200) free(p[i]);
  pointer_array_free(p, count);
  long after = 0;
  if (!strcmp(how, "trim")) {
    malloc_trim(0);
    after = rss_kb();
  } else {
    for (int k = 0; k < 15; k++) {
      usleep(100000);
      void *q[1000];
      for (int i = 0; i < 1000; i++) q[i] = malloc(16 + (size_t)(i * 7919) % 60000);
      for (int i = 0; i < 1000; i++) free(q[i]);
      after = rss_kb();
      if (after - base <= (long)(64 * MiB / KiB)) break;
    }
  }
  printf("1 in 200 of an exited thread's 100-byte blocks freed (%s): RSS %ld -> %ld -> %ld KiB\n", how, base, peak,
         after);
  CHILD_CHECK(peak - base >= 150 * (long)(MiB / KiB), "RSS rose by only %ld KiB: the measurement is wrong",
              peak - base);
  CHILD_CHECK(after - base <= (long)(64 * MiB / KiB), "RSS still %ld KiB above the start (%s)", after - base, how);
  return 0;
}

static void rss_falls_when_the_last_blocks_of_an_exited_thread_are_freed_by_trim(void **state) {
  (void)state;
  run_fresh("rss_exited_sparse", "trim", NULL);
}

static void rss_falls_when_the_last_blocks_of_an_exited_thread_are_freed_by_decay(void **state) {
  (void)state;
  run_fresh("rss_exited_sparse", "decay", NULL);
}

/* malloc_trim every 10 ms while two threads start short-lived threads one
 * after another: the trim took the whole list of exited threads' heaps
 * while it swept them, threads that started meanwhile made new heaps, and
 * heaps are never freed (helper-74: 84 -> 559 heaps in a minute, each
 * with a mapping of its own). The address space must stay put. */
static atomic_int trim_churn_stop;
static void *trim_churn_leaf(void *arg) {
  (void)arg;
  for (int i = 0; i < 16; i++) free(malloc(64 + (size_t)i * 100));
  return NULL;
}
static void *trim_churn_spawner(void *arg) {
  (void)arg;
  while (!atomic_load(&trim_churn_stop)) {
    pthread_t t;
    if (pthread_create(&t, NULL, trim_churn_leaf, NULL) == 0) pthread_join(t, NULL);
  }
  return NULL;
}
static void *trim_churn_trimmer(void *arg) {
  (void)arg;
  while (!atomic_load(&trim_churn_stop)) {
    malloc_trim(0);
    usleep(10000);
  }
  return NULL;
}
static int child_trim_churn(const char *arg) {
  (void)arg;
  pthread_t t[3];
  pthread_create(&t[0], NULL, trim_churn_trimmer, NULL);
  pthread_create(&t[1], NULL, trim_churn_spawner, NULL);
  pthread_create(&t[2], NULL, trim_churn_spawner, NULL);
  usleep(500000);
  long before = hh_status_kb("VmSize");
  sleep(4);
  long after = hh_status_kb("VmSize");
  atomic_store(&trim_churn_stop, 1);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  printf("malloc_trim beside a thread churn: VmSize %ld -> %ld KiB in 4 s\n", before, after);
  CHILD_CHECK(after - before <= (long)(16 * MiB / KiB), "the address space grew by %ld KiB in 4 s", after - before);
  return 0;
}

static void malloc_trim_beside_a_thread_churn_keeps_the_heaps_it_has(void **state) {
  (void)state;
  run_fresh("trim_churn", "", NULL);
}

typedef struct relay {
  void **p;
  size_t count, block;
  pthread_barrier_t *bar;
  int rounds;
} relay;

static void *relay_producer(void *arg) {
  relay *r = arg;
  for (int k = 0; k < r->rounds; k++) {
    for (size_t i = 0; i < r->count; i++) {
      r->p[i] = hahalloc(r->block);
      if (r->p[i]) memset(r->p[i], k, r->block);
    }
    pthread_barrier_wait(r->bar); /* hand over */
    pthread_barrier_wait(r->bar); /* consumer done */
  }
  return NULL;
}

/* 30 rounds of 64 MiB of 256-byte blocks made by one thread and freed by
 * another: remote frees that were never reused would grow RSS to 1.9 GiB. */
static int child_rss_relay(const char *arg) {
  (void)arg;
  relay r = {NULL, 64 * MiB / 256, 256, NULL, 30};
  r.p = pointer_array(r.count);
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, 2);
  r.bar = &bar;
  frhehe(hahalloc(16));
  long base = rss_kb(), peak = base;
  pthread_t t;
  pthread_create(&t, NULL, relay_producer, &r);
  for (int k = 0; k < r.rounds; k++) {
    pthread_barrier_wait(&bar);
    long now = rss_kb();
    if (now > peak) peak = now;
    for (size_t i = 0; i < r.count; i++) {
      CHILD_CHECK(r.p[i], "hahalloc failed in the producer");
      frhehe(r.p[i]);
    }
    pthread_barrier_wait(&bar);
  }
  pthread_join(t, NULL);
  pthread_barrier_destroy(&bar);
  pointer_array_free(r.p, r.count);
  printf("30 x 64 MiB allocated by one thread, freed by another: peak RSS %ld KiB above the start\n", peak - base);
  CHILD_CHECK(peak - base >= (long)(60 * MiB / KiB), "RSS rose by only %ld KiB: the measurement is wrong", peak - base);
  CHILD_CHECK(peak - base <= (long)(200 * MiB / KiB),
              "RSS grew by %ld KiB for 64 MiB live: memory freed by another thread is not reused", peak - base);
  return 0;
}

static void rss_stays_bounded_when_one_thread_allocates_and_another_frees(void **state) {
  (void)state;
  run_fresh("rss_relay", "", NULL);
}

/* ------------------------------------------------------------ peak in use */

static size_t peak_bytes(void) { return mallinfo2().usmblks; }

/* 200 rounds of 1,000 blocks of 1,000 bytes made by one thread and freed by
 * the other: the frees must reach the global count, or every round would add
 * to the peak (it once read 2 GB here for about 1 MiB ever live). */
static int child_peak_relay(const char *arg) {
  (void)arg;
  relay r = {NULL, 1000, 1000, NULL, 200};
  r.p = pointer_array(r.count);
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, 2);
  r.bar = &bar;
  pthread_t t;
  pthread_create(&t, NULL, relay_producer, &r);
  for (int k = 0; k < r.rounds; k++) {
    pthread_barrier_wait(&bar);
    for (size_t i = 0; i < r.count; i++) frhehe(r.p[i]);
    pthread_barrier_wait(&bar);
  }
  pthread_join(t, NULL);
  pthread_barrier_destroy(&bar);
  pointer_array_free(r.p, r.count);
  size_t peak = peak_bytes();
  printf("peak in use after 200 rounds of 1,000 x 1,000 bytes relayed between threads: %zu bytes\n", peak);
  CHILD_CHECK(peak >= 1000 * 1000, "the peak (%zu bytes) is below what was live at once", peak);
  CHILD_CHECK(peak <= 4 * MiB, "the peak (%zu bytes) adds up rounds that were never live together", peak);
  return 0;
}

/* One thread, two million random allocations and frees (sizes from 1 byte
 * to 128 KiB, mostly small) that rise, fall and rise again: the peak in use
 * must be exactly the highest sum of the live blocks' sizes (whole blocks:
 * malloc_usable_size), on top of what was live before. The walk crosses
 * the heap's folds and marks below the peak (stats.c) thousands of times. */
static uint64_t walk_rng(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}
static int child_peak_exact(const char *arg) {
  (void)arg;
  enum { SLOTS = 20000, OPS = 2000000 };
  void **p = pointer_array(SLOTS);
  struct mallinfo2 before = mallinfo2();
  size_t live = 0, high = 0;
  uint64_t rng = 0x9e3779b97f4a7c15ULL;
  for (long k = 0; k < OPS; k++) {
    /* the share of slots kept full drifts: 20%, 80%, 40%, 90% */
    long phase = k / (OPS / 4);
    uint64_t fill = phase == 0 ? 20 : phase == 1 ? 80 : phase == 2 ? 40 : 90;
    size_t i = (size_t)(walk_rng(&rng) % SLOTS);
    bool want = walk_rng(&rng) % 100 < fill;
    if (p[i] && !want) {
      live -= malloc_usable_size(p[i]);
      free(p[i]);
      p[i] = NULL;
    } else if (!p[i] && want) {
      uint64_t r = walk_rng(&rng);
      size_t size = r % 100 < 90 ? 1 + r % 256 : r % 100 < 98 ? 1 + r % 4096 : 1 + r % (128 * KiB);
      p[i] = malloc(size);
      CHILD_CHECK(p[i] != NULL, "malloc(%zu) failed", size);
      live += malloc_usable_size(p[i]);
      if (live > high) high = live;
    }
  }
  struct mallinfo2 after = mallinfo2();
  size_t expected = before.uordblks + high > before.usmblks ? before.uordblks + high : before.usmblks;
  printf("random walk on one thread: highest live %zu bytes over %zu before; peak %zu (expected %zu)\n", high,
         before.uordblks, after.usmblks, expected);
  CHILD_CHECK(after.usmblks == expected, "the peak is %zu bytes, the live blocks never summed to more than %zu",
              after.usmblks, expected);
  CHILD_CHECK(after.uordblks == before.uordblks + live, "in use %zu bytes, expected %zu", after.uordblks,
              before.uordblks + live);
  for (size_t i = 0; i < SLOTS; i++) free(p[i]);
  pointer_array_free(p, SLOTS);
  return 0;
}

static void peak_is_exact_for_one_thread(void **state) {
  (void)state;
  run_fresh("peak_exact", "", NULL);
}

static void *big_blocks_job(void *arg) {
  void **p = arg;
  for (int i = 0; i < 100; i++) p[i] = hahalloc(MiB);
  return NULL;
}

/* Thread A allocates 100 x 1 MiB and frees them, then thread B allocates 100
 * x 1 MiB and keeps them: never more than 100 MiB at once. */
static int child_peak_large(const char *arg) {
  (void)arg;
  void *a[100], *b[100];
  pthread_t t;
  pthread_create(&t, NULL, big_blocks_job, a);
  pthread_join(t, NULL);
  for (int i = 0; i < 100; i++) frhehe(a[i]);
  pthread_create(&t, NULL, big_blocks_job, b);
  pthread_join(t, NULL);
  size_t peak = peak_bytes();
  for (int i = 0; i < 100; i++) frhehe(b[i]);
  printf("peak in use, 100 MiB live at most: %zu bytes\n", peak);
  CHILD_CHECK(peak >= 100 * MiB, "the peak (%zu bytes) is below the 100 MiB live at once", peak);
  CHILD_CHECK(peak <= 110 * MiB, "the peak (%zu bytes) counts memory freed before", peak);
  return 0;
}

static void peak_is_not_inflated_by_blocks_another_thread_freed(void **state) {
  (void)state;
  run_fresh("peak_relay", "", NULL);
}

static void peak_is_not_inflated_by_large_blocks_freed_before(void **state) {
  (void)state;
  run_fresh("peak_large", "", NULL);
}

/* ------------------------------------------------------------ metadata */

static long rss_exact_kb(void) { return hh_proc_kb("/proc/self/smaps_rollup", "Rss"); }

/* 1,000,000 live 16-byte blocks and the array of their pointers (8 MB, a
 * hahalloc block too, as a program would have it). `arg` is two bars,
 * "bytes:MiB": the blocks alone at most `bytes` each, and blocks and array
 * together at most `MiB` (0: no bar).
 * The silent drop-in keeps a 1-byte record (16 + 1 = 17 bytes a block, and
 * the pages' share; mimalloc takes 16): issue 12's bar is 24 MiB in all
 * (mimalloc, jemalloc and tcmalloc take 23). With the report on, a block
 * keeps its call site and size in a 4-byte packed record (16 + 4 = 20: it
 * was an 8-byte record, 24). */
static int child_metadata(const char *arg) {
  const size_t count = 1000000;
  char *end;
  double bar = strtod(arg, &end);
  double total_bar = *end == ':' ? strtod(end + 1, NULL) : 0;
  frhehe(hahalloc(16)); /* start-up costs are not the blocks' */
  long base = rss_exact_kb();
  void **p = hahalloc(count * sizeof *p);
  CHILD_CHECK(p, "hahalloc of the pointer array failed");
  memset(p, 0, count * sizeof *p);
  long array = rss_exact_kb() - base;
  for (size_t i = 0; i < count; i++) {
    p[i] = hahalloc(16);
    CHILD_CHECK(p[i], "hahalloc(16) #%zu failed", i);
    memset(p[i], 1, 16);
  }
  long total = rss_exact_kb() - base, used = total - array;
  for (size_t i = 0; i < count; i++) frhehe(p[i]);
  frhehe(p);
  double per_block = used * 1024.0 / (double)count;
  printf("1,000,000 x 16 bytes (HAHALLOC_SUMMARY=%s): %ld KiB of RSS, %.2f bytes per block; "
         "with the pointer array %.2f MiB\n",
         getenv("HAHALLOC_SUMMARY") ? getenv("HAHALLOC_SUMMARY") : "default", used, per_block, total / 1024.0);
  CHILD_CHECK(per_block <= bar, "1,000,000 live 16-byte blocks cost %ld KiB of RSS: %.2f bytes each, above %.1f", used,
              per_block, bar);
  CHILD_CHECK(total_bar == 0 || total <= total_bar * 1024,
              "1,000,000 live 16-byte blocks and their pointer array take %.2f MiB of RSS, above %.0f", total / 1024.0,
              total_bar);
  return 0;
}

/* The drop-in (no call sites): a record of one byte per block. */
static void one_million_live_16_byte_blocks_cost_at_most_17_5_bytes_each_and_24_MiB_with_their_array_without_call_sites(
    void **state) {
  (void)state;
  run_fresh("metadata", "17.5:24", NULL);
}

/* with the exit summary (and so allocation tracking) on, as a user gets it */
static void one_million_live_16_byte_blocks_cost_at_most_20_5_bytes_each_with_call_sites(void **state) {
  (void)state;
  static const char *const summary_default[] = {"HAHALLOC_SUMMARY", NULL};
  run_fresh("metadata", "20.5", summary_default);
}

/* ------------------------------------------------------------ out of memory */

/* Pointers live in a static array: it is part of the address space before
 * the limit is set. */
#define OOM_MAX (1u << 21)
static void *oom_p[OOM_MAX];

static int oom_fail(int code, const char *what, size_t n, size_t i) {
  dprintf(2, "CHILD FAIL: %s (size %zu, block %zu, errno %d)\n", what, n, i, errno);
  return code;
}

static void limit_address_space(size_t headroom) {
  size_t vm = (size_t)hh_status_kb("VmSize") * KiB;
  struct rlimit rl = {vm + headroom, vm + headroom};
  setrlimit(RLIMIT_AS, &rl);
}

/* Allocates blocks of `n` bytes until the limit; returns how many. */
static size_t fill_to_the_limit(size_t n, int *rc) {
  size_t count = 0;
  for (;;) {
    if (count == OOM_MAX) {
      *rc = oom_fail(2, "the limit was never reached", n, count);
      return count;
    }
    errno = 0;
    void *p = hahalloc(n);
    if (!p) {
      if (errno != ENOMEM) *rc = oom_fail(3, "NULL without ENOMEM", n, count);
      return count;
    }
    hh_fill(p, n, hh_block_hash(p, n, 14));
    oom_p[count++] = p;
  }
}

static int verify_and_free(size_t n, size_t count) {
  for (size_t i = 0; i < count; i++) {
    if (hh_check(oom_p[i], n, n, hh_block_hash(oom_p[i], n, 14)) != SIZE_MAX)
      return oom_fail(4, "a block allocated before the failure was damaged", n, i);
    frhehe(oom_p[i]);
  }
  return 0;
}

/* arg: "SIZE" or "SIZE:THEN" (after freeing everything, allocate 32 MiB as
 * blocks of THEN bytes). */
static int oom_child(const char *arg) {
  char *end;
  size_t n = strtoul(arg, &end, 10);
  size_t then = *end == ':' ? strtoul(end + 1, NULL, 10) : 0;
  frhehe(hahalloc(n)); /* initialise before the limit */
  limit_address_space(64 * MiB);
  int rc = 0;
  size_t count = fill_to_the_limit(n, &rc);
  if (rc) return rc;
  if (count == 0) return oom_fail(5, "not a single block fit under the limit", n, 0);
  /* more failing calls, of every kind, do not crash */
  const size_t more[] = {16, 4096, 200 * KiB, 2 * MiB, 64 * MiB};
  for (size_t i = 0; i < sizeof more / sizeof *more; i++) {
    errno = 0;
    void *p = hahalloc(more[i]);
    if (p)
      frhehe(p);
    else if (errno != ENOMEM)
      return oom_fail(6, "NULL without ENOMEM", more[i], i);
  }
  errno = 0;
  if (chahalloc(128 * MiB) || errno != ENOMEM) return oom_fail(7, "chahalloc(128 MiB) under the limit", n, 0);
  errno = 0;
  void *grown = rehehalloc(oom_p[0], 128 * MiB);
  if (grown || errno != ENOMEM) return oom_fail(8, "rehehalloc(p, 128 MiB) under the limit", n, 0);
  if ((rc = verify_and_free(n, count))) return rc;
  /* everything was freed: the same again fits (within 10%) */
  size_t again = count - count / 10;
  for (size_t i = 0; i < again; i++) {
    oom_p[i] = hahalloc(n);
    if (!oom_p[i]) return oom_fail(9, "allocation fails after everything was freed", n, i);
    hh_fill(oom_p[i], n, hh_block_hash(oom_p[i], n, 14));
  }
  if ((rc = verify_and_free(n, again))) return rc;
  if (then) {
    size_t k = 32 * MiB / then;
    for (size_t i = 0; i < k; i++) {
      oom_p[i] = hahalloc(then);
      if (!oom_p[i]) return oom_fail(10, "memory freed from one size does not serve another", then, i);
      hh_fill(oom_p[i], then, hh_block_hash(oom_p[i], then, 14));
    }
    if ((rc = verify_and_free(then, k))) return rc;
  }
  printf("reached the limit after %zu blocks of %zu bytes\n", count, n);
  return 0;
}

static void run_oom(const char *arg) { run_fresh("oom", arg, NULL); }

static void out_of_memory_with_small_blocks_returns_NULL_and_ENOMEM(void **state) {
  (void)state;
  run_oom("48");
}

static void out_of_memory_with_medium_blocks_returns_NULL_and_ENOMEM(void **state) {
  (void)state;
  run_oom("40000");
}

static void out_of_memory_with_large_blocks_returns_NULL_and_ENOMEM(void **state) {
  (void)state;
  run_oom("1048576");
}

static void out_of_memory_with_oversize_blocks_returns_NULL_and_ENOMEM(void **state) {
  (void)state;
  run_oom("6291456");
}

static void memory_freed_from_small_blocks_serves_large_ones_under_a_limit(void **state) {
  (void)state;
  run_oom("64:1048576");
}

static void memory_freed_from_large_blocks_serves_oversize_ones_under_a_limit(void **state) {
  (void)state;
  run_oom("1048576:16777216");
}

/* Sizes the kernel's overcommit policy refuses get ENOMEM, as from glibc:
 * the memory handed to the program is charged to the overcommit accounting
 * (no MAP_NORESERVE). What the kernel says is asked first with a plain mmap
 * of the same size; either way a free leaves no registry behind in RSS. */
static int child_impossible_size(const char *arg) {
  (void)arg;
  const size_t sizes[] = {(size_t)64 << 30, (size_t)1 << 40, (size_t)16 << 40, (size_t)64 << 40};
  long before = rss_kb();
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    void *probe = mmap(NULL, sizes[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bool kernel_refuses = probe == MAP_FAILED;
    if (!kernel_refuses) munmap(probe, sizes[i]);
    errno = 0;
    void *p = hahalloc(HH_OPAQUE(sizes[i]));
    if (kernel_refuses)
      CHILD_CHECK(p == NULL && errno == ENOMEM,
                  "hahalloc(%zu GiB) = %p (errno %d): the kernel refuses "
                  "that much, so must hahalloc",
                  sizes[i] >> 30, p, errno);
    printf("hahalloc(%zu GiB): %s\n", sizes[i] >> 30, p ? "a block" : "ENOMEM");
    frhehe(p);
  }
  long after = rss_kb();
  printf("RSS %ld kB before, %ld kB after\n", before, after);
  CHILD_CHECK(after - before < 8 * 1024, "RSS grew by %ld kB", after - before);
  return 0;
}

static void sizes_the_kernel_refuses_fail_with_ENOMEM_and_leave_no_RSS(void **state) {
  (void)state;
  run_fresh("impossible_size", "", NULL);
}

/* 1,000 blocks of 4 KiB aligned to 128 KiB: each took a 4 MiB oversize
 * mapping of its own (4 GiB of address space, against glibc's 138 MiB, and
 * a program under `ulimit -v` ran out). Aligned spans of a mapping now hold
 * them: at most 1 GiB. Also checked: the alignment, and that each block is
 * usable whole and distinct (a byte written to each survives). */
static int child_aligned_address_space(const char *arg) {
  (void)arg;
  enum { COUNT = 1000 };
  static unsigned char *p[COUNT];
  const size_t sizes[] = {4096, 100000, 1 << 20};
  const size_t aligns[] = {(size_t)128 << 10, (size_t)1 << 20, (size_t)2 << 20};
  for (int k = 0; k < 3; k++) {
    size_t align = aligns[k], size = sizes[k], count = k == 0 ? COUNT : 20;
    long before = hh_status_kb("VmSize");
    for (size_t i = 0; i < count; i++) {
      p[i] = aligned_alloc(align, size);
      CHILD_CHECK(p[i] != NULL, "aligned_alloc(%zu, %zu) #%zu failed", align, size, i);
      CHILD_CHECK((uintptr_t)p[i] % align == 0, "aligned_alloc(%zu, %zu) gave %p", align, size, (void *)p[i]);
      CHILD_CHECK(malloc_usable_size(p[i]) >= size, "usable size %zu below %zu", malloc_usable_size(p[i]), size);
      p[i][0] = (unsigned char)i;
      p[i][size - 1] = (unsigned char)(i + 1);
    }
    long grew = hh_status_kb("VmSize") - before;
    for (size_t i = 0; i < count; i++) {
      CHILD_CHECK(p[i][0] == (unsigned char)i && p[i][size - 1] == (unsigned char)(i + 1),
                  "block %zu of aligned_alloc(%zu, %zu) was overwritten", i, align, size);
      free(p[i]);
    }
    printf("%zu x aligned_alloc(%zu, %zu): address space +%ld KiB\n", count, align, size, grew);
    if (k == 0) CHILD_CHECK(grew < 1024 * 1024, "1,000 blocks took %ld KiB of address space", grew);
  }
  /* empty and one-byte requests at the alignments around a mapping's */
  for (size_t align = (size_t)64 << 10; align <= (size_t)16 << 20; align *= 2)
    for (size_t size = 0; size <= 1; size++) {
      void *q = aligned_alloc(align, size);
      CHILD_CHECK(q != NULL && (uintptr_t)q % align == 0, "aligned_alloc(%zu, %zu) gave %p", align, size, q);
      free(q);
    }
  return 0;
}

static void aligned_blocks_up_to_2MiB_share_mappings(void **state) {
  (void)state;
  run_fresh("aligned_address_space", "", NULL);
}

/* Under RLIMIT_AS (256 MiB more than at the start), one thread fills the
 * address space and exits, main frees everything, and a new thread must
 * then be able to allocate, three times over: address space one heap keeps
 * for reuse is handed back before another thread gets ENOMEM. */
static size_t handover_count;

static void *handover_fill(void *arg) {
  int *rc = arg;
  handover_count = fill_to_the_limit(4000, rc);
  return NULL;
}

static void *handover_use(void *arg) {
  size_t *got = arg;
  void *p[16384];
  size_t n = 0;
  for (; n < 16384; n++) /* 64 MiB of 4000-byte blocks */
    if ((p[n] = hahalloc(4000)) == NULL) break;
  *got = n;
  for (size_t i = 0; i < n; i++) frhehe(p[i]);
  return NULL;
}

static int child_rlimit_handover(const char *arg) {
  (void)arg;
  limit_address_space(256 * MiB);
  for (int round = 0; round < 3; round++) {
    int rc = 0;
    pthread_t t;
    pthread_create(&t, NULL, handover_fill, &rc);
    pthread_join(t, NULL);
    if (rc) return rc;
    CHILD_CHECK(handover_count > 1000, "round %d: the filling thread got only %zu blocks", round, handover_count);
    for (size_t i = 0; i < handover_count; i++) frhehe(oom_p[i]);
    size_t got = 0;
    pthread_create(&t, NULL, handover_use, &got);
    pthread_join(t, NULL);
    printf("round %d: %zu blocks filled the limit; after they were freed a new thread got %zu of 16384\n", round,
           handover_count, got);
    CHILD_CHECK(got == 16384,
                "round %d: a new thread got only %zu blocks of 4000 bytes (64 MiB wanted) "
                "after every block was freed",
                round, got);
  }
  return 0;
}

static void address_space_freed_by_one_thread_serves_a_new_thread_under_RLIMIT_AS(void **state) {
  (void)state;
  run_fresh("rlimit_handover", "", NULL);
}

static const hh_child_entry children[] = {{"oom", oom_child},
                                          {"rlimit_handover", child_rlimit_handover},
                                          {"impossible_size", child_impossible_size},
                                          {"aligned_address_space", child_aligned_address_space},
                                          {"metadata", child_metadata},
                                          {"rss_blocks", child_rss_blocks},
                                          {"rss_cached_oversize", child_rss_cached_oversize},
                                          {"rss_cached_tail", child_rss_cached_tail},
                                          {"rss_tails_budget", child_rss_tails_budget},
                                          {"tail_purge_signal", child_tail_purge_signal},
                                          {"calloc_locked", child_calloc_locked},
                                          {"churn_locked", child_churn_locked},
                                          {"rounds_locked", child_rounds_locked},
                                          {"rss_exited", child_rss_exited},
                                          {"rss_exited_sparse", child_rss_exited_sparse},
                                          {"trim_churn", child_trim_churn},
                                          {"rss_relay", child_rss_relay},
                                          {"peak_relay", child_peak_relay},
                                          {"peak_large", child_peak_large},
                                          {"peak_exact", child_peak_exact},
                                          {NULL, NULL}};

int main(int argc, char **argv) {
  hh_child_dispatch(argc, argv, children);
  hh_test_env(argv); /* the runner only: children set their own */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          one_million_live_16_byte_blocks_cost_at_most_17_5_bytes_each_and_24_MiB_with_their_array_without_call_sites),
      cmocka_unit_test(one_million_live_16_byte_blocks_cost_at_most_20_5_bytes_each_with_call_sites),
      cmocka_unit_test(rss_falls_after_freeing_512MiB_of_1MiB_blocks),
      cmocka_unit_test(rss_falls_after_freeing_512MiB_of_64KiB_blocks),
      cmocka_unit_test(rss_falls_after_freeing_256MiB_of_64_byte_blocks),
      cmocka_unit_test(rss_falls_after_freeing_128MiB_of_16_byte_blocks),
      cmocka_unit_test(rss_falls_after_freeing_one_512MiB_oversize_block),
      cmocka_unit_test(rss_falls_a_second_after_freeing_8_cached_16MiB_oversize_blocks),
      cmocka_unit_test(rss_falls_a_second_after_a_cached_mapping_serves_a_smaller_block),
      cmocka_unit_test(the_tails_of_cached_mappings_keep_within_a_budget),
      cmocka_unit_test(a_signal_handler_frees_while_the_tails_are_purged),
      cmocka_unit_test(calloc_of_memory_the_program_locked_is_zero),
      cmocka_unit_test(large_frees_under_mlockall_do_not_retry_refused_purges_and_give_memory_back),
      cmocka_unit_test(rounds_of_large_blocks_under_mlockall_keep_their_mappings),
      cmocka_unit_test(rss_falls_when_4KiB_blocks_of_an_exited_thread_are_freed),
      cmocka_unit_test(rss_falls_when_1MiB_blocks_of_an_exited_thread_are_freed),
      cmocka_unit_test(rss_falls_when_the_last_blocks_of_an_exited_thread_are_freed_by_trim),
      cmocka_unit_test(rss_falls_when_the_last_blocks_of_an_exited_thread_are_freed_by_decay),
      cmocka_unit_test(malloc_trim_beside_a_thread_churn_keeps_the_heaps_it_has),
      cmocka_unit_test(rss_stays_bounded_when_one_thread_allocates_and_another_frees),
      cmocka_unit_test(peak_is_exact_for_one_thread),
      cmocka_unit_test(peak_is_not_inflated_by_blocks_another_thread_freed),
      cmocka_unit_test(peak_is_not_inflated_by_large_blocks_freed_before),
      cmocka_unit_test(out_of_memory_with_small_blocks_returns_NULL_and_ENOMEM),
      cmocka_unit_test(out_of_memory_with_medium_blocks_returns_NULL_and_ENOMEM),
      cmocka_unit_test(out_of_memory_with_large_blocks_returns_NULL_and_ENOMEM),
      cmocka_unit_test(out_of_memory_with_oversize_blocks_returns_NULL_and_ENOMEM),
      cmocka_unit_test(memory_freed_from_small_blocks_serves_large_ones_under_a_limit),
      cmocka_unit_test(memory_freed_from_large_blocks_serves_oversize_ones_under_a_limit),
      cmocka_unit_test(sizes_the_kernel_refuses_fail_with_ENOMEM_and_leave_no_RSS),
      cmocka_unit_test(aligned_blocks_up_to_2MiB_share_mappings),
      cmocka_unit_test(address_space_freed_by_one_thread_serves_a_new_thread_under_RLIMIT_AS),
  };
  return cmocka_run_group_tests_name("memory: RSS, metadata, out of memory", tests, NULL, NULL);
}
