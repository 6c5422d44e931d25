/*
 * The heap summary: mem_lhihiks(size) prints it to stdout at any time; at
 * exit the library prints it to stderr, unless HAHALLOC_SUMMARY=0. The
 * leak-check API (hahalloc_leak_check, hahalloc_leak_baseline,
 * hahalloc_ignore) answers in numbers, in every mode.
 *
 * The report's layout belongs to the report's authors, so these tests only
 * check that the information is there: numbers the test can compute (a live
 * block of 12345 bytes shows "12345"; 1000 more allocations raise a count by
 * 1000) and the words that name them. Every check runs in a fresh child
 * process, because options are read once at start-up.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "hahalloc.h"

/* ------------------------------------------------------------ numbers in text */

/* The integers of a text in order ("1,234" and "1_234" count as 1234). */
static size_t numbers(const char *s, size_t end, long long *out, size_t max) {
  /* accumulated unsigned so that a huge number wraps instead of overflowing */
  size_t k = 0;
  for (size_t i = 0; i < end && k < max;) {
    if (!isdigit((unsigned char)s[i]) || (i > 0 && (isalnum((unsigned char)s[i - 1]) || s[i - 1] == '.'))) {
      i++;
      continue;
    }
    unsigned long long v = 0;
    while (i < end && (isdigit((unsigned char)s[i]) ||
                       ((s[i] == ',' || s[i] == '_') && i + 1 < end && isdigit((unsigned char)s[i + 1])))) {
      if (isdigit((unsigned char)s[i])) v = v * 10 + (unsigned)(s[i] - '0');
      i++;
    }
    if (i < end && s[i] == '.' && i + 1 < end && isdigit((unsigned char)s[i + 1])) { /* 1.5: not a count */
      while (i < end && (isdigit((unsigned char)s[i]) || s[i] == '.')) i++;
      continue;
    }
    out[k++] = (long long)v;
  }
  return k;
}

static bool has_number(const char *s, long long want) {
  static long long v[100000];
  size_t k = numbers(s, strlen(s), v, 100000);
  for (size_t i = 0; i < k; i++)
    if (v[i] == want) return true;
  return false;
}

/* The text between the markers the child writes around a mem_lhihiks call. */
static char *between(const char *s, const char *open, const char *close) {
  const char *a = strstr(s, open);
  if (!a) return NULL;
  a += strlen(open);
  const char *b = strstr(a, close);
  if (!b) return NULL;
  return strndup(a, (size_t)(b - a));
}

static void mark(const char *m) { write(1, m, strlen(m)); }

/* ------------------------------------------------------------ children */

static int child_summary_to_stdout(const char *arg) {
  (void)arg;
  void *p = hahalloc(12345);
  mark("<<A>>");
  mem_lhihiks(0);
  mark("<</A>>");
  frhehe(p);
  return 0;
}

/* Two summaries with exactly 1000 allocations of 100 bytes and 400 frees
 * between them, and nothing else allocating. */
static int child_counts(const char *arg) {
  (void)arg;
  static void *p[1000];
  void *keep = hahalloc(100); /* the root of 100-byte blocks is in use in both */
  mark("<<A>>");
  mem_lhihiks(SIZE_MAX); /* totals only: no block is that big */
  mark("<</A>>");
  for (int i = 0; i < 1000; i++) p[i] = hahalloc(100);
  for (int i = 0; i < 400; i++) frhehe(p[i]);
  mark("<<B>>");
  mem_lhihiks(SIZE_MAX);
  mark("<</B>>");
  for (int i = 400; i < 1000; i++) frhehe(p[i]);
  frhehe(keep);
  return 0;
}

/* Ten million allocations of 100 bytes, freed as they come, between two
 * summaries: more than the 2^23 that a heap counts before its tally carries
 * (hh_stats_alloc), so the carry must keep every allocation and byte. */
