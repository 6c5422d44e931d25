/*
 * The fast paths, inlined into every public entry point (api.c, override.c).
 *
 * Allocation: the thread's heap, the current page for the size, and the
 * index of the first range on its free list; one multiply by the index
 * gives the range's offset and its link mask; the range is taken when its
 * link decodes to an index below the page's capacity, which becomes the new
 * first. Free: the chunk's tag says the mapping is this thread's, the slice
 * gives the page, one multiply gives the range index and whether the
 * pointer starts a range; if the range's link does not say it is already
 * free, push it on the page's free list. No lock, no atomic
 * read-modify-write, no header before the range, no pointer read from freed
 * memory. Anything else (first use, the last range of a list, large or
 * oversize ranges, remote frees, bad pointers, damaged links) goes to the
 * generic functions.
 */
#ifndef HH_FAST_H
#define HH_FAST_H

#include <string.h>

#include "internal.h"
#include "os.h"
#include "stats.h"

#define HH_INLINE static inline __attribute__((always_inline))

/* malloc, hahalloc and operator new run without a frame of their own and
 * reach every slow path by a tail call, passing HH_TAIL_FRAME (NULL) and
 * their entry point's tag as the return address (HH_TAIL_KIND): the function
 * reached (built with frame pointers) then sits exactly where the entry
 * point's frame would, so its own return and frame addresses are the entry
 * point's, and the caller's rbp is saved at CFA - 16 as the site capture's
 * stack walk expects (HH_TAIL_ENTRY). That needs the calls to be jumps:
 * gcc is told so per function; a build without optimisation, where they
 * would not be, passes the entry point's own addresses instead, as entry
 * points that make ordinary calls (calloc's memset) always do. clang has no
 * per-function switch, keeps the frame and jumps at -O1 and above. */
#if defined(__clang__)
#define HH_FRAMELESS
#else
#define HH_FRAMELESS __attribute__((optimize("omit-frame-pointer", "optimize-sibling-calls")))
#endif
/* gcc branches on the flags of a read-modify-write of memory only when it
 * tests the sign; the free fast path's two counters test more, and say it
 * in x86-64 assembly (asm goto with outputs: gcc 11, clang 11). */
