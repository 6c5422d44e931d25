/*
 * Mappings: getting them from the OS, carving their slices into spans for
 * pages and large ranges, coalescing freed spans with their free neighbours
 * (the seed's "coalescence"), and giving memory back.
 *
 * Giving memory back must not fight the program: memory purged at once is
 * faulted in again at once when the program allocates again (a thread churn
 * such as mimalloc-bench's mstress would spend a quarter of its time in page
 * faults). So
 * free spans stay dirty (committed) for a while, and decay: at each tick of
 * HH_DECAY_MS, found by the heap's next span allocation, emptied page or shrink, the dirty
 * bytes that were already dirty at the previous tick are purged, so memory
 * unused for one to two ticks goes back to the system (the idea of
 * mimalloc's purge delay and jemalloc's decay). A budget bounds what waits:
 * past HH_PURGE_BYTES, or half of what the heap has in use if that is more,
 * the biggest spans are purged at once until half the budget is left. The
 * heap of an exited thread keeps its dirty spans for the thread that takes
 * it over; if none does within a tick, any thread's span traffic purges it
 * (heap.c). A heap keeps HH_EMPTY_KEEP completely empty mappings for reuse
 * and unmaps the rest at a tick, once they are purged.
 *
 * A mass free waits for the decay too. The budget above grows by what the
 * heap freed since its high-water mark of this tick or the last, so a
 * program that builds a large structure, frees it and builds it again
 * (4 million small blocks, ten times) reuses its committed memory: purged
 * during each teardown, the same run took 516,000 page faults and 2.5x
 * mimalloc's time (65,000 faults). RSS falls one to two ticks after the
 * frees, at the heap's next span traffic; a heap nobody calls keeps it.
 *
 * A heap's free spans sit in bins by exact slice count (1..63) with a bitmap
 * of non-empty bins, so finding the smallest span that fits is one ctz.
 */
#include <string.h>
#include <time.h>

#include "clock.h"
#include "internal.h"
#include "os.h"

#define HH_PURGE_BYTES ((size_t)32 << 20) /* dirty free spans a heap may keep */
#define HH_EMPTY_KEEP 64                  /* empty mappings a heap may keep: address space only, purged */
#define SPAN_SLICES (HH_SLICES - 1)
/* Set once a mapping could not be had (RLIMIT_AS, say): from then on every
 * heap keeps one empty mapping, not HH_EMPTY_KEEP, so that address space a
 * heap no longer uses goes back to the system as soon as it empties, for
 * any other thread to map: a heap that absorbed an exited thread's memory
 * may never run again to give it back. */
static _Atomic(bool) address_space_tight;
static unsigned empty_keep(void) {
  return atomic_load_explicit(&address_space_tight, memory_order_relaxed) ? 1 : HH_EMPTY_KEEP;
}

/* The bytes of a free span that a purge could give back: a dirty span's,
 * unless the kernel refused to purge it (locked pages). Counting those would
 * keep dirty_bytes over every budget: each free would try them all again,
 * one refused madvise each (a program under mlockall ran 8x slower, 3.3
 * million refused calls in 20,000 frees). */
static size_t purgeable_bytes(const hh_page *span) {
  return span->dirty && !span->purge_refused ? (size_t)span->slice_count * HH_SLICE_SIZE : 0;
}

/* Dirty spans go to the front of their bin, clean (purged) ones to the back:
 * allocation takes from the front, so memory still committed is reused
 * first, and purging walks from the back, so what waited longest goes. */
static void bin_push(hh_heap *heap, hh_page *span) {
  uint32_t n = span->slice_count;
  if (span->dirty)
    hh_queue_push_front(&heap->spans[n], span);
  else
    hh_queue_push_back(&heap->spans[n], span);
  heap->span_bits |= 1ull << n;
  heap->free_slices += n;
  size_t bytes = purgeable_bytes(span);
  heap->dirty_bytes += bytes;
  heap->dirty_recent += bytes;
}

/* Dirty spans leave from the front of their bins: the recent ones first. */
static void bin_remove(hh_heap *heap, hh_page *span) {
  uint32_t n = span->slice_count;
  hh_queue_remove(&heap->spans[n], span);
  if (heap->spans[n].first == NULL) heap->span_bits &= ~(1ull << n);
  heap->free_slices -= n;
  size_t bytes = purgeable_bytes(span);
  heap->dirty_bytes -= bytes;
  heap->dirty_recent -= heap->dirty_recent < bytes ? heap->dirty_recent : bytes;
}