#define MANY_ALLOCATIONS 10000000
static int child_counts_many(const char *arg) {
  (void)arg;
  void *keep = hahalloc(100);
  mark("<<A>>");
  mem_lhihiks(SIZE_MAX);
  mark("<</A>>");
  for (long i = 0; i < MANY_ALLOCATIONS; i++) frhehe(HH_OPAQUE(hahalloc(100)));
  mark("<<B>>");
  mem_lhihiks(SIZE_MAX);
  mark("<</B>>");
  frhehe(keep);
  return 0;
}

static int child_live_blocks(const char *arg) {
  (void)arg;
  void *a = hahalloc(12345), *b = hahalloc(54321), *c = hahalloc(7654321);
  void *gone = hahalloc(23456);
  frhehe(gone);
  mark("<<ALL>>");
  mem_lhihiks(0);
  mark("<</ALL>>");
  mark("<<BIG>>");
  mem_lhihiks(20000);
  mark("<</BIG>>");
  frhehe(a);
  mark("<<AFTER>>");
  mem_lhihiks(0);
  mark("<</AFTER>>");
  frhehe(b);
  frhehe(c);
  return 0;
}

/* Small blocks with a large alignment, and a block realloc shrinks in
 * place by more than 127 bytes, under the report (records with call sites):
 * each keeps a block of its own size class, and its exact size. */
static int child_aligned_small(const char *arg) {
  (void)arg;
  void *a = aligned_alloc(256, 16), *b = NULL;
  if (posix_memalign(&b, 512, 8) != 0) return 3;
  char *c = malloc(1000);
  memset(c, 5, 1000);
  char *d = realloc(c, 600);
  mark("<<L>>");
  mem_lhihiks(0);
  mark("<</L>>");
  /* after the listing: the program may use what malloc_usable_size says,
   * and the record grows to it */
  printf("usable %zu %zu\nmoved %d\n", malloc_usable_size(a), malloc_usable_size(b), d != c);
  fflush(stdout);
  free(a);
  free(b);
  free(d);
  return 0;
}

/* Blocks of every root, aligned ones and ones realloc kept or moved: the
 * scan's bytes grow by exactly the sizes asked for, whatever form their
 * pages keep their records in (slack with the summary off, packed or full
 * with it on). Nothing else allocates between the two scans. */
static int child_exact_sizes(const char *arg) {
  (void)arg;
  static void *keep[128];
  static const size_t sizes[] = {0,    1,    15,    16,    17,    100,   127,    128,    129,    200,
                                 255,  256,  257,   500,   897,   1000,  1024,   1025,   1100,   1281,
                                 5000, 9000, 32767, 32768, 32769, 65536, 100000, 131071, 131072, 200000};
  static const size_t aligns[] = {32, 64, 128, 256, 512, 1024, 4096, 65536};
  static const size_t aligned_sizes[] = {0, 1, 16, 100, 129, 1000, 5000};
  static const size_t resized[][2] = {{1000, 600},  {1000, 950},    {100, 60},   {128, 1},
                                      {5000, 1100}, {40000, 33000}, {600, 1000}, {33000, 40000}};
  struct hahalloc_leaks before, after;
  size_t n = 0, total = 0;
  if (hahalloc_leak_check(&before) < 0) return 3;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    if ((keep[n++] = malloc(sizes[i])) == NULL) return 4;
    total += sizes[i];
  }
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
    for (size_t i = 0; i < sizeof aligned_sizes / sizeof aligned_sizes[0]; i++) {
      if (posix_memalign(&keep[n++], aligns[a], aligned_sizes[i]) != 0) return 5;
      total += aligned_sizes[i];
    }
  for (size_t i = 0; i < sizeof resized / sizeof resized[0]; i++) {
    char *p = malloc(resized[i][0]);
    if (p == NULL || (p = realloc(p, resized[i][1])) == NULL) return 6;
    keep[n++] = p;
    total += resized[i][1];
  }
  if (hahalloc_leak_check(&after) < 0) return 7;
