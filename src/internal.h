/*
 * hahalloc internals: the glossary, the data structures and their invariants.
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
 *           touches it, so the fast paths take no lock and no atomic RMW.
 * remote free
 *           A free by a thread that does not own the range's mapping: the range
 *           is pushed with one CAS on the page's thread_free list, which the
 *           owner collects when it needs memory.
 * registry  A two-level table from each 4 MiB chunk of address space to the
 *           header that owns it (a mapping, an oversize mapping, a cached
 *           oversize mapping, or meta memory). It lets free() reject
 *           pointers that hahalloc never returned without touching unmapped
 *           memory. The chunk table (one byte per chunk) answers the free
 *           fast path's only question: is this chunk a mapping of pages
 *           that my heap owns? (hh_chunk_tag)
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
 * tracking  Every live range has a record (struct hh_track_rec: requested
 *           size, and call site while the exit report is on) in an array at
 *           the end of its page, out of band of user data.
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

#include "format.h"

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
#define HH_SLICES (HH_MAPPING_SIZE / HH_SLICE_SIZE) /* 64, slice 0 is the header */
#define HH_MEDIUM_MAX ((size_t)128 << 10)           /* largest root block */
#define HH_LARGE_MAX ((HH_SLICES - 1) * HH_SLICE_SIZE) /* largest large range */
#define HH_SMALL_DIRECT 1024                         /* sizes with a direct root table */
#define HH_ROOTS 48
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
#define HH_LINK_END 0xffffu     /* the end of a free list */
#define HH_LINK_CLAIMED 0xfffeu /* a remote free is pushing the range */
#define HH_LINK_LIMIT 0x10000u  /* links below this mark a free range; capacities are below */

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

enum hh_page_kind { HH_PAGE_FREE = 0, HH_PAGE_SMALL = 1, HH_PAGE_LARGE = 2, HH_PAGE_HEADER = 3 };

struct hh_heap;

typedef struct hh_page {
  /* First cache line: everything the owner's fast paths touch. */
  uint32_t free;                   /* index of the first range ready for the owner,
                                      HH_LINK_END when none: LIFO, so the range freed
                                      last, still in cache, is reused first */
  uint32_t used;                   /* see invariants; HH_USED_FULL while on the full list */
  uint8_t *start;                  /* first range */
  hh_track_rec *track;             /* the ranges' records (large: &large_rec) */
  uint64_t magic;                  /* ceil(2^64 / block_size): see hh_range_index */
  struct hh_page *small;           /* every slice of a SMALL page: that page; else
                                      &hh_empty_page, whose magic (0) matches no range */
  union {
    uint64_t mix;                  /* block_size | key_mul << 32: one multiply by an
                                      index gives the range's offset (low half) and
                                      part of its link mask (hh_link_mask) */
    struct {
      uint32_t block_size;         /* bytes per range; 0 when FREE */
      uint32_t key_mul;            /* secret, per page */
    };
  };
  uint64_t key;                    /* secret, per page: see hh_link_mask */
  uint64_t capacity;               /* ranges carved so far: indexes below are; written
                                      with relaxed atomics (other threads' frees read it) */
  /* Second line: written by other threads, or rarely used. */
  uint8_t dirty __attribute__((aligned(64))); /* memory may hold old data (FREE span: still committed) */
  uint8_t kind;                    /* enum hh_page_kind */
  uint8_t root;                    /* root index; HH_ROOTS for large ranges */
  uint8_t in_full;                 /* on the heap's full list (the owner's view) */
  uint32_t slice_offset;           /* distance to the span's first slice */
  uint32_t reserved;               /* ranges that fit in the page */
  uint32_t damaged;                /* 1 + index of a free range whose link was
                                      overwritten (set aside, reported), or 0 */
  _Atomic(uint64_t) thread_free;   /* ranges other threads freed: a stack, see
                                      hh_remote_head; and HH_REMOTE_FULL */
  uint32_t slice_count;            /* slices in the span (first slice only) */
  hh_track_rec large_rec;          /* the record of a large range */
  uint8_t empty_tick;              /* a small page found empty by the last decay tick */
  struct hh_page *next, *prev;     /* root queue, full list or span bin */
  void *scan_marks;                /* the leak scan's marks for this page's ranges: valid
                                      only while they lie in the running scan's memory */
} __attribute__((aligned(64))) hh_page;
_Static_assert(offsetof(hh_page, capacity) < 64, "the fast paths' fields share one cache line");

