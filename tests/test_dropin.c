/*
 * hahalloc as a drop-in malloc: the malloc family exported by libhahalloc.so,
 * one heap shared with the seed's API, LD_PRELOAD into a program that was
 * never linked with it, and C++ new/delete.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "hahalloc.h"

#define ALIGNED(p, a) (((uintptr_t)(p) & ((a)-1)) == 0)

static const size_t sizes[] = {
    0,       1,       8,      15, 16, 17, 100, 128, 1000, 1024, 4097, 32 * KiB, 128 * KiB - 1, 128 * KiB, 128 * KiB + 1,
    1 * MiB, 3 * MiB, 8 * MiB};
#define NSIZES (sizeof sizes / sizeof *sizes)

static const char *lib_of(void *fn) {
  Dl_info info;
  if (!dladdr(fn, &info) || !info.dli_fname) return "?";
  return info.dli_fname;
}

/* ------------------------------------------------------------ routing */

static void malloc_family_symbols_resolve_to_libhahalloc(void **state) {
  (void)state;
  static const char *const names[] = {
      "malloc",        "free",      "calloc",     "realloc",    "reallocarray",       "posix_memalign",
      "aligned_alloc", "memalign",  "valloc",     "pvalloc",    "malloc_usable_size", "hahalloc",
      "frhehe",        "chahalloc", "rehehalloc", "mem_lhihiks"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    void *fn = dlsym(RTLD_DEFAULT, names[i]);
    if (!fn) fail_msg("%s is not found", names[i]);
    if (!strstr(lib_of(fn), "libhahalloc")) fail_msg("%s comes from %s, not libhahalloc", names[i], lib_of(fn));
  }
}

static void glibc_internal_allocation_aliases_resolve_to_libhahalloc(void **state) {
  (void)state;
  /* programs and libraries that call glibc's own entry points directly */
  static const char *const names[] = {"__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc",
                                      "__libc_memalign"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    void *fn = dlsym(RTLD_DEFAULT, names[i]);
    if (fn && !strstr(lib_of(fn), "libhahalloc")) fail_msg("%s comes from %s, not libhahalloc", names[i], lib_of(fn));
  }
}

/* ------------------------------------------------------------ malloc, free */

static void malloc_gives_aligned_blocks_whose_usable_size_covers_the_request(void **state) {
  (void)state;
  for (size_t i = 0; i < NSIZES; i++) {
    unsigned char *p = malloc(sizes[i]);
    if (!p) fail_msg("malloc(%zu) returned NULL", sizes[i]);
    if (!ALIGNED(p, 16)) fail_msg("malloc(%zu) = %p is not 16-byte aligned", sizes[i], (void *)p);
    size_t u = malloc_usable_size(p);
    if (u < sizes[i]) fail_msg("malloc_usable_size(malloc(%zu)) = %zu", sizes[i], u);
    memset(p, 0x77, u); /* all of the usable size is the caller's */
    assert_true(hh_all_equal(p, u, 0x77));
    free(p);
  }
}

static void hahalloc_usable_size_covers_every_request(void **state) {
  (void)state;
  for (size_t n = 0; n <= 4096; n++) {
    void *p = hahalloc(n);
    assert_non_null(p);
    if (malloc_usable_size(p) < n) fail_msg("malloc_usable_size(hahalloc(%zu)) = %zu", n, malloc_usable_size(p));
    frhehe(p);
  }
  for (size_t n = 4096; n <= 10 * MiB; n = n * 5 / 4 + 3) {
    void *p = hahalloc(n);
    assert_non_null(p);
    if (malloc_usable_size(p) < n) fail_msg("malloc_usable_size(hahalloc(%zu)) = %zu", n, malloc_usable_size(p));
    frhehe(p);
  }
}

static void malloc_usable_size_of_null_is_zero(void **state) {
  (void)state;
  assert_int_equal(malloc_usable_size(NULL), 0);
}

static void malloc_of_impossible_sizes_fails_with_ENOMEM(void **state) {
  (void)state;
  errno = 0;
  assert_null(malloc(HH_OPAQUE(SIZE_MAX)));
  assert_int_equal(errno, ENOMEM);
  errno = 0;
  assert_null(malloc(HH_OPAQUE((size_t)PTRDIFF_MAX + 1)));
  assert_int_equal(errno, ENOMEM);
}

static void free_of_null_does_nothing(void **state) {
  (void)state;
  free(HH_OPAQUE((void *)NULL));
}

