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

/* Where an address lies, from the registry and its mapping's slices, told
 * without a word: the one walk behind hh_lookup (which reports misuse) and
 * hh_block_of (which names a block for an error message). */
typedef enum {
  AT_NOTHING,   /* in no mapping of ours */
  AT_DAMAGED,   /* in a mapping whose header was overwritten */
  AT_CACHED,    /* in a freed oversize mapping kept for reuse */
  AT_META,      /* in hahalloc's own metadata */
  AT_HEADER,    /* in a page mapping's header */
  AT_FREE_SPAN, /* in a free span */
  AT_UNCARVED,  /* past the ranges carved from a small page */
  AT_OVERSIZE,  /* in an oversize mapping: .oversize, .start */
  AT_LARGE,     /* in a large range: .page, .start */
  AT_SMALL,     /* in a carved small range: .page, .index, .start */
} at_kind;

typedef struct {
  at_kind kind;
  const hh_header *header;
  hh_oversize *oversize;
  hh_page *page;
  uint32_t index;
  uint8_t *start; /* the range's first byte */
} where;

static where where_is(const void *p) {
  where w = {.kind = AT_NOTHING};
  const hh_header *h = w.header = hh_registry_get((uintptr_t)p);
  if (h == NULL) return w;
  if ((h->kind == HH_MAP_OVERSIZE || h->kind == HH_MAP_PAGES) && HH_UNLIKELY(h->cookie != (hh_key ^ (uintptr_t)h))) {
    w.kind = AT_DAMAGED;
  } else if (h->kind == HH_MAP_OVERSIZE) {
    w.kind = AT_OVERSIZE;
    w.oversize = (hh_oversize *)h;
    w.start = w.oversize->user;
  } else if (h->kind == HH_MAP_CACHED) {
    w.kind = AT_CACHED;
  } else if (h->kind != HH_MAP_PAGES) {
    w.kind = AT_META;
  } else {
    hh_mapping *m = (hh_mapping *)h;
    hh_page *s = &m->slices[((uintptr_t)p - (uintptr_t)m) >> HH_SLICE_SHIFT];
    if (s->kind == HH_PAGE_HEADER) {
      w.kind = AT_HEADER;
    } else if (s->kind == HH_PAGE_FREE || s->kind == HH_PAGE_MAKING) {
      w.kind = AT_FREE_SPAN;
    } else if (s->kind == HH_PAGE_LARGE) {
      w.kind = AT_LARGE;
      w.page = s - s->slice_offset;
      w.start = w.page->start;
    } else {
      hh_page *page = w.page = s - s->slice_offset;
      uint64_t idx = hh_range_index(page, p);
      w.kind = idx < hh_page_capacity(page) ? AT_SMALL : AT_UNCARVED;
      w.index = (uint32_t)idx;
      w.start = page->start + (size_t)idx * page->block_size;
    }
  }
  return w;
}

/* Classifies `p` for free, realloc and malloc_usable_size; reports misuse. */
/* `p` lies in the block of `size` bytes at `start` without starting it:
 * inside it, or past its end in the slices or pages it was rounded up to. */
static void not_a_start(const char *call, const void *p, const uint8_t *start, size_t size) {
  size_t past = (size_t)((const uint8_t *)p - start);
  if (past < size)
    hh_error(call, p, "invalid pointer: inside the %zu-byte block at %p", size, (const void *)start);
  else
    hh_error(call, p, "invalid pointer: %zu bytes past the end of the %zu-byte block at %p", past - size, size,
             (const void *)start);
}

