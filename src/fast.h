/*
 * The fast paths, inlined into every public entry point (api.c, override.c).
 *
 * Allocation: the thread's heap, the root of the size, that root's current
 * page, pop its free list. Free: the registry gives the mapping, the slice
 * gives the page, the offset gives the range index; if this thread owns the
 * mapping and the range is not already free, push it on the page's free
 * list. No lock, no atomic read-modify-write, no header before the
 * range. Anything else (first use, empty page, large or oversize ranges,
 * remote frees, bad pointers) goes to the generic functions.
 */
#ifndef HH_FAST_H
#define HH_FAST_H

#include <string.h>

#include "internal.h"

#define HH_INLINE static inline __attribute__((always_inline))

/* With M = ceil(2^64 / d) and an offset n far below 2^64 / d (here n < 2^20
 * and d >= 16), the high half of n * M is n / d, and the low half is below M
 * exactly when d divides n (Lemire, Kaser and Kurz, "Faster remainder by
 * direct computation", 2019). One multiply gives both. */
HH_INLINE uint32_t hh_range_index(const hh_page *page, const void *p) {
  uint64_t off = (uintptr_t)p - (uintptr_t)page->start;
  return (uint32_t)(((unsigned __int128)off * page->magic) >> 64);
}
HH_INLINE bool hh_range_start(const hh_page *page, uint64_t off) {
  return off * page->magic < page->magic;
}

/* Bookkeeping after a small range was taken from `page`. Tracking lives out
 * of line so that the untracked fast path needs no stack frame. */
HH_INLINE void *hh_alloc_done(hh_heap *heap, hh_page *page, hh_block *b, size_t size, void *ret,
                              void *frame) {
  /* Clear the free-list words: a stale pointer to a neighbour would make a
   * leaked neighbour look reachable to the leak scan. */
  b->next = NULL;
  b->canary = 0;
  if (hh_tracking) return hh_track_alloc(heap, page, b, size, ret, frame);
  return b;
}

HH_INLINE void *hh_alloc_fast(size_t size, void *ret, void *frame) {
  hh_heap *heap = hh_tls_heap;
  if (HH_LIKELY(heap != NULL && size <= HH_MEDIUM_MAX)) {
    hh_page *page = heap->direct[hh_root_of(size)];
    hh_block *b = page->free;
    if (HH_LIKELY(b != NULL)) {
      page->free = b->next;
      page->used++;
      return hh_alloc_done(heap, page, b, size, ret, frame);
    }
  }
  return hh_alloc_generic(size, false, ret, frame);
}

HH_INLINE void *hh_calloc_fast(size_t size, void *ret, void *frame) {
  if (HH_LIKELY(size <= HH_MEDIUM_MAX)) {
    void *p = hh_alloc_fast(size, ret, frame);
    if (HH_LIKELY(p != NULL)) memset(p, 0, size);
    return p;
  }
  return hh_alloc_generic(size, true, ret, frame);
}

HH_INLINE void hh_free_fast(void *p, const char *call) {
  uintptr_t a = (uintptr_t)p;
  hh_heap *heap = hh_tls_heap;
  if (HH_LIKELY((a >> 47) == 0 && hh_chunk_is_mapping[a >> HH_MAPPING_SHIFT])) {
    hh_mapping *m = (hh_mapping *)(a & ~(uintptr_t)HH_MAPPING_MASK);
    hh_page *s = &m->slices[(a - (uintptr_t)m) >> HH_SLICE_SHIFT];
    if (HH_LIKELY(atomic_load_explicit(&m->heap, memory_order_relaxed) == heap &&
                  s->kind == HH_PAGE_SMALL)) {
      hh_page *page = s - s->slice_offset;
      uint64_t off = a - (uintptr_t)page->start;
      hh_block *b = p;
      if (HH_LIKELY(off < page->limit && hh_range_start(page, off) &&
                    b->canary != (hh_key ^ a))) {
        b->next = page->free;
        b->canary = hh_key ^ a;
        page->free = b;
        /* Every call below is a tail call: this path needs no stack frame. */
        bool emptied = --page->used == 0 ||
                       atomic_load_explicit(&page->in_full, memory_order_relaxed);
        if (hh_tracking) {
          heap->stats.frees++;
          heap->stats.live -= page->block_size;
          if (HH_UNLIKELY(heap->stats.live < -HH_FLUSH_BYTES))
            return hh_free_done_slow(heap, page, emptied);
        }
        if (HH_UNLIKELY(emptied)) return hh_page_emptied(heap, page);
        return;
      }
    }
  }
  hh_free_generic(p, call);
}

#endif
