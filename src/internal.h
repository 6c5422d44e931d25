/*
 * hahalloc internals: the glossary, the data structures and their invariants.
 *
 * Beside this header, one per concern: fast.h (the fast paths), entry.h
 * (entry points and the tail-call frames), stats.h (statistics), os.h (the
 * kernel, the registry, meta memory), options.h (HAHALLOC_* settings),
 * hooks.h (what the allocator calls in the report), lookup.h (validated
 * pointers), lock.h, clock.h and format.h.
 *
 * Glossary (the seed's words first, then ours)
 * --------------------------------------------
 * mapping   A 4 MiB chunk of address space from mmap, aligned to 4 MiB, owned
 *           by one thread heap. Its first 64 KiB slice holds the mapping
 *           header (struct hh_mapping); the other 63 slices are cut into
 *           pages. Any pointer inside it finds the header by masking.
 * slice     A 64 KiB unit of a mapping. Every slice has a descriptor (struct
 *           hh_page) in the mapping header; a span of slices is described by
 *           its first slice's descriptor, and every other slice of a used span
 *           records its distance to that first one (slice_offset).
 * page      A span of 1..16 slices that serves one root: it is cut into ranges
 *           of the root's block size. Each page keeps its own free lists
 *           (free-list sharding, after mimalloc), so a free touches only the
 *           page it belongs to.
 * range     One block handed to the user. Small ranges carry no header: their
 *           page and size come from the pointer's address. A free range holds
 *           its link (see below) in its first word.
 * large range
 *           A range of more than HH_MEDIUM_MAX bytes: a span of whole slices
 *           holding that single range. Freed spans coalesce with free
 *           neighbours in the same mapping.
 * root      A size class (HH_ROOTS of them, from 16 bytes to HH_MEDIUM_MAX,
 *           at most 25% apart). A page belongs to one root, so similar sizes
 *           stay together, as in the seed.
 * oversize mapping
 *           A mapping of its own for a range too big for a mapping (more than
 *           HH_LARGE_MAX bytes), or with an alignment pages cannot give. Its
 *           header is out of band in meta memory; the range is the mapping.
 * thread heap
 *           Per-thread state (struct hh_heap): one page queue per root, the
 *           free spans of its mappings, and statistics. Only its owner thread
 *           changes its lists, pages and counts, so the fast paths take no
 *           lock and no atomic RMW. Other threads push on its pages'
 *           thread_free lists, set its atomic flags, and rewrite the record
 *           of a range of its pages that they realloc in place (a range
 *           belongs to whoever holds the pointer).
 * remote free
 *           A free by a thread that does not own the range's mapping: the range
 *           is pushed with one CAS on the page's thread_free list, which the
 *           owner collects when it needs memory.
 * registry  A two-level table from each 4 MiB chunk of address space to the
 *           header that owns it (a mapping, an oversize mapping, a cached
 *           oversize mapping, or meta memory). It lets free() reject
 *           pointers that hahalloc never returned without touching unmapped
 *           memory. The chunk tags (one byte per chunk) answer the free
 *           fast path's only question: is this chunk a mapping of pages
 *           that my heap owns? (hh_tags)
 * abandoned heap
 *           The heap of a thread that exited, with the ranges it still holds;
 *           the next thread to start takes it over, or a thread freeing into
 *           it or needing a mapping merges it. An orphan is a heap a fork
 *           child inherited from another thread: marked abandoned, never
 *           adopted, since the fork may have caught it mid-update.
 * link      The first word of a free range: the index of the next range on
 *           its free list, encoded as index ^ hh_link_mask(page, own index),
 *           a mask made of the page's two secrets and the range's own place.
 *           A range is taken only when its link decodes to an index below the
 *           page's capacity (or to HH_LINK_END): a forged or damaged link is
 *           reported and never followed, and no pointer is ever read from
 *           freed memory. A link that decodes below HH_LINK_LIMIT marks the
 *           range free: a free that finds one is a double free.
 * tracking  Every live range has a record in an array at the end of its
 *           page, out of band of user data: its requested size, and its
 *           call site while the report, the profile or the guard is on
 *           (see hh_rec_set for the record's three forms).
 *
 * Invariants
 * - mapping->heap is written only by the thread that owns or adopts the
 *   mapping, so "mapping->heap == my heap" is a race-free ownership test.
 * - Every slice descriptor's kind is accurate: free-span interiors are FREE.
 * - A range at index < page->capacity is either live, or on one of the
 *   page's two free lists (free, thread_free) with a link that decodes below
 *   HH_LINK_LIMIT. page->free is HH_LINK_END or an index below capacity.
 * - A page in a heap's small[]/direct[] tables has a non-empty free list, or
 *   is hh_empty_page: the allocation fast path reads the head range without
 *   checking it (hh_heap_set_direct).
 * - page->used counts the ranges not on the free list; remote frees stay
 *   counted until the owner collects them.
 */
#ifndef HH_INTERNAL_H
#define HH_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HH_LIKELY(x) __builtin_expect(!!(x), 1)
#define HH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HH_EXPORT __attribute__((visibility("default")))
#define HH_NOINLINE __attribute__((noinline))

#define HH_ALIGN 16
#define HH_SLICE_SHIFT 16
#define HH_SLICE_SIZE ((size_t)1 << HH_SLICE_SHIFT)
#define HH_MAPPING_SHIFT 22
#define HH_MAPPING_SIZE ((size_t)1 << HH_MAPPING_SHIFT)
#define HH_MAPPING_MASK (HH_MAPPING_SIZE - 1)
#define HH_SLICES (HH_MAPPING_SIZE / HH_SLICE_SIZE)    /* 64, slice 0 is the header */
#define HH_MEDIUM_MAX ((size_t)128 << 10)              /* largest root block */
#define HH_LARGE_MAX ((HH_SLICES - 1) * HH_SLICE_SIZE) /* largest large range */
#define HH_SMALL_DIRECT 1024                           /* sizes with a direct root table */
#define HH_ROOTS 48
#define HH_NO_ROOT HH_ROOTS /* a direct[] slot that never holds a page */
#define HH_MAX_REQUEST (((size_t)1 << 47) - HH_MAPPING_SIZE)