bool hh_lookup(const void *p, const char *call, hh_ref *ref) {
  where w = where_is(p);
  hh_page *page = w.page;
  switch (w.kind) {
  case AT_NOTHING:
  case AT_UNCARVED:
    if (w.kind == AT_NOTHING && hh_oversize_recently_freed(p))
      hh_error(call, p, "%s (a block of more than %'zu bytes, already freed)", freed_misuse(call), HH_LARGE_MAX);
    else
      hh_error(call, p, "invalid pointer: hahalloc never returned this address");
    return false;
  case AT_DAMAGED:
    hh_corruption("the call is ignored", NULL, "the header at %p that owns %p was overwritten", (const void *)w.header,
                  p);
    return false;
  case AT_CACHED: /* its memory kept for the next big block */
    if (hh_oversize_recently_freed(p))
      hh_error(call, p, "%s (a block of more than %'zu bytes, already freed)", freed_misuse(call), HH_LARGE_MAX);
    else
      hh_error(call, p, "%s or invalid pointer: inside a freed block of more than %'zu bytes", freed_misuse(call),
               HH_LARGE_MAX);
    return false;
  case AT_META: hh_error(call, p, "invalid pointer: inside hahalloc's own metadata"); return false;
  case AT_HEADER: hh_error(call, p, "invalid pointer: inside a mapping header"); return false;
  case AT_FREE_SPAN:
    hh_error(call, p, "%s or invalid pointer: this memory is not allocated", freed_misuse(call));
    return false;
  case AT_OVERSIZE: {
    hh_oversize *o = w.oversize;
    if ((const uint8_t *)p != w.start) {
      not_a_start(call, p, w.start, o->size);
      return false;
    }
    *ref = (hh_ref){.kind = HH_REF_OVERSIZE,
                    .oversize = o,
                    .usable = hh_guard ? o->size : hh_page_round(o->size),
                    .size = o->size,
                    .accounted = o->map_size};
    return true;
  }
  case AT_LARGE:
  case AT_SMALL: break;
  }
  const hh_block *b = (const hh_block *)w.start;
  bool is_free = (__atomic_load_n(&b->link, __ATOMIC_RELAXED) ^ hh_link_mask(page, w.index)) < HH_LINK_LIMIT;
  size_t requested = hh_rec_size(page, w.index);
  /* named by the size asked for, as the line of its allocation names it */
  size_t asked = w.kind == AT_LARGE ? page->large_rec.size : requested;
  if ((const uint8_t *)p != w.start) {
    if (is_free)
      hh_error(call, p, "%s or invalid pointer: inside the %zu-byte block at %p, already freed", freed_misuse(call),
               asked, (const void *)w.start);
    else
      not_a_start(call, p, w.start, asked);
    return false;
  }
  if (is_free) {
    hh_error(call, p, "%s: this %zu-byte block is already free", freed_misuse(call), asked);
    return false;
  }
  bool large = w.kind == AT_LARGE;
  *ref = (hh_ref){.kind = large ? HH_REF_LARGE : HH_REF_SMALL,
                  .mapping = hh_mapping_of(page),
                  .page = page,
                  .index = w.index,
                  .usable = hh_guard ? requested
                            : large  ? hh_page_round(requested)
                                     : page->block_size,
                  .size = requested,
                  .accounted = page->block_size};
  return true;
}

bool hh_block_of(const void *p, hh_block_info *out) {
  where w = where_is(p);
  switch (w.kind) {
  case AT_OVERSIZE: {
    const hh_oversize *o = w.oversize;
    if ((const uint8_t *)p < w.start || (const uint8_t *)p >= w.start + o->size) return false; /* moving */
    *out = (hh_block_info){w.start, o->size, o->map_size, o->site};
    return true;
  }
  case AT_LARGE:
    *out = (hh_block_info){w.start, w.page->large_rec.size, w.page->block_size, w.page->large_rec.site};
    return true;
  case AT_SMALL: {
    *out = (hh_block_info){w.start, hh_rec_size(w.page, w.index), w.page->block_size, hh_rec_site(w.page, w.index)};
    return true;
  }
  default: return false;
  }
}