/* ------------------------------------------------------------------ decay */

static size_t slices_used(const hh_heap *heap) { return heap->mapped_slices - heap->free_slices; }

static void note_used(hh_heap *heap) {
  size_t used = slices_used(heap);
  if (used > heap->used_high) heap->used_high = used;
}

static void mapping_release(hh_heap *heap, hh_mapping *m);

/* Empty mappings past the heap's keep whose memory is purged go back to the
 * system: at a tick, so that a mapping a teardown emptied is still there
 * when the program allocates again. */
static void release_empty_mappings(hh_heap *heap) {
  for (hh_mapping *m = heap->mappings, *next; m != NULL && heap->empty_mappings > empty_keep(); m = next) {
    next = m->next;
    if (m->free_slices == SPAN_SLICES && !m->slices[1].dirty) mapping_release(heap, m);
  }
}

/* Whether any purge was ever refused (locked pages): only then do the ticks
 * look for empty mappings to unmap. */
static _Atomic(bool) purges_refused;

/* Empty mappings whose purge the kernel refused (locked pages: mlock,
 * mlockall) go back by munmap, the only way their memory can: one found so
 * at a tick is marked, and unmapped at the next if it is still empty and
 * unchanged (`now`: at once). Not at the refusal itself: a program that
 * frees and allocates again within a tick would unmap and map again each
 * time, and under mlockall a new mapping is faulted in and locked whole
 * (about 550 us for 4 MiB: 300 rounds of 64 large blocks took 4.6 s, glibc
 * 8.4 s, jemalloc 0.04 s). */
static void release_locked_empty(hh_heap *heap, bool now) {
  if (!atomic_load_explicit(&purges_refused, memory_order_relaxed)) return;
  for (hh_mapping *m = heap->mappings, *next; m != NULL; m = next) {
    next = m->next;
    hh_page *span = &m->slices[1];
    if (m->free_slices != SPAN_SLICES || !span->purge_refused) continue;
    if (now || span->purge_refused > 1)
      mapping_release(heap, m);
    else
      span->purge_refused = 2; /* seen at this tick */
  }
}

/* A tick of the heap's decay, if one is due: what was dirty at the last tick
 * goes back to the system. Then abandoned heaps, at most once a tick. */
static _Atomic(uint64_t) abandoned_decay_at;

void hh_span_decay(hh_heap *heap) {
  uint64_t now = hh_coarse_ms();
  if (heap->decay_at == 0) {
    heap->decay_at = now + HH_DECAY_MS;
  } else if (hh_decay_due(heap->decay_at, now)) {
    heap->decay_at = now + HH_DECAY_MS;
    size_t recent = heap->dirty_recent;
    hh_page_decay(heap);
    if (heap->dirty_bytes > recent) hh_span_purge(heap, recent);
    heap->dirty_recent = 0;
    if (heap->empty_mappings > empty_keep()) release_empty_mappings(heap);
    release_locked_empty(heap, false);
    heap->used_high_prev = heap->used_high;
    heap->used_high = slices_used(heap);
    hh_oversize_decay(now);
  }
  uint64_t at = atomic_load_explicit(&abandoned_decay_at, memory_order_relaxed);
  if ((at == 0 || hh_decay_due(at, now)) &&
      atomic_compare_exchange_strong_explicit(&abandoned_decay_at, &at, now + HH_DECAY_MS, memory_order_relaxed,
                                              memory_order_relaxed))
    hh_heaps_decay_abandoned(now);
}

/* An abandoned heap's tick: nobody took it over in time. */
void hh_span_decay_all(hh_heap *heap) {
  hh_span_purge(heap, 0);
  release_locked_empty(heap, true);
  heap->dirty_recent = 0;
  heap->decay_at = 0;
}