/* ------------------------------------------------------------------ types */

/* A range on a free list: its first word is its link (see the glossary),
 * the index of the next range on the list masked with hh_link_mask. No
 * pointer is stored: a link can only name a range of its own page, and a
 * decoded index is checked against the page's capacity before the range it
 * names is read. */
typedef struct hh_block {
  uint64_t link;
} hh_block;
#define HH_LINK_END 0xffffu    /* the end of a free list */
#define HH_LINK_LIMIT 0x10000u /* links below this mark a free range; capacities are below */

typedef struct hh_track_rec {
  uint32_t site; /* allocation site id (report/site.c), 0 = unknown */
  uint32_t size; /* requested bytes */
} hh_track_rec;
/* A range's record, written with one 8-byte store (site low, size high on
 * a little-endian machine). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "a record is written as one word");
static inline void hh_track_set(hh_track_rec *rec, uint32_t site, size_t size) {
  uint64_t word = site | (uint64_t)size << 32;
  __builtin_memcpy(rec, &word, sizeof word);
}

/* MAKING: a span taken for a page whose fields are not all written yet; it
 * becomes SMALL or LARGE last, so that a thread stopped (or a fork taken)
 * meanwhile shows the report no half-made page. */
enum hh_page_kind { HH_PAGE_FREE = 0, HH_PAGE_SMALL = 1, HH_PAGE_LARGE = 2, HH_PAGE_HEADER = 3, HH_PAGE_MAKING = 4 };

struct hh_heap;

/* page->splice. A page's remote frees become its free list unchecked when
 * its own list is empty; the list is checked as its ranges are taken. */
enum hh_splice {
  HH_SPLICE_CHECKED, /* every range on the free list was checked, or taken */
  HH_SPLICE_PENDING, /* unchecked remote frees may be on it: `used` is trusted once the list runs out */
  HH_SPLICE_NEVER,   /* a damaged or doubly freed range was found: remote frees are always walked */
};

typedef struct hh_page {
  /* First cache line: everything the owner's fast paths touch. */
  uint32_t free;         /* index of the first range ready for the owner,
                                      HH_LINK_END when none: LIFO, so the range freed
                                      last, still in cache, is reused first */
  uint32_t used;         /* see invariants; HH_USED_FULL while on the full list */
  uint8_t *start;        /* first range */
  uintptr_t track;       /* the ranges' records and their form: see hh_rec_set
                                      (large: &large_rec) */
  uint64_t magic;        /* ceil(2^64 / block_size): see hh_range_index */
  struct hh_page *small; /* every slice of a SMALL page: that page; else
                                      &hh_empty_page, whose magic (0) matches no range */
  union {
    uint64_t mix; /* block_size | key_mul << 32: one multiply by an
                                      index gives the range's offset (low half) and
                                      part of its link mask (hh_link_mask) */
    struct {
      uint32_t block_size; /* bytes per range; 0 when FREE */
      uint32_t key_mul;    /* secret, per page */
    };
  };
  uint64_t key;      /* secret, per page: see hh_link_mask */
  uint64_t capacity; /* ranges carved so far: indexes below are; written
                                      with relaxed atomics (other threads' frees read it) */
  /* Second line: written by other threads, or rarely used. */
  uint8_t dirty __attribute__((aligned(64))); /* memory may hold old data (FREE span: still committed) */
  uint8_t kind;                               /* enum hh_page_kind */
  uint8_t root;                               /* root index; HH_ROOTS for large ranges */
  uint8_t in_full;                            /* on the heap's full list (the owner's view) */
  uint32_t slice_offset;                      /* distance to the span's first slice */
  uint32_t reserved;                          /* ranges that fit in the page */
  uint32_t damaged;                           /* 1 + index of a free range whose link was
                                      overwritten (set aside, reported), or 0 */
  _Atomic(uint64_t) thread_free;              /* ranges other threads freed: a stack, see
                                      hh_remote_head; and HH_REMOTE_FULL */
  hh_track_rec large_rec;                     /* the record of a large range (8-byte aligned: a
                                      full record's form, see hh_rec_set) */
  uint32_t slice_count;                       /* slices in the span (first slice only) */
  uint8_t empty_tick;                         /* a small page found empty by the last decay tick */
  uint8_t splice;                             /* enum hh_splice: may remote frees become the free
                                      list unchecked (hh_page_collect) */
  uint8_t purge_refused;                      /* a dirty FREE span the kernel would not purge (its
                                      pages are locked: mlock, mlockall): not counted in
                                      dirty_bytes, not tried again until it changes; 2: an
                                      empty mapping's, seen so at a decay tick (mapping.c) */
  struct hh_page *next, *prev;                /* root queue, full list or span bin */
  void *scan_marks;                           /* the leak scan's marks for this page's ranges: valid
                                      only while they lie in the running scan's memory */
} __attribute__((aligned(64))) hh_page;
_Static_assert(offsetof(hh_page, capacity) < 64, "the fast paths' fields share one cache line");

/* The owner's copy of in_full, in the sign bit of `used`: a free decrements
 * `used` and takes one branch when the result is not positive, which covers
 * both "the page is now empty" and "the page is on the full list". Only the
 * owner reads and writes it; other threads see HH_REMOTE_FULL. */
