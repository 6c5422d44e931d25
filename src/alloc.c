/*
 * Allocation off the fast path: first use of a thread, a root whose page ran
 * out, large ranges, oversize mappings, aligned requests, and realloc.
 */
#include <errno.h>
#include <string.h>

#include "entry.h"
#include "fast.h"
#include "guard.h"
#include "hooks.h"
#include "internal.h"
#include "lookup.h"
#include "options.h"
#include "os.h"
#include "stats.h"

static void *enomem(void) {
  errno = ENOMEM;
  return NULL;
}

/* The fast path's generic half for a root: an empty direct page, the last
 * range of a list, or a link that does not decode (reported, then the page's
 * lists are rebuilt and the allocation tries again). */
static void *alloc_from_root(hh_heap *heap, unsigned root, size_t size, bool zero, void *ret, void *frame) {
  for (;;) {
    hh_page *page = heap->direct[root];
    if (page->free >= page->capacity) { /* hh_empty_page, or an empty list */
      page = hh_page_refill(heap, root, true);
      if (page == NULL) return enomem();
    }
    uint64_t idx = page->free;
    hh_block *b = (hh_block *)hh_range_at(page, idx);
    uint64_t next = hh_block_next(page, idx);
    if (HH_UNLIKELY(next >= page->capacity && next != HH_LINK_END)) {
      hh_free_list_damaged(page, idx, next, true);
      continue;
    }
    hh_take(heap, page, b, idx, next, size, hh_rec_slack_form(page->block_size), ret, frame);
    /* The last range of the list: the page may not stay direct with an empty
     * list. Refill from the pages there are, mapping nothing yet. */
    if (next == HH_LINK_END) hh_page_refill(heap, root, false);
    if (zero && hh_slack_made) memset(b, 0, size); /* else zeroed already: see hh_calloc_fast */
    return b;
  }
}

/* The fast path's tracking, for a return address not in the first place of
 * the heap's call-site table: look at its second place, else capture the
 * site (which fills the table at depth 1) or, with no sites captured, enter
 * the address with site 0. Then record. */
void *hh_track_new_site(hh_heap *heap, hh_page *page, hh_block *b, size_t size, void *ret, void *frame) {
  HH_TAIL_ENTRY(ret, frame);
  uintptr_t r = (uintptr_t)ret;
  size_t idx = hh_range_index(page, b);
  size_t second = hh_callsite_index(r) ^ 1;
  uint32_t site = 0;
  if (heap->callsite.ret[second] == r)
    site = heap->callsite.id[second];
  else if (hh_sites)
    site = hh_site_capture(ret, frame);
  else
    hh_callsite_remember(heap, r, 0);
  if (HH_UNLIKELY(hh_opt.profile)) hh_profile_alloc(site, size);
  hh_rec_set(page, idx, site, size);
  if (HH_UNLIKELY(hh_guard)) {
    /* Zeroed (hh_scrub) after the canary is written, and only up to it: a
     * thread a leak check stops before hh_rec_set shows the old record
     * with its old canary intact, not a canary the zeroing cleared (a
     * "write past the end" of a block still being handed out). */
    hh_guard_set(b, size, page->block_size);
    memset(b, 0, size);
  }
  return hh_stats_alloc(heap, size, page->block_size, b);
}

/* Zeroes n bytes at p: by memset, or, from ZERO_BY_PURGE bytes on, by
 * giving the whole pages between back to the kernel, which zeroes them
 * lazily (only the pages the program touches are ever cleared, as with a
 * fresh mapping), and memset of the part-pages at either end. madvise
 * refuses locked pages (mlock, mlockall): then memset. calloc's. A purge
 * costs a system call, and a fault for each page touched again, by this
 * block or by the next one there: it wins only when most pages stay
 * untouched. From 256 KiB on, a churn of callocs of up to 300,000 bytes
 * that reuse each other's memory took 3.1-3.3 s against mimalloc's 0.85 s
 * and glibc's 1.1 s (176,000 faults; helper-71); from 1 MiB, 0.78 s, and
 * the seed's calloc scenario (up to 4 MiB, a few bytes touched) is
 * unchanged (0.17-0.29 s against 0.19-0.25 s). */
