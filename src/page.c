/*
 * Pages: the slow path behind the allocation fast path. A page is carved
 * lazily (a few KiB of ranges at a time, so a fresh page touches little
 * memory), collects the ranges its owner and other threads freed, moves to
 * the heap's full list when nothing is left, and goes back to its mapping as
 * a free span when its last range is freed.
 *
 * Free lists hold indexes, each range's link masked with its own
 * hh_link_mask; every link is decoded and checked against the capacity
 * before the range it names is read, here as in the fast paths.
 *
 * Remote frees into a full page must wake the owner. The owner sets
 * HH_REMOTE_FULL in the page's thread_free word when it moves the page to
 * its full list, and a remote free pushes with a compare-and-swap of the
 * same word: whichever comes second sees the other (a list in the word, or
 * the bit in the value it replaced), so no page is stranded on the full
 * list with free ranges.
 */
#include <string.h>

#include "format.h"
#include "hooks.h"
#include "internal.h"
#include "os.h"
#include "stats.h"

#define EXTEND_BYTES (4u << 10) /* ranges carved per extension */
/* Refills between sweeps of the full list, at least: the sweep catches
 * remote frees whose flag went to a heap that was being adopted. It reads
 * one line per full page, so the gap grows with the pages it read: a
 * program holding a large heap of small blocks (all full pages) paid a
 * sweep of all of them every 256 refills, 11% of the time of 48 million
 * 32-byte mallocs held at once. */
#define SWEEP_EVERY 256
/* A raised remote_full (a remote free into a full page) is answered at the
 * next refill, unless the full list is long: then after one refill per 64
 * pages the last sweep read, so that the sweeps cost at most 64 page lines
 * per refill. A producer that holds 1 GiB of small blocks besides the
 * ones a consumer frees swept its 16,000 full pages at almost every
 * refill (4% of its samples); now the freed ranges wait for at most 256
 * refills of 4 KiB. Large allocations still answer the flag at once: a
 * remotely freed large range must not wait. */
#define FLAG_SWEEP_SHARE 64

/* direct[] sentinel: its one "range" is a zero word that decodes past its
 * capacity (0), so the fast path leaves for the generic one; never retired */
static hh_block empty_range;
hh_page hh_empty_page = {.free = 0, .start = (uint8_t *)&empty_range, .capacity = 0};

static void link_set(hh_page *page, uint64_t idx, uint64_t next) {
  ((hh_block *)hh_range_at(page, idx))->link = next ^ hh_link_mask(page, idx);
}

/* xorshift: secrets for a page, from its heap's generator */
static uint64_t heap_draw(hh_heap *heap) {
  uint64_t x = heap->rng;
  if (x == 0) x = hh_os_random() | 1;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  heap->rng = x;
  return x;
}

void hh_page_init(hh_page *page, unsigned root, uint32_t block_size) {
  hh_mapping *m = hh_mapping_of(page);
  hh_heap *heap = atomic_load_explicit(&m->heap, memory_order_relaxed);
  size_t area = (size_t)page->slice_count * HH_SLICE_SIZE;
  page->start = (uint8_t *)m + (size_t)(page - m->slices) * HH_SLICE_SIZE;
  page->root = (uint8_t)root;
  uint64_t r = heap_draw(heap);
  page->mix = block_size | (r & 0xffffffff00000000ull);
  /* the top bit set: a cleared link (0) at index 0 never decodes as free */
  page->key = heap_draw(heap) | 1ull << 63;
  page->magic = UINT64_MAX / block_size + 1; /* ceil(2^64 / block_size): see hh_range_index */
  uintptr_t form = hh_slack_records                                         ? hh_rec_slack_form(block_size)
                   : hh_packed_records && block_size <= HH_PACKED_MAX_BLOCK ? HH_REC_PACKED
                                                                            : 0;
  if (form != 0) {
    /* room to align the array down to 8 bytes, which frees the form's bits */
    unsigned width = hh_rec_form_width(form);
    page->reserved = (uint32_t)((area - 8) / (block_size + width));
    page->track = (((uintptr_t)page->start + area - (size_t)page->reserved * width) & ~HH_REC_FORM) | form;
  } else {
    page->reserved = (uint32_t)(area / (block_size + sizeof(hh_track_rec)));
    page->track = (uintptr_t)page->start + area - (size_t)page->reserved * sizeof(hh_track_rec);
  }
  __atomic_store_n(&page->capacity, 0, __ATOMIC_RELAXED);
  page->used = 0;
  page->free = HH_LINK_END;
  page->in_full = 0;
  page->damaged = 0;
  page->empty_tick = 0;
  page->splice = HH_SPLICE_CHECKED;
  page->scan_marks = NULL;
  atomic_store_explicit(&page->thread_free, 0, memory_order_relaxed);
  atomic_signal_fence(memory_order_release); /* the kind last: see HH_PAGE_MAKING */
  hh_span_set_kind(page, HH_PAGE_SMALL);
}