#define HH_USED_FULL 0x80000000u
static inline uint32_t hh_page_used(const struct hh_page *page) { return page->used & ~HH_USED_FULL; }
_Static_assert(sizeof(hh_page) == 128, "a slice descriptor is two cache lines");
_Static_assert(offsetof(hh_page, large_rec) % 8 == 0, "page->track's low bits are its form");

/* A block the program asked the report to ignore (hahalloc_ignore) has this
 * bit in its record's site: it is an anchor of the scan, and is counted as
 * suppressed. Site ids stay far below it. */
#define HH_SITE_IGNORED 0x80000000u

/*
 * A range's record, in one of four forms, told by the low three bits of
 * page->track (the array's address is 8-byte aligned):
 * - 0, full: an hh_track_rec, the call site and the requested size. Pages
 *   of more than HH_PACKED_MAX_BLOCK bytes while the report or the profile
 *   is on, and every page while the guard is.
 * - 1, packed: one 32-bit word, the requested size's distance below the
 *   block size in its low 10 bits (the slack), the call site in the next 21,
 *   HH_SITE_IGNORED on top. Pages of at most HH_PACKED_MAX_BLOCK bytes while
 *   the report or the profile is on, and site ids stay below 2^21
 *   (report/site.c). A 16-byte range costs 20 bytes, not 24.
 * - 4 or 6, slack: the slack alone, with the top bit kept for
 *   HH_SITE_IGNORED: one byte on the pages of small roots (HH_REC_SLACK8),
 *   two on the pages of medium roots (HH_REC_SLACK16). A silent drop-in
 *   keeps no call site, and a 16-byte range then costs 17 bytes, not 24.
 *   A malloc's slack is below the gap to the root beneath, at most 128
 *   bytes among small roots and 16 KiB among medium ones (hh_size_root_init checks),
 *   so each fast path knows its form from its size alone: one test for "a
 *   slack form" and one store, where the requested size took a choice of
 *   widths (hh_track).
 * An aligned request or a realloc kept in place can leave more slack than a
 * form keeps: hh_aligned takes a root whose pages all keep it
 * (hh_root_slack_max), realloc moves (hh_rec_fits).
 * A new range's record replaces the old one whole, the ignore bit included.
 */
#define HH_REC_FORM ((uintptr_t)7)
#define HH_REC_PACKED ((uintptr_t)1)
#define HH_REC_SLACK ((uintptr_t)4) /* the bit the two slack forms share */
#define HH_REC_SLACK8 ((uintptr_t)4)
#define HH_REC_SLACK16 ((uintptr_t)6)
#define HH_PACKED_MAX_BLOCK 1024u
#define HH_PACKED_SLACK_BITS 10
#define HH_PACKED_SLACK_MAX ((1u << HH_PACKED_SLACK_BITS) - 1)
#define HH_PACKED_SITE_MASK ((1u << (31 - HH_PACKED_SLACK_BITS)) - 1)
#define HH_SLACK8_MAX 0x7fu
#define HH_SLACK16_MAX 0x7fffu
_Static_assert(HH_PACKED_MAX_BLOCK == HH_SMALL_DIRECT, "packed pages are small roots' pages");
extern bool hh_slack_records;  /* pages made now take slack records */
extern bool hh_packed_records; /* pages made now up to HH_PACKED_MAX_BLOCK take packed records */
extern bool hh_packed_made;    /* packed pages may exist: never cleared */
extern bool hh_slack_made;     /* slack pages may exist: never cleared */

/* The slack form of a page of `block_size` ranges. */
static inline uintptr_t hh_rec_slack_form(uint32_t block_size) {
  return block_size <= HH_SMALL_DIRECT ? HH_REC_SLACK8 : HH_REC_SLACK16;
}

/* Bytes per record of a form other than full. */
static inline unsigned hh_rec_form_width(uintptr_t form) {
  return form == HH_REC_SLACK8 ? 1 : form == HH_REC_SLACK16 ? 2 : 4;
}

/* The most slack every record of a root's pages keeps, whatever forms its
 * pages may have. */
static inline uint32_t hh_root_slack_max(uint32_t block_size) {
  uint32_t max = UINT32_MAX;
  if (hh_slack_made) max = block_size <= HH_SMALL_DIRECT ? HH_SLACK8_MAX : HH_SLACK16_MAX;
  if (hh_packed_made && block_size <= HH_PACKED_MAX_BLOCK && max > HH_PACKED_SLACK_MAX) max = HH_PACKED_SLACK_MAX;
  return max;
}

/* The ignore bit of a slack form, and the slack below it. */
static inline uint32_t hh_rec_top_bit(uintptr_t form) { return form == HH_REC_SLACK8 ? 0x80u : 0x8000u; }

/* Writes a slack record's word (the slack, and the ignore bit); `t` is
 * page->track, of a slack form. */
static inline void hh_rec_set_slack(uintptr_t t, size_t idx, uint32_t word) {
  uintptr_t form = t & HH_REC_FORM;
  if (form == HH_REC_SLACK8)
    ((uint8_t *)(t - form))[idx] = (uint8_t)word;
  else
    ((uint16_t *)(t - form))[idx] = (uint16_t)word;
}

/* Writes a packed record; `t` is page->track, of the packed form, and the
 * slack is at most HH_PACKED_SLACK_MAX (hh_rec_fits). */
static inline void hh_rec_set_packed(uintptr_t t, size_t idx, uint32_t site, uint32_t slack) {
  ((uint32_t *)(t - HH_REC_PACKED))[idx] = site << HH_PACKED_SLACK_BITS | slack;
}

