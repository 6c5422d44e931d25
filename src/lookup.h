/*
 * A validated reference to a live range: what free, realloc and
 * malloc_usable_size learn about a pointer before they act on it.
 */
#ifndef HH_LOOKUP_H
#define HH_LOOKUP_H

#include "internal.h"

typedef enum { HH_REF_SMALL, HH_REF_LARGE, HH_REF_OVERSIZE } hh_ref_kind;

typedef struct hh_ref {
  hh_ref_kind kind;
  hh_mapping *mapping;   /* small and large */
  hh_page *page;         /* small and large */
  hh_oversize *oversize; /* oversize */
  uint32_t index;        /* range index in its page */
  size_t usable;         /* bytes the program may use (malloc_usable_size) */
  size_t size;           /* requested bytes */
  size_t accounted;      /* bytes counted in use: the block, span or mapping */
} hh_ref;

/* A large or oversize range may sit in a bigger span or mapping (room to
 * grow in place); the program may use its requested size rounded to pages. */
static inline size_t hh_page_round(size_t n) { return (n + 4095) & ~(size_t)4095; }

/* False (after reporting the misuse) when `p` is not a live range. */
bool hh_lookup(const void *p, const char *call, hh_ref *ref);
/* The guard's check of a block about to be freed (guard.c): damage is
 * reported as heap corruption. */
void hh_guard_check(void *p, const hh_ref *ref, const char *call);
/* Frees the range `ref` describes. */
void hh_release(void *p, const hh_ref *ref, const char *call);
/* With the report on: the range `ref` describes now holds `to` bytes (its
 * record grows from ref->size by realloc in place or malloc_usable_size),
 * and the bytes past its old size are zeroed (see hh_scrub); an oversize
 * range's only up to its old mapping's end, past which its pages are new.
 * Called after an oversize range's resize, which may have moved it. */
void hh_zero_grown(const hh_ref *ref, size_t to);

/* The block whose range holds `p`, live or freed: its start, requested
 * size and allocation site (that of its last life when freed; 0 when not
 * tracked). False when `p` lies in no range. Reads what hh_lookup reads. */
typedef struct hh_block_info {
  const uint8_t *start;
  size_t size;
  size_t room; /* bytes of its range, span or mapping */
  uint32_t site;
} hh_block_info;
bool hh_block_of(const void *p, hh_block_info *out);

#endif
