/*
 * Which ranges of a page are free, for the leak scan (src/report/scan.c):
 * a range below the page's capacity is live unless it is on one of the
 * page's free lists. The walk trusts nothing it reads: it is bounded, stays
 * inside the page, and the scan runs it under a fault guard, so a heap
 * corrupted by the program (or a thread that could not be stopped) cannot
 * make the report loop or fault.
 */
#include "fast.h"
#include "internal.h"

static void mark_list(const hh_page *page, const hh_block *b, uint8_t *marks, uint32_t n) {
  uintptr_t lo = (uintptr_t)page->start;
  uintptr_t hi = lo + (uintptr_t)n * page->block_size;
  for (uint32_t steps = 0; steps <= n; steps++) {
    uintptr_t a = (uintptr_t)b;
    if (a < lo || a >= hi) return; /* the end (hh_list_end, NULL) or a damaged link */
    size_t idx = hh_range_index(page, b);
    if (idx >= n || lo + idx * page->block_size != a) return;
    marks[idx] = 0;
    b = b->next;
  }
}

void hh_page_mark_free(const hh_page *page, uint8_t *marks, uint32_t n) {
  if (page->kind == HH_PAGE_LARGE) {
    if (atomic_load_explicit(&page->thread_free, memory_order_acquire) != 0 && n > 0) marks[0] = 0;
    return;
  }
  mark_list(page, page->free, marks, n);
  mark_list(page, (const hh_block *)atomic_load_explicit(&page->thread_free, memory_order_acquire),
            marks, n);
}