static void free_keeps_errno(void **state) {
  (void)state;
  for (size_t i = 0; i < NSIZES; i++) {
    void *p = malloc(sizes[i]);
    assert_non_null(p);
    errno = EDOM;
    free(p);
    if (errno != EDOM) fail_msg("free of a %zu-byte block changed errno to %d", sizes[i], errno);
  }
  errno = ERANGE;
  free(NULL);
  assert_int_equal(errno, ERANGE);
  errno = ERANGE;
  frhehe(hahalloc(40 * MiB));
  assert_int_equal(errno, ERANGE);
}

/* ------------------------------------------------------------ one heap, two APIs */

static void frhehe_releases_memory_from_strdup(void **state) {
  (void)state;
  char *s = strdup("hahalloc and the libc share one heap");
  assert_non_null(s);
  assert_string_equal(s, "hahalloc and the libc share one heap");
  frhehe(s);
}

static void free_releases_memory_from_the_seed_api(void **state) {
  (void)state;
  for (size_t i = 0; i < NSIZES; i++) {
    free(hahalloc(sizes[i]));
    free(chahalloc(sizes[i]));
    void *p = rehehalloc(NULL, sizes[i]);
    free(rehehalloc(p, sizes[i] + 10));
  }
}

static void realloc_and_rehehalloc_resize_each_others_blocks(void **state) {
  (void)state;
  char *p = hahalloc(10);
  strcpy(p, "123456789");
  p = realloc(p, 100000);
  assert_non_null(p);
  assert_string_equal(p, "123456789");
  p = rehehalloc(p, 20);
  assert_string_equal(p, "123456789");
  frhehe(p);
  p = malloc(5000);
  memset(p, 9, 5000);
  p = rehehalloc(p, 2 * MiB);
  assert_true(hh_all_equal(p, 5000, 9));
  free(p);
}

/* ------------------------------------------------------------ calloc */

static void calloc_returns_zeroed_memory(void **state) {
  (void)state;
  for (size_t i = 0; i < NSIZES; i++) {
    unsigned char *p = calloc(1, sizes[i]);
    assert_non_null(p);
    assert_true(hh_all_zero(p, sizes[i]));
    memset(p, 0xcc, sizes[i]);
    free(p);
    p = calloc(sizes[i], 1); /* the same size again, most likely recycled */
    assert_non_null(p);
    if (!hh_all_zero(p, sizes[i])) fail_msg("calloc(%zu, 1) after a dirty free is not zeroed", sizes[i]);
    free(p);
  }
  unsigned char *p = calloc(1000, 1000);
  assert_non_null(p);
  assert_true(hh_all_zero(p, 1000000));
  free(p);
}

static void calloc_detects_multiplication_overflow(void **state) {
  (void)state;
  const size_t pairs[][2] = {{SIZE_MAX / 2, 3},
                             {SIZE_MAX, SIZE_MAX},
                             {(size_t)1 << 32, (size_t)1 << 32},
                             {3, SIZE_MAX / 2},
                             {SIZE_MAX / 16 + 1, 16}};
  for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
    errno = 0;
    void *p = calloc(HH_OPAQUE(pairs[i][0]), HH_OPAQUE(pairs[i][1]));
    if (p) fail_msg("calloc(%#zx, %#zx) returned %p", pairs[i][0], pairs[i][1], p);
    assert_int_equal(errno, ENOMEM);
  }
}

static void calloc_of_zero_elements_returns_a_freeable_pointer(void **state) {
  (void)state;
  void *a = calloc(0, 5), *b = calloc(5, 0);
  assert_non_null(a);
  assert_non_null(b);
  free(a);
  free(b);
}

/* ------------------------------------------------------------ realloc, reallocarray */

static void realloc_of_null_is_malloc(void **state) {
  (void)state;
  void *p = realloc(NULL, 123);
  assert_non_null(p);
  assert_true(malloc_usable_size(p) >= 123);
  free(p);
}

static void realloc_keeps_the_common_prefix(void **state) {
  (void)state;
  size_t n = 7;
  unsigned char *p = malloc(n);
  assert_non_null(p);
  uint64_t h = hh_block_hash(NULL, 0, 5);
  hh_fill(p, n, h);
  const size_t steps[] = {64, 5000, 200 * KiB, 5 * MiB, 3 * MiB, 90000, 33, 7};
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
    p = realloc(p, steps[i]);
    assert_non_null(p);
    size_t common = n < steps[i] ? n : steps[i];
    if (hh_check(p, n, common, h) != SIZE_MAX) fail_msg("realloc(%zu -> %zu) lost data", n, steps[i]);
    n = steps[i];
    hh_fill(p, n, h);
  }
  free(p);
}

