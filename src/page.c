/*
 * Pages: the slow path behind the allocation fast path. A page is carved
 * lazily (a few KiB of ranges at a time, so a fresh page touches little
 * memory), collects the ranges its owner and other threads freed, moves to
 * the heap's full list when nothing is left, and goes back to its mapping as
 * a free span when its last range is freed.
 *
 * Remote frees into a full page must wake the owner: the freeing thread
 * pushes its range, then reads page->in_full; the owner sets in_full, then
 * re-reads thread_free. Both sides use sequentially consistent operations,
 * so at least one of them sees the other (Dekker's pattern) and no page is
 * stranded on the full list with free ranges.
 */
#include <string.h>

#include "internal.h"

#define EXTEND_BYTES (16u << 10) /* ranges carved per extension */
#define SWEEP_EVERY 256          /* refills between full sweeps */

/* direct[] sentinel: its list is empty, and it is never retired */
hh_page hh_empty_page = {.free = &hh_list_end};
hh_block hh_list_end = {.next = &hh_list_end, .canary = UINTPTR_MAX}; /* hh_key is 0 until hh_init */

void hh_page_init(hh_page *page, unsigned root, uint32_t block_size) {
  hh_mapping *m = hh_mapping_of(page);
  size_t area = (size_t)page->slice_count * HH_SLICE_SIZE;
  page->start = (uint8_t *)m + (size_t)(page - m->slices) * HH_SLICE_SIZE;
  page->root = (uint8_t)root;
  page->block_size = block_size;
  page->magic = UINT64_MAX / block_size + 1; /* ceil(2^64 / block_size): see hh_range_index */
  page->reserved = (uint32_t)(area / (block_size + sizeof(hh_track_rec)));
  page->track = (hh_track_rec *)(page->start + area - page->reserved * sizeof(hh_track_rec));
  page->capacity = 0;
  page->used = 0;
  page->free = &hh_list_end;
  page->scan_marks = NULL;
  atomic_store_explicit(&page->thread_free, 0, memory_order_relaxed);
  atomic_store_explicit(&page->in_full, 0, memory_order_relaxed);
  hh_span_set_kind(page, HH_PAGE_SMALL);
}

/* Carves more ranges onto the free list; each gets its canary, so that a
 * free of a range that was never handed out is caught as a double free. */
static void page_extend(hh_page *page) {
  uint32_t n = EXTEND_BYTES / page->block_size;
  if (n == 0) n = 1;
  if (n > page->reserved - page->capacity) n = page->reserved - page->capacity;
  uint64_t idx = page->capacity;
  uint8_t *first = page->start + idx * page->block_size;
  hh_block *b = (hh_block *)first;
  for (uint32_t i = 0; i + 1 < n; i++, idx++) {
    hh_block *next = (hh_block *)((uint8_t *)b + page->block_size);
    b->next = next;
    b->canary = hh_canary(hh_key, idx);
    b = next;
  }
  b->next = page->free;
  b->canary = hh_canary(hh_key, idx);
  page->free = (hh_block *)first;
  page->capacity += n;
}

void hh_page_collect(hh_page *page) {
  if (atomic_load_explicit(&page->thread_free, memory_order_relaxed) == 0) return;
  hh_block *list =
      (hh_block *)atomic_exchange_explicit(&page->thread_free, 0, memory_order_acquire);
  uint32_t n = 1;
  hh_block *tail = list;
  while (tail->next != NULL) {
    tail = tail->next;
    n++;
  }
  tail->next = page->free;
  page->free = list;
  page->used -= n;
}

/* Moves a page to the full list unless a remote free raced in. */
static bool page_to_full(hh_heap *heap, hh_page *page) {
  atomic_store(&page->in_full, 1);
  if (atomic_load(&page->thread_free) != 0) {
    atomic_store(&page->in_full, 0);
    return false;
  }
  page->used |= HH_USED_FULL;
  hh_queue_remove(&heap->queue[page->root], page);
  hh_queue_push_back(&heap->full, page);
  return true;
}

/* A small page on the full list has free ranges again: back to its root. */
static void page_from_full(hh_heap *heap, hh_page *page) {
  atomic_store(&page->in_full, 0);
  page->used &= ~HH_USED_FULL;
  hh_queue_remove(&heap->full, page);
  hh_queue_push_back(&heap->queue[page->root], page);
}

static void page_retire(hh_heap *heap, hh_page *page) {
  unsigned root = page->root;
  if (atomic_load_explicit(&page->in_full, memory_order_relaxed)) {
    hh_queue_remove(&heap->full, page);
  } else {
    hh_queue_remove(&heap->queue[root], page);
  }
  if (page->kind == HH_PAGE_SMALL && heap->direct[root] == page)
    hh_heap_set_direct(heap, root, heap->queue[root].first ? heap->queue[root].first : &hh_empty_page);
  page->kind = HH_PAGE_FREE;
  hh_span_free(heap, page);
}

