/*
 * The seed's API, behaviour by behaviour: hahalloc, frhehe, chahalloc and
 * rehehalloc. Only the seed's functions are used, so this suite also runs
 * against the ASan+UBSan build (which leaves malloc alone) and under valgrind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "hahalloc.h"

#define ALIGNED16(p) (((uintptr_t)(p)&15) == 0)

/* Allocates `size` bytes and checks the block is 16-byte aligned and that all
 * of it can be written and read back. */
static void check_alloc(size_t size) {
  unsigned char *p = hahalloc(size);
  if (!p) fail_msg("hahalloc(%zu) returned NULL", size);
  if (!ALIGNED16(p)) fail_msg("hahalloc(%zu) = %p is not 16-byte aligned", size, (void *)p);
  unsigned char c = (unsigned char)(size * 31 + 7);
  memset(p, c, size);
  if (!hh_all_equal(p, size, c)) fail_msg("hahalloc(%zu): block does not keep what was written", size);
  frhehe(p);
}

/* ------------------------------------------------------------ hahalloc */

static void hahalloc_of_zero_returns_distinct_freeable_pointers(void **state) {
  (void)state;
  void *a = hahalloc(0), *b = hahalloc(0);
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_not_equal(a, b);
  assert_true(ALIGNED16(a) && ALIGNED16(b));
  frhehe(a);
  frhehe(b);
}

static void hahalloc_of_1_byte_gives_a_usable_aligned_block(void **state) {
  (void)state;
  check_alloc(1);
}

static void hahalloc_of_every_size_from_1_to_1024_is_aligned_and_writable(void **state) {
  (void)state;
  for (size_t n = 1; n <= 1024; n++) check_alloc(n);
}

static void hahalloc_of_sizes_8_to_128_keeps_many_blocks_apart(void **state) {
  (void)state;
  enum { PER_SIZE = 200 };
  static unsigned char *blocks[121][PER_SIZE];
  for (size_t n = 8; n <= 128; n++)
    for (int i = 0; i < PER_SIZE; i++) {
      blocks[n - 8][i] = hahalloc(n);
      assert_non_null(blocks[n - 8][i]);
      assert_true(ALIGNED16(blocks[n - 8][i]));
      hh_fill(blocks[n - 8][i], n, hh_block_hash(blocks[n - 8][i], n, 1));
    }
  for (size_t n = 8; n <= 128; n++)
    for (int i = 0; i < PER_SIZE; i++) {
      unsigned char *p = blocks[n - 8][i];
      if (hh_check(p, n, n, hh_block_hash(p, n, 1)) != SIZE_MAX)
        fail_msg("block %p of %zu bytes was overwritten", (void *)p, n);
      frhehe(p);
    }
}

static void hahalloc_of_tail_sizes_up_to_32KiB_is_aligned_and_writable(void **state) {
  (void)state;
  for (size_t n = 1025; n <= 32 * KiB; n += 61) check_alloc(n);
  for (size_t b = 1024; b <= 32 * KiB; b *= 2)
    for (size_t d = 0; d < 3; d++) {
      check_alloc(b - d);
      check_alloc(b + d);
    }
}

static void hahalloc_around_the_128KiB_boundary_is_aligned_and_writable(void **state) {
  (void)state;
  for (size_t n = 128 * KiB - 64; n <= 128 * KiB + 64; n += 8) check_alloc(n);
  check_alloc(128 * KiB - 1);
  check_alloc(128 * KiB + 1);
  check_alloc(64 * KiB - 1);
  check_alloc(64 * KiB + 1);
  check_alloc(256 * KiB + 3);
}

static void hahalloc_of_large_sizes_1MiB_and_3MiB_is_aligned_and_writable(void **state) {
  (void)state;
  check_alloc(1 * MiB);
  check_alloc(1 * MiB + 5);
  check_alloc(3 * MiB);
  check_alloc(3 * MiB + 12345);
  /* both sides of the largest range that still fits in a shared mapping */
  for (size_t n = 4 * MiB - 192 * KiB; n <= 4 * MiB + 64 * KiB; n += 32 * KiB - 8) check_alloc(n);
}

static void hahalloc_of_oversize_8MiB_and_100MiB_is_aligned_and_writable(void **state) {
  (void)state;
  check_alloc(8 * MiB);
  check_alloc(8 * MiB + 1);
  check_alloc(100 * MiB);
}