static void realloc_to_an_impossible_size_fails_and_keeps_the_block(void **state) {
  (void)state;
  const size_t olds[] = {16, 1000, 1 * MiB, 9 * MiB};
  for (size_t i = 0; i < sizeof olds / sizeof *olds; i++) {
    unsigned char *p = malloc(olds[i]);
    assert_non_null(p);
    memset(p, 0x42, olds[i]);
    errno = 0;
    assert_null(realloc(p, HH_OPAQUE(SIZE_MAX - 4096)));
    assert_int_equal(errno, ENOMEM);
    assert_true(hh_all_equal(p, olds[i], 0x42));
    free(p);
  }
}

static void reallocarray_resizes_by_element_count(void **state) {
  (void)state;
  int *a = reallocarray(NULL, 10, sizeof(int));
  assert_non_null(a);
  for (int i = 0; i < 10; i++) a[i] = i;
  a = reallocarray(a, 100000, sizeof(int));
  assert_non_null(a);
  for (int i = 0; i < 10; i++) assert_int_equal(a[i], i);
  free(a);
}

static void reallocarray_detects_overflow_and_keeps_the_block(void **state) {
  (void)state;
  int *a = malloc(10 * sizeof(int));
  assert_non_null(a);
  for (int i = 0; i < 10; i++) a[i] = i * 3;
  errno = 0;
  assert_null(reallocarray(HH_OPAQUE(a), HH_OPAQUE(SIZE_MAX / 2), 3));
  assert_int_equal(errno, ENOMEM);
  errno = 0;
  assert_null(reallocarray(HH_OPAQUE(a), HH_OPAQUE((size_t)1 << 33), (size_t)1 << 33));
  assert_int_equal(errno, ENOMEM);
  for (int i = 0; i < 10; i++) assert_int_equal(a[i], i * 3);
  free(a);
}

/* ------------------------------------------------------------ aligned allocation */

static void posix_memalign_rejects_bad_alignments_with_EINVAL(void **state) {
  (void)state;
  const size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 48, 100, 4095, 4097, (size_t)1 << 63 | 8};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    void *p = (void *)0x1;
    int rc = posix_memalign(&p, HH_OPAQUE(bad[i]), 64);
    if (rc != EINVAL) fail_msg("posix_memalign(alignment %zu) returned %d, not EINVAL", bad[i], rc);
  }
}

static void posix_memalign_honours_alignments_from_8_bytes_to_16MiB(void **state) {
  (void)state;
  for (size_t a = 8; a <= 16 * MiB; a *= 2) {
    const size_t req[] = {1, 24, 100, a, a + 1, 3 * a + 5};
    for (size_t i = 0; i < sizeof req / sizeof *req; i++) {
      if (req[i] > 64 * MiB) continue;
      void *p = NULL;
      int rc = posix_memalign(&p, a, req[i]);
      if (rc) fail_msg("posix_memalign(align %zu, size %zu) failed with %d", a, req[i], rc);
      if (!ALIGNED(p, a)) fail_msg("posix_memalign(align %zu, size %zu) = %p is misaligned", a, req[i], p);
      if (malloc_usable_size(p) < req[i])
        fail_msg("posix_memalign(align %zu, size %zu): usable size %zu", a, req[i], malloc_usable_size(p));
      memset(p, 0x11, req[i]);
      free(p);
    }
  }
}

static void posix_memalign_many_aligned_blocks_do_not_overlap(void **state) {
  (void)state;
  enum { N = 300 };
  static void *p[N];
  static size_t n[N];
  for (int i = 0; i < N; i++) {
    size_t a = (size_t)16 << (i % 10); /* 16 .. 8 KiB */
    n[i] = 1 + (size_t)(i * 37) % 3000;
    assert_int_equal(posix_memalign(&p[i], a, n[i]), 0);
    assert_true(ALIGNED(p[i], a));
    hh_fill(p[i], n[i], hh_block_hash(p[i], n[i], 6));
  }
  for (int i = 0; i < N; i++) {
    assert_int_equal(hh_check(p[i], n[i], n[i], hh_block_hash(p[i], n[i], 6)), SIZE_MAX);
    frhehe(p[i]); /* aligned blocks are ordinary blocks for frhehe too */
  }
}

