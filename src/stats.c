/*
 * Statistics. Each heap counts its own allocations and bytes without
 * atomics, and keeps its share of the bytes in use as hi - room (see
 * hh_stats_take): a malloc subtracts its block from room and branches only
 * at a new high, a free adds it back. Once its share has moved by more than
 * HH_FLUSH_BYTES either way (checked at a new high and after each free), and
 * when its thread exits, a heap folds its share into a global counter and
 * raises the global peak with its high since the last flush. The peak is exact for a single thread and, with several threads,
 * off by at most HH_FLUSH_BYTES for each other heap. Bytes in use are
 * counted in whole blocks (the
 * requested size rounded up to its root), so that a free need not read the
 * range's tracking record; the exact requested bytes in use come from
 * walking the live ranges, and so does the count of frees (allocations less
 * the ranges still live).
 */
#include "internal.h"

static _Atomic(int64_t) global_live;
static _Atomic(int64_t) global_peak;

static void peak_raise(int64_t candidate) {
  int64_t peak = atomic_load_explicit(&global_peak, memory_order_relaxed);
  while (candidate > peak &&
         !atomic_compare_exchange_weak_explicit(&global_peak, &peak, candidate,
                                                memory_order_relaxed, memory_order_relaxed)) {
  }
}

void hh_stats_flush(hh_heap *heap) {
  int64_t live = heap->stats.hi - heap->stats.room;
  int64_t before = atomic_fetch_add_explicit(&global_live, live, memory_order_relaxed);
  peak_raise(before + heap->stats.hi);
  heap->stats.hi = 0;
  heap->stats.room = 0;
}

/* room ran out: the share in use is a new high */
void *hh_stats_new_high(hh_heap *heap, void *p) {
  heap->stats.hi -= heap->stats.room;
  heap->stats.room = 0;
  if (heap->stats.hi > HH_FLUSH_BYTES) hh_stats_flush(heap);
  return p;
}

void hh_stats_free_orphan(size_t size) {
  atomic_fetch_sub_explicit(&global_live, (int64_t)size, memory_order_relaxed);
}

void hh_stats_totals(hh_totals *t) {
  *t = (hh_totals){0};
  int64_t live = atomic_load(&global_live);
  int64_t peak = atomic_load(&global_peak);
  for (hh_heap *h = hh_heaps_first(); h != NULL; h = h->next_heap) {
    t->allocs += h->stats.allocs;
    t->bytes_allocated += h->stats.bytes_allocated;
    live += h->stats.hi - h->stats.room;
  }
  /* each heap's high, with the others' shares as they are now */
  for (hh_heap *h = hh_heaps_first(); h != NULL; h = h->next_heap)
    if (live + h->stats.room > peak) peak = live + h->stats.room;
  if (live > peak) peak = live;
  t->live_bytes = live;
  t->peak_bytes = (uint64_t)(peak > 0 ? peak : 0);
}