#define HH_ALL_BYTES(l) ((l).definite.bytes + (l).indirect.bytes + (l).possible.bytes + (l).reachable.bytes)
#define HH_ALL_BLOCKS(l) ((l).definite.blocks + (l).indirect.blocks + (l).possible.blocks + (l).reachable.blocks)
  printf("asked %zu bytes in %zu blocks; the scan grew by %zu bytes in %zu blocks\n", total, n,
         HH_ALL_BYTES(after) - HH_ALL_BYTES(before), HH_ALL_BLOCKS(after) - HH_ALL_BLOCKS(before));
  fflush(stdout);
  for (size_t i = 0; i < n; i++) free(keep[i]);
  return 0;
}

static int child_peak(const char *arg) {
  (void)arg;
  void *p = hahalloc(9 * MiB);
  frhehe(p);
  mark("<<A>>");
  mem_lhihiks(0);
  mark("<</A>>");
  return 0;
}

static int child_leaks_at_exit(const char *arg) {
  (void)arg;
  void *leak = hahalloc(12345);
  memset(leak, 1, 12345);
  printf("program output\n");
  return 0; /* through exit(), so the exit summary runs */
}

static atomic_bool stop_threads;

static void *allocate_forever(void *arg) {
  uint64_t rng = (uintptr_t)arg;
  void *keep[64] = {0};
  while (!atomic_load(&stop_threads)) {
    size_t i = hh_rand(&rng) % 64;
    frhehe(keep[i]);
    keep[i] = hahalloc(1 + hh_rand(&rng) % 5000);
  }
  return NULL;
}

/* Reports while other threads keep allocating, then exit() under them. */
static int child_reports_under_threads(const char *arg) {
  (void)arg;
  alarm(30);
  pthread_t t[3];
  for (uintptr_t i = 0; i < 3; i++) pthread_create(&t[i], NULL, allocate_forever, (void *)(i + 1));
  for (int k = 0; k < 20; k++) {
    mem_lhihiks(k % 2 ? 0 : 1000);
    usleep(2000);
  }
  mark("<<DONE>>");
  exit(0); /* the threads are still running */
}

/* ------------------------------------------------------------ the leak-check API */

__attribute__((noinline)) static void leak_bytes(size_t n) {
  void *p = hahalloc(n);
  memset(p, 7, n);
  __asm__ volatile("" : : "r"(p) : "memory");
}

static void print_counts(const char *when, int r, const struct hahalloc_leaks *l) {
  printf("%s %d %zu %zu %zu %zu %zu %zu\n", when, r, l->definite.bytes, l->definite.blocks, l->new_definite.bytes,
         l->new_definite.blocks, l->suppressed.bytes, l->reachable.bytes);
}

/* A leak before the baseline, two after it, then a new baseline. */
static int child_leak_checks(const char *arg) {
  (void)arg;
  struct hahalloc_leaks l;
  leak_bytes(1111);
  if (hahalloc_leak_baseline() != 0) return 3;
  print_counts("base", hahalloc_leak_check(&l), &l);
  leak_bytes(2222);
  leak_bytes(3333);
  print_counts("grown", hahalloc_leak_check(&l), &l);
  hahalloc_leak_baseline();
  print_counts("rebased", hahalloc_leak_check(&l), &l);
  return 0;
}

/* A block set aside with hahalloc_ignore, holding the only pointer to
 * another. */
static int child_ignore(const char *arg) {
  (void)arg;
  struct hahalloc_leaks l;
  void **holder = hahalloc(4444);
  holder[0] = hahalloc(5555);
  hahalloc_ignore(holder);
  holder = NULL;
  print_counts("ignored", hahalloc_leak_check(&l), &l);
  return 0;
}

static const hh_child_entry children[] = {{"summary_to_stdout", child_summary_to_stdout},
                                          {"leak_checks", child_leak_checks},
                                          {"ignore", child_ignore},
                                          {"counts", child_counts},
                                          {"counts_many", child_counts_many},
                                          {"live_blocks", child_live_blocks},
                                          {"peak", child_peak},
                                          {"aligned_small", child_aligned_small},
                                          {"exact_sizes", child_exact_sizes},
                                          {"leaks_at_exit", child_leaks_at_exit},
                                          {"reports_under_threads", child_reports_under_threads},
                                          {NULL, NULL}};