/* Carves more ranges onto the free list, linked in address order. */
static void page_extend(hh_page *page) {
  uint32_t n = EXTEND_BYTES / page->block_size;
  if (n == 0) n = 1;
  uint64_t cap = page->capacity;
  if (n > page->reserved - cap) n = (uint32_t)(page->reserved - cap);
  if (n == 0) return;
  uint64_t first = cap, last = cap + n - 1;
  for (uint64_t i = first; i < last; i++) link_set(page, i, i + 1);
  link_set(page, last, page->free);
  page->free = (uint32_t)first;
  __atomic_store_n(&page->capacity, cap + n, __ATOMIC_RELAXED);
}

/* The first range on the list from `idx` whose link is damaged (it
 * decodes neither below the capacity nor to the end), or HH_LINK_END.
 * Bounded: a cycle ends the walk after `cap` steps. */
static uint64_t list_damage(const hh_page *page, uint64_t idx, uint64_t cap) {
  for (uint64_t n = 0; idx != HH_LINK_END && idx < cap && n <= cap; n++) {
    uint64_t next = hh_block_next(page, idx);
    if (next != HH_LINK_END && next >= cap) return idx;
    idx = next;
  }
  return HH_LINK_END;
}

/* A range the remote list from `head` reaches twice within its first
 * `count` ranges, or one that ends the list short of them (the list was
 * rewritten while two threads freed one range): `count` pushes make a list
 * of `count` distinct ranges, or something is pushed twice. */
static uint64_t remote_list_twice(const hh_page *page, uint64_t head, uint64_t count, uint64_t cap) {
  uint64_t seen[HH_SLICE_SIZE / HH_ALIGN / 64] = {0}, idx = head, last = head;
  if (cap > sizeof seen * 8) return head;
  for (uint64_t n = 0; n < count && idx < cap; n++) {
    if (seen[idx / 64] >> (idx % 64) & 1) return idx;
    seen[idx / 64] |= 1ull << (idx % 64);
    last = idx;
    idx = hh_block_next(page, idx);
  }
  return last;
}

/* The end of the page's ranges, for messages that name them all. */
static void *page_end(const hh_page *page) { return page->start + (size_t)page->reserved * page->block_size; }

/* A page whose count of live ranges can no longer be trusted (a range
 * freed twice was counted twice): it is kept for good, whatever its frees,
 * since retiring it could hand a live range's memory to another page. */
#define QUARANTINE (1u << 30)
static void quarantine(hh_page *page) {
  page->splice = HH_SPLICE_NEVER;
  if (hh_page_used(page) < QUARANTINE) page->used += QUARANTINE;
}

/* The free list of a page with spliced remote frees ran out: every range
 * below the capacity is now live or on the remote list, all counted in
 * `used`. Fewer means the spliced list ended early: a range pushed by two
 * threads at once rewrote the link of its first push. */
static void spliced_end(hh_page *page) {
  uint64_t used = hh_page_used(page), cap = page->capacity;
  page->splice = HH_SPLICE_CHECKED;
  if (used == cap) return;
  if (used < cap)
    hh_corruption("the page's remaining ranges are set aside (never reused)", NULL,
                  "double free: the free list of the %u-byte blocks at %p..%p ended %lu blocks short: a block "
                  "was freed by two threads at the same moment, or a free block's link overwritten (found when "
                  "its page's list ran out)",
                  page->block_size, (void *)page->start, page_end(page), (unsigned long)(cap - used));
  else /* more handed out than there are: one of them twice */
    hh_corruption("the page's remaining ranges are set aside (never reused)", NULL,
                  "double free: %lu more of the %u-byte blocks at %p..%p were handed out than the page holds: a "
                  "block freed by two threads at the same moment was handed out twice (found when its page's "
                  "list ran out)",
                  (unsigned long)(used - cap), page->block_size, (void *)page->start, page_end(page));
  quarantine(page);
}

