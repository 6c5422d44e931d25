/*
 * Statistics. Each heap counts its own allocations, frees and bytes without
 * atomics; the bytes in use are also folded into a global counter whenever
 * a heap's share moves by more than HH_FLUSH_BYTES, which is when the global
 * peak is updated. The peak is exact for a single thread (the heap's own
 * high-water mark since the last flush is added to the global figure) and
 * within HH_FLUSH_BYTES per thread otherwise. Bytes in use are counted in
 * whole blocks (the requested size rounded up to its root), so that a free
 * need not read the range's tracking record: one cache miss less. The exact
 * requested bytes in use come from walking the live ranges.
 */
#include "internal.h"

static _Atomic(int64_t) global_live;
static _Atomic(int64_t) global_peak;
static _Atomic(uint64_t) orphan_frees; /* frees by threads whose heap is gone */

static void peak_raise(int64_t candidate) {
  int64_t peak = atomic_load_explicit(&global_peak, memory_order_relaxed);
  while (candidate > peak &&
         !atomic_compare_exchange_weak_explicit(&global_peak, &peak, candidate,
                                                memory_order_relaxed, memory_order_relaxed)) {
  }
}

void hh_stats_flush(hh_heap *heap) {
  int64_t before = atomic_fetch_add_explicit(&global_live, heap->stats.live, memory_order_relaxed);
  peak_raise(before + heap->stats.live_hi);
  heap->stats.live = 0;
  heap->stats.live_hi = 0;
}

void *hh_stats_flush_ret(hh_heap *heap, void *p) {
  hh_stats_flush(heap);
  return p;
}

void hh_stats_free_orphan(size_t size) {
  atomic_fetch_add_explicit(&orphan_frees, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&global_live, (int64_t)size, memory_order_relaxed);
}

void hh_stats_totals(hh_totals *t) {
  *t = (hh_totals){0};
  int64_t live = atomic_load(&global_live);
  int64_t peak = atomic_load(&global_peak);
  t->frees = atomic_load(&orphan_frees);
  for (hh_heap *h = hh_heaps_first(); h != NULL; h = h->next_heap) {
    t->allocs += h->stats.allocs;
    t->frees += h->stats.frees;
    t->bytes_allocated += h->stats.bytes_allocated;
    live += h->stats.live;
  }
  for (hh_heap *h = hh_heaps_first(); h != NULL; h = h->next_heap) {
    int64_t cand = live - h->stats.live + h->stats.live_hi;
    if (cand > peak) peak = cand;
  }
  if (live > peak) peak = live;
  t->live_bytes = live;
  t->peak_bytes = (uint64_t)(peak > 0 ? peak : 0);
}