#define ZERO_BY_PURGE ((size_t)1 << 20)
static void zero_bytes(uint8_t *p, size_t n) {
  uint8_t *a = (uint8_t *)(((uintptr_t)p + 4095) & ~(uintptr_t)4095);
  uint8_t *e = (uint8_t *)(((uintptr_t)p + n) & ~(uintptr_t)4095);
  if (n >= ZERO_BY_PURGE && hh_os_purge(a, (size_t)(e - a))) {
    memset(p, 0, (size_t)(a - p));
    memset(e, 0, (size_t)(p + n - e));
  } else {
    memset(p, 0, n);
  }
}

/* The report's zeroing of reused memory (see hh_scrub): old pointers in it
 * must not keep leaked blocks reachable. Only the resident pages can hold
 * them: a page the kernel has no frame for reads as zero. So from
 * HH_SCRUB_BY_MINCORE bytes on (large ranges, and medium blocks through
 * hh_scrub), mincore says which pages are resident and only those are
 * cleared, by memset (a page fault for each page the program then
 * touches costs more than a pass of memset: malloc-large, which fills each
 * 5-25 MiB block, ran 9.8x under the report when the pages were purged).
 * A block the program uses sparsely stays as resident as in the drop-in
 * (seed-fixed, 1 MiB blocks of which a few bytes are used, cleared in full:
 * 65x the drop-in's peak RSS and 200x its time). Below it one mincore call
 * (2-4 us here) costs more than the memset of resident pages. A page
 * swapped out while free is not resident and keeps its old words: the one
 * case where an old pointer can still hold a leaked block (as "still
 * reachable"). Reading each resident page first and clearing only those
 * that did not read zero (972c353) took malloc-large, which zeroes each
 * block itself, from 1.32x to 1.15x the drop-in's time under the report,
 * but made seed-random, whose pages of freed blocks stay resident and zero,
 * 1.27x slower (8 paired runs): reading cold pages costs more than
 * memset's stores. Not kept. Under a seccomp
 * filter, the program's own (hh_sandboxed) or one it started under
 * (hh_seccomp_inherited), memset: the filter may kill the process for a
 * call it does not make itself. */
void hh_scrub_resident(void *at, size_t n) {
  uint8_t *p = at;
  if (n < HH_SCRUB_BY_MINCORE || hh_sandboxed() || hh_seccomp_inherited()) {
    memset(p, 0, n);
    return;
  }
  uint8_t *a = (uint8_t *)(((uintptr_t)p + 4095) & ~(uintptr_t)4095);
  uint8_t *e = (uint8_t *)(((uintptr_t)p + n) & ~(uintptr_t)4095);
  memset(p, 0, (size_t)(a - p));
  memset(e, 0, (size_t)(p + n - e));
  unsigned char vec[1024]; /* 4 MiB of pages per call */
  for (uint8_t *q = a; q < e;) {
    size_t pages = (size_t)(e - q) / 4096;
    if (pages > sizeof vec) pages = sizeof vec;
    if (!hh_os_resident(q, pages * 4096, vec)) {
      memset(q, 0, pages * 4096);
      q += pages * 4096;
      continue;
    }
    for (size_t i = 0; i < pages;) {
      if (!(vec[i] & 1)) {
        i++;
        continue;
      }
      size_t j = i + 1;
      while (j < pages && (vec[j] & 1)) j++;
      memset(q + i * 4096, 0, (j - i) * 4096);
      i = j;
    }
    q += pages * 4096;
  }
}

void hh_zero_grown(const hh_ref *ref, size_t to) {
  if (!hh_sites || to <= ref->size) return;
  switch (ref->kind) {
  case HH_REF_SMALL: memset(hh_range_at(ref->page, ref->index) + ref->size, 0, to - ref->size); break;
  case HH_REF_LARGE: hh_scrub_resident(ref->page->start + ref->size, to - ref->size); break;
  case HH_REF_OVERSIZE: /* the old mapping's pages, moved or not; pages past them are new */
    if (ref->size < ref->accounted)
      hh_scrub_resident(ref->oversize->user + ref->size, (to < ref->accounted ? to : ref->accounted) - ref->size);
    break;
  }
}