static void hahalloc_live_blocks_of_mixed_sizes_never_overlap(void **state) {
  (void)state;
  enum { N = 4000 };
  static unsigned char *p[N];
  static size_t sz[N];
  uint64_t rng = 0x1234567;
  for (int i = 0; i < N; i++) {
    uint64_t r = hh_rand(&rng);
    sz[i] = r % 100 < 90 ? 1 + r % 256 : r % 1000 < 995 ? 1 + r % (64 * KiB) : 1 + r % (2 * MiB);
    p[i] = hahalloc(sz[i]);
    assert_non_null(p[i]);
    hh_fill(p[i], sz[i], hh_block_hash(p[i], sz[i], 2));
    if (i % 3 == 2) { /* free some to let ranges be recycled among the live ones */
      int j = i - 1;
      assert_int_equal(hh_check(p[j], sz[j], sz[j], hh_block_hash(p[j], sz[j], 2)), SIZE_MAX);
      frhehe(p[j]);
      p[j] = hahalloc(sz[j]);
      assert_non_null(p[j]);
      hh_fill(p[j], sz[j], hh_block_hash(p[j], sz[j], 2));
    }
  }
  for (int i = 0; i < N; i++) {
    if (hh_check(p[i], sz[i], sz[i], hh_block_hash(p[i], sz[i], 2)) != SIZE_MAX)
      fail_msg("block %d (%p, %zu bytes) was overwritten by another", i, (void *)p[i], sz[i]);
    frhehe(p[i]);
  }
}

static void hahalloc_recycles_freed_ranges(void **state) {
  (void)state;
  /* 200 rounds of 1000 blocks of 64 bytes: a heap that never reused a freed
   * range would hand out 200,000 distinct addresses. */
  enum { N = 1000, ROUNDS = 200, LIMIT = 4 * N, SLOTS = 16384 };
  static void *p[N];
  static uintptr_t seen[SLOTS]; /* open addressing set of addresses */
  size_t distinct = 0;
  for (int r = 0; r < ROUNDS && distinct < LIMIT; r++) {
    for (int i = 0; i < N; i++) {
      p[i] = hahalloc(64);
      assert_non_null(p[i]);
    }
    for (int i = 0; i < N; i++) {
      uintptr_t a = (uintptr_t)p[i];
      size_t k = hh_mix(a) & (SLOTS - 1);
      while (seen[k] && seen[k] != a) k = (k + 1) & (SLOTS - 1);
      if (!seen[k]) {
        seen[k] = a;
        distinct++;
      }
      frhehe(p[i]);
      if (distinct >= LIMIT) break;
    }
  }
  if (distinct >= LIMIT) fail_msg("%zu distinct addresses for 1000 live blocks: freed ranges are not reused", distinct);
}

/* ------------------------------------------------------------ frhehe */

static void frhehe_of_null_does_nothing(void **state) {
  (void)state;
  errno = 0;
  frhehe(NULL);
  frhehe(HH_OPAQUE((void *)NULL));
  assert_int_equal(errno, 0);
}

static void frhehe_releases_blocks_in_any_order(void **state) {
  (void)state;
  enum { N = 3000 };
  static void *p[N];
  for (int i = 0; i < N; i++) p[i] = hahalloc((size_t)(i % 300) * 8 + 1);
  for (int i = 0; i < N; i += 2) frhehe(p[i]);
  for (int i = N - 1; i >= 0; i -= 2) frhehe(p[i]);
  for (int i = 0; i < N; i++) {
    p[i] = hahalloc(24);
    assert_non_null(p[i]);
  }
  for (int i = 0; i < N; i++) frhehe(p[i]);
}

/* ------------------------------------------------------------ chahalloc */

static const size_t zero_sizes[] = {1,     15,        16,     17,      100,     1000,    4096,       5000,
                                    40000, 128 * KiB, 200000, 1 * MiB, 3 * MiB, 5 * MiB, 9 * MiB + 7};