/* Another thread owns the range: push it on the page's thread_free list
 * and, if the page sits on the owner's full list, tell the owner. A range
 * whose link says it is free is a double free. Two threads that free the
 * same range at the same moment both find it live and both push it: the
 * list then holds it twice, and its word counts one push too many, which
 * the owner finds and reports (hh_page_collect, page.c), before the range
 * is handed out a second time or its page given back. Claiming the range first with a compare-and-swap of
 * its link would report such a race here, but a locked instruction on the
 * range's line (cold: the allocating thread wrote it) made xmalloc-test
 * 7-16% slower. The race is missed only when the owner takes the list
 * between one free's load of the link and its push.
 *
 * A thread that frees many ranges of one page of another heap in a row (a
 * consumer of what a producer allocated, in the order it was made) keeps
 * them on a chain of its own first, linked as on any free list, so that
 * they look free at once, and pushes the chain with one compare-and-swap
 * when it reaches PENDING_MAX ranges, when it frees a range of another
 * page, when it allocates on its slow path, when it trims and when it
 * exits (hh_remote_flush). Pending ranges still count as used in their
 * page, which is therefore never given back under them; the report takes
 * them as free, by their links. A thread that stops freeing and never
 * allocates again holds at most PENDING_MAX ranges of PENDING_MAX_BLOCK
 * bytes (64 KiB) from their owner until it exits. */
#define PENDING_MAX 64
#define PENDING_MAX_BLOCK 1024u

/* Pushes the chain of `n` ranges from `head` to `tail`, whose link is
 * rewritten to name the list's old first. Everything needed after the push
 * is read before it: once the ranges are on the list the owner may collect
 * them, retire the page and unmap the mapping. Only the owner's heap is
 * touched afterwards (heaps are never freed). */
static void remote_push(hh_page *page, uint64_t head, uint64_t tail, uint64_t n) {
  hh_mapping *mapping = hh_mapping_of(page);
  hh_block *last = (hh_block *)hh_range_at(page, tail);
  uint64_t mask = hh_link_mask(page, tail);
  size_t bytes = (size_t)n * page->block_size;
  hh_heap *owner = atomic_load_explicit(&mapping->heap, memory_order_acquire);
  uint64_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  do {
    __atomic_store_n(&last->link, hh_remote_head(tf) ^ mask, __ATOMIC_RELAXED);
  } while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &tf, hh_remote_push(tf, head, n),
                                                  memory_order_seq_cst, memory_order_relaxed));
  /* from here on, the page and the mapping may be gone */
  /* The flag is written only when it reads clear, so that a full page's
   * frees do not take the line from the owner one by one. Both sides are
   * sequentially consistent (the owner exchanges the flag, then loads
   * thread_free): either this load sees the owner's clear and raises the
   * flag again, or the owner's load sees the push above. */
  if ((tf & HH_REMOTE_FULL) && !atomic_load_explicit(&owner->remote_full, memory_order_seq_cst))
    atomic_store_explicit(&owner->remote_full, 1, memory_order_seq_cst);
  if (HH_UNLIKELY(atomic_load_explicit(&owner->abandoned, memory_order_acquire))) hh_heap_abandoned_freed(owner, bytes);
}

static inline __attribute__((always_inline)) bool remote_link_free(hh_page *page, hh_block *b, uint64_t mask,
                                                                   const char *call) {
  if ((__atomic_load_n(&b->link, __ATOMIC_RELAXED) ^ mask) < HH_LINK_LIMIT) {
    hh_error(call, b, "double free: this %u-byte block is already free", hh_rec_size(page, hh_range_index(page, b)));
    return true;
  }
  return false;
}

static bool remote_free(hh_page *page, uint64_t idx, hh_block *b, const char *call) {
  if (remote_link_free(page, b, hh_link_mask(page, idx), call)) return false;
  remote_push(page, idx, idx, 1);
  return true;
}

/* The chain is the thread's own, but a signal handler that frees (or
 * allocates, which flushes) may run in the middle of a change to it: a
 * program that frees in a handler, which glibc's malloc mostly lets
 * through, was aborted for a block "freed by two threads" (every run of a
 * main thread freeing an exited thread's blocks under a 50 us timer whose
 * handler frees more of them). While `in_pending` is set, a free from a
 * handler pushes its range alone, and a flush waits for the next. */
static void pending_enter(hh_heap *heap) {
  heap->in_pending = 1;
  atomic_signal_fence(memory_order_seq_cst);
}
static void pending_leave(hh_heap *heap) {
  atomic_signal_fence(memory_order_seq_cst);
  heap->in_pending = 0;
}