/* The room a large range or an oversize mapping takes for a request of
 * `size` bytes. Under the report one byte more, so that the block never
 * ends where another begins: such ranges are placed edge to edge (a large
 * range after a large range or a page, an oversize mapping after another),
 * and a pointer one past the end of a live block whose request filled its
 * room (a buffer's end or limit, as git's 1 MiB buffers keep) was also the
 * start of the block after it, which it kept reachable: `git commit` leaked
 * 8,193 bytes that valgrind, whose blocks have red zones, found lost
 * (helper-64). The byte is address space only: its page is never written.
 * The guard's bytes do the same. */
static inline size_t big_room(size_t size) { return size + (hh_guard ? hh_guard : (size_t)hh_sites); }

static void *alloc_large(hh_heap *heap, size_t size, size_t align, bool zero, void *ret, void *frame) {
  hh_page *page = hh_large_alloc(heap, big_room(size), align);
  if (page == NULL) return enomem();
  /* The block is live from here on, and the registers hold only its
   * page's descriptor while the site capture runs (libgcc's unwinder, the
   * loader's object lookup, memset: code outside the allocator's, where the
   * exit scan's stop parks a thread). Its address in this frame keeps it
   * reachable then: a thread of a test stopped there lost its new block,
   * "definitely lost" with no site, in 1 of about 100 exits. */
  void *volatile held = page->start;
  page->large_rec.size = (uint32_t)size;
  if (zero && page->dirty)
    zero_bytes(page->start, size);
  else if (hh_sites && page->dirty)
    hh_scrub_resident(page->start, size);
  if (HH_UNLIKELY(hh_guard)) hh_guard_set(page->start, size, page->block_size);
  page->large_rec.site = hh_sites ? hh_site_capture(ret, frame) : 0;
  if (HH_UNLIKELY(hh_opt.profile)) hh_profile_alloc(page->large_rec.site, size);
  hh_stats_alloc_big(heap, size, page->block_size);
  return held;
}

static void *alloc_oversize(hh_heap *heap, size_t size, size_t align, bool zero, void *ret, void *frame) {
  hh_oversize *o = hh_oversize_alloc(big_room(size), align);
  if (o == NULL) return enomem();
  void *volatile held = o->user; /* as alloc_large's */
  if (zero && o->dirty)
    zero_bytes(o->user, size); /* may purge the canary's page: first */
  else if (hh_sites && o->dirty)
    hh_scrub_resident(o->user, size);
  o->size = size;
  if (HH_UNLIKELY(hh_guard)) hh_guard_set(o->user, size, o->map_size);
  o->site = hh_sites ? hh_site_capture(ret, frame) : 0;
  if (HH_UNLIKELY(hh_opt.profile)) hh_profile_alloc(o->site, size);
  hh_stats_alloc_big(heap, size, o->map_size);
  return held;
}

static inline __attribute__((always_inline)) void *alloc_generic(size_t size, bool zero, void *ret, void *frame) {
  if (HH_UNLIKELY(size > HH_MAX_REQUEST)) return enomem();
  hh_heap *heap = hh_heap_get();
  if (HH_UNLIKELY(heap == NULL)) return enomem();
  if (heap->pending_page != NULL) hh_remote_flush(heap);
  size_t need = size + hh_guard;
  if (hh_fits_page(size)) return alloc_from_root(heap, hh_root_of(need), size, zero, ret, frame);
  if (big_room(size) <= HH_LARGE_MAX) return alloc_large(heap, size, HH_ALIGN, zero, ret, frame);
  return alloc_oversize(heap, size, HH_ALIGN, zero, ret, frame);
}

/* The slow path of every allocation by size alone. operator new enters
 * frameless (override.c) and cannot test what it gets: its failure is
 * answered here, where its tag says which form it was. */
void *hh_alloc_generic(size_t size, bool zero, void *ret, void *frame) {
  HH_TAIL_ENTRY(ret, frame);
  void *p = alloc_generic(size, zero, ret, frame);
#ifndef HH_NO_OVERRIDE /* else operator new is not ours (override.c) */
  if (HH_UNLIKELY(p == NULL)) {
    unsigned kind = hh_entry_of((uintptr_t)ret);
    if (hh_entry_is_new(kind)) return hh_cxx_new_failed(kind, size);
  }
#endif
  return p;
}