void hh_page_collect(hh_page *page) {
  if (HH_UNLIKELY(page->splice == HH_SPLICE_PENDING) && page->free == HH_LINK_END) spliced_end(page);
  if (hh_remote_head(atomic_load_explicit(&page->thread_free, memory_order_relaxed)) == HH_LINK_END) return;
  /* take the list and its count, keep the full bit */
  uint64_t tf = atomic_fetch_and_explicit(&page->thread_free, HH_REMOTE_FULL, memory_order_acquire);
  uint64_t head = hh_remote_head(tf), count = hh_remote_count(tf);
  /* The owner's list is empty, as when a page runs out or sits full: the
   * remote list becomes the free list as it is, its tail's link already
   * the end. Walking it first to check every link cost xmalloc-test a
   * tenth of its time: each step's address waits for the last link's
   * decoding. The links are checked as the ranges are taken (alloc.c); a
   * range pushed twice shows there as a live range reached again, or as a
   * list that ends early (spliced_end), and the page is then kept for
   * good. More pushes than live ranges is a double free for certain: the
   * walk below names it. */
  if (page->free == HH_LINK_END && count <= hh_page_used(page) && page->splice != HH_SPLICE_NEVER) {
    page->free = (uint32_t)head;
    page->used -= (uint32_t)count;
    page->splice = HH_SPLICE_PENDING;
    return;
  }
  uint64_t n = 0, cap = page->capacity, last = HH_LINK_END;
  for (uint64_t idx = head;;) { /* every link is checked before the list is spliced */
    uint64_t next = hh_block_next(page, idx);
    if (next != HH_LINK_END && next >= cap) {
      /* keep the sound part; the rest stays counted in use, never reused */
      hh_free_list_damaged(page, idx, next, false);
      if (last == HH_LINK_END) return;
      link_set(page, last, HH_LINK_END);
      break;
    }
    n++;
    last = idx;
    if (HH_UNLIKELY((next == HH_LINK_END) != (n == count) || n > cap)) {
      /* a range pushed twice: the list loops, or was cut. None of it is
       * reused (its ranges stay counted in use): which were freed once
       * is not known. */
      uint8_t *twice = hh_range_at(page, remote_list_twice(page, head, count, cap));
      hh_corruption("the page's ranges freed by other threads are set aside (never reused)", twice,
                    "double free: the %u-byte block at %p was freed by two threads at the same moment "
                    "(found when its page's remote frees were collected)",
                    page->block_size, (void *)twice);
      return;
    }
    if (next == HH_LINK_END) break;
    idx = next;
  }
  link_set(page, last, page->free);
  page->free = (uint32_t)head;
  page->used -= (uint32_t)n;
}

/* Moves a page to the full list unless a remote free raced in. */
static bool page_to_full(hh_heap *heap, hh_page *page) {
  uint64_t tf = atomic_fetch_or(&page->thread_free, HH_REMOTE_FULL);
  if (hh_remote_head(tf) != HH_LINK_END) {
    atomic_fetch_and(&page->thread_free, ~(uint64_t)HH_REMOTE_FULL);
    return false;
  }
  page->in_full = 1;
  page->used |= HH_USED_FULL;
  hh_queue_remove(&heap->queue[page->root], page);
  hh_queue_push_back(&heap->full, page);
  return true;
}

/* A small page on the full list has free ranges again: back to its root. */
static void page_from_full(hh_heap *heap, hh_page *page) {
  atomic_fetch_and(&page->thread_free, ~(uint64_t)HH_REMOTE_FULL);
  page->in_full = 0;
  page->empty_tick = 0; /* a new stay in the queue: the decay counts from now */
  page->used &= ~HH_USED_FULL;
  hh_queue_remove(&heap->full, page);
  hh_queue_push_back(&heap->queue[page->root], page);
}