static void pending_push(hh_heap *heap) {
  hh_page *page = heap->pending_page;
  heap->pending_page = NULL;
  remote_push(page, heap->pending_head, heap->pending_tail, heap->pending_count);
}

void hh_remote_flush(hh_heap *heap) {
  if (heap->pending_page == NULL || heap->in_pending) return;
  pending_enter(heap);
  pending_push(heap);
  pending_leave(heap);
}

/* A remote free by `heap`'s own thread, onto its pending chain. */
static inline __attribute__((always_inline)) bool remote_free_pending(hh_heap *heap, hh_page *page, uint64_t idx,
                                                                      hh_block *b, const char *call) {
  uint64_t mask = hh_link_mask(page, idx);
  if (remote_link_free(page, b, mask, call)) return false;
  if (HH_UNLIKELY(heap->in_pending)) { /* from a signal handler */
    remote_push(page, idx, idx, 1);
    return true;
  }
  pending_enter(heap);
  uint64_t next = heap->pending_head;
  if (heap->pending_page != page) {
    if (heap->pending_page != NULL) pending_push(heap);
    heap->pending_page = page;
    heap->pending_tail = (uint32_t)idx;
    heap->pending_count = 0;
    next = HH_LINK_END;
  }
  __atomic_store_n(&b->link, next ^ mask, __ATOMIC_RELAXED);
  heap->pending_head = (uint32_t)idx;
  if (++heap->pending_count == PENDING_MAX) pending_push(heap);
  pending_leave(heap);
  return true;
}

/* The site of the range `ref` describes, for the profile. */
static uint32_t site_of(const hh_ref *ref) {
  switch (ref->kind) {
  case HH_REF_SMALL: return hh_rec_site(ref->page, ref->index);
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
      if (!remote_free(ref->page, ref->index, p, call)) return;
    } else if (ref->kind == HH_REF_LARGE) {
      ref->page->used = 0;
      hh_page_emptied(heap, ref->page);
    } else {
      hh_page *page = ref->page;
      /* hh_lookup saw the range live; it is free now only when another
       * thread freed it meanwhile */
      if (!hh_free_push(page, p, ref->index)) {
        hh_error(call, p, "double free: this %u-byte block is already free", hh_rec_size(page, ref->index));
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
  if (HH_LIKELY(!hh_guard && !hh_opt.profile) && hh_chunk_tag_get(hh_chunk_of(a)) != 0 &&
      hh_small_range(a, &page, &idx, false)) {
    /* Another thread's range, freed by a thread with a heap: pushed here,
     * without hh_release's general dispatch (a consumer thread's every
     * free comes this way). */
    hh_mapping *mapping = hh_mapping_of(page);
    hh_heap *heap = hh_heap_mine();
    if (HH_LIKELY(heap != NULL && atomic_load_explicit(&mapping->heap, memory_order_relaxed) != heap)) {
      uint32_t size = page->block_size; /* read before the range can be reused */
      if (size <= PENDING_MAX_BLOCK ? remote_free_pending(heap, page, idx, p, call) : remote_free(page, idx, p, call))
        hh_stats_free(heap, size);
      return;
    }
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
  /* The program may now use every usable byte, and may keep a pointer
   * there (a growable buffer that asks once): the record grows to them, so
   * that the leak scan reads them and realloc copies them. */
  if (ref.usable > ref.size) {
    hh_zero_grown(&ref, ref.usable);
    if (HH_UNLIKELY(hh_opt.profile)) hh_profile_grow(site_of(&ref), ref.usable - ref.size); /* its free says usable */
    if (ref.kind == HH_REF_SMALL)
      hh_rec_grow(ref.page, ref.index, (uint32_t)ref.usable);
    else if (ref.kind == HH_REF_LARGE)
      ref.page->large_rec.size = (uint32_t)ref.usable;
    else
      hh_oversize_grow_size(ref.oversize, ref.usable);
  }
  return ref.usable;
}