/* ------------------------------------------------------------ tests */

static const char *const summary_on[] = {"HAHALLOC_SUMMARY", NULL}; /* the default */
static const char *const summary_off[] = {"HAHALLOC_SUMMARY=0", NULL};

static void run(const char *name, const char *const *env, hh_child *c) {
  hh_exec_self(name, "", env, 60, c);
  if (!hh_child_exited_ok(c))
    fail_msg("child %s %s\n--- stdout:\n%s\n--- stderr:\n%s", name, hh_child_describe(c), c->out, c->err);
}

static void mem_lhihiks_prints_the_summary_to_stdout(void **state) {
  (void)state;
  hh_child c;
  run("summary_to_stdout", summary_off, &c);
  char *a = between(c.out, "<<A>>", "<</A>>");
  assert_non_null(a);
  if (strlen(a) < 20) fail_msg("mem_lhihiks(0) printed almost nothing to stdout: \"%s\"", a);
  if (c.err[0]) fail_msg("mem_lhihiks wrote to stderr:\n%s", c.err);
  free(a);
  hh_child_free(&c);
}

/* A check of mem_lhihiks, run with the exit summary on (the default) and
 * off: HAHALLOC_SUMMARY=0 turns off the exit summary only, and mem_lhihiks
 * keeps its contract. */
#define BOTH_SUMMARY_MODES(name, check)               \
  static void name(void **state) {                    \
    (void)state;                                      \
    check(summary_on);                                \
  }                                                   \
  static void name##_with_summary_off(void **state) { \
    (void)state;                                      \
    check(summary_off);                               \
  }

static void check_counts_allocations_and_frees(const char *const *env) {
  hh_child c;
  run("counts", env, &c);
  char *a = between(c.out, "<<A>>", "<</A>>"), *b = between(c.out, "<<B>>", "<</B>>");
  assert_non_null(a);
  assert_non_null(b);
  if (!hh_contains(a, "alloc") || !hh_contains(a, "free"))
    fail_msg("the summary does not speak of allocations and frees:\n%s", a);
  static long long va[10000], vb[10000];
  size_t na = numbers(a, strlen(a), va, 10000), nb = numbers(b, strlen(b), vb, 10000);
  bool allocs = false, frees = false, bytes = false, live = false;
  for (size_t i = 0; i < na && i < nb; i++) {
    long long d = vb[i] - va[i];
    allocs |= d == 1000;
    frees |= d == 400;
    bytes |= d == 100000;           /* bytes allocated in total */
    live |= d == 600 || d == 60000; /* blocks or bytes in use */
  }
  if (na != nb || !allocs || !frees || !bytes || !live)
    fail_msg("after 1000 allocations of 100 bytes and 400 frees the summary does not show %s%s%s%s\n"
             "--- before:\n%s\n--- after:\n%s",
             allocs ? "" : "+1000 allocations ", frees ? "" : "+400 frees ", bytes ? "" : "+100000 bytes ",
             live ? "" : "+600 blocks in use", a, b);
  free(a);
  free(b);
  hh_child_free(&c);
}

BOTH_SUMMARY_MODES(mem_lhihiks_counts_allocations_and_frees, check_counts_allocations_and_frees)

static void mem_lhihiks_counts_past_the_tally_carry(void **state) {
  (void)state;
  hh_child c;
  run("counts_many", summary_off, &c);
  char *a = between(c.out, "<<A>>", "<</A>>"), *b = between(c.out, "<<B>>", "<</B>>");
  assert_non_null(a);
  assert_non_null(b);
  static long long va[10000], vb[10000];
  size_t na = numbers(a, strlen(a), va, 10000), nb = numbers(b, strlen(b), vb, 10000);
  int allocs = 0, bytes = 0;
  for (size_t i = 0; i < na && i < nb; i++) {
    long long d = vb[i] - va[i];
    allocs += d == MANY_ALLOCATIONS; /* allocations, and frees */
    bytes += d == MANY_ALLOCATIONS * 100LL;
  }
  if (na != nb || allocs != 2 || bytes != 1)
    fail_msg("after %d allocations and frees of 100 bytes the summary does not show +%d allocations, "
             "+%d frees and +%lld bytes allocated\n--- before:\n%s\n--- after:\n%s",
             MANY_ALLOCATIONS, MANY_ALLOCATIONS, MANY_ALLOCATIONS, MANY_ALLOCATIONS * 100LL, a, b);
  free(a);
  free(b);
  hh_child_free(&c);
}