/* Whether a small page its count calls empty may go back to its mapping.
 * A range two threads pushed at once is counted free twice: the count then
 * reaches 0 with a range still live, whose memory would go to another page
 * or back to the system. The spliced list's checks (spliced_end, the links
 * checked as ranges are taken) find it only if the page is used again, and
 * when the two pushes straddle a collection (two threads racing with
 * whoever collects, as a sweep of an exited thread's heap does), each
 * list is sound and only the count is wrong. So the lists are walked
 * first, and must hold every range below the capacity once; else the
 * double free is reported and the page kept for good. A page where damage
 * was found has ranges set aside, on no list: it is kept too. The walk
 * reads one word per range, once per page given back (which costs a
 * system call or a later carving anyway). */
static bool page_may_retire(hh_heap *heap, hh_page *page) {
  if (page->kind != HH_PAGE_SMALL && page->splice != HH_SPLICE_PENDING) return true; /* a large range, freed here */
  if (page->splice == HH_SPLICE_NEVER) return false;
  uint64_t seen[HH_SLICE_SIZE / HH_ALIGN / 64] = {0}, cap = page->capacity, n = 0, twice = HH_LINK_END;
  uint64_t heads[2] = {page->free, hh_remote_head(atomic_load_explicit(&page->thread_free, memory_order_acquire))};
  if (cap > sizeof seen * 8) return true; /* no small page has that many */
  for (int k = 0; k < 2 && twice == HH_LINK_END; k++) {
    for (uint64_t idx = heads[k]; idx != HH_LINK_END; idx = hh_block_next(page, idx), n++) {
      if (idx >= cap || seen[idx / 64] >> (idx % 64) & 1) {
        twice = idx < cap ? idx : heads[k];
        break;
      }
      seen[idx / 64] |= 1ull << (idx % 64);
    }
  }
  page->splice = HH_SPLICE_CHECKED;
  if (twice == HH_LINK_END && n == cap) return true;
  uint8_t *b = twice < cap ? hh_range_at(page, twice) : page->start;
  hh_corruption("the page's free list is set aside, and the page never given back", b,
                "double free: a %u-byte block near %p was freed by two threads at the same moment (found when "
                "its page emptied: its free list holds %lu of its %lu blocks%s)",
                page->block_size, (void *)b, (unsigned long)n, (unsigned long)cap,
                twice == HH_LINK_END ? "" : ", one of them twice or behind a damaged link");
  quarantine(page);
  page->free = HH_LINK_END;
  /* Its list is dropped: it must not stay the root's direct page, whose
   * list the fast path takes as non-empty (HH_LINK_END read as an index is
   * 65,535 ranges past the start: for 2 KiB ranges, 128 MiB, unmapped). */
  if (page->kind == HH_PAGE_SMALL && heap->direct[page->root] == page)
    hh_heap_set_direct(heap, page->root, &hh_empty_page);
  return false;
}

static void page_retire(hh_heap *heap, hh_page *page) {
  unsigned root = page->root;
  if (page->in_full) {
    hh_queue_remove(&heap->full, page);
  } else {
    hh_queue_remove(&heap->queue[root], page);
  }
  if (page->kind == HH_PAGE_SMALL && heap->direct[root] == page) {
    hh_page *first = heap->queue[root].first;
    hh_heap_set_direct(heap, root, first != NULL && first->free != HH_LINK_END ? first : &hh_empty_page);
  }
  page->kind = HH_PAGE_FREE;
  hh_span_free(heap, page);
}

/* The decay's tick: small pages that stayed empty in their root's queue
 * since the last tick (not the root's current page) go back to their
 * mappings as free spans. */
void hh_page_decay(hh_heap *heap) {
  for (unsigned r = 0; r < HH_ROOTS; r++) {
    hh_page *page = heap->queue[r].first;
    while (page != NULL) {
      hh_page *next = page->next;
      if (hh_page_used(page) == 0 && page != heap->direct[r]) {
        if (page->empty_tick && page_may_retire(heap, page))
          page_retire(heap, page);
        else
          page->empty_tick = 1;
      } else {
        page->empty_tick = 0;
      }
      page = next;
    }
  }
}