/* The most slack a record of the page keeps. */
static inline uint32_t hh_rec_slack_max(const hh_page *page) {
  uintptr_t form = page->track & HH_REC_FORM;
  if (form == HH_REC_PACKED) return HH_PACKED_SLACK_MAX;
  if (form & HH_REC_SLACK) return hh_rec_top_bit(form) - 1;
  return UINT32_MAX;
}

/* Whether a range of the page can record `size` bytes (at most its block). */
static inline bool hh_rec_fits(const hh_page *page, size_t size) {
  return page->block_size - size <= hh_rec_slack_max(page);
}

/* The record's raw word: a full record's site, or a packed or slack record. */
static inline uint32_t hh_rec_word(uintptr_t t, size_t idx) {
  uintptr_t form = t & HH_REC_FORM, a = t - form;
  if (form == HH_REC_SLACK8) return ((const uint8_t *)a)[idx];
  if (form == HH_REC_SLACK16) return ((const uint16_t *)a)[idx];
  return ((const uint32_t *)a)[idx];
}

/* Records a new range, or a range realloc kept in place (hh_rec_fits). A
 * slack record drops `site`: such pages are made only while no site is
 * captured. */
static inline void hh_rec_set(hh_page *page, size_t idx, uint32_t site, size_t size) {
  uintptr_t t = page->track;
  uintptr_t form = t & HH_REC_FORM;
  if (form == 0)
    hh_track_set((hh_track_rec *)t + idx, site, size);
  else if (form == HH_REC_PACKED)
    hh_rec_set_packed(t, idx, site, page->block_size - (uint32_t)size);
  else
    hh_rec_set_slack(t, idx, page->block_size - (uint32_t)size);
}

/* The requested size of range `idx`. */
static inline uint32_t hh_rec_size(const hh_page *page, size_t idx) {
  uintptr_t t = page->track;
  if (t == 0) return page->block_size;
  uintptr_t form = t & HH_REC_FORM;
  if (form == 0) return ((const hh_track_rec *)t)[idx].size;
  if (form == HH_REC_PACKED) return page->block_size - (hh_rec_word(t, idx) & HH_PACKED_SLACK_MAX);
  return page->block_size - (hh_rec_word(t, idx) & (hh_rec_top_bit(form) - 1));
}

/* The call site of range `idx` (0: none kept), with HH_SITE_IGNORED. */
static inline uint32_t hh_rec_site(const hh_page *page, size_t idx) {
  uintptr_t t = page->track;
  if (t == 0) return 0;
  uintptr_t form = t & HH_REC_FORM;
  if (form == 0) return ((const hh_track_rec *)t)[idx].site;
  uint32_t w = hh_rec_word(t, idx);
  if (form == HH_REC_PACKED) return (w >> HH_PACKED_SLACK_BITS & HH_PACKED_SITE_MASK) | (w & HH_SITE_IGNORED);
  return (w & hh_rec_top_bit(form)) ? HH_SITE_IGNORED : 0;
}

/* Grows range `idx`'s record to `size` bytes, at most its block, keeping
 * its site and ignore bit (malloc_usable_size told the program it may use
 * them). */
static inline void hh_rec_grow(hh_page *page, size_t idx, uint32_t size) {
  uintptr_t t = page->track;
  if (t == 0) return;
  uintptr_t form = t & HH_REC_FORM;
  if (form == 0) {
    ((hh_track_rec *)t)[idx].size = size;
  } else if (form == HH_REC_PACKED) {
    uint32_t *w = (uint32_t *)(t - HH_REC_PACKED) + idx;
    *w = (*w & ~HH_PACKED_SLACK_MAX) | (page->block_size - size);
  } else {
    hh_rec_set_slack(t, idx, (page->block_size - size) | (hh_rec_word(t, idx) & hh_rec_top_bit(form)));
  }
}

/* Marks range `idx` as one the report ignores (hahalloc_ignore). */
static inline void hh_rec_ignore(hh_page *page, size_t idx) {
  uintptr_t t = page->track;
  if (t == 0) return;
  uintptr_t form = t & HH_REC_FORM;
  if (form == 0)
    ((hh_track_rec *)t)[idx].site |= HH_SITE_IGNORED;
  else if (form == HH_REC_PACKED)
    ((uint32_t *)(t - HH_REC_PACKED))[idx] |= HH_SITE_IGNORED;
  else
    hh_rec_set_slack(t, idx, hh_rec_word(t, idx) | hh_rec_top_bit(form));
}

/* page->thread_free: bit 0 is HH_REMOTE_FULL, set by the owner while the page
 * sits on its full list; bits 1-31 are the index of the first range other
 * threads freed, plus one (0: none); bits 32-63 count the ranges pushed
 * since the owner last took the list. Pushes and the owner's changes of the
 * bit are read-modify-writes of this one word, so a remote free learns
 * atomically, from the value its push replaced, whether it must wake the
 * owner: no wake-up can be lost. The count lets the owner check that the
 * list it takes holds each range once (hh_page_collect). */
#define HH_REMOTE_FULL 1u
static inline uint64_t hh_remote_head(uint64_t tf) { /* an index, or HH_LINK_END */
  uint32_t h = (uint32_t)tf >> 1;
  return h == 0 ? HH_LINK_END : h - 1;
}
static inline uint64_t hh_remote_count(uint64_t tf) { return tf >> 32; }
/* The word after pushing range `idx` on the list of word `tf`. */
static inline uint64_t hh_remote_push(uint64_t tf, uint64_t idx, uint64_t n) {
  return (hh_remote_count(tf) + n) << 32 | (idx + 1) << 1 | (tf & HH_REMOTE_FULL);
}

/* The mask of the link of the range at `idx`: idx * mix (whose high half
 * mixes in the page's key_mul) xored with the page's key. One read of a free
 * range shows its own mask (and 32 bits of `key`), not the page's secrets:
 * a link of another range cannot be forged from it. Both secrets are drawn
 * again whenever a page is set up. */