/* The owner's copy of in_full, in the sign bit of `used`: a free decrements
 * `used` and takes one branch when the result is not positive, which covers
 * both "the page is now empty" and "the page is on the full list". Only the
 * owner reads and writes it; other threads see HH_REMOTE_FULL. */
#define HH_USED_FULL 0x80000000u
static inline uint32_t hh_page_used(const struct hh_page *page) {
  return page->used & ~HH_USED_FULL;
}
_Static_assert(sizeof(hh_page) == 128, "a slice descriptor is two cache lines");

/* page->thread_free: bit 0 is HH_REMOTE_FULL, set by the owner while the page
 * sits on its full list; the rest is the index of the first range other
 * threads freed, plus one (0: none). Pushes and the owner's changes of the
 * bit are read-modify-writes of this one word, so a remote free learns
 * atomically, from the value its push replaced, whether it must wake the
 * owner: no wake-up can be lost. */
#define HH_REMOTE_FULL 1u
static inline uint64_t hh_remote_head(uint64_t tf) { /* an index, or HH_LINK_END */
  return (tf >> 1) == 0 ? HH_LINK_END : (tf >> 1) - 1;
}
static inline uint64_t hh_remote_word(uint64_t idx, uint64_t flags) { return (idx + 1) << 1 | flags; }

/* The mask of the link of the range at `idx`: idx * mix (whose high half
 * mixes in the page's key_mul) xored with the page's key. One read of a free
 * range shows its own mask (and 32 bits of `key`), not the page's secrets:
 * a link of another range cannot be forged from it. Both secrets are drawn
 * again whenever a page is set up. */
static inline uint64_t hh_link_mask(const struct hh_page *page, uint64_t idx) {
  return idx * page->mix ^ page->key;
}
static inline uint8_t *hh_range_at(const struct hh_page *page, uint64_t idx) {
  return page->start + (uint32_t)(idx * page->mix);
}
/* What the link of the range at `idx` decodes to: the next index,
 * HH_LINK_END, or anything else (HH_LINK_CLAIMED, or damage) for a range
 * that is not a sound member of a free list. The report's walk and the
 * allocator read links only through this. */
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
  uintptr_t cookie;                /* hh_key ^ address: a sanity check */
  uint32_t kind;                   /* HH_MAP_PAGES */
  uint32_t free_slices;            /* slices on the heap's span bins */
  _Atomic(struct hh_heap *) heap;  /* owner */
  struct hh_mapping *next, *prev;  /* the owner's mappings */
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
 * mem_lhihiks, in every mode (see src/stats.c). */