/* A local free made a page empty, or freed into a page on the full list. */
void hh_page_emptied(hh_heap *heap, hh_page *page) {
  hh_stats_free(heap, 0); /* the fold the fast path skipped when it came here */
  if (hh_page_used(page) == 0) {
    hh_queue *q = &heap->queue[page->root];
    bool sole = page->kind == HH_PAGE_SMALL && q->first == page && q->last == page;
    if (!sole) { /* keep a root's only page: alloc/free at a page boundary must not thrash */
      page_retire(heap, page);
      return;
    }
  }
  if (atomic_load_explicit(&page->in_full, memory_order_relaxed) && page->kind == HH_PAGE_SMALL)
    page_from_full(heap, page);
}

void hh_free_list_damaged(hh_page *page) {
  hh_corruption("the page's free list is set aside: its free blocks are not reused",
                "the free %u-byte block at %p was written to after it was freed (a use after "
                "free%s)",
                page->block_size, (void *)page->free,
                page->free->next == NULL ? ": its free-list link was cleared" : "");
  page->free = &hh_list_end;
}

/* Collects remote frees from full pages (and large ranges) after a remote
 * thread signalled one, or from every page when `all` is set. */
void hh_heap_sweep(hh_heap *heap, bool all) {
  atomic_store_explicit(&heap->remote_full, 0, memory_order_relaxed);
  hh_page *page = heap->full.first;
  while (page != NULL) {
    hh_page *next = page->next;
    if (atomic_load_explicit(&page->thread_free, memory_order_relaxed) != 0) {
      if (page->kind == HH_PAGE_SMALL) atomic_store(&page->in_full, 0);
      hh_page_collect(page);
      if (hh_page_used(page) == 0) {
        if (page->kind == HH_PAGE_SMALL) atomic_store(&page->in_full, 1); /* still listed there */
        page_retire(heap, page);
      } else if (page->kind == HH_PAGE_SMALL) {
        page_from_full(heap, page);
      }
    }
    page = next;
  }
  if (!all) return;
  for (unsigned r = 0; r < HH_ROOTS; r++) {
    page = heap->queue[r].first;
    while (page != NULL) {
      hh_page *next = page->next;
      hh_page_collect(page);
      if (hh_page_used(page) == 0 && !(heap->queue[r].first == page && heap->queue[r].last == page))
        page_retire(heap, page);
      page = next;
    }
  }
}

/* The fast path found direct[root] empty: find or make a page with free
 * ranges and make it the root's direct page. NULL when out of memory. */
hh_page *hh_page_refill(hh_heap *heap, unsigned root) {
  if (atomic_load_explicit(&heap->remote_full, memory_order_relaxed) ||
      ++heap->sweep_tick % SWEEP_EVERY == 0)
    hh_heap_sweep(heap, false);
  hh_queue *q = &heap->queue[root];
  hh_page *page = q->first;
  while (page != NULL) {
    hh_page *next = page->next;
    hh_page_collect(page);
    if (page->free == &hh_list_end && page->capacity < page->reserved) page_extend(page);
    if (page->free != &hh_list_end) {
      if (q->first != page) {
        hh_queue_remove(q, page);
        hh_queue_push_front(q, page);
      }
      hh_heap_set_direct(heap, root, page);
      return page;
    }
    if (!page_to_full(heap, page)) continue; /* a remote free raced in: look again */
    page = next;
  }
  page = hh_span_alloc(heap, hh_root_slices[root]);
  if (page == NULL) {
    hh_heap_set_direct(heap, root, &hh_empty_page);
    return NULL;
  }
  hh_page_init(page, root, hh_root_size[root]);
  page_extend(page);
  hh_queue_push_front(q, page);
  hh_heap_set_direct(heap, root, page);
  return page;
}

/* A large range: a span of whole slices holding one range, kept on the full
 * list so that a remote free of it wakes the owner. */
hh_page *hh_large_alloc(hh_heap *heap, size_t size) {
  if (atomic_load_explicit(&heap->remote_full, memory_order_relaxed)) hh_heap_sweep(heap, false);
  uint32_t n = (uint32_t)((size + HH_SLICE_SIZE - 1) >> HH_SLICE_SHIFT);
  hh_page *page = hh_span_alloc(heap, n);
  if (page == NULL) return NULL;
  hh_mapping *m = hh_mapping_of(page);
  hh_span_set_kind(page, HH_PAGE_LARGE);
  page->start = (uint8_t *)m + (size_t)(page - m->slices) * HH_SLICE_SIZE;
  page->root = HH_ROOTS;
  page->block_size = n << HH_SLICE_SHIFT;
  page->magic = 0;
  page->reserved = page->capacity = page->used = 1;
  page->free = &hh_list_end;
  page->track = &page->large_rec;
  page->scan_marks = NULL;
  page->large_rec.site = 0;
  page->large_rec.size = (uint32_t)size;
  atomic_store_explicit(&page->thread_free, 0, memory_order_relaxed);
  atomic_store_explicit(&page->in_full, 1, memory_order_relaxed);
  hh_queue_push_back(&heap->full, page);
  ((hh_block *)page->start)->next = NULL; /* stale words: see hh_alloc_fast */
  ((hh_block *)page->start)->canary = 0;
  return page;
}