static inline uint64_t hh_link_mask(const struct hh_page *page, uint64_t idx) { return idx * page->mix ^ page->key; }
static inline uint8_t *hh_range_at(const struct hh_page *page, uint64_t idx) {
  return page->start + (uint32_t)(idx * page->mix);
}
/* What the link of the range at `idx` decodes to: the next index,
 * HH_LINK_END, or anything else (a live range's cleared link, or damage)
 * for a range that is not a sound member of a free list. The report's walk
 * and the allocator read links only through this. */
static inline uint64_t hh_block_next(const struct hh_page *page, uint64_t idx) {
  return ((const hh_block *)hh_range_at(page, idx))->link ^ hh_link_mask(page, idx);
}
/* The range at `idx` (below capacity) is on a free list, or being pushed on
 * one; live ranges decode to noise (a chance of 2^-48 to look free). */
static inline bool hh_range_is_free(const struct hh_page *page, uint64_t idx) {
  return hh_block_next(page, idx) < HH_LINK_LIMIT;
}
static inline uint64_t hh_page_capacity(const struct hh_page *page) { /* from any thread */
  return __atomic_load_n(&page->capacity, __ATOMIC_RELAXED);
}

typedef struct hh_mapping {
  uintptr_t cookie;               /* hh_key ^ address: a sanity check */
  uint32_t kind;                  /* HH_MAP_PAGES */
  uint32_t free_slices;           /* slices on the heap's span bins */
  _Atomic(struct hh_heap *) heap; /* owner */
  struct hh_mapping *next, *prev; /* the owner's mappings */
  hh_page slices[HH_SLICES];
} hh_mapping;

/* The header of an oversize mapping lives in meta memory, out of band: the
 * mapping is aligned to 4 MiB (or more), is a whole number of chunks, and
 * every one of its chunks is registered to this header. The range starts at
 * the mapping's first byte. */
typedef struct hh_oversize {
  uintptr_t cookie;                /* hh_key ^ address of this header */
  uint32_t kind;                   /* HH_MAP_OVERSIZE */
  uint32_t site;                   /* tracking: allocation site */
  size_t map_size;                 /* bytes mapped */
  size_t size;                     /* requested bytes */
  uint8_t *user;                   /* the range = the mapping */
  bool dirty;                      /* reused from the cache: not zero */
  struct hh_oversize *next, *prev; /* all live oversize mappings */
  void *scan_marks;                /* the leak scan's mark (see hh_page) */
} hh_oversize;

enum {
  HH_MAP_PAGES = 0x6d617070,    /* a mapping of pages */
  HH_MAP_OVERSIZE = 0x6f766572, /* a live oversize mapping */
  HH_MAP_META = 0x6d657461,     /* meta memory */
  HH_MAP_CACHED = 0x63616368,   /* a freed oversize mapping kept for reuse */
};

/* What the registry points to: every header starts like this. */
typedef struct hh_header {
  uintptr_t cookie;
  uint32_t kind;
} hh_header;

typedef struct hh_queue {
  hh_page *first, *last;
} hh_queue;

/* Statistics kept by each heap without atomics, summed for the report and
 * mem_lhihiks, in every mode: the counting is in stats.h, the folding in stats.c. */
typedef struct hh_stats {
  /* (ordered so that the compiler does not pair the fast path's updates
   * into vector operations, which take more instructions) */
  uint64_t allocs;          /* frees = allocs - live ranges, at report time */
  uint64_t tally;           /* allocations from roots since its last carry: see
                                      hh_stats_alloc */
  int64_t hi;               /* climbing: highest share since the last fold; else the
                                      mark (see stats.c) */
  uint64_t bytes_allocated; /* requested bytes, all time */
  int64_t room;             /* hi - share now: bytes until the slow path */
  bool climbing;            /* at the global peak (see stats.c) */
} hh_stats;

/* Call site -> site id, filled by hh_site_capture at depth 1 for call sites
 * outside the runtime's wrappers, where the return address alone decides
 * the site. Kept in the heap, which the fast path holds in a register; the
 * mapping is the same for every thread, so a heap taken over by another
 * thread keeps a valid table. */
/* The low bits of a return address index it: they are as good as random
 * (calls sit anywhere in the code), and no hash is cheaper. An entry has a
 * second place, its neighbour (index ^ 1), which hh_track_new_site looks at
 * before it captures anything, so two hot call sites that share an index do
 * not evict each other. */
#define HH_CALLSITE_BITS 8
typedef struct hh_callsite_cache {
  uintptr_t ret[1u << HH_CALLSITE_BITS];
  uint32_t id[1u << HH_CALLSITE_BITS];
} hh_callsite_cache;
static inline size_t hh_callsite_index(uintptr_t ret) { return (size_t)(ret & ((1u << HH_CALLSITE_BITS) - 1)); }