typedef struct hh_stats {
  /* (ordered so that the compiler does not pair the fast path's updates
   * into vector operations, which take more instructions) */
  uint64_t allocs;                 /* frees = allocs - live ranges, at report time */
  uint64_t tally;                  /* allocations from roots since its last carry: see
                                      hh_stats_alloc */
  int64_t hi;                      /* climbing: highest share since the last fold; else the
                                      mark (see stats.c) */
  uint64_t bytes_allocated;        /* requested bytes, all time */
  int64_t room;                    /* hi - share now: bytes until the slow path */
  bool climbing;                   /* at the global peak (see stats.c) */
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
static inline size_t hh_callsite_index(uintptr_t ret) {
  return (size_t)(ret & ((1u << HH_CALLSITE_BITS) - 1));
}
struct hh_heap;
void hh_callsite_remember(struct hh_heap *heap, uintptr_t ret, uint32_t id); /* report/site.c */

typedef struct hh_heap {
  /* current page of the root of each size up to HH_SMALL_DIRECT, indexed by
   * (size + 15) / 16: the malloc fast path's one lookup for small sizes.
   * Mirrors direct[] (hh_heap_set_direct), never NULL. */
  hh_page *small[HH_SMALL_DIRECT / HH_ALIGN + 1];
  hh_page *direct[HH_ROOTS];       /* current page per root, never NULL */
  hh_queue queue[HH_ROOTS];        /* pages with (possibly) free ranges */
  hh_queue full;                   /* pages found full, and large ranges */
  hh_queue spans[HH_SLICES];       /* free spans by slice count */
  uint64_t span_bits;              /* non-empty span bins */
  size_t dirty_bytes;              /* committed bytes in free spans */
  size_t dirty_recent;             /* of which made dirty since the last decay tick */
  uint32_t decay_at;               /* coarse ms: the next decay tick; 0: no dirty span */
  size_t free_slices;              /* slices in free spans */
  size_t mapped_slices;            /* slices of all its mappings (63 each) */
  hh_mapping *mappings;            /* owned mappings */
  uint32_t empty_mappings;         /* mappings whose slices are all free */
  _Atomic(int) remote_full;        /* a remote free hit a full page */
  uint64_t rng;                    /* draws the pages' secrets (hh_page_init) */
  uint8_t tag;                     /* see hh_chunk_tag */
  uint32_t sweep_tick;
  hh_stats stats;
  int tid;
  _Atomic(int) abandoned;          /* owner has exited */
  _Atomic(uint64_t) abandoned_freed; /* bytes other threads freed into it since it was swept */
  bool lingering;                  /* taken by a thread past its heap's destructor (heap.c) */
  struct hh_heap *next_heap;       /* all heaps (hh_heaps) */
  struct hh_heap *next_abandoned;
  hh_callsite_cache callsite;
} hh_heap;

static inline void hh_queue_push_front(hh_queue *q, hh_page *p) {
  p->prev = NULL;
  p->next = q->first;
  if (q->first) q->first->prev = p;
  else q->last = p;
  q->first = p;
}
static inline void hh_queue_push_back(hh_queue *q, hh_page *p) {
  p->next = NULL;
  p->prev = q->last;
  if (q->last) q->last->next = p;
  else q->first = p;
  q->last = p;
}
static inline void hh_queue_remove(hh_queue *q, hh_page *p) {
  if (p->prev) p->prev->next = p->next;
  else q->first = p->next;
  if (p->next) p->next->prev = p->prev;
  else q->last = p->prev;
  p->next = p->prev = NULL;
}

/* ------------------------------------------------------------------ globals */

extern uintptr_t hh_key;                       /* random, set at init */
/* The thread's heap for the fast paths: never NULL. A thread without a heap
 * (not started yet, or exiting) has hh_empty_heap, whose pages are all the
 * empty page, so its fast paths fall through to the slow ones without a
 * NULL check; everything else asks hh_heap_mine(). */
extern __thread hh_heap *hh_tls_heap __attribute__((tls_model("initial-exec")));
extern hh_heap hh_empty_heap;
/* Heap tags, see hh_chunk_tag. */
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
 * malloc fast path's one lookup. Filled by hh_init before any heap exists. */
extern uint8_t hh_size_root[HH_MEDIUM_MAX / HH_ALIGN + 1];
/* Roots up to HH_SMALL_DIRECT, and where each sits in hh_heap.small: root
 * r < HH_SMALL_ROOTS at indexes [hh_small_from[r], hh_small_from[r + 1]). */
#define HH_SMALL_ROOTS 20
extern uint8_t hh_small_from[HH_SMALL_ROOTS + 1];
void hh_size_root_init(void);
/* The root's current page, for the allocation fast paths. */
static inline void hh_heap_set_direct(hh_heap *heap, unsigned root, hh_page *page) {
  heap->direct[root] = page;
  if (root < HH_SMALL_ROOTS)
    for (unsigned i = hh_small_from[root]; i < hh_small_from[root + 1]; i++) heap->small[i] = page;
}

/* ------------------------------------------------------------------ options.c */

enum { HH_CLI_NONE = 0, HH_CLI_PROGRAM = 1, HH_CLI_CHILD = 2 };
enum { HH_LEAK_NO = 0, HH_LEAK_SUMMARY = 1, HH_LEAK_FULL = 2 };
enum { HH_FORMAT_TEXT = 0, HH_FORMAT_JSON, HH_FORMAT_XML, HH_FORMAT_COLLAPSED };
#define HH_MAX_SUPP_FILES 16

/* The report's settings: HAHALLOC_* variables, then HAHALLOC_OPTIONS
 * (src/optable.h names them all; README.md documents them). */
typedef struct hh_options {
  int report;          /* make the exit report (see the policy in options.c) */
  int on_error;        /* on-error: 0 = abort, 1 = continue */
  const char *output;  /* log-file: NULL = stderr, "stdout", or an absolute path (%p = pid) */
  const char *xml_output; /* xml-file: where the XML goes (else `output`) */
  int format;          /* HH_FORMAT_*: text, json, xml (valgrind's memcheck XML), collapsed stacks */
  int leak_check;      /* HH_LEAK_*: none, the summary, or the leaks listed too */
  unsigned show_kinds; /* kinds listed with their stacks: bits 1 << enum hh_kind (report.h) */
  unsigned error_kinds;/* kinds that make leak_exitcode the exit status */
  int stack_depth;     /* num-callers: frames of the program recorded per allocation */
  size_t min_size;     /* list blocks at least this big */
  int leak_exitcode;   /* error-exitcode: exit status on leaks of error_kinds, 0 = keep */
  int verbose;         /* -v: the report's own figures and words (roots, sites, the scan) */
  int quiet;           /* -q: the leaks only */
  int gen_suppressions;     /* a suppression after every leak listed */
  int default_suppressions; /* the built-in suppressions of the C and C++ runtimes */
  const char *supp_files[HH_MAX_SUPP_FILES]; /* suppression files, absolute paths */
  int nsupp_files;
  int profile;         /* where memory goes: totals by site, and the sites at the peak */
  int trace_children;  /* trace-children: the command's children report too */
  int secure;          /* AT_SECURE: nothing is taken from the environment */
  int linked;          /* the program was linked with hahalloc (not preloaded) */
  int cli;             /* HH_CLI_*: run by the hahalloc command, as its program or a child */
  const char *addr2line; /* the symboliser, an absolute path; NULL: none */
  int symbolize_ms;    /* HAHALLOC_SYMBOLIZE_TIMEOUT_MS: the symboliser's deadline */
} hh_options;

extern hh_options hh_opt;
/* Call sites are captured: the exit report is on and HAHALLOC_STACK_DEPTH > 0.
 * Sizes and statistics are kept always: mem_lhihiks promises them. */
extern bool hh_sites;
void hh_options_init(void);
void hh_options_started(void); /* our constructor ran */
void hh_options_atfork_child(void);

/* ------------------------------------------------------------------ os.c */

void *hh_os_map(size_t size);                    /* NULL on failure */
void *hh_os_map_aligned(size_t size, size_t align);
void hh_os_unmap(void *p, size_t size);
void hh_os_purge(void *p, size_t size);          /* give pages back, keep the range */
bool hh_os_grow(void *p, size_t old_size, size_t new_size); /* in place */
bool hh_os_move(void *p, size_t size, void *dest);           /* pages, not bytes */
uintptr_t hh_os_random(void);
/* The registry: two levels over the 47-bit user address space, 2^12 leaves
 * of 2^13 chunk entries (64 KiB a leaf, each covering 32 GiB), created on
 * demand and never freed. */
#define HH_REG_CHUNK_BITS (47 - HH_MAPPING_SHIFT)
#define HH_REG_LEAF_BITS 13
#define HH_REG_TOP (1u << (HH_REG_CHUNK_BITS - HH_REG_LEAF_BITS))
#define HH_REG_LEAF (1u << HH_REG_LEAF_BITS)
typedef _Atomic(void *) hh_reg_leaf[HH_REG_LEAF];
extern _Atomic(hh_reg_leaf *) hh_registry[HH_REG_TOP];

/* One byte per 4 MiB chunk: 0, or the tag of the heap that owns the (page)
 * mapping there. It is the free fast path's only lookup: the byte equals the
 * freeing thread's own heap tag exactly when the mapping is that thread's,
 * so one load answers both "is this ours" and "may the header be read"
 * without touching the mapping header's line. Heaps past the first
 * HH_TAG_MAX carry HH_TAG_NONE and tag their mappings HH_TAG_SHARED, which
 * never match: their frees take the slow path. Only the owner writes its
 * mappings' bytes (and an adopting thread, for the dead owner's). 32 MiB of
 * zero BSS; only the pages for address ranges in use are ever touched. */
extern uint8_t hh_chunk_tag[(size_t)1 << HH_REG_CHUNK_BITS];
/* Written with relaxed atomics: other threads' frees read the byte while an
 * adopting thread rewrites it (either value sends them to a correct path). */
static inline void hh_chunk_tag_set(uintptr_t mapping, uint8_t tag) {
  __atomic_store_n(&hh_chunk_tag[mapping >> HH_MAPPING_SHIFT], tag, __ATOMIC_RELAXED);
}

/* The header owning `addr` (hh_header *), or NULL. */
static inline void *hh_registry_get(uintptr_t addr) {
  if (HH_UNLIKELY(addr >> 47)) return NULL;
  uintptr_t chunk = addr >> HH_MAPPING_SHIFT;
  hh_reg_leaf *leaf =
      atomic_load_explicit(&hh_registry[chunk >> HH_REG_LEAF_BITS], memory_order_acquire);
  if (HH_UNLIKELY(leaf == NULL)) return NULL;
  return atomic_load_explicit(&(*leaf)[chunk & (HH_REG_LEAF - 1)], memory_order_acquire);
}
bool hh_registry_set(uintptr_t addr, void *hdr); /* false: out of memory */
/* Every chunk of [base, base + size) to `hdr`; false when out of memory,
 * the chunks it had set then unregistered. Unregistering never fails. */
bool hh_registry_set_range(uintptr_t base, size_t size, void *hdr);
/* Internal memory for the allocator's and the report's own tables (never
 * malloc). It comes from 4 MiB chunks registered as internal, so the leak
 * scan skips it. Thread-safe. */
void *hh_meta_alloc(size_t size);
void hh_meta_free(void *p, size_t size);
void hh_meta_lock(void);       /* fork: held across fork() */
void hh_meta_unlock(void);
void hh_meta_lock_reset(void);
/* True for any address inside memory hahalloc keeps for itself or hands out
 * (mappings, oversize mappings, meta chunks): the scan's roots exclude it. */
bool hh_is_internal(uintptr_t addr);

/* ------------------------------------------------------------------ root.c */

static inline unsigned hh_root_of(size_t size) {
  if (HH_LIKELY(size <= HH_SMALL_DIRECT)) return hh_small_root[(size + HH_ALIGN - 1) / HH_ALIGN];
  /* four roots per doubling above 128 bytes */
  size_t s = size - 1;
  unsigned b = 63u - (unsigned)__builtin_clzl(s);       /* s in [2^b, 2^(b+1)) */
  unsigned q = (unsigned)(s >> (b - 2)) & 3u;           /* quarter */
  return 8u + (b - 7u) * 4u + q;
}
unsigned hh_root_for_alignment(size_t size, size_t align); /* HH_ROOTS if none */

/* ------------------------------------------------------------------ mapping.c */

hh_page *hh_span_alloc(hh_heap *heap, uint32_t slices);  /* NULL: out of memory */
void hh_span_free(hh_heap *heap, hh_page *page);
void hh_span_set_kind(hh_page *span, uint8_t kind);
bool hh_span_resize(hh_heap *heap, hh_page *span, uint32_t slices);
void hh_spans_move(hh_heap *into, hh_heap *from);
void hh_mapping_release_all(hh_heap *heap);
void hh_span_purge(hh_heap *heap, size_t keep);
/* Free spans go back to the system after they stayed unused for one to two
 * of these (the decay clock: hh_coarse_ms in clock.h). */
#define HH_DECAY_MS 100u
void hh_span_decay_all(hh_heap *heap);           /* an abandoned heap's tick: purge it */
void hh_heaps_decay_abandoned(uint32_t now);     /* heap.c: abandoned heaps' dirty spans */

static inline hh_mapping *hh_mapping_of(const void *p) {
  return (hh_mapping *)((uintptr_t)p & ~(uintptr_t)HH_MAPPING_MASK);
}

/* ------------------------------------------------------------------ page.c */

extern hh_page hh_empty_page;
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
 * is told on stderr). The world is stopped or the page is the caller's. */
