/*
 * Statistics: each heap's counts, kept without atomics on the fast paths
 * and summed for the report and mem_lhihiks (stats.c).
 */
#ifndef HH_STATS_H
#define HH_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

void hh_stats_free_orphan(size_t size);
typedef struct hh_totals {
  uint64_t allocs, bytes_allocated, peak_bytes;
  uint64_t frees; /* 0 here: allocs less the live ranges, which the caller walks */
  int64_t live_bytes;
} hh_totals;
void hh_stats_totals(hh_totals *t); /* under hh_heaps_lock */

/* A heap's share of the bytes in use is hi - room (negative when it frees
 * what others allocated). A range taken costs `room`; running out of room
 * takes the slow path: a new high, or the heap's mark below the peak
 * (stats.c). A free gives room back. Bytes in use count whole blocks
 * (the requested size rounded up to its root), so that a free need not read
 * the range's tracking record. A heap folds its share into the global count
 * once it has moved by more than HH_FLUSH_BYTES, up (hh_stats_new_high) or
 * down (hh_stats_give): other heaps' peaks are computed against that count.
 * The allocation side returns `p`, so that the fast path ends in a tail
 * call; the free side says when to fold, so that the fast path can do it
 * last. */
#define HH_FLUSH_BYTES ((int64_t)256 << 10)
void hh_stats_flush(hh_heap *heap);
void *hh_stats_new_high(hh_heap *heap, void *p); /* returns p */
static inline void *hh_stats_take(hh_heap *heap, int64_t live, void *p) {
  heap->stats.room -= live;
  if (HH_UNLIKELY(heap->stats.room < 0)) return hh_stats_new_high(heap, p);
  return p;
}
/* A range from a root (requested <= HH_MEDIUM_MAX = 2^17) is counted with
 * one add to `tally`: 1 in its top 23 bits and the requested bytes in its
 * low 41. The count carries out of the word first (every 2^23 ranges), and
 * by then the bytes are below 2^23 * 2^17 = 2^40: the carry flag of that
 * one add says when to move the tally into allocs and bytes_allocated. */
#define HH_TALLY_SHIFT 41
_Static_assert(HH_MEDIUM_MAX <= (size_t)1 << (2 * HH_TALLY_SHIFT - 64 - 1), "tally bytes fit");
void *hh_stats_carry(hh_heap *heap, int64_t live, void *p); /* returns p */
static inline void *hh_stats_alloc(hh_heap *heap, size_t requested, size_t live, void *p) {
  if (HH_UNLIKELY(
          __builtin_add_overflow(heap->stats.tally, requested + ((uint64_t)1 << HH_TALLY_SHIFT), &heap->stats.tally)))
    return hh_stats_carry(heap, (int64_t)live, p);
  return hh_stats_take(heap, (int64_t)live, p);
}
/* Large ranges and oversize mappings. */
static inline void hh_stats_alloc_big(hh_heap *heap, size_t requested, size_t live) {
  heap->stats.allocs++;
  heap->stats.bytes_allocated += requested;
  (void)hh_stats_take(heap, (int64_t)live, NULL);
}
static inline bool hh_stats_give(hh_heap *heap, size_t size) { /* true: fold now */
  heap->stats.room += (int64_t)size;
  return heap->stats.room > HH_FLUSH_BYTES;
}
static inline void hh_stats_free(hh_heap *heap, size_t size) {
  if (HH_UNLIKELY(hh_stats_give(heap, size))) hh_stats_flush(heap);
}
static inline void hh_stats_resize(hh_heap *heap, size_t before, size_t after) {
  if (after > before)
    (void)hh_stats_take(heap, (int64_t)(after - before), NULL);
  else
    hh_stats_free(heap, before - after);
}

#endif /* HH_STATS_H */