typedef struct hh_heap {
  /* current page of the root of each size up to HH_SMALL_DIRECT, indexed by
   * (size + 15) / 16: the malloc fast path's one lookup for small sizes.
   * Mirrors direct[] (hh_heap_set_direct), never NULL. */
  hh_page *small[HH_SMALL_DIRECT / HH_ALIGN + 1];
  hh_page *direct[HH_ROOTS + 1]; /* current page per root, never NULL; the last,
                                      HH_NO_ROOT, always hh_empty_page */
  hh_queue queue[HH_ROOTS];      /* pages with (possibly) free ranges */
  hh_queue full;                 /* pages found full, and large ranges */
  hh_queue spans[HH_SLICES];     /* free spans by slice count */
  uint64_t span_bits;            /* non-empty span bins */
  size_t dirty_bytes;            /* committed bytes in free spans */
  size_t dirty_recent;           /* of which made dirty since the last decay tick */
  uint64_t decay_at;             /* coarse ms: the next decay tick; 0: no dirty span */
  size_t used_high;              /* most slices in use since the last decay tick */
  size_t used_high_prev;         /* ... in the tick before it */
  size_t free_slices;            /* slices in free spans */
  size_t mapped_slices;          /* slices of all its mappings (63 each) */
  hh_mapping *mappings;          /* owned mappings */
  uint32_t empty_mappings;       /* mappings whose slices are all free */
  uint64_t rng;                  /* draws the pages' secrets (hh_page_init) */
  uint8_t tag;                   /* see hh_tags */
  uint32_t sweep_tick;           /* refills since the last sweep of the full list */
  uint32_t sweep_gap;            /* refills between such sweeps: SWEEP_EVERY, or the pages the last one read */
  uint32_t flag_gap;             /* refills a raised remote_full may wait: the pages the last sweep read / 64 */
  hh_stats stats;
  int tid;
  /* Ranges of another heap's page this thread freed and has not pushed yet
   * (hh_remote_flush): their page (NULL: none), the first and last of
   * their chain, and how many. */
  struct hh_page *pending_page;
  uint32_t pending_head, pending_tail, pending_count;
  uint8_t in_pending; /* the chain is being changed: a free from a signal handler leaves it alone */
  /* The one line other threads' frees touch, alone on it: were it shared
   * with the owner's counters, every remote free would take the line from
   * the owner's core and the owner's next malloc would take it back. */
  _Atomic(int) remote_full __attribute__((aligned(64))); /* a remote free hit a full page */
  _Atomic(int) abandoned;                                /* owner has exited */
  _Atomic(uint64_t) abandoned_freed;                     /* bytes other threads freed into it since it was swept */
  uint64_t abandoned_at;                                 /* when it was last abandoned (hh_coarse_ms) */
  uint64_t trim_round;                                   /* the last malloc_trim that swept it (heap list's lock) */
  bool lingering __attribute__((aligned(64)));           /* taken by a thread past its heap's destructor (heap.c) */
  bool warm;                 /* abandoned with dirty memory kept for its next owner (heap.c) */
  bool forked_away;          /* in a fork child: the heap of a thread the fork left behind, maybe
                                caught in the middle of an update (heap.c, atfork_child) */
  bool fork_listed;          /* on the abandoned or spare list at a fork (atfork_child only) */
  uintptr_t linger_thread;   /* lingering: the descriptor (pthread_self) of the thread that took it */
  struct hh_heap *next_heap; /* all heaps (hh_heaps) */
  struct hh_heap *next_abandoned;
  hh_callsite_cache callsite;
} hh_heap;

/* Puts p between `prev` and `next`, neighbours in q; NULL stands for q's end. */
static inline void hh_queue_link(hh_queue *q, hh_page *p, hh_page *prev, hh_page *next) {
  p->prev = prev;
  p->next = next;
  *(prev != NULL ? &prev->next : &q->first) = p;
  *(next != NULL ? &next->prev : &q->last) = p;
}
static inline void hh_queue_push_front(hh_queue *q, hh_page *p) { hh_queue_link(q, p, NULL, q->first); }
static inline void hh_queue_push_back(hh_queue *q, hh_page *p) { hh_queue_link(q, p, q->last, NULL); }
static inline void hh_queue_remove(hh_queue *q, hh_page *p) {
  if (p->prev)
    p->prev->next = p->next;
  else
    q->first = p->next;
  if (p->next)
    p->next->prev = p->prev;
  else
    q->last = p->prev;
  p->next = p->prev = NULL;
}

/* ------------------------------------------------------------------ globals */

extern uintptr_t hh_key; /* random, set at init */
extern size_t hh_guard;  /* the guard's bytes after every block (guard.h), 0 when off */
/* A request the pages serve (a small or medium range, the guard's canary
 * included); a bigger one takes a large range or an oversize mapping. */
static inline bool hh_fits_page(size_t size) { return size + hh_guard <= HH_MEDIUM_MAX; }
/* The thread's heap for the fast paths: never NULL. A thread without a heap
 * (not started yet, or exiting) has hh_empty_heap, whose pages are all the
 * empty page, so its fast paths fall through to the slow ones without a
 * NULL check; everything else asks hh_heap_mine(). */
extern __thread hh_heap *hh_tls_heap __attribute__((tls_model("initial-exec")));
extern hh_heap hh_empty_heap;
/* Heap tags, see hh_tags. */
#define HH_TAG_MAX 253    /* heap tags 1..253 */
#define HH_TAG_SHARED 254 /* a mapping of an untagged heap */
#define HH_TAG_NONE 255   /* an untagged heap, or hh_empty_heap: matches no chunk */
static inline uint8_t hh_mapping_tag(const hh_heap *owner) {
  return owner->tag == HH_TAG_NONE ? HH_TAG_SHARED : owner->tag;
}
static inline hh_heap *hh_heap_mine(void) {
  hh_heap *h = hh_tls_heap;
  return h == &hh_empty_heap ? NULL : h;
}
extern const uint32_t hh_root_size[HH_ROOTS];
extern const uint8_t hh_root_slices[HH_ROOTS];
extern const uint8_t hh_small_root[HH_SMALL_DIRECT / HH_ALIGN + 1];
/* Root of every size up to HH_MEDIUM_MAX, indexed by (size + 15) / 16: the
 * malloc fast path's one lookup. A constant table (root.c). */
extern const uint8_t hh_size_root[HH_MEDIUM_MAX / HH_ALIGN + 1];
/* The largest size malloc's medium fast path takes: HH_MEDIUM_MAX, or 0
 * under the guard (hh_size_root has no room for the guard's bytes). */
