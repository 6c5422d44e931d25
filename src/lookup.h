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
  size_t usable;         /* bytes the range can hold */
  size_t size;           /* requested bytes (usable when not tracking small ranges) */
} hh_ref;

/* False (after reporting the misuse) when `p` is not a live range. */
bool hh_lookup(const void *p, const char *call, hh_ref *ref);
/* Frees the range `ref` describes. */
void hh_release(void *p, const hh_ref *ref, const char *call);

#endif