static void chahalloc_returns_zeroed_memory_of_every_size(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof zero_sizes / sizeof *zero_sizes; i++) {
    size_t n = zero_sizes[i];
    unsigned char *p = chahalloc(n);
    if (!p) fail_msg("chahalloc(%zu) returned NULL", n);
    assert_true(ALIGNED16(p));
    if (!hh_all_zero(p, n)) fail_msg("chahalloc(%zu) is not zeroed", n);
    memset(p, 0x5a, n);
    frhehe(p);
  }
}

static void chahalloc_of_zero_returns_a_freeable_pointer(void **state) {
  (void)state;
  void *p = chahalloc(0);
  assert_non_null(p);
  frhehe(p);
}

static void chahalloc_zeroes_memory_recycled_from_dirty_freed_blocks(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof zero_sizes / sizeof *zero_sizes; i++) {
    size_t n = zero_sizes[i];
    int rounds = n > 1 * MiB ? 8 : 100;
    for (int r = 0; r < rounds; r++) {
      unsigned char *d = hahalloc(n);
      assert_non_null(d);
      memset(d, 0xff - r, n);
      frhehe(d);
      unsigned char *z = chahalloc(n);
      assert_non_null(z);
      if (!hh_all_zero(z, n))
        fail_msg("chahalloc(%zu) after freeing a dirty block of that size is not zeroed (round %d)", n, r);
      memset(z, 0xee, n);
      frhehe(z);
    }
  }
}

static void chahalloc_zeroes_after_many_dirty_blocks_are_freed(void **state) {
  (void)state;
  enum { N = 2000 };
  static unsigned char *p[N];
  const size_t sizes[] = {16, 48, 112, 1024, 20000};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    size_t n = sizes[s];
    for (int i = 0; i < N; i++) {
      p[i] = hahalloc(n);
      assert_non_null(p[i]);
      memset(p[i], 0xa5, n);
    }
    for (int i = 0; i < N; i++) frhehe(p[i]);
    for (int i = 0; i < N; i++) {
      p[i] = chahalloc(n);
      assert_non_null(p[i]);
      if (!hh_all_zero(p[i], n)) fail_msg("chahalloc(%zu) #%d recycled a dirty block without zeroing", n, i);
    }
    for (int i = 0; i < N; i++) frhehe(p[i]);
  }
}

static void chahalloc_zeroes_memory_given_back_by_a_shrinking_rehehalloc(void **state) {
  (void)state;
  /* a large block shrunk in place gives its tail back; a chahalloc that
   * lands in that tail must still see zeros */
  const size_t pairs[][2] = {{2 * MiB, 256 * KiB}, {3 * MiB, 1 * MiB}, {1 * MiB, 200}, {12 * MiB, 5 * MiB}};
  for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
    for (int r = 0; r < 4; r++) {
      unsigned char *p = hahalloc(pairs[i][0]);
      assert_non_null(p);
      memset(p, 0xaa, pairs[i][0]);
      p = rehehalloc(p, pairs[i][1]);
      assert_non_null(p);
      size_t n = pairs[i][0] - pairs[i][1];
      unsigned char *z = chahalloc(n);
      assert_non_null(z);
      if (!hh_all_zero(z, n))
        fail_msg("chahalloc(%zu) after shrinking a dirty %zu-byte block to %zu is not zeroed", n, pairs[i][0],
                 pairs[i][1]);
      frhehe(z);
      frhehe(p);
    }
  }
}

/* ------------------------------------------------------------ rehehalloc */

static void rehehalloc_of_null_is_hahalloc(void **state) {
  (void)state;
  const size_t sizes[] = {0, 1, 100, 5000, 300 * KiB, 6 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    unsigned char *p = rehehalloc(NULL, sizes[i]);
    if (!p) fail_msg("rehehalloc(NULL, %zu) returned NULL", sizes[i]);
    assert_true(ALIGNED16(p));
    memset(p, 1, sizes[i]);
    frhehe(p);
  }
}

/* Fills a block, resizes it, and checks the common prefix survived. */
static unsigned char *resize_keeps_prefix(unsigned char *p, size_t old, size_t new) {
  uint64_t h = hh_block_hash(p, old, 3);
  hh_fill(p, old, h);
  unsigned char *q = rehehalloc(p, new);
  if (!q) fail_msg("rehehalloc(%zu -> %zu) returned NULL", old, new);
  if (!ALIGNED16(q)) fail_msg("rehehalloc(%zu -> %zu) = %p is not aligned", old, new, (void *)q);
  size_t common = old < new ? old : new;
  size_t bad = hh_check(q, old, common, h);
  if (bad != SIZE_MAX) fail_msg("rehehalloc(%zu -> %zu) lost byte %zu of the common prefix", old, new, bad);
  memset(q, 0x3c, new); /* all of the new size is usable */
  return q;
}

