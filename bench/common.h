/*
 * Shared helpers for the hahalloc benchmarks.
 *
 * Every benchmark is a plain C program that uses the standard malloc family
 * and is NOT linked to hahalloc: the allocator under test is injected with
 * LD_PRELOAD, so one binary runs under glibc, hahalloc, mimalloc, jemalloc and
 * tcmalloc alike. Parameters are given as key=value arguments; each program
 * prints "ok <name> ..." on success, and "FAIL ..." plus a non-zero exit when
 * the data it wrote into its blocks was not found intact.
 *
 * `<prog> which` prints the shared object that provides malloc, so the driver
 * can check that a preload really took effect.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_UNUSED __attribute__((unused))

/* ---- arguments ------------------------------------------------------------ */

/* Value of "key=value" among argv, or def. Accepts k/m/g suffixes. */
static BENCH_UNUSED long arg_long(int argc, char **argv, const char *key, long def) {
  size_t kl = strlen(key);
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], key, kl) == 0 && argv[i][kl] == '=') {
      char *end;
      long v = strtol(argv[i] + kl + 1, &end, 0);
      switch (*end) {
      case 'k':
      case 'K': v <<= 10; break;
      case 'm':
      case 'M': v <<= 20; break;
      case 'g':
      case 'G': v <<= 30; break;
      default: break;
      }
      return v;
    }
  }
  return def;
}

static BENCH_UNUSED const char *arg_str(int argc, char **argv, const char *key, const char *def) {
  size_t kl = strlen(key);
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], key, kl) == 0 && argv[i][kl] == '=') return argv[i] + kl + 1;
  return def;
}

/* `prog which`: report which object provides malloc, then exit. */
static BENCH_UNUSED void bench_which(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "which") == 0) {
    Dl_info info;
    void *(*volatile fn)(size_t) = malloc;
    if (dladdr((void *)fn, &info) && info.dli_fname)
      printf("malloc from %s (%s)\n", info.dli_fname, info.dli_sname ? info.dli_sname : "?");
    else
      printf("malloc from ?\n");
    exit(0);
  }
}

/* ---- time and randomness ----------------------------------------------- */

static BENCH_UNUSED double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64: small, fast, good enough to pick slots and sizes. */
static inline uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Uniform in [0, n) (n < 2^32; the tiny bias does not matter here). */
static inline uint64_t rng_below(uint64_t *s, uint64_t n) { return ((rng_next(s) >> 32) * n) >> 32; }

/* Uniform in [lo, hi]. */
static inline size_t rng_range(uint64_t *s, size_t lo, size_t hi) {
  return lo + (size_t)rng_below(s, (uint64_t)(hi - lo + 1));
}

/* Log-uniform in [lo, hi]: every power of two gets the same share. */
static BENCH_UNUSED size_t rng_log_range(uint64_t *s, size_t lo, size_t hi) {
  int lb = 63 - __builtin_clzll(lo), hb = 63 - __builtin_clzll(hi);
  int b = lb + (int)rng_below(s, (uint64_t)(hb - lb + 1));
  size_t base = (size_t)1 << b;
  size_t v = base + (size_t)rng_below(s, base);
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return v;
}

/*
 * The small-object mix of the churn benchmarks (issue 2): sizes mostly 8-128
 * bytes, with a tail to 32 KiB. 90% in [8,128], 8% in (128,1024], 2% in
 * (1024, 32768].
 */
static inline size_t size_small_mix(uint64_t *s) {
  uint64_t r = rng_below(s, 1000);
  if (r < 900) return rng_range(s, 8, 128);
  if (r < 980) return rng_range(s, 129, 1024);
  return rng_range(s, 1025, 32768);
}

/* ---- touching memory ---------------------------------------------------- */

/* Write a tag into the first and last bytes of a block, as a user would. */
static inline void block_tag(void *p, size_t n, uint64_t tag) {
  unsigned char *c = (unsigned char *)p;
  if (n >= 8)
    memcpy(c, &tag, 8);
  else
    c[0] = (unsigned char)tag;
  c[n - 1] = (unsigned char)(tag >> 8);
}

/* Check the tag written by block_tag; returns 0 if intact. */
static inline int block_check(const void *p, size_t n, uint64_t tag) {
  const unsigned char *c = (const unsigned char *)p;
  if (n >= 8) {
    uint64_t t;
    memcpy(&t, c, 8);
    if (n == 8) t = (t & ~((uint64_t)0xff << 56)) | (tag & ((uint64_t)0xff << 56));
    if (t != tag) return 1;
  } else if (n > 1 && c[0] != (unsigned char)tag) {
    return 1;
  }
  return c[n - 1] != (unsigned char)(tag >> 8);
}

/* ---- calls the instruction counter can find ------------------------------ */

/*
 * malloc and free through functions that are never inlined, so that
 * `valgrind --tool=callgrind --toggle-collect=bench_malloc ...` counts exactly
 * the instructions spent in the allocator (bench/callgrind.sh). The cost of
 * the extra call is a few instructions, the same under every allocator.
 */
__attribute__((noinline, noipa, unused)) static void *bench_malloc(size_t n) { return malloc(n); }
__attribute__((noinline, noipa, unused)) static void bench_free(void *p) { free(p); }

static BENCH_UNUSED void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    printf("FAIL: malloc(%zu) returned NULL\n", n);
    fflush(stdout);
    exit(3);
  }
  return p;
}

static BENCH_UNUSED void fail(const char *what, size_t detail) {
  printf("FAIL: %s (%zu)\n", what, detail);
  fflush(stdout);
  exit(2);
}

/* Runs fn on each of n jobs (consecutive objects of `size` bytes), one
 * thread each, and waits for them; a single job runs on the calling thread. */
static BENCH_UNUSED void run_jobs(void *(*fn)(void *), void *jobs, size_t size, int n) {
  pthread_t tid[256];
  if (n < 1 || n > 256) fail("bad job count", (size_t)n);
  if (n == 1) {
    fn(jobs);
    return;
  }
  for (int t = 0; t < n; t++)
    if (pthread_create(&tid[t], NULL, fn, (char *)jobs + (size_t)t * size) != 0) fail("pthread_create", (size_t)t);
  for (int t = 0; t < n; t++) pthread_join(tid[t], NULL);
}

#endif /* BENCH_COMMON_H */
