/*
 * Entry points: which public function an allocation came through, and the
 * return and frame addresses that travel from it down to the slow paths,
 * for the allocation site.
 */
#ifndef HH_ENTRY_H
#define HH_ENTRY_H

#include <stdbool.h>
#include <stdint.h>

/* A slow path reached with a NULL frame was reached by a tail call from a
 * frameless entry point (fast.h): its own return and frame addresses are
 * then the entry point's. `ret` then holds the entry point's tag alone
 * (HH_TAIL_KIND: NULL for malloc), which the return address takes on. */
#define HH_TAIL_ENTRY(ret, frame)                                                  \
  do {                                                                             \
    if ((frame) == NULL) {                                                         \
      (ret) = (void *)((uintptr_t)__builtin_return_address(0) | (uintptr_t)(ret)); \
      (frame) = __builtin_frame_address(0);                                        \
    }                                                                              \
  } while (0)
/* The public entry point an allocation came through (malloc, calloc,
 * operator new[]...), which the report names first in every stack, as
 * valgrind does. It travels in the top bits of the return address passed
 * down (user addresses lie below 2^47), so the fast path's call-site table
 * (keyed by that word) tells a calloc from a malloc at the same return
 * address for free, and malloc, the hottest, carries 0: no bit at all.
 * Only the site capture (report/site.c) takes the word apart. */
enum hh_entry {
  HH_ENTRY_MALLOC = 0,
  HH_ENTRY_CALLOC,
  HH_ENTRY_REALLOC,
  HH_ENTRY_REALLOCARRAY,
  HH_ENTRY_MEMALIGN,
  HH_ENTRY_POSIX_MEMALIGN,
  HH_ENTRY_ALIGNED_ALLOC,
  HH_ENTRY_VALLOC,
  HH_ENTRY_PVALLOC,
  HH_ENTRY_NEW,       /* operator new(unsigned long) */
  HH_ENTRY_NEW_ARRAY, /* operator new[](unsigned long) */
  HH_ENTRY_NEW_NOTHROW,
  HH_ENTRY_NEW_ARRAY_NOTHROW,
  HH_ENTRY_NEW_ALIGNED,
  HH_ENTRY_NEW_ARRAY_ALIGNED,
  HH_ENTRY_NEW_ALIGNED_NOTHROW,
  HH_ENTRY_NEW_ARRAY_ALIGNED_NOTHROW,
  HH_ENTRY_HAHALLOC,
  HH_ENTRY_CHAHALLOC,
  HH_ENTRY_REHEHALLOC,
  HH_ENTRIES
};
#define HH_ENTRY_SHIFT 56
/* The caller's return address, tagged with the entry point `kind`. */
#define HH_ENTRY_RET(kind) ((void *)((uintptr_t)__builtin_return_address(0) | (uintptr_t)(kind) << HH_ENTRY_SHIFT))
/* The entry point's frame address as a frame pointer would hold it (its
 * CFA - 16), without making the fast paths set one up. */
#define HH_ENTRY_FRAME ((void *)((char *)__builtin_dwarf_cfa() - 16))
/* The C++ operator new whose failure must run the new-handler and throw
 * (or, for the nothrow forms, return NULL after the handler): the four
 * that enter frameless (override.c), whose slow path answers for them. */
static inline bool hh_entry_is_new(unsigned kind) { return kind >= HH_ENTRY_NEW && kind <= HH_ENTRY_NEW_ARRAY_NOTHROW; }
static inline unsigned hh_entry_of(uintptr_t ret) { return (unsigned)(ret >> HH_ENTRY_SHIFT); }
static inline uintptr_t hh_entry_untag(uintptr_t ret) { return ret & (((uintptr_t)1 << HH_ENTRY_SHIFT) - 1); }

#endif /* HH_ENTRY_H */