static void rehehalloc_grows_keeping_the_contents(void **state) {
  (void)state;
  const size_t steps[][2] = {
      {1, 2}, {16, 17}, {100, 200}, {128, 4000}, {1000, 1001}, {4000, 32768}, {32 * KiB, 128 * KiB}, {100, 1 * MiB}};
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
    unsigned char *p = hahalloc(steps[i][0]);
    assert_non_null(p);
    frhehe(resize_keeps_prefix(p, steps[i][0], steps[i][1]));
  }
}

static void rehehalloc_shrinks_keeping_the_prefix(void **state) {
  (void)state;
  const size_t steps[][2] = {{2, 1},         {200, 100},           {4000, 16},         {32768, 1000},
                             {1 * MiB, 100}, {3 * MiB, 200 * KiB}, {9 * MiB, 5 * MiB}, {9 * MiB, 64}};
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
    unsigned char *p = hahalloc(steps[i][0]);
    assert_non_null(p);
    frhehe(resize_keeps_prefix(p, steps[i][0], steps[i][1]));
  }
}

static void rehehalloc_shrinking_within_the_size_class_keeps_the_pointer(void **state) {
  (void)state;
  /* each pair shrinks by a few percent: the block's size class still fits */
  const size_t steps[][2] = {{100, 97},
                             {1000, 980},
                             {5000, 4900},
                             {100000, 99000},
                             {1 * MiB, 1 * MiB - 4096},
                             {3 * MiB, 3 * MiB - 100},
                             {10 * MiB, 10 * MiB - 64}};
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
    unsigned char *p = hahalloc(steps[i][0]);
    assert_non_null(p);
    unsigned char *q = resize_keeps_prefix(p, steps[i][0], steps[i][1]);
    if (q != p)
      fail_msg("rehehalloc(%zu -> %zu) moved the block from %p to %p", steps[i][0], steps[i][1], (void *)p, (void *)q);
    frhehe(q);
  }
}

static void rehehalloc_across_small_large_and_oversize_keeps_the_data(void **state) {
  (void)state;
  const size_t sizes[] = {24,      500,     20000,     128 * KiB, 700 * KiB, 3 * MiB, 8 * MiB, 40 * MiB,
                          6 * MiB, 2 * MiB, 100 * KiB, 3000,      40,        9 * MiB, 1};
  size_t n = sizes[0];
  unsigned char *p = hahalloc(n);
  assert_non_null(p);
  for (size_t i = 1; i < sizeof sizes / sizeof *sizes; i++) {
    p = resize_keeps_prefix(p, n, sizes[i]);
    n = sizes[i];
  }
  frhehe(p);
}

static void rehehalloc_to_the_same_size_keeps_the_data(void **state) {
  (void)state;
  const size_t sizes[] = {16, 1000, 200000, 5 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    unsigned char *p = hahalloc(sizes[i]);
    assert_non_null(p);
    unsigned char *q = resize_keeps_prefix(p, sizes[i], sizes[i]);
    assert_ptr_equal(p, q);
    frhehe(q);
  }
}

static int free_it(void *p) {
  frhehe(p);
  return 0;
}

static void rehehalloc_to_zero_frees_the_block_and_returns_null(void **state) {
  (void)state;
  void *p = hahalloc(100);
  assert_non_null(p);
  errno = 0;
  void *q = rehehalloc(p, 0);
  /* as glibc's realloc: the block is freed, NULL returned, errno kept */
  if (q != NULL) fail_msg("rehehalloc(p, 0) returned %p, not NULL", q);
  assert_int_equal(errno, 0);
  /* freed indeed: freeing it again is a double free */
  hh_child c;
  if (!hh_fork_run(free_it, p, 60, &c)) fail_msg("the child did not finish");
  if (!hh_child_aborted(&c) || !hh_contains(c.err, "double free"))
    fail_msg("frhehe after rehehalloc(p, 0): %s, stderr:\n%s", hh_child_describe(&c), c.err);
  hh_child_free(&c);
}

