/*
 * The malloc family, so that linking with -lhahalloc or LD_PRELOAD puts a
 * whole program on hahalloc, plus the glibc-internal names (__libc_malloc
 * and friends) that some programs and libraries call directly. C++
 * operator new and delete reach these through libstdc++.
 *
 * The ASan build (-DHH_NO_OVERRIDE) leaves this file out: the sanitizer
 * keeps its own malloc and tests reach hahalloc through the seed's API.
 */
#ifndef HH_NO_OVERRIDE
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fast.h"

#define RET __builtin_return_address(0)
/* The frame address as a frame pointer would hold it (CFA - 16), without
 * making the fast paths set one up. */
#define FRAME ((void *)((char *)__builtin_dwarf_cfa() - 16))
#define PAGE 4096

/* glibc declares none of these publicly. */
void cfree(void *ptr);
void *__libc_malloc(size_t size);
void __libc_free(void *ptr);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void *__libc_memalign(size_t align, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);
int __posix_memalign(void **out, size_t align, size_t size);

static bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

static bool mul_overflows(size_t a, size_t b, size_t *out) { return __builtin_mul_overflow(a, b, out); }

HH_EXPORT HH_FRAMELESS void *malloc(size_t size) { return hh_alloc_fast(size, HH_TAIL_RET, HH_TAIL_FRAME); }

HH_EXPORT void free(void *ptr) { hh_free_fast(ptr, "free"); }

HH_EXPORT void cfree(void *ptr) { hh_free_fast(ptr, "cfree"); }

HH_INLINE void *calloc_at(size_t n, size_t size, void *ret, void *frame) {
  size_t total;
  if (mul_overflows(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return hh_calloc_fast(total, ret, frame);
}

HH_EXPORT void *calloc(size_t n, size_t size) { return calloc_at(n, size, RET, FRAME); }

HH_EXPORT void *realloc(void *ptr, size_t size) { return hh_realloc(ptr, size, "realloc", RET, FRAME); }

HH_EXPORT void *reallocarray(void *ptr, size_t n, size_t size) {
  size_t total;
  if (mul_overflows(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return hh_realloc(ptr, total, "reallocarray", RET, FRAME);
}

HH_EXPORT int posix_memalign(void **out, size_t align, size_t size) {
  if (align % sizeof(void *) != 0 || !is_pow2(align)) return EINVAL;
  int saved = errno;
  void *p = hh_aligned(align, size, RET, FRAME);
  if (p == NULL) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

HH_EXPORT void *aligned_alloc(size_t align, size_t size) {
  if (!is_pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  return hh_aligned(align, size, RET, FRAME);
}

/* glibc's memalign: an alignment up to the default (0 included) is
 * malloc's, a non-power of two is rounded up to the next power, one past
 * SIZE_MAX / 2 + 1 is EINVAL. */
HH_EXPORT void *memalign(size_t align, size_t size) {
  if (align > ((size_t)1 << 63)) {
    errno = EINVAL;
    return NULL;
  }
  if (align <= HH_ALIGN) align = HH_ALIGN;
  else if (!is_pow2(align)) align = (size_t)1 << (64 - __builtin_clzl(align - 1));
  return hh_aligned(align, size, RET, FRAME);
}

HH_EXPORT void *valloc(size_t size) { return hh_aligned(PAGE, size, RET, FRAME); }

HH_EXPORT void *pvalloc(size_t size) {
  if (size > SIZE_MAX - PAGE) {
    errno = ENOMEM;
    return NULL;
  }
  return hh_aligned(PAGE, (size + PAGE - 1) & ~(size_t)(PAGE - 1), RET, FRAME);
}

HH_EXPORT size_t malloc_usable_size(void *ptr) { return hh_usable_size(ptr, "malloc_usable_size"); }

/* glibc's tuning and statistics calls: accepted, answered from our state. */
HH_EXPORT int mallopt(int param, int value) {
  (void)param;
  (void)value;
  return 1;
}

HH_EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  hh_heap *heap = hh_heap_mine();
  if (heap == NULL) return 0;
  hh_heap_sweep(heap, true);
  hh_span_purge(heap, 0);
  return 1;
}

static void fill_totals(size_t *in_use, size_t *peak) {
  hh_totals t;
  hh_heaps_lock();
  hh_stats_totals(&t);
  hh_heaps_unlock();
  *in_use = t.live_bytes > 0 ? (size_t)t.live_bytes : 0;
  *peak = (size_t)t.peak_bytes;
}

HH_EXPORT struct mallinfo2 mallinfo2(void) {
  struct mallinfo2 mi;
  memset(&mi, 0, sizeof mi);
  size_t in_use, peak;
  fill_totals(&in_use, &peak);
  mi.uordblks = in_use;
  mi.usmblks = peak;
  mi.arena = in_use;
  return mi;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
HH_EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo mi;
  memset(&mi, 0, sizeof mi);
  size_t in_use, peak;
  fill_totals(&in_use, &peak);
  mi.uordblks = (int)(in_use > 0x7fffffff ? 0x7fffffff : in_use);
  mi.arena = mi.uordblks;
  return mi;
}
#pragma GCC diagnostic pop

HH_EXPORT void malloc_stats(void) {
  hh_init();
  hh_report_summary(2, 0);
}

HH_EXPORT int malloc_info(int options, FILE *fp) {
  if (options != 0) {
    errno = EINVAL;
    return -1;
  }
  size_t in_use, peak;
  fill_totals(&in_use, &peak);
  fprintf(fp, "<malloc version=\"hahalloc-1\">\n<total type=\"in_use\" size=\"%zu\"/>\n"
              "<total type=\"peak\" size=\"%zu\"/>\n</malloc>\n", in_use, peak);
  return 0;
}

/* The names glibc uses internally, which some programs reach directly. */
HH_EXPORT void *__libc_malloc(size_t size) { return hh_alloc_fast(size, RET, FRAME); }
HH_EXPORT void __libc_free(void *ptr) { hh_free_fast(ptr, "free"); }
HH_EXPORT void *__libc_calloc(size_t n, size_t size) { return calloc_at(n, size, RET, FRAME); }
HH_EXPORT void *__libc_realloc(void *ptr, size_t size) {
  return hh_realloc(ptr, size, "realloc", RET, FRAME);
}
HH_EXPORT void *__libc_memalign(size_t align, size_t size) { return memalign(align, size); }
/* (memalign's RET is then this function's: __libc_memalign's callers are
 * rare enough that their site is memalign's caller here, see HH_TAIL_ENTRY) */
HH_EXPORT void *__libc_valloc(size_t size) { return hh_aligned(PAGE, size, RET, FRAME); }
HH_EXPORT void *__libc_pvalloc(size_t size) { return pvalloc(size); }
HH_EXPORT int __posix_memalign(void **out, size_t align, size_t size) {
  return posix_memalign(out, align, size);
}
#endif /* HH_NO_OVERRIDE */