static void posix_memalign_of_an_impossible_size_returns_ENOMEM(void **state) {
  (void)state;
  void *p = NULL;
  assert_int_equal(posix_memalign(&p, 64, HH_OPAQUE(SIZE_MAX - 100)), ENOMEM);
  assert_int_equal(posix_memalign(&p, 4096, HH_OPAQUE(SIZE_MAX / 2)), ENOMEM);
}

static void aligned_alloc_honours_the_alignment(void **state) {
  (void)state;
  for (size_t a = 16; a <= 2 * MiB; a *= 4) {
    void *p = aligned_alloc(a, a * 3);
    assert_non_null(p);
    if (!ALIGNED(p, a)) fail_msg("aligned_alloc(%zu) = %p", a, p);
    memset(p, 1, a * 3);
    free(p);
  }
}

static void memalign_honours_the_alignment(void **state) {
  (void)state;
  for (size_t a = 32; a <= 4 * MiB; a *= 8) {
    void *p = memalign(a, 100);
    assert_non_null(p);
    if (!ALIGNED(p, a)) fail_msg("memalign(%zu) = %p", a, p);
    assert_true(malloc_usable_size(p) >= 100);
    free(p);
  }
}

static void valloc_returns_page_aligned_blocks(void **state) {
  (void)state;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t req[] = {1, 100, 4096, 5000, 1 * MiB + 1};
  for (size_t i = 0; i < sizeof req / sizeof *req; i++) {
    void *p = valloc(req[i]);
    assert_non_null(p);
    if (!ALIGNED(p, page)) fail_msg("valloc(%zu) = %p is not page aligned", req[i], p);
    memset(p, 2, req[i]);
    free(p);
  }
}

static void pvalloc_returns_whole_pages(void **state) {
  (void)state;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t req[] = {1, 100, 4096, 5000};
  for (size_t i = 0; i < sizeof req / sizeof *req; i++) {
    void *p = pvalloc(req[i]);
    assert_non_null(p);
    if (!ALIGNED(p, page)) fail_msg("pvalloc(%zu) = %p is not page aligned", req[i], p);
    size_t whole = (req[i] + page - 1) / page * page;
    if (malloc_usable_size(p) < whole)
      fail_msg("pvalloc(%zu): usable size %zu < %zu", req[i], malloc_usable_size(p), whole);
    memset(p, 3, whole);
    free(p);
  }
}

/* Every aligned-allocation entry point answers every input as glibc
 * documents it: a block, EINVAL or ENOMEM; it never loops and never
 * crashes. Each runs in a child with a time limit, so that a loop fails the
 * test instead of hanging it. */
typedef void *(*memalign_fn)(size_t, size_t);
void *__libc_memalign(size_t align, size_t size);

static int fail_child(const char *fmt, size_t a, size_t b) {
  dprintf(2, fmt, a, b);
  dprintf(2, "\n");
  return 3;
}