void hh_page_free_bits(const hh_page *page, uint64_t *bits);
void hh_heap_sweep(hh_heap *heap, bool all);
void hh_page_decay(hh_heap *heap); /* the decay's tick: retire pages that stayed empty */
hh_page *hh_large_alloc(hh_heap *heap, size_t size); /* NULL: out of memory */

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

static inline hh_heap *hh_heap_get(void) {
  hh_heap *h = hh_heap_mine();
  if (HH_LIKELY(h != NULL)) return h;
  return hh_heap_get_slow();
}

/* ------------------------------------------------------------------ alloc.c / free.c */

/* The fast paths are inline in fast.h; these are their slow halves. `ret`
 * and `frame` are the public entry point's return and frame addresses, for
 * the allocation site; `call` names the entry point in error messages.
 * A NULL frame means "reached by a tail call from a frameless entry point":
 * the function's own return and frame addresses are then the entry
 * point's (HH_TAIL_ENTRY). */
#define HH_TAIL_ENTRY(ret, frame)                                                            \
  do {                                                                                       \
    if ((frame) == NULL) {                                                                   \
      (ret) = __builtin_return_address(0);                                                   \
      (frame) = __builtin_frame_address(0);                                                  \
    }                                                                                        \
  } while (0)
/* The public entry point an allocation came through (malloc, calloc,
 * operator new[]...), which the report names first in every stack, as
 * valgrind does. It travels in the top bits of the return address passed
 * down (user addresses lie below 2^47), so the fast path's call-site table
 * (keyed by that word) tells a calloc from a malloc at the same return
 * address for free, and malloc, the hottest, carries 0: no bit at all.
 * Only the site capture (report/site.c) takes the word apart. */