static void check_lists_the_size_of_each_live_block(const char *const *env) {
  hh_child c;
  run("live_blocks", env, &c);
  char *all = between(c.out, "<<ALL>>", "<</ALL>>"), *after = between(c.out, "<<AFTER>>", "<</AFTER>>");
  assert_non_null(all);
  assert_non_null(after);
  if (!has_number(all, 12345) || !has_number(all, 54321) || !has_number(all, 7654321))
    fail_msg("live blocks of 12345, 54321 and 7654321 bytes are not all listed:\n%s", all);
  if (has_number(all, 23456)) fail_msg("a freed block of 23456 bytes is listed as live:\n%s", all);
  if (has_number(after, 12345)) fail_msg("the 12345-byte block is still listed after its free:\n%s", after);
  free(all);
  free(after);
  hh_child_free(&c);
}

BOTH_SUMMARY_MODES(mem_lhihiks_lists_the_size_of_each_live_block, check_lists_the_size_of_each_live_block)

static void check_records_keep_the_exact_size_in_every_form(const char *const *env) {
  hh_child c;
  run("exact_sizes", env, &c);
  unsigned long long asked, blocks, grew, grew_blocks;
  const char *at = strstr(c.out, "asked ");
  if (at == NULL || sscanf(at, "asked %llu bytes in %llu blocks; the scan grew by %llu bytes in %llu blocks", &asked,
                           &blocks, &grew, &grew_blocks) != 4)
    fail_msg("no figures from the child:\n%s\n%s", c.out, c.err);
  if (grew != asked || grew_blocks != blocks) fail_msg("the scan's figures are not the sizes asked for: %s", at);
  hh_child_free(&c);
}

BOTH_SUMMARY_MODES(records_keep_the_exact_size_in_every_form, check_records_keep_the_exact_size_in_every_form)

/* With 7 bits of slack in a packed record, aligned_alloc(256, 16) took a
 * 1,280-byte block under the report (16 without it), and a realloc to 600
 * bytes of a 1,000-byte block moved it. */
static void report_keeps_small_aligned_blocks_in_their_own_size_class(void **state) {
  (void)state;
  hh_child c;
  run("aligned_small", summary_on, &c);
  char *l = between(c.out, "<<L>>", "<</L>>");
  assert_non_null(l);
  if (!hh_contains(c.out, "usable 256 512\n") || !hh_contains(c.out, "moved 0\n"))
    fail_msg("aligned_alloc(256, 16) and posix_memalign(512, 8) should take blocks of 256 and 512 bytes, and a "
             "realloc from 1000 to 600 bytes stay in place:\n%s",
             c.out);
  if (!has_number(l, 16) || !has_number(l, 8) || !has_number(l, 600))
    fail_msg("the blocks are not listed at their exact sizes (16, 8, 600):\n%s", l);
  free(l);
  hh_child_free(&c);
}

static void mem_lhihiks_size_lists_only_blocks_at_least_that_big(void **state) {
  (void)state;
  hh_child c;
  run("live_blocks", summary_on, &c);
  char *big = between(c.out, "<<BIG>>", "<</BIG>>");
  assert_non_null(big);
  if (!has_number(big, 54321) || !has_number(big, 7654321))
    fail_msg("mem_lhihiks(20000) does not list the blocks of 54321 and 7654321 bytes:\n%s", big);
  if (has_number(big, 12345)) fail_msg("mem_lhihiks(20000) lists the 12345-byte block:\n%s", big);
  free(big);
  hh_child_free(&c);
}