/* Marks slices [idx, idx+n) of `m` as one free span. */
static hh_page *span_mark_free(hh_mapping *m, uint32_t idx, uint32_t n, bool dirty) {
  hh_page *first = &m->slices[idx];
  for (uint32_t i = 0; i < n; i++) {
    hh_page *s = first + i;
    s->kind = HH_PAGE_FREE;
    s->small = &hh_empty_page;
    s->block_size = 0;
    s->slice_count = 0;
    s->slice_offset = i; /* the last slice's offset finds the span's start */
  }
  first->slice_count = n;
  first->dirty = dirty;
  first->purge_refused = false; /* a new span: worth one more try */
  return first;
}

static uint32_t slice_index(hh_mapping *m, hh_page *s) { return (uint32_t)(s - m->slices); }

static bool mapping_new(hh_heap *heap) {
  hh_mapping *m = hh_os_map_aligned(HH_MAPPING_SIZE, HH_MAPPING_SIZE);
  if (m == NULL) { /* out of address space: give back what is kept for reuse, and retry */
    atomic_store_explicit(&address_space_tight, true, memory_order_relaxed);
    hh_oversize_cache_flush();
    hh_mapping_release_all(heap);
    m = hh_os_map_aligned(HH_MAPPING_SIZE, HH_MAPPING_SIZE);
  }
  if (m == NULL) return false;
  if (!hh_registry_set((uintptr_t)m, m)) {
    hh_os_unmap(m, HH_MAPPING_SIZE);
    return false;
  }
  m->cookie = hh_key ^ (uintptr_t)m;
  m->kind = HH_MAP_PAGES;
  atomic_store_explicit(&m->heap, heap, memory_order_relaxed);
  m->slices[0].kind = HH_PAGE_HEADER;
  m->slices[0].small = &hh_empty_page;
  m->next = heap->mappings;
  m->prev = NULL;
  if (heap->mappings) heap->mappings->prev = m;
  heap->mappings = m;
  m->free_slices = SPAN_SLICES;
  heap->empty_mappings++;
  heap->mapped_slices += SPAN_SLICES;
  bin_push(heap, span_mark_free(m, 1, SPAN_SLICES, false));
  /* last: another thread's free of a stale pointer into this chunk must not
   * read the slices before they are written (hh_free_generic) */
  hh_chunk_tag_set((uintptr_t)m, hh_mapping_tag(heap));
  return true;
}

static void mapping_release(hh_heap *heap, hh_mapping *m) {
  bin_remove(heap, &m->slices[1]);
  if (m->prev)
    m->prev->next = m->next;
  else
    heap->mappings = m->next;
  if (m->next) m->next->prev = m->prev;
  heap->empty_mappings--;
  heap->mapped_slices -= SPAN_SLICES;
  hh_chunk_tag_set((uintptr_t)m, 0);
  hh_registry_set((uintptr_t)m, NULL);
  hh_os_unmap(m, HH_MAPPING_SIZE);
}

hh_page *hh_span_alloc(hh_heap *heap, uint32_t n) {
  hh_span_decay(heap);
  uint64_t fits = hh_spans_fitting(heap, n);
  if (fits == 0) {
    /* Memory of exited threads first, then the OS. */
    if (hh_heap_adopt_abandoned(heap) == NULL || hh_spans_fitting(heap, n) == 0) {
      /* Out of memory or address space: the empty page each root keeps
       * (its only one, kept for the next allocation of its size) goes back
       * to the spans first, so that memory a program freed serves other
       * sizes too (a C++ new_handler that frees a reserve). */
      if (!mapping_new(heap)) {
        hh_heap_sweep(heap, HH_SWEEP_ALL);
        if (hh_spans_fitting(heap, n) == 0 && !mapping_new(heap)) return NULL;
      }
    }
    fits = hh_spans_fitting(heap, n);
  }
  /* The smallest span that fits, unless a slightly bigger one (at most twice
   * the size) is still committed: reusing that saves faulting pages in. */
  uint32_t bin = (uint32_t)__builtin_ctzll(fits);
  if (!heap->spans[bin].first->dirty) {
    for (uint64_t b = fits & (fits - 1); b != 0; b &= b - 1) {
      uint32_t k = (uint32_t)__builtin_ctzll(b);
      if (k > 2 * n) break;
      if (heap->spans[k].first->dirty) {
        bin = k;
        break;
      }
    }
  }
  hh_page *span = heap->spans[bin].first;
  hh_mapping *m = hh_mapping_of(span);
  uint32_t idx = slice_index(m, span);
  uint32_t have = span->slice_count;
  bool dirty = span->dirty;
  bin_remove(heap, span);
  if (m->free_slices == SPAN_SLICES) heap->empty_mappings--;
  m->free_slices -= n;
  if (have > n) bin_push(heap, span_mark_free(m, idx + n, have - n, dirty));
  for (uint32_t i = 0; i < n; i++) {
    span[i].slice_offset = i;
    span[i].kind = HH_PAGE_MAKING; /* the caller sets the final kind on all slices */
    span[i].small = &hh_empty_page;
  }
  span->slice_count = n;
  span->dirty = dirty;
  note_used(heap);
  return span;
}

