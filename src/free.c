/*
 * Releasing ranges: pointer validation, remote frees, large and oversize
 * frees. Everything here is off the fast path (fast.h).
 *
 * Validation is out of band, as in musl's mallocng: the registry says
 * whether hahalloc owns the address at all, the slice descriptor says what
 * the memory is, the range index says whether the pointer is the start of a
 * range, and the range's link says whether it is already free. A pointer
 * that fails any of these is reported and never touches the heap.
 */
#include "hooks.h"
#include "internal.h"
#include "options.h"
#include "os.h"
#include "stats.h"

#include <string.h>

#include "fast.h"
#include "lookup.h"

/* What handing a freed block to `call` is: a double free for the free
 * family (free, cfree, frhehe), a use after free for the others (realloc,
 * rehehalloc, reallocarray, malloc_usable_size: all named "...alloc..."). */
static const char *freed_misuse(const char *call) {
  return strstr(call, "alloc") != NULL ? "use after free" : "double free";
}

/* Classifies `p` for free, realloc and malloc_usable_size; reports misuse. */
bool hh_lookup(const void *p, const char *call, hh_ref *ref) {
  const hh_header *h = hh_registry_get((uintptr_t)p);
  if (h == NULL) {
    if (hh_oversize_recently_freed(p))
      hh_error(call, p, "%s (a block of more than %zu bytes, already freed)", freed_misuse(call), HH_LARGE_MAX);
    else
      hh_error(call, p, "invalid pointer: hahalloc never returned this address");
    return false;
  }
  if ((h->kind == HH_MAP_OVERSIZE || h->kind == HH_MAP_PAGES) && HH_UNLIKELY(h->cookie != (hh_key ^ (uintptr_t)h))) {
    hh_corruption("the call is ignored", NULL, "the header at %p that owns %p was overwritten", (const void *)h, p);
    return false;
  }
  if (h->kind == HH_MAP_OVERSIZE) {
    hh_oversize *o = (hh_oversize *)h;
    if ((const uint8_t *)p != o->user) {
      hh_error(call, p, "invalid pointer: inside the %zu-byte block at %p", o->size, (void *)o->user);
      return false;
    }
    *ref = (hh_ref){.kind = HH_REF_OVERSIZE,
                    .oversize = o,
                    .usable = hh_guard ? o->size : hh_page_round(o->size),
                    .size = o->size,
                    .accounted = o->map_size};
    return true;
  }
  if (h->kind == HH_MAP_CACHED) {
    hh_error(call, p, "%s or invalid pointer: inside a freed block of more than %zu bytes", freed_misuse(call),
             HH_LARGE_MAX);
    return false;
  }
  if (h->kind != HH_MAP_PAGES) {
    hh_error(call, p, "invalid pointer: inside hahalloc's own metadata");
    return false;
  }
  hh_mapping *m = (hh_mapping *)h;
  hh_page *s = &m->slices[((uintptr_t)p - (uintptr_t)m) >> HH_SLICE_SHIFT];
  if (s->kind == HH_PAGE_HEADER) {
    hh_error(call, p, "invalid pointer: inside a mapping header");
    return false;
  }
  if (s->kind == HH_PAGE_FREE) {
    hh_error(call, p, "%s or invalid pointer: this memory is not allocated", freed_misuse(call));
    return false;
  }
  hh_page *page = s - s->slice_offset;
  uint32_t idx = 0;
  if (s->kind == HH_PAGE_LARGE) {
    if ((const uint8_t *)p != page->start) {
      hh_error(call, p, "invalid pointer: inside the %u-byte block at %p", page->large_rec.size, (void *)page->start);
      return false;
    }
  } else {
    uintptr_t off = (uintptr_t)p - (uintptr_t)page->start;
    idx = hh_range_index(page, p);
    if (idx >= hh_page_capacity(page)) {
      hh_error(call, p, "invalid pointer: hahalloc never returned this address");
      return false;
    }
    if ((uintptr_t)idx * page->block_size != off) {
      hh_error(call, p, "invalid pointer: inside the %u-byte block at %p", page->block_size,
               (void *)(page->start + (size_t)idx * page->block_size));
      return false;
    }
  }
  const hh_block *b = p;
  if ((__atomic_load_n(&b->link, __ATOMIC_RELAXED) ^ hh_link_mask(page, idx)) < HH_LINK_LIMIT) {
    hh_error(call, p, "%s: this %u-byte block is already free", freed_misuse(call), page->block_size);
    return false;
  }
  size_t size = page->track != NULL ? page->track[idx].size : page->block_size;
  bool large = s->kind == HH_PAGE_LARGE;
  *ref = (hh_ref){.kind = large ? HH_REF_LARGE : HH_REF_SMALL,
                  .mapping = m,
                  .page = page,
                  .index = idx,
                  .usable = hh_guard ? size
                            : large  ? hh_page_round(size)
                                     : page->block_size,
                  .size = size,
                  .accounted = page->block_size};
  return true;
}