/* `align` is a power of two. Roots whose block size is a multiple of the
 * alignment give aligned ranges (pages start on slice boundaries); large
 * ranges are slice-aligned; anything else gets an aligned oversize mapping. */
void *hh_aligned(size_t align, size_t size, void *ret, void *frame) {
  if (align <= HH_ALIGN) return hh_alloc_fast(size, ret, frame);
  if (HH_UNLIKELY(size > HH_MAX_REQUEST || align > HH_MAX_REQUEST)) return enomem();
  hh_heap *heap = hh_heap_get();
  if (HH_UNLIKELY(heap == NULL)) return enomem();
  /* A root whose records keep the slack: aligned_alloc(256, 16) takes a
   * 1,280-byte range, whose slack fits in two bytes, not a 256-byte one. */
  unsigned root = hh_root_for_alignment(size + hh_guard, align);
  while (root < HH_ROOTS && hh_root_size[root] - size > hh_root_slack_max(hh_root_size[root]))
    root = hh_root_for_alignment(hh_root_size[root] + 1, align);
  if (root < HH_ROOTS) return alloc_from_root(heap, root, size, false, ret, frame);
  if (hh_large_fits(big_room(size), align)) return alloc_large(heap, size, align, false, ret, frame);
  return alloc_oversize(heap, size, align, false, ret, frame);
}

/* A block realloc keeps in place is a new block all the same, as valgrind
 * sees it: it takes the stack of the realloc call. */
static uint32_t realloc_site(void *ret, void *frame) { return hh_sites ? hh_site_capture(ret, frame) : 0; }

/* The profile sees an in-place realloc as a free and an allocation. */
static void realloc_profile(uint32_t old_site, size_t old_size, uint32_t site, size_t size) {
  hh_profile_free(old_site, old_size);
  hh_profile_alloc(site, size);
}

/* realloc. Small ranges stay in place while the new size keeps them more
 * than half used (and always within their root); large ranges grow into the
 * free span after them or give their tail back. A large or oversize range
 * that must move to grow becomes an oversize mapping: from then on it grows
 * and shrinks by mremap, which moves page tables, not bytes (as glibc does
 * for its mmapped chunks), so a buffer grown step by step is copied once. */
/* A realloc that keeps its block counts as valgrind counts every realloc:
 * one allocation of the new size (and so one free: frees are allocations
 * less the live blocks), as a realloc that moves does. */
static void count_realloc(hh_heap *heap, size_t size) {
  heap->stats.allocs++;
  heap->stats.bytes_allocated += size;
}

/* A block realloc keeps where it is, now `size` requested bytes: its
 * record (site and size) says so, and the profile moves it. */
static void rerecord(const hh_ref *ref, size_t size, void *ret, void *frame) {
  hh_zero_grown(ref, size);
  uint32_t site = realloc_site(ret, frame), old_site = 0;
  switch (ref->kind) {
  case HH_REF_SMALL:
    old_site = hh_rec_site(ref->page, ref->index);
    hh_rec_set(ref->page, ref->index, site, size);
    break;
  case HH_REF_LARGE:
    old_site = ref->page->large_rec.site;
    ref->page->large_rec.size = (uint32_t)size;
    ref->page->large_rec.site = site;
    break;
  case HH_REF_OVERSIZE:
    old_site = ref->oversize->site;
    ref->oversize->size = size;
    ref->oversize->site = site;
    break;
  }
  if (HH_UNLIKELY(hh_opt.profile)) realloc_profile(old_site, ref->size, site, size);
}

/* Out of memory for a shrink's own root: a range of a larger root, below
 * `below` (the block's), whose records keep the slack. NULL when none is
 * left. */
static void *alloc_in_roots_between(hh_heap *heap, size_t size, unsigned below, void *ret, void *frame) {
  for (unsigned r = hh_root_of(size) + 1; r < below && hh_root_size[r] - size <= hh_root_slack_max(hh_root_size[r]);
       r++) {
    void *q = alloc_from_root(heap, r, size, false, ret, frame);
    if (q != NULL) return q;
  }
  return NULL;
}