/* A local free made a page empty, or freed into a page on the full list. */
void hh_page_emptied(hh_heap *heap, hh_page *page) {
  hh_stats_free(heap, 0); /* the fold the fast path skipped when it came here */
  if (hh_page_used(page) == 0) {
    hh_queue *q = &heap->queue[page->root];
    bool sole = page->kind == HH_PAGE_SMALL && q->first == page && q->last == page;
    if (!sole &&
        page_may_retire(heap, page)) { /* keep a root's only page: alloc/free at a page boundary must not thrash */
      page_retire(heap, page);
      hh_span_decay(heap);
      return;
    }
  }
  if (page->in_full && page->kind == HH_PAGE_SMALL) page_from_full(heap, page);
}

/* Whether the range at `idx`, whose link is damaged, is free: the page's
 * ranges below the capacity are live (counted in `used` with the remote
 * frees not yet collected, which look free), free and looking free, or
 * this one. One missing from the free count: it is free. More than one
 * missing (a write past a live block ran over two free ones, links and
 * all): free ranges were written to, and this one, which the free list
 * leads to, is taken for one of them. None missing: a forged link leads
 * to a live range. */
static bool damaged_is_free(const hh_page *page, uint64_t idx) {
  uint64_t cap = hh_page_capacity(page), looking = 0, remote = 0;
  for (uint64_t i = 0; i < cap; i++) looking += hh_range_is_free(page, i);
  uint64_t r = hh_remote_head(atomic_load_explicit(&page->thread_free, memory_order_acquire));
  for (; r != HH_LINK_END && r < cap && remote <= cap; r = hh_block_next(page, r)) remote++;
  if (page->damaged != 0 && page->damaged - 1 != idx) looking++; /* an earlier one */
  return looking + 1 + hh_page_used(page) <= cap + remote;
}

void hh_free_list_damaged(hh_page *page, uint64_t idx, uint64_t next, bool head) {
  uint8_t *b = hh_range_at(page, idx);
  uint64_t link = ((hh_block *)b)->link;
  const char *recovery = "the rest of the page's free list is set aside (never reused)";
  (void)next;
  /* On a list of remote frees spliced unchecked, `used` may count a range
   * twice, and the count cannot tell a free range written to from a live
   * one reached a second time: the range is named as the likelier (written
   * to after it was freed), the other cause said too, and the page is kept
   * for good (quarantine). */
  bool spliced = page->splice == HH_SPLICE_PENDING;
  const char *or_race = spliced ? "; or it was freed by two threads at the same moment and handed out since" : "";
  if (!spliced && !damaged_is_free(page, idx)) {
    /* a link before it was forged: it leads to a live block */
    hh_corruption(recovery, NULL,
                  "a free-list link of the %u-byte blocks at %p..%p was overwritten with a valid "
                  "one that leads to the live block at %p: a freed block's link was forged (a "
                  "use after free, or a write past the end of the block before it)",
                  page->block_size, (void *)page->start, page_end(page), (void *)b);
  } else if (idx > 0 && !hh_range_is_free(page, idx - 1)) {
    /* a live neighbour before it: an overflow is as likely as a use after free */
    if (!spliced) page->damaged = (uint32_t)idx + 1;
    hh_corruption(recovery, b - page->block_size,
                  "the free %u-byte block at %p was written to after it was freed (a use after "
                  "free), or by a write past the end of the %u-byte block before it at %p (%u "
                  "bytes requested): its free-list link reads %p%s%s",
                  page->block_size, (void *)b, page->block_size, (void *)(b - page->block_size),
                  hh_rec_size(page, idx - 1), (void *)link, link == 0 ? " (cleared)" : "", or_race);
  } else {
    if (!spliced) page->damaged = (uint32_t)idx + 1;
    hh_corruption(recovery, b,
                  "the free %u-byte block at %p was written to after it was freed (a use after "
                  "free): its free-list link reads %p%s%s",
                  page->block_size, (void *)b, (void *)link, link == 0 ? " (cleared)" : "", or_race);
  }
  if (head) page->free = HH_LINK_END;
  if (spliced) quarantine(page);
  /* ranges set aside are neither live nor listed: spliced_end's count no
   * longer holds */
  page->splice = HH_SPLICE_NEVER;
}