bool hh_block_of(const void *p, hh_block_info *out) {
  const hh_header *h = hh_registry_get((uintptr_t)p);
  if (h == NULL) return false;
  if (h->kind == HH_MAP_OVERSIZE) {
    const hh_oversize *o = (const hh_oversize *)h;
    if ((const uint8_t *)p < o->user || (const uint8_t *)p >= o->user + o->size) return false;
    *out = (hh_block_info){o->user, o->size, o->map_size, o->site};
    return true;
  }
  if (h->kind != HH_MAP_PAGES) return false;
  const hh_mapping *m = (const hh_mapping *)h;
  const hh_page *s = &m->slices[((uintptr_t)p - (uintptr_t)m) >> HH_SLICE_SHIFT];
  if (s->kind != HH_PAGE_SMALL && s->kind != HH_PAGE_LARGE) return false;
  const hh_page *page = s - s->slice_offset;
  if (s->kind == HH_PAGE_LARGE) {
    *out = (hh_block_info){page->start, page->large_rec.size, page->block_size, page->large_rec.site};
  } else {
    uint64_t idx = hh_range_index(page, p);
    if (idx >= hh_page_capacity(page)) return false;
    const hh_track_rec *t = page->track != NULL ? &page->track[idx] : NULL;
    *out = (hh_block_info){page->start + (size_t)idx * page->block_size, t != NULL ? t->size : page->block_size,
                           page->block_size, t != NULL ? t->site : 0};
  }
  return true;
}

/* Another thread owns the range: push it on the page's thread_free list
 * and, if the page sits on the owner's full list, tell the owner. The range
 * is claimed first with a compare-and-swap of its link, so that two threads
 * freeing it race to one report, not to a list holding it twice. Everything
 * needed after the push is read before it: once the range is on the list
 * the owner may collect it, retire the page and unmap the mapping. Only the
 * owner's heap is touched afterwards (heaps are never freed). */
static bool remote_free(const hh_ref *ref, hh_block *b, const char *call) {
  hh_page *page = ref->page;
  uint64_t idx = ref->index, mask = hh_link_mask(page, idx);
  uint32_t block_size = page->block_size;
  uint64_t link = __atomic_load_n(&b->link, __ATOMIC_RELAXED);
  do {
    if ((link ^ mask) < HH_LINK_LIMIT) {
      hh_error(call, b, "double free: this %u-byte block is already free", block_size);
      return false;
    }
  } while (
      !__atomic_compare_exchange_n(&b->link, &link, mask ^ HH_LINK_CLAIMED, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  hh_heap *owner = atomic_load_explicit(&ref->mapping->heap, memory_order_acquire);
  uint64_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  do {
    __atomic_store_n(&b->link, hh_remote_head(tf) ^ mask, __ATOMIC_RELAXED);
  } while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &tf, hh_remote_word(idx, tf & HH_REMOTE_FULL),
                                                  memory_order_seq_cst, memory_order_relaxed));
  /* from here on, the page and the mapping may be gone */
  /* The flag is written only when it reads clear, so that a full page's
   * frees do not take the line from the owner one by one. Both sides are
   * sequentially consistent (the owner exchanges the flag, then loads
   * thread_free): either this load sees the owner's clear and raises the
   * flag again, or the owner's load sees the push above. */
  if ((tf & HH_REMOTE_FULL) && !atomic_load_explicit(&owner->remote_full, memory_order_seq_cst))
    atomic_store_explicit(&owner->remote_full, 1, memory_order_seq_cst);
  if (HH_UNLIKELY(atomic_load_explicit(&owner->abandoned, memory_order_acquire)))
    hh_heap_abandoned_freed(owner, block_size);
  return true;
}