void *hh_realloc(void *p, size_t size, const char *call, void *ret, void *frame) {
  if (p == NULL) return hh_alloc_fast(size, ret, frame);
  int saved_errno = errno;
  hh_ref ref;
  if (!hh_lookup(p, call, &ref)) return NULL; /* reported; HAHALLOC_ON_ERROR=continue */
  if (size == 0) {                            /* as glibc: free, and return NULL */
    hh_release(p, &ref, call);
    return NULL;
  }
  if (HH_UNLIKELY(size > HH_MAX_REQUEST)) return enomem();
  hh_heap *heap = hh_heap_get();
  if (HH_UNLIKELY(heap == NULL)) return enomem();

  bool big = size > HH_MEDIUM_MAX;
  bool in_place = false;
  /* under the guard the block moves: its canary stays where it was written */
  if (HH_LIKELY(!hh_guard)) switch (ref.kind) {
    case HH_REF_SMALL:
      in_place = size <= ref.usable && (size * 2 > ref.usable || hh_root_of(size) == ref.page->root) &&
                 hh_rec_fits(ref.page, size);
      if (in_place) rerecord(&ref, size, ret, frame);
      break;
    case HH_REF_LARGE: {
      if (!big || big_room(size) > HH_LARGE_MAX) break;
      /* Only the owner may reshape its spans; anyone may use the room there is. */
      bool owner = atomic_load_explicit(&ref.mapping->heap, memory_order_relaxed) == heap;
      uint32_t n = hh_large_slices(big_room(size));
      uint32_t have = ref.page->slice_count;
      if (n <= have) {
        in_place = true;
        if (owner && n * 2 <= have) hh_span_resize(heap, ref.page, n); /* give the tail back */
      } else if (owner) {
        in_place = hh_span_resize(heap, ref.page, n);
      }
      if (in_place) {
        ref.page->block_size = ref.page->slice_count << HH_SLICE_SHIFT;
        rerecord(&ref, size, ret, frame);
        hh_stats_resize(heap, ref.accounted, ref.page->block_size);
      }
      break;
    }
    case HH_REF_OVERSIZE:
      if (big) {
        void *q = hh_oversize_realloc(ref.oversize, big_room(size));
        if (q == NULL) return enomem();
        rerecord(&ref, size, ret, frame);
        hh_stats_resize(heap, ref.accounted, ref.oversize->map_size);
        count_realloc(heap, size);
        return q;
      }
      break;
    }
  if (in_place) {
    count_realloc(heap, size);
    return p;
  }
  void *q;
  if (big && ref.kind != HH_REF_SMALL && size > ref.size)
    q = alloc_oversize(heap, size, HH_ALIGN, false, ret, frame);
  else
    q = hh_alloc_fast(size, ret, frame);
  /* A shrink whose record could not stay in place: a free range of a root
   * between the new size's and the block's own, if one is left */
  if (q == NULL && ref.kind == HH_REF_SMALL && size <= ref.usable && !hh_rec_fits(ref.page, size))
    q = alloc_in_roots_between(heap, size, ref.page->root, ret, frame);
  if (q == NULL) {
    /* A shrink that would move to a smaller root (or out of a large or
     * oversize range) found no memory for the copy: the block stays where
     * it is, as glibc's shrink never fails, and its record says the new
     * size. A slack record that cannot keep that much slack says the
     * smallest size it can, and the bytes between are cleared: nothing the
     * program left there keeps a block reachable. Not under the guard,
     * whose canary sits after the old size. */
    if (size <= ref.usable && !hh_guard) {
      size_t recorded = size;
      if (ref.kind == HH_REF_SMALL && !hh_rec_fits(ref.page, size)) {
        recorded = ref.page->block_size - hh_rec_slack_max(ref.page);
        memset((char *)p + size, 0, recorded - size);
      }
      rerecord(&ref, recorded, ret, frame);
      count_realloc(heap, size);
      errno = saved_errno;
      return p;
    }
    return NULL; /* errno is ENOMEM; p is untouched */
  }
  memcpy(q, p, ref.usable < size ? ref.usable : size);
  hh_release(p, &ref, call);
  return q;
}