/* The figure the summary gives for the peak: the first number after the
 * word "peak" on its line (so not the process id that starts the line), in
 * bytes; a unit after it (KiB, MiB, KB, MB) scales it. -1 when there is
 * none. */
static long long peak_figure(const char *s) {
  const char *at = s;
  while (*at && strncasecmp(at, "peak", 4) != 0) at++;
  if (*at == '\0') return -1;
  size_t line = strcspn(at, "\n");
  long long v[1];
  if (numbers(at, line, v, 1) != 1) return -1;
  const char *p = at;
  while (p < at + line && !isdigit((unsigned char)*p)) p++;
  while (p < at + line && (isdigit((unsigned char)*p) || *p == ',' || *p == '_')) p++;
  while (p < at + line && *p == ' ') p++;
  if (!strncasecmp(p, "KiB", 3) || !strncasecmp(p, "KB", 2)) return v[0] << 10;
  if (!strncasecmp(p, "MiB", 3) || !strncasecmp(p, "MB", 2)) return v[0] << 20;
  return v[0];
}

static void check_reports_the_peak_in_use(const char *const *env) {
  hh_child c;
  run("peak", env, &c);
  char *a = between(c.out, "<<A>>", "<</A>>");
  assert_non_null(a);
  /* the 9 MiB block was live: the peak is at least that, and a figure of a
   * few times that at most (blocks are counted whole) */
  long long peak = peak_figure(a);
  if (peak < 0) fail_msg("the summary gives no figure for the peak:\n%s", a);
  if (peak < 9 * 1048576LL || peak > 64 * 1048576LL)
    fail_msg("the summary's peak is %lld bytes, not that of the 9 MiB block:\n%s", peak, a);
  free(a);
  hh_child_free(&c);
}

BOTH_SUMMARY_MODES(mem_lhihiks_reports_the_peak_in_use, check_reports_the_peak_in_use)

static void exit_summary_goes_to_stderr_and_leaves_stdout_to_the_program(void **state) {
  (void)state;
  hh_child c;
  run("leaks_at_exit", summary_on, &c);
  assert_string_equal(c.out, "program output\n");
  if (!has_number(c.err, 12345)) fail_msg("the exit summary does not show the 12345 bytes still in use:\n%s", c.err);
  hh_child_free(&c);
}

static void HAHALLOC_SUMMARY_0_turns_the_exit_summary_off(void **state) {
  (void)state;
  hh_child c;
  run("leaks_at_exit", summary_off, &c);
  assert_string_equal(c.out, "program output\n");
  if (c.err[0]) fail_msg("stderr is not empty with HAHALLOC_SUMMARY=0:\n%s", c.err);
  hh_child_free(&c);
}

/* "when return definite.bytes definite.blocks new.bytes new.blocks
 * suppressed.bytes reachable.bytes" as the child printed it. */