enum hh_entry {
  HH_ENTRY_MALLOC = 0,
  HH_ENTRY_CALLOC,
  HH_ENTRY_REALLOC,
  HH_ENTRY_REALLOCARRAY,
  HH_ENTRY_MEMALIGN,
  HH_ENTRY_POSIX_MEMALIGN,
  HH_ENTRY_ALIGNED_ALLOC,
  HH_ENTRY_VALLOC,
  HH_ENTRY_PVALLOC,
  HH_ENTRY_NEW,              /* operator new(unsigned long) */
  HH_ENTRY_NEW_ARRAY,        /* operator new[](unsigned long) */
  HH_ENTRY_NEW_NOTHROW,
  HH_ENTRY_NEW_ARRAY_NOTHROW,
  HH_ENTRY_NEW_ALIGNED,
  HH_ENTRY_NEW_ARRAY_ALIGNED,
  HH_ENTRY_NEW_ALIGNED_NOTHROW,
  HH_ENTRY_NEW_ARRAY_ALIGNED_NOTHROW,
  HH_ENTRY_HAHALLOC,
  HH_ENTRY_CHAHALLOC,
  HH_ENTRY_REHEHALLOC,
  HH_ENTRIES
};
#define HH_ENTRY_SHIFT 56
/* The caller's return address, tagged with the entry point `kind`. */
#define HH_ENTRY_RET(kind)                                                                   \
  ((void *)((uintptr_t)__builtin_return_address(0) | (uintptr_t)(kind) << HH_ENTRY_SHIFT))
