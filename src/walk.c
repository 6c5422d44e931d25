/*
 * Which ranges of a page are free, for the leak scan (src/report/scan.c).
 * A range below the page's capacity is free when its link decodes as a
 * free-list member (page.c knows the encoding, and tells damage apart);
 * everything else there is live. The scan runs this under a fault guard,
 * with bounds from the page itself, so a heap corrupted by the program (or
 * a thread that could not be stopped) cannot make the report loop or fault.
 */
#include "fast.h"
#include "internal.h"

#define MAX_RANGES (HH_SLICE_SIZE / HH_ALIGN) /* most ranges a page can hold */

void hh_page_mark_free(const hh_page *page, uint8_t *marks, uint32_t n, const uintptr_t *unreadable, int nunreadable) {
  if (page->kind == HH_PAGE_LARGE) {
    uint64_t tf = atomic_load_explicit(&page->thread_free, memory_order_acquire);
    if (n > 0 && hh_remote_head(tf) != HH_LINK_END) marks[0] = 0; /* freed by another thread */
    return;
  }
  if (hh_page_capacity(page) > MAX_RANGES) return; /* damaged: count everything as live */
  uint64_t bits[MAX_RANGES / 64] = {0};
  hh_page_free_bits(page, bits, unreadable, nunreadable);
  for (uint32_t i = 0; i < n && i < MAX_RANGES; i++)
    if (bits[i / 64] >> (i % 64) & 1) marks[i] = 0;
}
