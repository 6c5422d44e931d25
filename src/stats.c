/*
 * Statistics. Each heap counts its own allocations and bytes without
 * atomics (a range from a root with one add: hh_stats_alloc), and keeps its share of the bytes in use as hi - room (see
 * hh_stats_take): a malloc subtracts its block from room and branches when
 * room runs out, a free adds it back. A heap folds its share into a global
 * count once it has moved by more than HH_FLUSH_BYTES either way (checked
 * when room runs out and after each free) and when its thread exits.
 *
 * The peak. After a fold the heap aims at the global peak: while the bytes
 * in use are below it, `hi` is a mark, the smaller of the distance to the
 * peak and half of HH_FLUSH_BYTES, and room runs out only at the mark, where the
 * heap folds again and sees whether it made a new peak. At the peak the heap
 * climbs: `hi` is its highest share since the fold, every range that raises
 * it takes the slow path (without atomics), and the fold raises the peak
 * with it. A program that frees and allocates below its peak, as most do
 * once they run steadily, so folds only when its use moves by
 * HH_FLUSH_BYTES, instead of at every small new high of its own share.
 *
 * The peak is exact for a single thread and, with several threads, off by
 * at most HH_FLUSH_BYTES for each other heap (the shares they have not
 * folded). Bytes in use are counted in whole blocks (the requested size
 * rounded up to its root), so that a free need not read the range's
 * tracking record; the exact requested bytes in use come from walking the
 * live ranges, and so does the count of frees (allocations less the ranges
 * still live).
 */
#include "internal.h"
#include "stats.h"

static _Atomic(int64_t) global_live;
static _Atomic(int64_t) global_peak;

static void peak_raise(int64_t candidate) {
  int64_t peak = atomic_load_explicit(&global_peak, memory_order_relaxed);
  while (candidate > peak && !atomic_compare_exchange_weak_explicit(&global_peak, &peak, candidate,
                                                                    memory_order_relaxed, memory_order_relaxed)) {}
}

/* After a fold (the heap's share is 0): aim at the peak, `live` bytes
 * being in use now. The mark is at most half the fold distance above, so
 * that the frees that fold (room > HH_FLUSH_BYTES, a share below the mark
 * less HH_FLUSH_BYTES) have moved the share by half of it at least. */
#define MARK_MAX (HH_FLUSH_BYTES / 2)
static void aim(hh_heap *heap, int64_t live) {
  int64_t gap = atomic_load_explicit(&global_peak, memory_order_relaxed) - live;
  heap->stats.climbing = gap <= 0;
  heap->stats.hi = heap->stats.room = gap <= 0 ? 0 : gap < MARK_MAX ? gap : MARK_MAX;
}

/* Folds the heap's share into the global count. `high` is its highest
 * share since the last fold when that may be a new peak; below the peak
 * (not climbing, `high` unknown) the share never passed its mark, which
 * lies at or below the peak. */
static void fold(hh_heap *heap, bool raise, int64_t high) {
  int64_t share = heap->stats.hi - heap->stats.room;
  int64_t before = atomic_fetch_add_explicit(&global_live, share, memory_order_relaxed);
  if (raise) peak_raise(before + high);
  aim(heap, before + share);
}

void hh_stats_flush(hh_heap *heap) { fold(heap, heap->stats.climbing, heap->stats.hi); }

/* room ran out: a new high while climbing, or past the mark below the peak,
 * where the share now is the heap's high */
void *hh_stats_new_high(hh_heap *heap, void *p) {
  int64_t share = heap->stats.hi - heap->stats.room;
  if (!heap->stats.climbing) {
    fold(heap, true, share);
    return p;
  }
  heap->stats.hi = share;
  heap->stats.room = 0;
  if (share > HH_FLUSH_BYTES) hh_stats_flush(heap);
  return p;
}

/* The tally's count carried out of its 64 bits: 2^23 more allocations. */
void *hh_stats_carry(hh_heap *heap, int64_t live, void *p) {
  uint64_t t = heap->stats.tally;
  heap->stats.allocs += (t >> HH_TALLY_SHIFT) + ((uint64_t)1 << (64 - HH_TALLY_SHIFT));
  heap->stats.bytes_allocated += t & (((uint64_t)1 << HH_TALLY_SHIFT) - 1);
  heap->stats.tally = 0;
  return hh_stats_take(heap, live, p);
}

void hh_stats_free_orphan(size_t size) { atomic_fetch_sub_explicit(&global_live, (int64_t)size, memory_order_relaxed); }

void hh_stats_totals(hh_totals *t) {
  *t = (hh_totals){0};
  int64_t live = atomic_load(&global_live);
  int64_t peak = atomic_load(&global_peak);
  for (hh_heap *h = hh_heaps_first(); h != NULL; h = h->next_heap) {
    t->allocs += h->stats.allocs + (h->stats.tally >> HH_TALLY_SHIFT);
    t->bytes_allocated += h->stats.bytes_allocated + (h->stats.tally & (((uint64_t)1 << HH_TALLY_SHIFT) - 1));
    live += h->stats.hi - h->stats.room;
  }
  /* each climbing heap's high, with the others' shares as they are now */
  for (hh_heap *h = hh_heaps_first(); h != NULL; h = h->next_heap)
    if (h->stats.climbing && live + h->stats.room > peak) peak = live + h->stats.room;
  if (live > peak) peak = live;
  t->live_bytes = live;
  t->peak_bytes = (uint64_t)(peak > 0 ? peak : 0);
}