static int memalign_answers(void *arg) {
  memalign_fn fns[] = {memalign, __libc_memalign};
  const char *names[] = {"memalign", "__libc_memalign"};
  (void)arg;
  for (int f = 0; f < 2; f++) {
    memalign_fn fn = HH_OPAQUE(fns[f]);
    /* 0 and alignments up to 16 are malloc's; a non-power of two is rounded up */
    const size_t small[] = {0, 1, 2, 3, 8, 16, 24, 48, 3000, 65535, 65537};
    for (size_t i = 0; i < sizeof small / sizeof *small; i++) {
      size_t a = small[i], want = a <= 16 ? 16 : 1;
      while (want < a) want *= 2;
      for (size_t n = 0; n <= 4096; n = n ? n * 4 : 1) {
        unsigned char *p = fn(HH_OPAQUE(a), n);
        if (!p) return fail_child("memalign(%zu, %zu) returned NULL", a, n);
        if ((uintptr_t)p & (want - 1)) return fail_child("memalign(%zu, %zu): misaligned", a, n);
        if (malloc_usable_size(p) < n) return fail_child("memalign(%zu, %zu): too small", a, n);
        memset(p, 1, n);
        free(p);
      }
    }
    errno = 0;
    if (fn(HH_OPAQUE(SIZE_MAX), 16) != NULL || errno != EINVAL)
      return fail_child("memalign(SIZE_MAX, %zu) is not EINVAL (errno %zu)", 16, (size_t)errno);
    errno = 0;
    if (fn(HH_OPAQUE((size_t)1 << 63), 16) != NULL || errno != ENOMEM)
      return fail_child("memalign(2^63, %zu) is not ENOMEM (errno %zu)", 16, (size_t)errno);
    errno = 0;
    if (fn(64, HH_OPAQUE(SIZE_MAX)) != NULL || errno != ENOMEM)
      return fail_child("memalign(%zu, SIZE_MAX) is not ENOMEM (errno %zu)", 64, (size_t)errno);
    (void)names;
  }
  void *p = (void *)1;
  if (posix_memalign(&p, HH_OPAQUE((size_t)0), 16) != EINVAL) return fail_child("posix_memalign(0, %zu) %zu", 16, 0);
  if (posix_memalign(&p, HH_OPAQUE((size_t)1) << 62, 16) != ENOMEM)
    return fail_child("posix_memalign(2^62, %zu) is not ENOMEM %zu", 16, 0);
  /* aligned_alloc's odd alignments as the glibc we run with answers them
   * (EINVAL from 2.38, memalign's rounding before), asked of glibc itself */
  void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  void *(*glibc_aligned_alloc)(size_t, size_t) = libc ? (void *(*)(size_t, size_t))dlsym(libc, "aligned_alloc") : NULL;
  void (*glibc_free)(void *) = libc ? (void (*)(void *))dlsym(libc, "free") : NULL;
  if (glibc_aligned_alloc == NULL || glibc_free == NULL) return fail_child("glibc's aligned_alloc %zu %zu", 0, 0);
  const size_t odd[][2] = {{0, 16}, {24, 48}, {3, 16}, {48, 96}};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    size_t a = odd[i][0], n = odd[i][1];
    errno = 0;
    void *g = glibc_aligned_alloc(HH_OPAQUE(a), n);
    int g_errno = errno;
    glibc_free(g);
    errno = 0;
    void *h = aligned_alloc(HH_OPAQUE(a), n);
    if ((g == NULL) != (h == NULL) || (h == NULL && errno != g_errno))
      return fail_child("aligned_alloc(%zu, %zu) answers otherwise than glibc", a, n);
    if (h != NULL) {
      size_t want = a <= 16 ? 16 : (size_t)1 << (64 - __builtin_clzl(a - 1));
      if ((uintptr_t)h % want != 0) return fail_child("aligned_alloc(%zu, %zu) is not rounded up", a, n);
      memset(h, 1, n);
      free(h);
    }
  }
  errno = 0;
  if (valloc(HH_OPAQUE(SIZE_MAX)) != NULL || errno != ENOMEM) return fail_child("valloc(SIZE_MAX) %zu %zu", 0, 0);
  errno = 0;
  if (pvalloc(HH_OPAQUE(SIZE_MAX)) != NULL || errno != ENOMEM) return fail_child("pvalloc(SIZE_MAX) %zu %zu", 0, 0);
  void *v = valloc(0), *pv = pvalloc(0);
  if (!v || !pv) return fail_child("valloc(0) or pvalloc(0) returned NULL %zu %zu", 0, 0);
  free(v);
  free(pv);
  return 0;
}

static void aligned_allocation_answers_0_odd_huge_and_impossible_inputs_as_glibc(void **state) {
  (void)state;
  hh_child c;
  hh_fork_run(memalign_answers, NULL, 20, &c);
  if (!hh_child_exited_ok(&c)) fail_msg("the child %s:\n%s", hh_child_describe(&c), c.err);
  hh_child_free(&c);
}

/* ------------------------------------------------------------ other programs */

static void run_and_expect_success(const char *const *argv, const char *const *env) {
  hh_child c;
  hh_exec_run(argv, env, 120, &c);
  if (!hh_child_exited_ok(&c))
    fail_msg("%s %s\n--- stdout:\n%s\n--- stderr:\n%s", argv[0], hh_child_describe(&c), c.out, c.err);
  hh_child_free(&c);
}

static void a_program_run_with_LD_PRELOAD_allocates_from_hahalloc(void **state) {
  (void)state;
  const char *argv[] = {HH_BUILD_DIR "/tests/preload_probe", NULL};
  const char *env[] = {"LD_PRELOAD=" HH_BUILD_DIR "/libhahalloc.so", NULL};
  run_and_expect_success(argv, env);
}