static bool counts_line(const char *out, const char *when, long long v[7]) {
  const char *at = strstr(out, when);
  if (at == NULL) return false;
  return sscanf(at + strlen(when), " %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                &v[6]) == 7;
}

static void check_leak_check_counts_what_is_new_since_the_baseline(const char *const *env) {
  hh_child c;
  run("leak_checks", env, &c);
  long long b[7], g[7], r[7];
  if (!counts_line(c.out, "base", b) || !counts_line(c.out, "grown", g) || !counts_line(c.out, "rebased", r))
    fail_msg("the child did not print its counts:\n%s\n%s", c.out, c.err);
  /* the leak before the baseline is lost, but not new */
  if (b[0] != 0 || b[1] != 1111 || b[2] != 1 || b[3] != 0 || b[4] != 0)
    fail_msg("at the baseline: return %lld, definite %lld bytes in %lld blocks, new %lld in %lld (expected 0, 1111 "
             "in 1, new 0 in 0)",
             b[0], b[1], b[2], b[3], b[4]);
  if (g[0] != 2 || g[1] != 6666 || g[2] != 3 || g[3] != 5555 || g[4] != 2)
    fail_msg("after two leaks: return %lld, definite %lld bytes in %lld blocks, new %lld in %lld (expected 2, 6666 "
             "in 3, new 5555 in 2)",
             g[0], g[1], g[2], g[3], g[4]);
  if (r[0] != 0 || r[1] != 6666 || r[3] != 0)
    fail_msg("after a new baseline: return %lld, definite %lld, new %lld (expected 0, 6666, 0)", r[0], r[1], r[3]);
  hh_child_free(&c);
}

BOTH_SUMMARY_MODES(leak_check_counts_what_is_new_since_the_baseline,
                   check_leak_check_counts_what_is_new_since_the_baseline)

static void check_ignored_block_is_suppressed_and_what_it_holds_reachable(const char *const *env) {
  hh_child c;
  run("ignore", env, &c);
  long long v[7];
  if (!counts_line(c.out, "ignored", v)) fail_msg("the child did not print its counts:\n%s\n%s", c.out, c.err);
  if (v[0] != 0 || v[1] != 0 || v[5] < 4444 || v[6] < 5555)
    fail_msg("with the only pointer in an ignored block: return %lld, definite %lld, suppressed %lld, reachable "
             "%lld (expected 0, 0, 4444 or more, 5555 or more)",
             v[0], v[1], v[5], v[6]);
  hh_child_free(&c);
}

BOTH_SUMMARY_MODES(ignored_block_is_suppressed_and_what_it_holds_reachable,
                   check_ignored_block_is_suppressed_and_what_it_holds_reachable)

static void summaries_while_other_threads_allocate_and_exit_under_them(void **state) {
  (void)state;
  hh_child c;
  run("reports_under_threads", summary_on, &c);
  assert_non_null(strstr(c.out, "<<DONE>>"));
  if (!c.err[0]) fail_msg("no exit summary on stderr");
  hh_child_free(&c);
}

int main(int argc, char **argv) {
  hh_child_dispatch(argc, argv, children);
  hh_test_env(argv); /* the runner only: children set their own */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(mem_lhihiks_prints_the_summary_to_stdout),
      cmocka_unit_test(mem_lhihiks_counts_allocations_and_frees),
      cmocka_unit_test(mem_lhihiks_counts_allocations_and_frees_with_summary_off),
      cmocka_unit_test(mem_lhihiks_counts_past_the_tally_carry),
      cmocka_unit_test(mem_lhihiks_lists_the_size_of_each_live_block),
      cmocka_unit_test(mem_lhihiks_lists_the_size_of_each_live_block_with_summary_off),
      cmocka_unit_test(mem_lhihiks_size_lists_only_blocks_at_least_that_big),
      cmocka_unit_test(report_keeps_small_aligned_blocks_in_their_own_size_class),
      cmocka_unit_test(records_keep_the_exact_size_in_every_form),
      cmocka_unit_test(records_keep_the_exact_size_in_every_form_with_summary_off),
      cmocka_unit_test(mem_lhihiks_reports_the_peak_in_use),
      cmocka_unit_test(mem_lhihiks_reports_the_peak_in_use_with_summary_off),
      cmocka_unit_test(exit_summary_goes_to_stderr_and_leaves_stdout_to_the_program),
      cmocka_unit_test(HAHALLOC_SUMMARY_0_turns_the_exit_summary_off),
      cmocka_unit_test(summaries_while_other_threads_allocate_and_exit_under_them),
      cmocka_unit_test(leak_check_counts_what_is_new_since_the_baseline),
      cmocka_unit_test(leak_check_counts_what_is_new_since_the_baseline_with_summary_off),
      cmocka_unit_test(ignored_block_is_suppressed_and_what_it_holds_reachable),
      cmocka_unit_test(ignored_block_is_suppressed_and_what_it_holds_reachable_with_summary_off),
  };
  return cmocka_run_group_tests_name("heap summary (mem_lhihiks, exit report)", tests, NULL, NULL);
}