extern size_t hh_medium_fast_max;
/* Roots up to HH_SMALL_DIRECT, and where each sits in hh_heap.small: root
 * r < HH_SMALL_ROOTS at indexes [hh_small_from[r], hh_small_from[r + 1]). */
#define HH_SMALL_ROOTS 20
extern uint8_t hh_small_from[HH_SMALL_ROOTS + 1];
void hh_size_root_init(void);
/* The direct page of a root with no page: its list reads as empty (page.c). */
extern hh_page hh_empty_page;
/* The root's current page, for the allocation fast paths. */
static inline void hh_heap_set_direct(hh_heap *heap, unsigned root, hh_page *page) {
  heap->direct[root] = page;
  if (root < HH_SMALL_ROOTS) {
    /* the guard (guard.c) leaves small[] empty: its sizes take larger roots */
    hh_page *fast = hh_guard ? &hh_empty_page : page;
    for (unsigned i = hh_small_from[root]; i < hh_small_from[root + 1]; i++) heap->small[i] = fast;
  }
}

/* ------------------------------------------------------------------ root.c */

/* The root of a size above 128 bytes: four roots per doubling. With
 * s = size - 1 in [2^b, 2^(b+1)), the root is 8 + (b - 7) * 4 plus the
 * quarter of the doubling s falls in. A constant expression for a constant
 * size (hh_size_root's initializer). */
#define HH_ROOT_ABOVE_128(size)                                      \
  (8u + (unsigned)(63 - __builtin_clzl((size_t)(size)-1) - 7) * 4u + \
   (unsigned)((((size_t)(size)-1) >> (63 - __builtin_clzl((size_t)(size)-1) - 2)) & 3u))
static inline unsigned hh_root_of(size_t size) {
  if (HH_LIKELY(size <= HH_SMALL_DIRECT)) return hh_small_root[(size + HH_ALIGN - 1) / HH_ALIGN];
  return HH_ROOT_ABOVE_128(size);
}
unsigned hh_root_for_alignment(size_t size, size_t align); /* HH_ROOTS if none */

/* ------------------------------------------------------------------ mapping.c */

hh_page *hh_span_alloc(hh_heap *heap, uint32_t slices);                        /* NULL: out of memory */
hh_page *hh_span_alloc_aligned(hh_heap *heap, uint32_t slices, uint32_t step); /* NULL: too big, or out of memory */
/* The non-empty span bins of at least `slices` slices (0: none fits). */
static inline uint64_t hh_spans_fitting(const hh_heap *heap, uint32_t slices) {
  return heap->span_bits & (~0ull << slices);
}
void hh_span_free(hh_heap *heap, hh_page *page);
void hh_span_set_kind(hh_page *span, uint8_t kind);
bool hh_span_resize(hh_heap *heap, hh_page *span, uint32_t slices);
void hh_spans_move(hh_heap *into, hh_heap *from);
void hh_mapping_release_all(hh_heap *heap);
void hh_span_purge(hh_heap *heap, size_t keep);
/* The decay's tick, when one is due: pages empty for a whole tick are
 * retired, spans dirty since the last tick purged. Called where no list of
 * the heap is being walked (a span allocation, a free that emptied a page,
 * a shrink): it retires pages, so never from hh_span_free. */
void hh_span_decay(hh_heap *heap);
/* Free spans go back to the system after they stayed unused for one to two
 * of these (the decay clock: hh_coarse_ms in clock.h). */
#define HH_DECAY_MS 100u
void hh_span_decay_all(hh_heap *heap);       /* an abandoned heap's tick: purge it */
void hh_heaps_decay_abandoned(uint64_t now); /* heap.c: abandoned heaps' dirty spans */

static inline hh_mapping *hh_mapping_of(const void *p) {
  return (hh_mapping *)((uintptr_t)p & ~(uintptr_t)HH_MAPPING_MASK);
}

/* ------------------------------------------------------------------ page.c */

/* Finds a page of the root with free ranges and makes it the root's direct
 * page. `map`: may take a new span (else the direct page becomes
 * hh_empty_page when none has free ranges). NULL when there is none. */
hh_page *hh_page_refill(hh_heap *heap, unsigned root, bool map);
void hh_page_init(hh_page *page, unsigned root, uint32_t block_size);
void hh_page_collect(hh_page *page);
void hh_page_emptied(hh_heap *heap, hh_page *page);
/* The link of the range at `idx`, reached by a free list, decodes to
 * `next`, which is neither an index below the capacity nor the end of the
 * list: the program wrote into the range after freeing it, or past the end
 * of the range before it, or forged the link of the range before it on the
 * list (then the range is live: told apart by counting the page's free
 * ranges). Reported with the range, its size class and its neighbour; with
 * HAHALLOC_ON_ERROR=continue the rest of the list is set aside: its ranges
 * are never handed out again, and a live range is never handed out twice.
 * `head`: the range is the first of the page's local list. Owner only. */
void hh_free_list_damaged(hh_page *page, uint64_t idx, uint64_t next, bool head);
/* Fills `bits` (one per range below the capacity) with the page's free
 * ranges, for the report: ranges whose links say they are free, and a range
 * whose link was damaged when the page's counts show it is free (the damage
 * is told on stderr). The world is stopped or the page is the caller's.
 * A range whose link lies in one of the `nunreadable` memory pages listed
 * at `unreadable` is live, not read: the program made it unreadable
 * (mprotect), which it may do to its own blocks only. */
void hh_page_free_bits(const hh_page *page, uint64_t *bits, const uintptr_t *unreadable, int nunreadable);
/* What a sweep gives back: pages on the full list that remote frees
 * emptied (FULL), every empty page but a root's only one (EMPTY: a thread
 * that exits warm, keeping its pages for the next owner), every empty page
 * (ALL: a heap that keeps nothing). */