static void rehehalloc_many_small_steps_keeps_the_data(void **state) {
  (void)state;
  size_t n = 1;
  unsigned char *p = hahalloc(n);
  assert_non_null(p);
  p[0] = 0;
  while (n < 300 * KiB) {
    size_t m = n + n / 8 + 1;
    p = rehehalloc(p, m);
    assert_non_null(p);
    for (size_t i = n; i < m; i++) p[i] = (unsigned char)(i * 13);
    n = m;
  }
  for (size_t i = 1; i < n; i++)
    if (p[i] != (unsigned char)(i * 13)) fail_msg("byte %zu lost while growing step by step", i);
  frhehe(p);
}

static void rehehalloc_growing_by_small_steps_to_24MiB_keeps_the_data(void **state) {
  (void)state;
  /* growth in place, into free neighbours, by moving, and as an oversize
   * mapping, with other blocks allocated in between to block the way */
  enum { OTHERS = 64 };
  void *others[OTHERS] = {0};
  size_t n = 1000;
  unsigned char *p = hahalloc(n);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 13 + i / 251);
  for (int step = 0; n < 24 * MiB; step++) {
    size_t m = n + n / 8 + 4096;
    p = rehehalloc(p, m);
    if (!p) fail_msg("rehehalloc(%zu -> %zu) returned NULL", n, m);
    for (size_t i = n; i < m; i++) p[i] = (unsigned char)(i * 13 + i / 251);
    /* the first and last bytes of the old size came along */
    for (size_t i = 0; i < 4096 && i < n; i++)
      if (p[i] != (unsigned char)(i * 13 + i / 251) ||
          p[n - 1 - i] != (unsigned char)((n - 1 - i) * 13 + (n - 1 - i) / 251))
        fail_msg("rehehalloc(%zu -> %zu) lost data", n, m);
    n = m;
    frhehe(others[step % OTHERS]);
    others[step % OTHERS] = hahalloc(n / 3);
  }
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(i * 13 + i / 251)) fail_msg("byte %zu of %zu lost while growing", i, n);
  frhehe(p);
  for (int i = 0; i < OTHERS; i++) frhehe(others[i]);
}

/* ------------------------------------------------------------ impossible sizes */

static void hahalloc_of_impossible_sizes_fails_with_ENOMEM(void **state) {
  (void)state;
  const size_t sizes[] = {SIZE_MAX,       SIZE_MAX - 1, SIZE_MAX - 4096, SIZE_MAX / 2 + 1, (size_t)PTRDIFF_MAX + 1,
                          (size_t)1 << 62};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    errno = 0;
    void *p = hahalloc(HH_OPAQUE(sizes[i]));
    if (p) fail_msg("hahalloc(%#zx) returned %p", sizes[i], p);
    if (errno != ENOMEM) fail_msg("hahalloc(%#zx): errno %d, not ENOMEM", sizes[i], errno);
  }
}

static void chahalloc_of_impossible_sizes_fails_with_ENOMEM(void **state) {
  (void)state;
  const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 8, SIZE_MAX / 2 + 1, (size_t)1 << 62};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    errno = 0;
    void *p = chahalloc(HH_OPAQUE(sizes[i]));
    if (p) fail_msg("chahalloc(%#zx) returned %p", sizes[i], p);
    if (errno != ENOMEM) fail_msg("chahalloc(%#zx): errno %d, not ENOMEM", sizes[i], errno);
  }
}

