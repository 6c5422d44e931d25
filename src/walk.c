/*
 * Walking the heap for the report: every live range, with its requested
 * size and allocation site. A range is live when it lies below its page's
 * capacity and is on neither of the page's free lists. The walk trusts
 * nothing it reads: list walks are bounded and stay inside the page, so a
 * heap corrupted by the program cannot make the report loop or fault.
 */
#include "fast.h"
#include "internal.h"

#define MAX_RANGES (HH_SLICE_SIZE / HH_ALIGN) /* most ranges a page can hold */

static void walk_page(const hh_page *page, hh_range_fn fn, void *arg) {
  if (page->kind == HH_PAGE_LARGE) {
    if (hh_remote_head(atomic_load_explicit(&page->thread_free, memory_order_acquire)) ==
        HH_LINK_END)
      fn(page->start, page->block_size, page->large_rec.size, page->large_rec.site,
         arg);
    return;
  }
  uint64_t free_bits[MAX_RANGES / 64] = {0};
  uint64_t capacity = hh_page_capacity(page);
  uint32_t cap = capacity <= MAX_RANGES ? (uint32_t)capacity : MAX_RANGES;
  hh_page_free_bits(page, free_bits); /* page.c: links are decoded there */
  for (uint32_t i = 0; i < cap; i++) {
    if (free_bits[i / 64] & (1ull << (i % 64))) continue;
    const hh_track_rec *rec = page->track ? &page->track[i] : NULL;
    fn(page->start + (size_t)i * page->block_size, page->block_size,
       rec ? rec->size : page->block_size, rec ? rec->site : 0, arg);
  }
}

void hh_for_each_live_range(hh_range_fn fn, void *arg) {
  for (hh_heap *h = hh_heaps_first(); h != NULL; h = h->next_heap) {
    for (hh_mapping *m = h->mappings; m != NULL; m = m->next) {
      for (uint32_t i = 1; i < HH_SLICES;) {
        const hh_page *s = &m->slices[i];
        uint32_t n = s->slice_count ? s->slice_count : 1;
        if (s->kind == HH_PAGE_SMALL || s->kind == HH_PAGE_LARGE) walk_page(s, fn, arg);
        i += n;
      }
    }
  }
  for (hh_oversize *o = hh_oversize_first(); o != NULL; o = o->next)
    fn(o->user, o->map_size, o->size, o->site, arg);
}