static void a_program_without_LD_PRELOAD_does_not_see_hahalloc(void **state) {
  (void)state;
  /* the probe's own check fails when hahalloc is absent: it can tell */
  const char *argv[] = {HH_BUILD_DIR "/tests/preload_probe", NULL};
  const char *env[] = {"LD_PRELOAD", NULL};
  hh_child c;
  hh_exec_run(argv, env, 60, &c);
  if (hh_child_exited_ok(&c)) fail_msg("preload_probe passed without hahalloc:\n%s", c.out);
  hh_child_free(&c);
}

static void cxx_new_and_delete_use_hahalloc_when_linked(void **state) {
  (void)state;
  const char *argv[] = {HH_BUILD_DIR "/tests/cxx_new", NULL};
  run_and_expect_success(argv, NULL);
}

static void cxx_new_and_delete_use_hahalloc_when_preloaded(void **state) {
  (void)state;
  const char *argv[] = {HH_BUILD_DIR "/tests/cxx_new_preload", NULL};
  const char *env[] = {"LD_PRELOAD=" HH_BUILD_DIR "/libhahalloc.so", NULL};
  run_and_expect_success(argv, env);
}

static void unmodified_system_programs_run_with_LD_PRELOAD(void **state) {
  (void)state;
  const char *env[] = {"LD_PRELOAD=" HH_BUILD_DIR "/libhahalloc.so", NULL};
  const char *sh[] = {"/bin/sh", "-c",
                      "seq 1 20000 | sort -r | sort -n | tail -1 | grep -qx 20000 && ls / >/dev/null && "
                      "echo abc | sed s/b/x/ | grep -qx axc",
                      NULL};
  run_and_expect_success(sh, env);
}

int main(int argc, char **argv) {
  hh_test_env(argv);
  (void)argc;
  (void)argv;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(malloc_family_symbols_resolve_to_libhahalloc),
      cmocka_unit_test(glibc_internal_allocation_aliases_resolve_to_libhahalloc),
      cmocka_unit_test(malloc_gives_aligned_blocks_whose_usable_size_covers_the_request),
      cmocka_unit_test(hahalloc_usable_size_covers_every_request),
      cmocka_unit_test(malloc_usable_size_of_null_is_zero),
      cmocka_unit_test(malloc_of_impossible_sizes_fails_with_ENOMEM),
      cmocka_unit_test(aligned_allocation_answers_0_odd_huge_and_impossible_inputs_as_glibc),
      cmocka_unit_test(free_of_null_does_nothing),
      cmocka_unit_test(free_keeps_errno),
      cmocka_unit_test(frhehe_releases_memory_from_strdup),
      cmocka_unit_test(free_releases_memory_from_the_seed_api),
      cmocka_unit_test(realloc_and_rehehalloc_resize_each_others_blocks),
      cmocka_unit_test(calloc_returns_zeroed_memory),
      cmocka_unit_test(calloc_detects_multiplication_overflow),
      cmocka_unit_test(calloc_of_zero_elements_returns_a_freeable_pointer),
      cmocka_unit_test(realloc_of_null_is_malloc),
      cmocka_unit_test(realloc_keeps_the_common_prefix),
      cmocka_unit_test(realloc_to_an_impossible_size_fails_and_keeps_the_block),
      cmocka_unit_test(reallocarray_resizes_by_element_count),
      cmocka_unit_test(reallocarray_detects_overflow_and_keeps_the_block),
      cmocka_unit_test(posix_memalign_rejects_bad_alignments_with_EINVAL),
      cmocka_unit_test(posix_memalign_honours_alignments_from_8_bytes_to_16MiB),
      cmocka_unit_test(posix_memalign_many_aligned_blocks_do_not_overlap),
      cmocka_unit_test(posix_memalign_of_an_impossible_size_returns_ENOMEM),
      cmocka_unit_test(aligned_alloc_honours_the_alignment),
      cmocka_unit_test(memalign_honours_the_alignment),
      cmocka_unit_test(valloc_returns_page_aligned_blocks),
      cmocka_unit_test(pvalloc_returns_whole_pages),
      cmocka_unit_test(a_program_run_with_LD_PRELOAD_allocates_from_hahalloc),
      cmocka_unit_test(a_program_without_LD_PRELOAD_does_not_see_hahalloc),
      cmocka_unit_test(cxx_new_and_delete_use_hahalloc_when_linked),
      cmocka_unit_test(cxx_new_and_delete_use_hahalloc_when_preloaded),
      cmocka_unit_test(unmodified_system_programs_run_with_LD_PRELOAD),
  };
  return cmocka_run_group_tests_name("drop-in malloc (libhahalloc.so)", tests, NULL, NULL);
}