static void rehehalloc_to_impossible_sizes_fails_and_keeps_the_block(void **state) {
  (void)state;
  const size_t olds[] = {10, 1000, 100 * KiB, 1 * MiB, 9 * MiB};
  const size_t news[] = {SIZE_MAX - 4096, SIZE_MAX, SIZE_MAX / 2 + 1, (size_t)1 << 62};
  for (size_t i = 0; i < sizeof olds / sizeof *olds; i++) {
    unsigned char *p = hahalloc(olds[i]);
    assert_non_null(p);
    uint64_t h = hh_block_hash(p, olds[i], 4);
    hh_fill(p, olds[i], h);
    for (size_t j = 0; j < sizeof news / sizeof *news; j++) {
      errno = 0;
      void *q = rehehalloc(p, HH_OPAQUE(news[j]));
      if (q) fail_msg("rehehalloc(%zu-byte block, %#zx) returned %p", olds[i], news[j], q);
      if (errno != ENOMEM) fail_msg("rehehalloc(%zu-byte block, %#zx): errno %d, not ENOMEM", olds[i], news[j], errno);
      if (hh_check(p, olds[i], olds[i], h) != SIZE_MAX)
        fail_msg("a failed rehehalloc(%#zx) changed the %zu-byte block", news[j], olds[i]);
    }
    /* the block is still valid: it can grow and be freed */
    p = rehehalloc(p, olds[i] + 100);
    assert_non_null(p);
    assert_int_equal(hh_check(p, olds[i], olds[i], h), SIZE_MAX);
    frhehe(p);
  }
}

static void rehehalloc_of_null_to_an_impossible_size_fails_with_ENOMEM(void **state) {
  (void)state;
  errno = 0;
  assert_null(rehehalloc(NULL, HH_OPAQUE(SIZE_MAX)));
  assert_int_equal(errno, ENOMEM);
}

int main(int argc, char **argv) {
  hh_test_env(argv);
  (void)argc;
  (void)argv;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(hahalloc_of_zero_returns_distinct_freeable_pointers),
      cmocka_unit_test(hahalloc_of_1_byte_gives_a_usable_aligned_block),
      cmocka_unit_test(hahalloc_of_every_size_from_1_to_1024_is_aligned_and_writable),
      cmocka_unit_test(hahalloc_of_sizes_8_to_128_keeps_many_blocks_apart),
      cmocka_unit_test(hahalloc_of_tail_sizes_up_to_32KiB_is_aligned_and_writable),
      cmocka_unit_test(hahalloc_around_the_128KiB_boundary_is_aligned_and_writable),
      cmocka_unit_test(hahalloc_of_large_sizes_1MiB_and_3MiB_is_aligned_and_writable),
      cmocka_unit_test(hahalloc_of_oversize_8MiB_and_100MiB_is_aligned_and_writable),
      cmocka_unit_test(hahalloc_live_blocks_of_mixed_sizes_never_overlap),
      cmocka_unit_test(hahalloc_recycles_freed_ranges),
      cmocka_unit_test(frhehe_of_null_does_nothing),
      cmocka_unit_test(frhehe_releases_blocks_in_any_order),
      cmocka_unit_test(chahalloc_returns_zeroed_memory_of_every_size),
      cmocka_unit_test(chahalloc_of_zero_returns_a_freeable_pointer),
      cmocka_unit_test(chahalloc_zeroes_memory_recycled_from_dirty_freed_blocks),
      cmocka_unit_test(chahalloc_zeroes_after_many_dirty_blocks_are_freed),
      cmocka_unit_test(chahalloc_zeroes_memory_given_back_by_a_shrinking_rehehalloc),
      cmocka_unit_test(rehehalloc_of_null_is_hahalloc),
      cmocka_unit_test(rehehalloc_grows_keeping_the_contents),
      cmocka_unit_test(rehehalloc_shrinks_keeping_the_prefix),
      cmocka_unit_test(rehehalloc_shrinking_within_the_size_class_keeps_the_pointer),
      cmocka_unit_test(rehehalloc_across_small_large_and_oversize_keeps_the_data),
      cmocka_unit_test(rehehalloc_to_the_same_size_keeps_the_data),
      cmocka_unit_test(rehehalloc_to_zero_frees_the_block_and_returns_null),
      cmocka_unit_test(rehehalloc_many_small_steps_keeps_the_data),
      cmocka_unit_test(rehehalloc_growing_by_small_steps_to_24MiB_keeps_the_data),
      cmocka_unit_test(hahalloc_of_impossible_sizes_fails_with_ENOMEM),
      cmocka_unit_test(chahalloc_of_impossible_sizes_fails_with_ENOMEM),
      cmocka_unit_test(rehehalloc_to_impossible_sizes_fails_and_keeps_the_block),
      cmocka_unit_test(rehehalloc_of_null_to_an_impossible_size_fails_with_ENOMEM),
  };
  return cmocka_run_group_tests_name("seed API (hahalloc, frhehe, chahalloc, rehehalloc)", tests, NULL, NULL);
}