/* Resizes a used span in place to `n` slices: shrinking gives the tail back
 * (coalesced with what follows), growing takes slices from the free span
 * right after it. False when there is no room; the span is then unchanged.
 * Lets realloc grow and shrink large ranges without copying. */
bool hh_span_resize(hh_heap *heap, hh_page *span, uint32_t n) {
  hh_mapping *m = hh_mapping_of(span);
  uint32_t idx = slice_index(m, span), have = span->slice_count;
  if (n == have) return true;
  if (n < have) {
    hh_page *tail = &m->slices[idx + n];
    for (uint32_t i = 0; i < have - n; i++) tail[i].slice_offset = i;
    tail->slice_count = have - n;
    span->slice_count = n;
    hh_span_free(heap, tail);
    hh_span_decay(heap);
    return true;
  }
  uint32_t extra = n - have;
  if (idx + have >= HH_SLICES) return false;
  hh_page *right = &m->slices[idx + have];
  if (right->kind != HH_PAGE_FREE || right->slice_count < extra) return false;
  uint32_t rn = right->slice_count;
  bool dirty = right->dirty;
  bin_remove(heap, right);
  if (rn > extra) bin_push(heap, span_mark_free(m, idx + n, rn - extra, dirty));
  for (uint32_t i = have; i < n; i++) {
    span[i].slice_offset = i;
    span[i].kind = span->kind;
    span[i].small = span->small;
  }
  span->slice_count = n;
  span->dirty |= dirty;
  m->free_slices -= extra;
  note_used(heap);
  return true;
}

/* Also points every slice of a SMALL page at the page, for the free fast path. */
void hh_span_set_kind(hh_page *span, uint8_t kind) {
  hh_page *small = kind == HH_PAGE_SMALL ? span : &hh_empty_page;
  for (uint32_t i = 0; i < span->slice_count; i++) {
    span[i].kind = kind;
    span[i].small = small;
  }
}

/* Frees a span, merged with the free spans on either side: `dirty` when
 * it may hold data (the merged span is when any part is). */
static void span_give_back(hh_heap *heap, hh_page *span, bool dirty) {
  hh_mapping *m = hh_mapping_of(span);
  uint32_t idx = slice_index(m, span);
  uint32_t n = span->slice_count;
  m->free_slices += n;
  if (idx + n < HH_SLICES && m->slices[idx + n].kind == HH_PAGE_FREE) {
    hh_page *right = &m->slices[idx + n];
    dirty |= right->dirty;
    bin_remove(heap, right);
    n += right->slice_count;
  }
  if (idx > 1 && m->slices[idx - 1].kind == HH_PAGE_FREE) {
    hh_page *left = &m->slices[idx - 1 - m->slices[idx - 1].slice_offset];
    dirty |= left->dirty;
    bin_remove(heap, left);
    n += left->slice_count;
    idx = slice_index(m, left);
  }
  hh_page *merged = span_mark_free(m, idx, n, dirty);
  if (m->free_slices == SPAN_SLICES) {
    heap->empty_mappings++;
    if (heap->empty_mappings > empty_keep() && atomic_load_explicit(&address_space_tight, memory_order_relaxed)) {
      bin_push(heap, merged); /* address space is short: at once */
      mapping_release(heap, m);
      return;
    }
  }
  bin_push(heap, merged);
  size_t used = slices_used(heap),
         high = heap->used_high > heap->used_high_prev ? heap->used_high : heap->used_high_prev;
  size_t budget = used * HH_SLICE_SIZE / 2 > HH_PURGE_BYTES ? used * HH_SLICE_SIZE / 2 : HH_PURGE_BYTES;
  budget += (high > used ? high - used : 0) * HH_SLICE_SIZE; /* freed since the recent high-water mark */
  if (heap->dirty_bytes > budget) hh_span_purge(heap, budget / 2);
}

