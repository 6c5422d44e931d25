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
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "entry.h"
#include "fast.h"
#include "format.h"
#include "hahalloc.h"
#include "hooks.h"
#include "stats.h"

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

HH_EXPORT HH_FRAMELESS void *malloc(size_t size) {
  return hh_alloc_fast(size, HH_TAIL_KIND(HH_ENTRY_MALLOC), HH_TAIL_FRAME);
}

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

HH_EXPORT void *calloc(size_t n, size_t size) {
  return calloc_at(n, size, HH_ENTRY_RET(HH_ENTRY_CALLOC), HH_ENTRY_FRAME);
}

HH_EXPORT void *realloc(void *ptr, size_t size) {
  return hh_realloc(ptr, size, "realloc", HH_ENTRY_RET(HH_ENTRY_REALLOC), HH_ENTRY_FRAME);
}

HH_EXPORT void *reallocarray(void *ptr, size_t n, size_t size) {
  size_t total;
  if (mul_overflows(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return hh_realloc(ptr, total, "reallocarray", HH_ENTRY_RET(HH_ENTRY_REALLOCARRAY), HH_ENTRY_FRAME);
}

HH_EXPORT int posix_memalign(void **out, size_t align, size_t size) {
  if (align % sizeof(void *) != 0 || !is_pow2(align)) return EINVAL;
  int saved = errno;
  void *p = hh_aligned(align, size, HH_ENTRY_RET(HH_ENTRY_POSIX_MEMALIGN), HH_ENTRY_FRAME);
  if (p == NULL) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

/* glibc's memalign: an alignment up to the default (0 included) is
 * malloc's, a non-power of two is rounded up to the next power, one past
 * SIZE_MAX / 2 + 1 is EINVAL (0 then). */
static size_t memalign_alignment(size_t align) {
  if (align > ((size_t)1 << 63)) return 0;
  if (align <= HH_ALIGN) return HH_ALIGN;
  if (!is_pow2(align)) return (size_t)1 << (64 - __builtin_clzl(align - 1));
  return align;
}

/* aligned_alloc answers as the glibc the program runs with: from 2.38 an
 * alignment that is not a power of two is EINVAL; before, it is taken as
 * memalign takes it (Debian 12's 2.36 gives aligned_alloc(24, 48) a block
 * aligned to 32). 1: strict, 2: as memalign. */
static int aligned_alloc_rule;

static int aligned_alloc_rule_of_glibc(void) {
  int rule = aligned_alloc_rule;
  if (rule != 0) return rule;
  unsigned major = 0, minor = 0;
  const char *v = gnu_get_libc_version();
  while (*v >= '0' && *v <= '9') major = major * 10 + (unsigned)(*v++ - '0');
  if (*v == '.') v++;
  while (*v >= '0' && *v <= '9') minor = minor * 10 + (unsigned)(*v++ - '0');
  rule = major > 2 || (major == 2 && minor >= 38) ? 1 : 2;
  aligned_alloc_rule = rule;
  return rule;
}

HH_EXPORT void *aligned_alloc(size_t align, size_t size) {
  if (!is_pow2(align)) {
    if (aligned_alloc_rule_of_glibc() == 1 || (align = memalign_alignment(align)) == 0) {
      errno = EINVAL;
      return NULL;
    }
  }
  return hh_aligned(align, size, HH_ENTRY_RET(HH_ENTRY_ALIGNED_ALLOC), HH_ENTRY_FRAME);
}

HH_EXPORT void *memalign(size_t align, size_t size) {
  if ((align = memalign_alignment(align)) == 0) {
    errno = EINVAL;
    return NULL;
  }
  return hh_aligned(align, size, HH_ENTRY_RET(HH_ENTRY_MEMALIGN), HH_ENTRY_FRAME);
}

HH_EXPORT void *valloc(size_t size) { return hh_aligned(PAGE, size, HH_ENTRY_RET(HH_ENTRY_VALLOC), HH_ENTRY_FRAME); }

HH_EXPORT void *pvalloc(size_t size) {
  if (size > SIZE_MAX - PAGE) {
    errno = ENOMEM;
    return NULL;
  }
  return hh_aligned(PAGE, (size + PAGE - 1) & ~(size_t)(PAGE - 1), HH_ENTRY_RET(HH_ENTRY_PVALLOC), HH_ENTRY_FRAME);
}

HH_EXPORT size_t malloc_usable_size(void *ptr) { return hh_usable_size(ptr, "malloc_usable_size"); }

/* glibc's tuning and statistics calls: accepted, answered from our state. */
HH_EXPORT int mallopt(int param, int value) {
  (void)param;
  (void)value;
  return 1;
}

/* The calling thread's heap, and the heaps of threads that have exited
 * (their memory may have been freed since by others). Other live threads'
 * heaps are theirs alone: their decay gives back what they leave unused. */
HH_EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  hh_heaps_trim_abandoned();
  hh_heap *heap = hh_heap_mine();
  if (heap == NULL) return 1;
  hh_remote_flush(heap);
  hh_heap_sweep(heap, HH_SWEEP_ALL);
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
  fprintf(fp,
          "<malloc version=\"hahalloc-1\">\n<total type=\"in_use\" size=\"%zu\"/>\n"
          "<total type=\"peak\" size=\"%zu\"/>\n</malloc>\n",
          in_use, peak);
  return 0;
}

/* The names glibc uses internally, which some programs reach directly. */
HH_EXPORT void *__libc_malloc(size_t size) {
  return hh_alloc_fast(size, HH_ENTRY_RET(HH_ENTRY_MALLOC), HH_ENTRY_FRAME);
}
HH_EXPORT void __libc_free(void *ptr) { hh_free_fast(ptr, "free"); }
HH_EXPORT void *__libc_calloc(size_t n, size_t size) {
  return calloc_at(n, size, HH_ENTRY_RET(HH_ENTRY_CALLOC), HH_ENTRY_FRAME);
}
HH_EXPORT void *__libc_realloc(void *ptr, size_t size) {
  return hh_realloc(ptr, size, "realloc", HH_ENTRY_RET(HH_ENTRY_REALLOC), HH_ENTRY_FRAME);
}
HH_EXPORT void *__libc_memalign(size_t align, size_t size) { return memalign(align, size); }
HH_EXPORT void *__libc_valloc(size_t size) {
  return hh_aligned(PAGE, size, HH_ENTRY_RET(HH_ENTRY_VALLOC), HH_ENTRY_FRAME);
}
HH_EXPORT void *__libc_pvalloc(size_t size) { return pvalloc(size); }
HH_EXPORT int __posix_memalign(void **out, size_t align, size_t size) { return posix_memalign(out, align, size); }

/* ------------------------------------------------------------------ C++ operator new */

/*
 * operator new and new[] are ours too (as valgrind, tcmalloc and jemalloc
 * export them), for the report: libstdc++'s new[] is a tail call into new,
 * which calls malloc, so a malloc of its own could only say "malloc, from
 * operator new" and never "new[]"; here the entry point is known. A
 * program's own replacement of operator new still wins: the executable
 * comes first in the lookup order. operator delete is ours as well: in
 * libstdc++, delete[] with a size calls delete[], which calls delete, which
 * calls free, three jumps through the PLT for every delete of a C++
 * program (larson's every free). The size and the alignment are not
 * needed: the block's page knows both.
 *
 * Out of memory must call the new-handler and throw std::bad_alloc, which C
 * cannot: the request then goes to the next definition in the lookup order
 * (libstdc++'s), which calls our malloc again, runs the handler and throws.
 * The plain and array forms enter frameless, as malloc does (the report's
 * short path takes their blocks too), so their slow path makes that call
 * (hh_cxx_new_failed); the aligned forms test what they get.
 */
static void *next_new(const char *symbol, size_t size, size_t align, bool aligned, const void *tag) {
  void *fn = dlsym(RTLD_NEXT, symbol);
  if (fn == NULL) {
    hh_say("hahalloc: operator new: out of memory for %zu bytes, and no C++ runtime to throw "
           "std::bad_alloc\n",
           size);
    abort();
  }
  if (aligned && tag) return ((void *(*)(size_t, size_t, const void *))fn)(size, align, tag);
  if (aligned) return ((void *(*)(size_t, size_t))fn)(size, align);
  if (tag) return ((void *(*)(size_t, const void *))fn)(size, tag);
  return ((void *(*)(size_t))fn)(size);
}

/* Frameless, as malloc: the slow path (hh_alloc_generic) answers a
 * failure, through hh_cxx_new_failed. The nothrow tag is not needed: the
 * C++ runtime's own nothrow form is given one of ours. */
#define CXX_NEW(fn, symbol, kind)                  \
  HH_EXPORT void *fn(size_t size) __asm__(symbol); \
  HH_FRAMELESS void *fn(size_t size) { return hh_alloc_fast(size, HH_TAIL_KIND(kind), HH_TAIL_FRAME); }
#define CXX_NEW_NOTHROW(fn, symbol, kind)                               \
  HH_EXPORT void *fn(size_t size, const void *nothrow) __asm__(symbol); \
  HH_FRAMELESS void *fn(size_t size, const void *nothrow) {             \
    (void)nothrow;                                                      \
    return hh_alloc_fast(size, HH_TAIL_KIND(kind), HH_TAIL_FRAME);      \
  }
/* std::align_val_t is a size_t; an alignment that is no power of two is
 * the program's undefined behaviour, left to the C++ runtime. */
#define CXX_NEW_ALIGNED(fn, symbol, kind)                                                          \
  HH_EXPORT void *fn(size_t size, size_t align) __asm__(symbol);                                   \
  void *fn(size_t size, size_t align) {                                                            \
    void *p = is_pow2(align) ? hh_aligned(align, size, HH_ENTRY_RET(kind), HH_ENTRY_FRAME) : NULL; \
    if (HH_LIKELY(p != NULL)) return p;                                                            \
    return next_new(symbol, size, align, true, NULL);                                              \
  }
#define CXX_NEW_ALIGNED_NOTHROW(fn, symbol, kind)                                                  \
  HH_EXPORT void *fn(size_t size, size_t align, const void *nothrow) __asm__(symbol);              \
  void *fn(size_t size, size_t align, const void *nothrow) {                                       \
    void *p = is_pow2(align) ? hh_aligned(align, size, HH_ENTRY_RET(kind), HH_ENTRY_FRAME) : NULL; \
    if (HH_LIKELY(p != NULL)) return p;                                                            \
    return next_new(symbol, size, align, true, nothrow);                                           \
  }

void *hh_cxx_new_failed(unsigned kind, size_t size) {
  static const char nothrow_tag = 0; /* a std::nothrow_t is empty: its address alone is passed */
  switch (kind) {
  case HH_ENTRY_NEW: return next_new("_Znwm", size, 0, false, NULL);
  case HH_ENTRY_NEW_ARRAY: return next_new("_Znam", size, 0, false, NULL);
  case HH_ENTRY_NEW_NOTHROW: return next_new("_ZnwmRKSt9nothrow_t", size, 0, false, &nothrow_tag);
  case HH_ENTRY_NEW_ARRAY_NOTHROW: return next_new("_ZnamRKSt9nothrow_t", size, 0, false, &nothrow_tag);
  default: return NULL;
  }
}

CXX_NEW(hh_cxx_new, "_Znwm", HH_ENTRY_NEW)
CXX_NEW(hh_cxx_new_array, "_Znam", HH_ENTRY_NEW_ARRAY)
CXX_NEW_NOTHROW(hh_cxx_new_nothrow, "_ZnwmRKSt9nothrow_t", HH_ENTRY_NEW_NOTHROW)
CXX_NEW_NOTHROW(hh_cxx_new_array_nothrow, "_ZnamRKSt9nothrow_t", HH_ENTRY_NEW_ARRAY_NOTHROW)
CXX_NEW_ALIGNED(hh_cxx_new_aligned, "_ZnwmSt11align_val_t", HH_ENTRY_NEW_ALIGNED)
CXX_NEW_ALIGNED(hh_cxx_new_array_aligned, "_ZnamSt11align_val_t", HH_ENTRY_NEW_ARRAY_ALIGNED)
CXX_NEW_ALIGNED_NOTHROW(hh_cxx_new_aligned_nothrow, "_ZnwmSt11align_val_tRKSt9nothrow_t", HH_ENTRY_NEW_ALIGNED_NOTHROW)
CXX_NEW_ALIGNED_NOTHROW(hh_cxx_new_array_aligned_nothrow, "_ZnamSt11align_val_tRKSt9nothrow_t",
                        HH_ENTRY_NEW_ARRAY_ALIGNED_NOTHROW)

#define CXX_DELETE(fn, symbol, name, ...)                    \
  HH_EXPORT void fn(void *p, ##__VA_ARGS__) __asm__(symbol); \
  void fn(void *p, ##__VA_ARGS__) { hh_free_fast(p, name); }

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter" /* the size, alignment and nothrow tag */
CXX_DELETE(hh_cxx_delete, "_ZdlPv", "operator delete")
CXX_DELETE(hh_cxx_delete_array, "_ZdaPv", "operator delete[]")
CXX_DELETE(hh_cxx_delete_sized, "_ZdlPvm", "operator delete", size_t size)
CXX_DELETE(hh_cxx_delete_array_sized, "_ZdaPvm", "operator delete[]", size_t size)
CXX_DELETE(hh_cxx_delete_nothrow, "_ZdlPvRKSt9nothrow_t", "operator delete", const void *nothrow)
CXX_DELETE(hh_cxx_delete_array_nothrow, "_ZdaPvRKSt9nothrow_t", "operator delete[]", const void *nothrow)
CXX_DELETE(hh_cxx_delete_aligned, "_ZdlPvSt11align_val_t", "operator delete", size_t align)
CXX_DELETE(hh_cxx_delete_array_aligned, "_ZdaPvSt11align_val_t", "operator delete[]", size_t align)
CXX_DELETE(hh_cxx_delete_sized_aligned, "_ZdlPvmSt11align_val_t", "operator delete", size_t size, size_t align)
CXX_DELETE(hh_cxx_delete_array_sized_aligned, "_ZdaPvmSt11align_val_t", "operator delete[]", size_t size, size_t align)
CXX_DELETE(hh_cxx_delete_aligned_nothrow, "_ZdlPvSt11align_val_tRKSt9nothrow_t", "operator delete", size_t align,
           const void *nothrow)
CXX_DELETE(hh_cxx_delete_array_aligned_nothrow, "_ZdaPvSt11align_val_tRKSt9nothrow_t", "operator delete[]",
           size_t align, const void *nothrow)
#pragma GCC diagnostic pop

/* Local names of the entry points: the address of an exported function,
 * taken in a shared object, is its canonical one, which in a program built
 * without PIE that calls it is the program's PLT stub (a report's first
 * frame then named the program: "malloc (in /usr/bin/python3.11)"). */
#if !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-attributes" /* glibc's declarations' leaf, malloc, nothrow */
#endif
#define HH_HERE(name, symbol) extern __typeof__(symbol) name __attribute__((alias(#symbol), visibility("hidden")))
#define HH_HERE_ASM(name, type, asmname) extern type name __attribute__((alias(asmname), visibility("hidden")))
HH_HERE(here_malloc, malloc);
HH_HERE(here_calloc, calloc);
HH_HERE(here_realloc, realloc);
HH_HERE(here_reallocarray, reallocarray);
HH_HERE(here_memalign, memalign);
HH_HERE(here_posix_memalign, posix_memalign);
HH_HERE(here_aligned_alloc, aligned_alloc);
HH_HERE(here_valloc, valloc);
HH_HERE(here_pvalloc, pvalloc);
HH_HERE_ASM(here_new, __typeof__(hh_cxx_new), "_Znwm");
HH_HERE_ASM(here_new_array, __typeof__(hh_cxx_new_array), "_Znam");
HH_HERE_ASM(here_new_nothrow, __typeof__(hh_cxx_new_nothrow), "_ZnwmRKSt9nothrow_t");
HH_HERE_ASM(here_new_array_nothrow, __typeof__(hh_cxx_new_array_nothrow), "_ZnamRKSt9nothrow_t");
HH_HERE_ASM(here_new_aligned, __typeof__(hh_cxx_new_aligned), "_ZnwmSt11align_val_t");
HH_HERE_ASM(here_new_array_aligned, __typeof__(hh_cxx_new_array_aligned), "_ZnamSt11align_val_t");
HH_HERE_ASM(here_new_aligned_nothrow, __typeof__(hh_cxx_new_aligned_nothrow), "_ZnwmSt11align_val_tRKSt9nothrow_t");
HH_HERE_ASM(here_new_array_aligned_nothrow, __typeof__(hh_cxx_new_array_aligned_nothrow),
            "_ZnamSt11align_val_tRKSt9nothrow_t");
#if !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* Where each entry point is, for the first frame of a report's stacks. */
uintptr_t hh_entry_address(unsigned kind) {
  static const uintptr_t where[HH_ENTRIES] = {
      [HH_ENTRY_MALLOC] = (uintptr_t)&here_malloc,
      [HH_ENTRY_CALLOC] = (uintptr_t)&here_calloc,
      [HH_ENTRY_REALLOC] = (uintptr_t)&here_realloc,
      [HH_ENTRY_REALLOCARRAY] = (uintptr_t)&here_reallocarray,
      [HH_ENTRY_MEMALIGN] = (uintptr_t)&here_memalign,
      [HH_ENTRY_POSIX_MEMALIGN] = (uintptr_t)&here_posix_memalign,
      [HH_ENTRY_ALIGNED_ALLOC] = (uintptr_t)&here_aligned_alloc,
      [HH_ENTRY_VALLOC] = (uintptr_t)&here_valloc,
      [HH_ENTRY_PVALLOC] = (uintptr_t)&here_pvalloc,
      [HH_ENTRY_NEW] = (uintptr_t)&here_new,
      [HH_ENTRY_NEW_ARRAY] = (uintptr_t)&here_new_array,
      [HH_ENTRY_NEW_NOTHROW] = (uintptr_t)&here_new_nothrow,
      [HH_ENTRY_NEW_ARRAY_NOTHROW] = (uintptr_t)&here_new_array_nothrow,
      [HH_ENTRY_NEW_ALIGNED] = (uintptr_t)&here_new_aligned,
      [HH_ENTRY_NEW_ARRAY_ALIGNED] = (uintptr_t)&here_new_array_aligned,
      [HH_ENTRY_NEW_ALIGNED_NOTHROW] = (uintptr_t)&here_new_aligned_nothrow,
      [HH_ENTRY_NEW_ARRAY_ALIGNED_NOTHROW] = (uintptr_t)&here_new_array_aligned_nothrow,
      [HH_ENTRY_HAHALLOC] = (uintptr_t)&hahalloc,
      [HH_ENTRY_CHAHALLOC] = (uintptr_t)&chahalloc,
      [HH_ENTRY_REHEHALLOC] = (uintptr_t)&rehehalloc,
  };
  return kind < HH_ENTRIES ? where[kind] : 0;
}
#else
#include "entry.h"
#include "hahalloc.h"
#include "hooks.h"
uintptr_t hh_entry_address(unsigned kind) {
  if (kind == HH_ENTRY_HAHALLOC) return (uintptr_t)&hahalloc;
  if (kind == HH_ENTRY_CHAHALLOC) return (uintptr_t)&chahalloc;
  if (kind == HH_ENTRY_REHEHALLOC) return (uintptr_t)&rehehalloc;
  return 0;
}
#endif /* HH_NO_OVERRIDE */