/* The entry point's frame address as a frame pointer would hold it (its
 * CFA - 16), without making the fast paths set one up. */
#define HH_ENTRY_FRAME ((void *)((char *)__builtin_dwarf_cfa() - 16))
static inline unsigned hh_entry_of(uintptr_t ret) { return (unsigned)(ret >> HH_ENTRY_SHIFT); }
static inline uintptr_t hh_entry_untag(uintptr_t ret) {
  return ret & (((uintptr_t)1 << HH_ENTRY_SHIFT) - 1);
}
void *hh_alloc_generic(size_t size, bool zero, void *ret, void *frame) HH_NOINLINE; /* HH_TAIL_ENTRY */
void *hh_track_new_site(hh_heap *heap, hh_page *page, hh_block *b, size_t size, void *ret,
                        void *frame) HH_NOINLINE;
void hh_free_generic(void *p, const char *call);
void *hh_realloc(void *p, size_t size, const char *call, void *ret, void *frame);
void *hh_aligned(size_t align, size_t size, void *ret, void *frame);
size_t hh_usable_size(const void *p, const char *call);


/* ------------------------------------------------------------------ oversize.c */

hh_oversize *hh_oversize_alloc(size_t size, size_t align); /* NULL: ENOMEM */
bool hh_oversize_free(hh_oversize *o, void *p, const char *call); /* false: misuse reported */
void *hh_oversize_realloc(hh_oversize *o, size_t size); /* NULL: ENOMEM, o intact */
bool hh_oversize_recently_freed(const void *p);
void hh_oversize_lock(void);
bool hh_oversize_lock_until(int64_t deadline_ns);
void hh_oversize_unlock(void);
void hh_oversize_lock_reset(void);
hh_oversize *hh_oversize_first(void); /* under hh_oversize_lock */
void hh_oversize_cache_flush(void);