/* Damage the scan met, told once: every scan meets it again (a leak check
 * made in a loop would write it, and count it, at every call). The last
 * TOLD ranges told are remembered; scans run one at a time (the report's
 * lock), and a fork child's copy is the parent's: told there. */
#define TOLD 64
static const void *told[TOLD];
static unsigned told_next;

static bool told_before(const void *range) {
  for (unsigned i = 0; i < TOLD; i++)
    if (told[i] == range) return true;
  told[told_next++ % TOLD] = range;
  return false;
}

/* Whether the range's link lies in one of the `n` memory pages at `pages`. */
static bool link_in(const hh_page *page, uint64_t idx, const uintptr_t *pages, int n) {
  uintptr_t at = (uintptr_t)hh_range_at(page, idx) & ~(uintptr_t)4095;
  for (int k = 0; k < n; k++)
    if (pages[k] == at) return true;
  return false;
}

void hh_page_free_bits(const hh_page *page, uint64_t *bits, const uintptr_t *unreadable, int nunreadable) {
  uint64_t cap = hh_page_capacity(page);
  for (uint64_t i = 0; i < cap; i++)
    if ((nunreadable == 0 || !link_in(page, i, unreadable, nunreadable)) && hh_range_is_free(page, i))
      bits[i / 64] |= 1ull << (i % 64);
  if (page->damaged != 0 && page->damaged - 1 < cap) { /* found and reported before */
    uint64_t d = page->damaged - 1;
    bits[d / 64] |= 1ull << (d % 64);
  }
  /* Damage nothing met yet: told now, and the range counted as what the
   * page's counts say it is, so that the report stays right. In a fork
   * child, a page of a thread the fork left behind may have been caught in
   * the middle of an update: counted the same way, never told as damage
   * (the program did nothing wrong). */
  uint64_t tf = atomic_load_explicit(&page->thread_free, memory_order_acquire);
  uint64_t heads[2] = {page->free, hh_remote_head(tf)};
  hh_heap *owner = atomic_load_explicit(&hh_mapping_of(page)->heap, memory_order_relaxed);
  for (int k = 0; k < 2; k++) {
    uint64_t bad = list_damage(page, heads[k], cap);
    if (bad >= cap) continue;
    bool is_free = damaged_is_free(page, bad);
    if (is_free) bits[bad / 64] |= 1ull << (bad % 64);
    if ((owner != NULL && owner->forked_away) || told_before(hh_range_at(page, bad))) continue;
    atomic_fetch_add_explicit(&hh_misuse_errors, 1, memory_order_relaxed); /* for --error-exitcode */
    atomic_fetch_add_explicit(&hh_misuse_contexts, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hh_heap_damage, 1, memory_order_relaxed);
    if (hh_error_shown())
      hh_say("hahalloc: error: heap corruption: %s %u-byte block at %p (its free-list link "
             "reads %p): a use after free, or a write past the end of the block before it\n",
             is_free ? "a write into the free" : "a forged free-list link leads to the live", page->block_size,
             (void *)hh_range_at(page, bad), (void *)((const hh_block *)hh_range_at(page, bad))->link);
  }
}

/* Collects remote frees from full pages (and large ranges) after a remote
 * thread signalled one, or from every page when `all` is set. */
void hh_heap_sweep(hh_heap *heap, enum hh_sweep what) {
  bool all = what != HH_SWEEP_FULL;
  /* Sequentially consistent, against remote_free's push and its load of
   * the flag: a push this sweep does not see finds the flag clear and
   * raises it for the next sweep. */
  atomic_exchange_explicit(&heap->remote_full, 0, memory_order_seq_cst);
  hh_page *page = heap->full.first;
  uint32_t read = 0;
  while (page != NULL) {
    hh_page *next = page->next;
    read++;
    uint64_t tf = atomic_load_explicit(&page->thread_free, memory_order_seq_cst);
    if (hh_remote_head(tf) != HH_LINK_END) {
      hh_page_collect(page);
      /* A small page that other threads' frees emptied goes back to its
       * root whole, its free list ready: a producer's pages come back
       * empty all the time, and carving them again costs a store into
       * every range of cold memory. Decay retires it if it stays empty. */
      if (hh_page_used(page) == 0 && (all || page->kind != HH_PAGE_SMALL) && page_may_retire(heap, page))
        page_retire(heap, page);
      else if (page->kind == HH_PAGE_SMALL && page->free != HH_LINK_END)
        page_from_full(heap, page);
    }
    page = next;
  }
  heap->sweep_tick = 0;
  heap->sweep_gap = read > SWEEP_EVERY ? read : SWEEP_EVERY;
  heap->flag_gap = read / FLAG_SWEEP_SHARE;
  if (!all) return;
  for (unsigned r = 0; r < HH_ROOTS; r++) {
    page = heap->queue[r].first;
    while (page != NULL) {
      hh_page *next = page->next;
      hh_page_collect(page);
      if (hh_page_used(page) == 0 &&
          (what == HH_SWEEP_ALL || !(heap->queue[r].first == page && heap->queue[r].last == page)) &&
          page_may_retire(heap, page))
        page_retire(heap, page);
      page = next;
    }
  }
}