#if defined(__SANITIZE_THREAD__)
#define HH_ASM_GOTO 0 /* ThreadSanitizer sees no access made in assembly */
#elif defined(__x86_64__) && \
    ((defined(__clang__) && __clang_major__ >= 11) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define HH_ASM_GOTO 1
#else
#define HH_ASM_GOTO 0
#endif

#ifdef __OPTIMIZE__
#define HH_TAIL_KIND(kind) ((void *)((uintptr_t)(kind) << HH_ENTRY_SHIFT))
#define HH_TAIL_FRAME NULL
#else
#define HH_TAIL_KIND(kind) HH_ENTRY_RET(kind)
#define HH_TAIL_FRAME ((void *)((char *)__builtin_dwarf_cfa() - 16))
#endif

/* With M = ceil(2^64 / d) and an offset n far below 2^64 / d (here n < 2^20
 * and d >= 16), the high half of n * M is n / d, and the low half is below M
 * exactly when d divides n (Lemire, Kaser and Kurz, "Faster remainder by
 * direct computation", 2019). One multiply gives both. */
HH_INLINE size_t hh_range_index(const hh_page *page, const void *p) {
  uint64_t off = (uintptr_t)p - (uintptr_t)page->start;
  return (size_t)(((unsigned __int128)off * page->magic) >> 64);
}

/* With the report on (call sites kept), a range's requested bytes are
 * zeroed as it is handed out. The scan takes any word of a live block for
 * a pointer, as memcheck takes any defined word: a block reused with words
 * its new owner never wrote would show the old owner's pointers and keep
 * what they name reachable (a freed table of strings whose memory became a
 * line buffer hid its leaks). memcheck never takes a new block's undefined
 * words. Zeroing only the first 64 bytes cost less (larson, which writes
 * two bytes of each block, runs about 2x the drop-in's time under the
 * report with every byte zeroed, 1.2x with 64), but gdb, troff, grotty and
 * ld each called some of their lost blocks reachable through words past
 * them (helper-40: 5 of 187 command lines, against valgrind). The bytes
 * past the request may keep an older owner's words: the scan does not
 * read them, and realloc or malloc_usable_size zero them when they become
 * the block's (hh_zero_grown). Ranges of more than HH_MEDIUM_MAX bytes (large and
 * oversize, alloc.c) reused from freed memory are zeroed the same way, by
 * memset of their resident pages: handing their pages back to the kernel instead made
 * mimalloc-bench's malloc-large, which fills each block, 7-10x slower under
 * the report (a page fault for each page), memset 1.2x. */
HH_INLINE void hh_scrub_small(hh_block *b, size_t size, uint32_t block_size) {
  if (HH_LIKELY(block_size >= 64)) {
    memset(b, 0, 64); /* two fixed lines cover a block of up to 128 bytes: no call */
    if (size > 64) memset((char *)b + block_size - 64, 0, 64);
  } else { /* 16, 32 or 48 bytes */
    memset(b, 0, 16);
    memset((char *)b + block_size - 16, 0, 16);
    if (block_size > 32) memset((char *)b + 16, 0, 16);
  }
}

/* Zeroes n bytes at p, from HH_SCRUB_BY_MINCORE bytes on only the pages
 * that are resident (alloc.c): a block the program uses sparsely must not
 * become resident in full by the report's zeroing. */
#define HH_SCRUB_BY_MINCORE ((size_t)64 << 10)
void hh_scrub_resident(void *p, size_t n);

HH_INLINE void hh_scrub(hh_block *b, size_t size, uint32_t block_size) {
  if (block_size > 128 && size > 64) {
    if (HH_UNLIKELY(size >= HH_SCRUB_BY_MINCORE))
      hh_scrub_resident(b, size);
    else
      memset(b, 0, size);
  } else {
    hh_scrub_small(b, size, block_size);
  }
}

/* The record of a range of a page of full or packed records (the report
 * or the profile is on), out of line: its zeroing and call-site lookup
 * would make the drop-in's path save registers. Reached by a tail call,
 * as hh_track_new_site is (so `frame == NULL` keeps its meaning). */
HH_INLINE void *hh_track_site(hh_heap *heap, hh_page *page, hh_block *b, size_t size, void *ret, void *frame) {
  uintptr_t t = page->track;
  uint32_t block_size = page->block_size;
  if (HH_LIKELY(!hh_guard)) hh_scrub(b, size, block_size); /* the guard's: hh_track_new_site */
  uintptr_t r = frame != NULL ? (uintptr_t)ret : (uintptr_t)__builtin_return_address(0) | (uintptr_t)ret;
  size_t c = hh_callsite_index(r);
  if (HH_UNLIKELY(heap->callsite.ret[c] != r)) return hh_track_new_site(heap, page, b, size, ret, frame);
  size_t idx = hh_range_index(page, b);
  if (t & HH_REC_PACKED)
    hh_rec_set_packed(t, idx, heap->callsite.id[c], block_size - (uint32_t)size);
  else
    hh_track_set((hh_track_rec *)t + idx, heap->callsite.id[c], size);
  return hh_stats_alloc(heap, size, block_size, b);
}

/* A block of more than 128 bytes, whose zeroing is a call (memset): apart,
 * so that hh_track_sites saves no registers for the others. */
static HH_NOINLINE HH_FRAMELESS __attribute__((unused)) void *
hh_track_sites_big(hh_heap *heap, hh_page *page, hh_block *b, size_t size, void *ret, void *frame) {
  return hh_track_site(heap, page, b, size, ret, frame);
}

static HH_NOINLINE HH_FRAMELESS __attribute__((unused)) void *hh_track_sites(hh_heap *heap, hh_page *page, hh_block *b,
                                                                             size_t size, void *ret, void *frame) {
  if (page->block_size > 128 && size > 64) return hh_track_sites_big(heap, page, b, size, ret, frame);
  return hh_track_site(heap, page, b, size, ret, frame);
}

/* The report's path from a frameless entry point (malloc, hahalloc,
 * operator new: the return address is the caller's, `tag` the entry
 * point's) for a page of packed records, which the guard never uses: a
 * known call site and a block of up to 128 bytes, or a request of up to 64,
 * take no call and save no register. The range's index comes from the fast
 * path. Anything else goes the general way. */
static HH_NOINLINE HH_FRAMELESS __attribute__((unused)) void *hh_track_packed(hh_heap *heap, hh_page *page, hh_block *b,
                                                                              size_t idx, size_t size, void *tag) {
  uintptr_t r = (uintptr_t)__builtin_return_address(0) | (uintptr_t)tag;
  size_t c = hh_callsite_index(r);
  uint32_t block_size = page->block_size;
  if (HH_UNLIKELY(block_size > 128 && size > 64)) return hh_track_sites_big(heap, page, b, size, tag, NULL);
  if (HH_UNLIKELY(heap->callsite.ret[c] != r)) return hh_track_sites(heap, page, b, size, tag, NULL);
  hh_scrub_small(b, size, block_size);
  hh_rec_set_packed(page->track, idx, heap->callsite.id[c], block_size - (uint32_t)size);
  return hh_stats_alloc(heap, size, block_size, b);
}

/*
 * The range's record and the statistics, inline. Every range records its
 * requested size (mem_lhihiks lists it). A page of slack records (a silent
 * drop-in) takes the slack alone, in the form its path gives: `slack_form`
 * is HH_REC_SLACK8 on the small path, HH_REC_SLACK16 on the medium one.
 * A page of full or packed records (the report is on) also keeps its call
 * site, which the heap's call-site table gives for a known return address;
 * a return address not in the table (first use, a runtime wrapper such as
 * strdup, deeper stacks) leaves through hh_track_new_site. A packed record's
 * slack fits: a request's root is at most 128 bytes above it (hh_aligned
 * and realloc see to the two exceptions).
 *
 * `frame == NULL` comes from malloc, hahalloc and operator new, which run
 * without a frame and reach every slow path by a tail call: `ret` is then
 * their tag alone, the return address is read here, only for the call
 * site, and the slow paths derive both addresses from their own frame
 * (HH_TAIL_ENTRY).
 */
HH_INLINE void *hh_track(hh_heap *heap, hh_page *page, hh_block *b, size_t idx, size_t size, uintptr_t slack_form,
                         void *ret, void *frame) {
  /* read before the stores, which the compiler must take to alias them */
  uintptr_t t = page->track;
  uint32_t block_size = page->block_size;
  uint32_t slack = block_size - (uint32_t)size;
  if (HH_LIKELY(t & HH_REC_SLACK)) {
    if (slack_form == HH_REC_SLACK8)
      ((uint8_t *)(t - HH_REC_SLACK8))[idx] = (uint8_t)slack;
    else
      ((uint16_t *)(t - HH_REC_SLACK16))[idx] = (uint16_t)slack;
    return hh_stats_alloc(heap, size, block_size, b);
  }
  if (slack_form == HH_REC_SLACK8 && frame == NULL && (t & HH_REC_FORM) == HH_REC_PACKED)
    return hh_track_packed(heap, page, b, idx, size, ret);
  return hh_track_sites(heap, page, b, size, ret, frame);
}

/* Takes `b`, the first range of the page's free list, whose link decoded
 * to `next` (an index below the capacity), and records and counts it. The
 * link is cleared: a live range must not look free (a later free would be
 * taken for a double free), and the leak scan must not see stale words. */
HH_INLINE void *hh_take(hh_heap *heap, hh_page *page, hh_block *b, size_t idx, uint64_t next, size_t size,
                        uintptr_t slack_form, void *ret, void *frame) {
  page->free = (uint32_t)next;
  page->used++;
  b->link = 0;
  return hh_track(heap, page, b, idx, size, slack_form, ret, frame);
}

/* The direct page's list is not empty (hh_empty_page's range reads as
 * damaged): its first index is below the capacity. One multiply gives the
 * range's offset and its link mask (hh_link_mask). A next index at or past
 * the capacity is the end of the list, or damage: the generic path tells
 * which, and never hands out a range whose link does not decode. */
HH_INLINE void *hh_alloc_direct(hh_heap *heap, hh_page *page, size_t size, uintptr_t slack_form, void *ret,
                                void *frame) {
  size_t idx = page->free;
  uint64_t m = idx * page->mix;
  hh_block *b = (hh_block *)(page->start + (uint32_t)m);
  uint64_t next = b->link ^ m ^ page->key;
  if (HH_LIKELY(next < page->capacity)) return hh_take(heap, page, b, idx, next, size, slack_form, ret, frame);
  return hh_alloc_generic(size, false, ret, frame);
}

/* The medium path: its own function, reached by a tail call as the slow
 * paths are. Inlined beside the small path, its registers made every
 * allocation save and restore two: churn ran 5 more instructions per
 * malloc and free (cachegrind), 14% of what we run beyond mimalloc. */
static HH_NOINLINE HH_FRAMELESS __attribute__((unused)) void *hh_alloc_medium(size_t size, void *ret, void *frame) {
  hh_heap *heap = hh_tls_heap;
  if (HH_LIKELY(size <= hh_medium_fast_max))
    return hh_alloc_direct(heap, heap->direct[hh_size_root[(size + HH_ALIGN - 1) / HH_ALIGN]], size, HH_REC_SLACK16,
                           ret, frame);
  return hh_alloc_generic(size, false, ret, frame);
}

/* The small path and the medium path differ in their direct table and in
 * their slack form. */
HH_INLINE void *hh_alloc_fast(size_t size, void *ret, void *frame) {
  if (HH_LIKELY(size <= HH_SMALL_DIRECT)) {
    hh_heap *heap = hh_tls_heap; /* hh_empty_heap before the first allocation */
    return hh_alloc_direct(heap, heap->small[(size + HH_ALIGN - 1) / HH_ALIGN], size, HH_REC_SLACK8, ret, frame);
  }
  return hh_alloc_medium(size, ret, frame);
}

/* A range of a page (a request that fits a medium range with the guard's
 * canary) is zeroed over its requested bytes as it is handed out on every
 * page but a slack one (hh_scrub, or hh_track_new_site's under the guard):
 * while no slack page was ever made, calloc need not zero it again. */
HH_INLINE void *hh_calloc_fast(size_t size, void *ret, void *frame) {
  if (HH_LIKELY(size <= HH_MEDIUM_MAX)) {
    void *p = hh_alloc_fast(size, ret, frame);
    if (HH_LIKELY(p != NULL) && (hh_slack_made || !hh_fits_page(size))) memset(p, 0, size);
    return p;
  }
  return hh_alloc_generic(size, true, ret, frame);
}

/* Pushes the range `b` at `idx` on its page's local free list (its link
 * names the old first range), unless its link says it is free already:
 * then nothing is written and the answer is false. Owner only; the caller
 * counts the range (`used`). */
HH_INLINE bool hh_free_push(hh_page *page, hh_block *b, uint64_t idx) {
  uint64_t mask = hh_link_mask(page, idx);
  uint64_t link = page->free ^ mask;
  if (HH_UNLIKELY((b->link ^ mask) < HH_LINK_LIMIT)) return false;
  b->link = link;
  page->free = (uint32_t)idx;
  return true;
}

/* After a local free: give the room back (hh_stats_give), then one branch
 * for "now empty" and "on the full list" (HH_USED_FULL, the sign of
 * `used`), then the fold. The calls are tail calls: the free fast path needs
 * no stack frame. */
HH_INLINE void hh_free_count(hh_heap *heap, hh_page *page) {
#if !HH_ASM_GOTO
  bool fold = hh_stats_give(heap, page->block_size);
  if (HH_UNLIKELY((int32_t)--page->used <= 0)) return hh_page_emptied(heap, page);
  if (HH_UNLIKELY(fold)) return hh_stats_flush(heap);
#else
  /* The C above, in assembly (see HH_ASM_GOTO): the add of hh_stats_give,
   * its compare with HH_FLUSH_BYTES, and the decrement of `used`, whose
   * flags give the branch. */
  int64_t r = (int64_t)page->block_size; /* room after the free, kept in a register */
  asm goto("addq %[room], %[r]\n\t"
           "movq %[r], %[room]\n\t"
           "subl $1, %[used]\n\t"
           "jle %l[emptied]\n\t"
           "cmpq %[bound], %[r]\n\t"
           "jg %l[fold]"
           : [room] "+m"(heap->stats.room), [used] "+m"(page->used), [r] "+r"(r)
           : [bound] "i"(HH_FLUSH_BYTES)
           : "cc"
           : emptied, fold);
  return;
emptied:
  return hh_page_emptied(heap, page);
fold:
  return hh_stats_flush(heap);
#endif
}

/* The chunk of the address's low 47 bits, an index of hh_tags. Above
 * them (not a user address) it may name one of our mappings, but then the
 * range's offset from its page is at least 2^47 - 4 MiB and its index far
 * past any capacity, so hh_small_range refuses it. */
HH_INLINE uintptr_t hh_chunk_of(uintptr_t a) {
  _Static_assert(HH_REG_CHUNK_BITS == 47 - HH_MAPPING_SHIFT, "47-bit table");
  return (a << (64 - 47)) >> (64 - 47 + HH_MAPPING_SHIFT);
}

/* In a chunk that holds one of our page mappings (its tag is not 0): the
 * small page of the slice at `a`, and whether `a` starts a carved range of
 * it, whose index goes to `*idx`. A slice that holds no small page gives
 * hh_empty_page, whose magic (0) fails the check. One multiply gives the
 * index (high half) and whether `a` starts a range (low half), see
 * hh_range_index. Only the `owner` of the page may read its capacity
 * without an atomic load (which costs the fast path a register move). */
HH_INLINE bool hh_small_range(uintptr_t a, hh_page **pagep, uint64_t *idx, bool owner) {
  hh_mapping *m = (hh_mapping *)(hh_chunk_of(a) << HH_MAPPING_SHIFT);
  hh_page *page = m->slices[(a >> HH_SLICE_SHIFT) & (HH_SLICES - 1)].small;
  unsigned __int128 at = (unsigned __int128)(a - (uintptr_t)page->start) * page->magic;
  uint64_t i = (uint64_t)(at >> 64);
  *pagep = page;
  *idx = i;
  return HH_LIKELY((uint64_t)at < page->magic && i < (owner ? page->capacity : hh_page_capacity(page)));
}

HH_INLINE void hh_free_fast(void *p, const char *call) {
  uintptr_t a = (uintptr_t)p;
  hh_heap *heap = hh_tls_heap;
  hh_page *page;
  uint64_t idx;
  /* a range of a small page of one of my heap's mappings (hh_tags: the
   * tag of hh_empty_heap and of untagged heaps matches no byte); a range
   * already free is left to the generic path, which names the double free */
  if (HH_LIKELY(__atomic_load_n(hh_chunk_tag_at(hh_chunk_of(a)), __ATOMIC_RELAXED) == heap->tag)) {
    if (HH_LIKELY(hh_small_range(a, &page, &idx, true))) {
      if (HH_LIKELY(hh_free_push(page, p, idx))) return hh_free_count(heap, page);
    }
  }
  hh_free_generic(p, call);
}

#endif