enum hh_sweep { HH_SWEEP_FULL, HH_SWEEP_EMPTY, HH_SWEEP_ALL };
void hh_heap_sweep(hh_heap *heap, enum hh_sweep what);
void hh_page_decay(hh_heap *heap); /* the decay's tick: retire pages that stayed empty */
hh_page *hh_large_alloc(hh_heap *heap, size_t size, size_t align); /* NULL: out of memory, or no aligned span */
/* The slices of a large range of `size` bytes (an empty one takes one), and
 * the step, in slices, that `align` puts its start on. */
static inline uint32_t hh_large_slices(size_t size) {
  return size == 0 ? 1 : (uint32_t)((size + HH_SLICE_SIZE - 1) >> HH_SLICE_SHIFT);
}
static inline uint32_t hh_slice_step(size_t align) {
  return align > HH_SLICE_SIZE ? (uint32_t)(align >> HH_SLICE_SHIFT) : 1;
}
/* Whether such a range, with the room to align it, fits in a mapping
 * (hh_span_alloc_aligned takes slices + step - 1). */
static inline bool hh_large_fits(size_t size, size_t align) {
  return size <= HH_LARGE_MAX && hh_large_slices(size) + hh_slice_step(align) - 1 <= HH_SLICES - 1;
}

/* ------------------------------------------------------------------ heap.c */

hh_heap *hh_heap_get_slow(void);
void hh_init(void);
extern _Atomic(int) hh_initialised;
void hh_heaps_lock(void);
bool hh_heaps_lock_until(int64_t deadline_ns); /* false: not taken (see lock.h) */
void hh_heaps_unlock(void);
hh_heap *hh_heaps_first(void); /* under hh_heaps_lock */
hh_heap *hh_heap_adopt_abandoned(hh_heap *into);
void hh_heap_abandoned_freed(hh_heap *owner, size_t bytes); /* remote frees into an exited thread's heap */
void hh_heaps_trim_abandoned(void);  /* malloc_trim: exited threads' heaps give back all they can */
void hh_remote_flush(hh_heap *heap); /* my pending remote frees go to their page */

static inline hh_heap *hh_heap_get(void) {
  hh_heap *h = hh_heap_mine();
  if (HH_LIKELY(h != NULL)) return h;
  return hh_heap_get_slow();
}

/* The fast paths are inline in fast.h; these are their slow halves. `ret`
 * and `frame` are the public entry point's return and frame addresses, for
 * the allocation site; `call` names the entry point in error messages. A
 * NULL frame means the function was reached by a tail call from a frameless
 * entry point (HH_TAIL_ENTRY in entry.h). */
void *hh_alloc_generic(size_t size, bool zero, void *ret, void *frame) HH_NOINLINE; /* HH_TAIL_ENTRY */
/* Out of memory in operator new of entry `kind` (hh_entry_is_new): the C++
 * runtime's own operator new runs the new-handler and throws std::bad_alloc
 * (the nothrow forms: returns NULL). override.c. */
void *hh_cxx_new_failed(unsigned kind, size_t size);
void *hh_track_new_site(hh_heap *heap, hh_page *page, hh_block *b, size_t size, void *ret, void *frame) HH_NOINLINE;
void hh_free_generic(void *p, const char *call);
void *hh_realloc(void *p, size_t size, const char *call, void *ret, void *frame);
void *hh_aligned(size_t align, size_t size, void *ret, void *frame);
size_t hh_usable_size(const void *p, const char *call);

/* ------------------------------------------------------------------ oversize.c */

hh_oversize *hh_oversize_alloc(size_t size, size_t align);        /* NULL: ENOMEM */
bool hh_oversize_free(hh_oversize *o, void *p, const char *call); /* false: misuse reported */
/* Grows a live oversize range's size to `size`, within its mapping (malloc_usable_size): the
 * bytes the program was told it may use. Under the lock, as every resize. */
void hh_oversize_grow_size(hh_oversize *o, size_t size);
void *hh_oversize_realloc(hh_oversize *o, size_t size); /* NULL: ENOMEM, o intact */
bool hh_oversize_recently_freed(const void *p);
void hh_oversize_lock(void);
bool hh_oversize_lock_until(int64_t deadline_ns);
void hh_oversize_unlock(void);
void hh_oversize_lock_reset(void);
hh_oversize *hh_oversize_first(void); /* under hh_oversize_lock */
void hh_oversize_cache_flush(void);
void hh_oversize_decay(uint64_t now); /* cached mappings unused for a while give their pages back */

/* ------------------------------------------------------------------ error.c */

/* Reports a misuse (bad pointer, double free) and aborts unless
 * HAHALLOC_ON_ERROR=continue. Never allocates. */
void hh_error(const char *call, const void *ptr, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Reports heap corruption found outside a call on a pointer, with where
 * `block` (may be NULL) was allocated, and aborts unless
 * HAHALLOC_ON_ERROR=continue, where `recovery` says what is done. */
void hh_corruption(const char *recovery, const void *block, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* One line (or more) of an error message, through hh_message_write: at
 * most 1 KiB, cut short beyond. */
void hh_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------------ stats.c */

/* ------------------------------------------------------------------ walk.c */

/* Sets marks[i] to 0 for every range i < n of the page that is on one of its
 * free lists (a large page: its one range, remotely freed). For the leak
 * scan, which holds hh_heaps_lock and hh_oversize_lock with the world
 * stopped, and reads under a fault guard. `unreadable`: as for
 * hh_page_free_bits. */
void hh_page_mark_free(const hh_page *page, uint8_t *marks, uint32_t n, const uintptr_t *unreadable, int nunreadable);

#endif /* HH_INTERNAL_H */