hh_page *hh_page_refill(hh_heap *heap, unsigned root, bool map) {
  bool adopted = false;
again:
  ++heap->sweep_tick;
  if (heap->sweep_tick >= heap->sweep_gap ||
      (atomic_load_explicit(&heap->remote_full, memory_order_relaxed) && heap->sweep_tick >= heap->flag_gap))
    hh_heap_sweep(heap, HH_SWEEP_FULL);
  hh_queue *q = &heap->queue[root];
  hh_page *page = q->first;
  while (page != NULL) {
    hh_page *next = page->next;
    hh_page_collect(page);
    if (page->free == HH_LINK_END && page->capacity < page->reserved) page_extend(page);
    if (page->free != HH_LINK_END) {
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
  /* No page of the root has room and no span fits: an exited thread's
   * memory comes first, and its pages of this root before a new one. Were
   * its heap adopted inside hh_span_alloc, a new page would be carved beside
   * them: with one block left in each (a key destructor's, after ours), a
   * heap that was adopted this way in every destructor round pinned a 64 KiB
   * slice per thread. */
  if (map && !adopted && hh_spans_fitting(heap, hh_root_slices[root]) == 0) {
    adopted = true;
    if (hh_heap_adopt_abandoned(heap) != NULL) goto again;
  }
  page = map ? hh_span_alloc(heap, hh_root_slices[root]) : NULL;
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
 * list (HH_REMOTE_FULL) so that a remote free of it wakes the owner. It
 * starts on a multiple of `align` (a power of two), at least a slice. */
hh_page *hh_large_alloc(hh_heap *heap, size_t size, size_t align) {
  if (atomic_load_explicit(&heap->remote_full, memory_order_relaxed)) hh_heap_sweep(heap, HH_SWEEP_FULL);
  uint32_t n = hh_large_slices(size);
  hh_page *page = hh_span_alloc_aligned(heap, n, hh_slice_step(align));
  if (page == NULL) return NULL;
  hh_mapping *m = hh_mapping_of(page);
  page->start = (uint8_t *)m + (size_t)(page - m->slices) * HH_SLICE_SIZE;
  page->root = HH_ROOTS;
  page->mix = n << HH_SLICE_SHIFT; /* block_size; no key_mul: one range, index 0 */
  page->key = heap_draw(heap) | 1ull << 63;
  page->magic = 0;
  page->reserved = 1;
  __atomic_store_n(&page->capacity, 1, __ATOMIC_RELAXED);
  page->used = 1;
  page->free = HH_LINK_END;
  page->track = (uintptr_t)&page->large_rec;
  page->scan_marks = NULL;
  page->large_rec.site = 0;
  page->large_rec.size = (uint32_t)size;
  page->in_full = 1;
  page->damaged = 0;
  page->splice = HH_SPLICE_CHECKED;
  atomic_store_explicit(&page->thread_free, HH_REMOTE_FULL, memory_order_relaxed);
  hh_queue_push_back(&heap->full, page);
  ((hh_block *)page->start)->link = 0;       /* a stale link must not make it look free */
  atomic_signal_fence(memory_order_release); /* the kind last: see HH_PAGE_MAKING */
  hh_span_set_kind(page, HH_PAGE_LARGE);
  return page;
}