/* ------------------------------------------------------------------ error.c */

/* Reports a misuse (bad pointer, double free) and aborts unless
 * HAHALLOC_ON_ERROR=continue. Never allocates. */
void hh_error(const char *call, const void *ptr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports heap corruption found outside a call on a pointer, and aborts
 * unless HAHALLOC_ON_ERROR=continue, where `recovery` says what is done. */
void hh_corruption(const char *recovery, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------ stats.c */

void hh_stats_free_orphan(size_t size);
typedef struct hh_totals {
  uint64_t allocs, bytes_allocated, peak_bytes;
  uint64_t frees; /* 0 here: allocs less the live ranges, which the caller walks */
  int64_t live_bytes;
} hh_totals;
void hh_stats_totals(hh_totals *t); /* under hh_heaps_lock */

/* A heap's share of the bytes in use is hi - room (negative when it frees
 * what others allocated). A range taken costs `room`; running out of room
 * takes the slow path: a new high, or the heap's mark below the peak
 * (stats.c). A free gives room back. Bytes in use count whole blocks
 * (the requested size rounded up to its root), so that a free need not read
 * the range's tracking record. A heap folds its share into the global count
 * once it has moved by more than HH_FLUSH_BYTES, up (hh_stats_new_high) or
 * down (hh_stats_give): other heaps' peaks are computed against that count.
 * The allocation side returns `p`, so that the fast path ends in a tail
 * call; the free side says when to fold, so that the fast path can do it
 * last. */
#define HH_FLUSH_BYTES ((int64_t)256 << 10)
void hh_stats_flush(hh_heap *heap);
void *hh_stats_new_high(hh_heap *heap, void *p); /* returns p */
static inline void *hh_stats_take(hh_heap *heap, int64_t live, void *p) {
  heap->stats.room -= live;
  if (HH_UNLIKELY(heap->stats.room < 0)) return hh_stats_new_high(heap, p);
  return p;
}
/* A range from a root (requested <= HH_MEDIUM_MAX = 2^17) is counted with
 * one add to `tally`: 1 in its top 23 bits and the requested bytes in its
 * low 41. The count carries out of the word first (every 2^23 ranges), and
 * by then the bytes are below 2^23 * 2^17 = 2^40: the carry flag of that
 * one add says when to move the tally into allocs and bytes_allocated. */
#define HH_TALLY_SHIFT 41
_Static_assert(HH_MEDIUM_MAX <= (size_t)1 << (2 * HH_TALLY_SHIFT - 64 - 1), "tally bytes fit");
void *hh_stats_carry(hh_heap *heap, int64_t live, void *p); /* returns p */
static inline void *hh_stats_alloc(hh_heap *heap, size_t requested, size_t live, void *p) {
  if (HH_UNLIKELY(__builtin_add_overflow(heap->stats.tally,
                                         requested + ((uint64_t)1 << HH_TALLY_SHIFT),
                                         &heap->stats.tally)))
    return hh_stats_carry(heap, (int64_t)live, p);
  return hh_stats_take(heap, (int64_t)live, p);
}
/* Large ranges and oversize mappings. */
static inline void hh_stats_alloc_big(hh_heap *heap, size_t requested, size_t live) {
  heap->stats.allocs++;
  heap->stats.bytes_allocated += requested;
  (void)hh_stats_take(heap, (int64_t)live, NULL);
}
static inline bool hh_stats_give(hh_heap *heap, size_t size) { /* true: fold now */
  heap->stats.room += (int64_t)size;
  return heap->stats.room > HH_FLUSH_BYTES;
}
static inline void hh_stats_free(hh_heap *heap, size_t size) {
  if (HH_UNLIKELY(hh_stats_give(heap, size))) hh_stats_flush(heap);
}
static inline void hh_stats_resize(hh_heap *heap, size_t before, size_t after) {
  if (after > before) (void)hh_stats_take(heap, (int64_t)(after - before), NULL);
  else hh_stats_free(heap, before - after);
}

/* ------------------------------------------------------------------ walk.c */

/* Sets marks[i] to 0 for every range i < n of the page that is on one of its
 * free lists (a large page: its one range, remotely freed). For the leak
 * scan, which holds hh_heaps_lock and hh_oversize_lock with the world
 * stopped, and reads under a fault guard. */
void hh_page_mark_free(const hh_page *page, uint8_t *marks, uint32_t n);

/* ------------------------------------------------------------------ report/ */

/* Allocation site of the caller of the public entry point; `ret` is that
 * entry point's return address. Must not allocate through malloc. */
uint32_t hh_site_capture(void *ret, void *frame);
/* The address of entry point `kind` (enum hh_entry), 0 when not ours. */
uintptr_t hh_entry_address(unsigned kind);
/* --profile (report/profile.c): every allocation and free, by site. */
void hh_profile_alloc(uint32_t site, size_t size);
void hh_profile_free(uint32_t site, size_t size);
void hh_profile_atfork_prepare(void);
void hh_profile_atfork_parent(void);
void hh_profile_atfork_child(void);
void hh_report_init(void);             /* start-up, after the options */
void hh_report_register_exit(void);    /* start-up, once malloc works: the exit report */
void hh_report_summary(int fd, size_t min_size); /* mem_lhihiks */
void hh_report_atfork_prepare(void);
void hh_report_atfork_parent(void);
void hh_report_atfork_child(void);

#endif /* HH_INTERNAL_H */