void hh_span_free(hh_heap *heap, hh_page *span) { span_give_back(heap, span, true); }

/* A span of `n` slices whose first slice starts on a multiple of `step`
 * slices (a power of two): a mapping starts on HH_MAPPING_SIZE, so its
 * slice `idx` is aligned to `step` slices when `idx` is a multiple of it.
 * Takes `n + step - 1` slices and gives back what lies before and after
 * the aligned part. NULL when that many do not fit in a mapping, or out of
 * memory. An aligned_alloc(128 KiB, 4 KiB) took a 4 MiB oversize mapping
 * of its own before: 1,000 of them reserved 4 GiB of address space. */
hh_page *hh_span_alloc_aligned(hh_heap *heap, uint32_t n, uint32_t step) {
  if (step <= 1) return hh_span_alloc(heap, n);
  if (n + step - 1 > SPAN_SLICES) return NULL;
  hh_page *span = hh_span_alloc(heap, n + step - 1);
  if (span == NULL) return NULL;
  hh_mapping *m = hh_mapping_of(span);
  uint32_t idx = slice_index(m, span), lead = (step - idx % step) % step, trail = step - 1 - lead;
  bool dirty = span->dirty;
  hh_page *aligned = &m->slices[idx + lead];
  for (uint32_t i = 0; i < n; i++) aligned[i].slice_offset = i;
  if (trail > 0) { /* the tail back, as clean or dirty as it was */
    hh_page *tail = &aligned[n];
    for (uint32_t i = 0; i < trail; i++) tail[i].slice_offset = i;
    tail->slice_count = trail;
    span_give_back(heap, tail, dirty);
  }
  aligned->slice_count = n;
  aligned->dirty = dirty;
  if (lead > 0) { /* and the head */
    span->slice_count = lead;
    span_give_back(heap, span, dirty);
  }
  return aligned;
}

/* Gives the pages of dirty free spans back to the OS, biggest first and
 * oldest first within a size, until at most `keep` dirty bytes are left.
 * The kernel refuses for locked pages (mlock, mlockall): such a span stays
 * dirty, as it is, and is not tried again until a free or an allocation
 * changes it (purge_refused); an empty mapping left so is unmapped at a
 * later tick (release_locked_empty), the only way its memory goes back. */
void hh_span_purge(hh_heap *heap, size_t keep) {
  for (uint32_t n = HH_SLICES - 1; n >= 1 && heap->dirty_bytes > keep; n--) {
    hh_page *s = heap->spans[n].last;
    while (s != NULL && heap->dirty_bytes > keep) {
      hh_page *prev = s->prev;
      if (purgeable_bytes(s) != 0) {
        hh_mapping *m = hh_mapping_of(s);
        uint8_t *start = (uint8_t *)m + (size_t)slice_index(m, s) * HH_SLICE_SIZE;
        bool purged = hh_os_purge(start, (size_t)n * HH_SLICE_SIZE);
        if (!purged) atomic_store_explicit(&purges_refused, true, memory_order_relaxed);
        bin_remove(heap, s);
        s->dirty = !purged;
        s->purge_refused = !purged;
        bin_push(heap, s); /* purged: to the back, with the clean ones */
      }
      s = prev;
    }
  }
}

/* Unmaps every mapping of a heap that holds no range any more. */
void hh_mapping_release_all(hh_heap *heap) {
  hh_mapping *m = heap->mappings;
  while (m != NULL) {
    hh_mapping *next = m->next;
    if (m->free_slices == SPAN_SLICES) mapping_release(heap, m);
    m = next;
  }
}

/* Moves every free span of `from` into `into` (adopting an exited heap). */
void hh_spans_move(hh_heap *into, hh_heap *from) {
  for (uint32_t n = 1; n < HH_SLICES; n++) {
    hh_page *s;
    while ((s = from->spans[n].first) != NULL) {
      bin_remove(from, s);
      bin_push(into, s);
    }
  }
  into->mapped_slices += from->mapped_slices;
  from->mapped_slices = 0;
}