/* The site of the range `ref` describes, for the profile. */
static uint32_t site_of(const hh_ref *ref) {
  switch (ref->kind) {
  case HH_REF_SMALL: return ref->page->track ? ref->page->track[ref->index].site : 0;
  case HH_REF_LARGE: return ref->page->large_rec.site;
  case HH_REF_OVERSIZE: return ref->oversize->site;
  }
  return 0;
}

void hh_release(void *p, const hh_ref *ref, const char *call) {
  /* A thread that only frees (a consumer) gets a heap too, so that its
   * frees are counted in its own statistics, not with an atomic add on a
   * line every such thread shares. */
  hh_heap *heap = hh_heap_get();
  size_t size = ref->accounted; /* read before the range can be reused */
  if (HH_UNLIKELY(hh_guard)) hh_guard_check(p, ref, call);
  if (HH_UNLIKELY(hh_opt.profile)) hh_profile_free(site_of(ref), ref->size);
  switch (ref->kind) {
  case HH_REF_OVERSIZE:
    if (!hh_oversize_free(ref->oversize, p, call)) return;
    break;
  case HH_REF_SMALL:
  case HH_REF_LARGE:
    if (atomic_load_explicit(&ref->mapping->heap, memory_order_relaxed) != heap) {
      if (!remote_free(ref, p, call)) return;
    } else if (ref->kind == HH_REF_LARGE) {
      ref->page->used = 0;
      hh_page_emptied(heap, ref->page);
    } else {
      hh_page *page = ref->page;
      /* hh_lookup saw the range live; it is free now only when another
       * thread freed it meanwhile */
      if (!hh_free_push(page, p, ref->index)) {
        hh_error(call, p, "double free: this %u-byte block is already free", page->block_size);
        return;
      }
      if ((int32_t)--page->used <= 0) hh_page_emptied(heap, page); /* empty, or full list */
    }
    break;
  }
  if (heap != NULL)
    hh_stats_free(heap, size);
  else
    hh_stats_free_orphan(size);
}

void hh_free_generic(void *p, const char *call) {
  if (p == NULL) return; /* the fast path leaves free(NULL) to us */
  hh_ref ref;
  /* A small range of a mapping of ours that my heap does not own (or owns
   * untagged): found as the fast path finds its own, through the chunk's
   * tag, without the registry walk. This is every free of a program whose
   * threads free what others allocated. hh_release checks that the range
   * is live, as hh_lookup would. The guard and the profile need the range's
   * record, which hh_lookup reads. */
  hh_page *page;
  uint64_t idx;
  uintptr_t a = (uintptr_t)p;
  if (HH_LIKELY(!hh_guard && !hh_opt.profile) &&
      __atomic_load_n(&hh_chunk_tag[hh_chunk_of(a)], __ATOMIC_RELAXED) != 0 && hh_small_range(a, &page, &idx, false)) {
    ref = (hh_ref){.kind = HH_REF_SMALL,
                   .mapping = hh_mapping_of(page),
                   .page = page,
                   .index = idx,
                   .usable = page->block_size,
                   .size = page->block_size,
                   .accounted = page->block_size};
    hh_release(p, &ref, call);
    return;
  }
  if (hh_lookup(p, call, &ref)) hh_release(p, &ref, call);
}

size_t hh_usable_size(const void *p, const char *call) {
  hh_ref ref;
  if (p == NULL || !hh_lookup(p, call, &ref)) return 0;
  return ref.usable;
}
