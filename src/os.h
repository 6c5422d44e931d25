/*
 * The OS layer (os.c): mappings from the kernel, the registry from address
 * space to the headers that own it, the chunk tags of the free fast path,
 * and meta memory for hahalloc's own tables.
 */
#ifndef HH_OS_H
#define HH_OS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

void *hh_os_map(size_t size); /* NULL on failure */
void *hh_os_map_aligned(size_t size, size_t align);
void hh_os_unmap(void *p, size_t size);
bool hh_os_purge(void *p, size_t size);                        /* give pages back, keep the range */
bool hh_os_resident(void *p, size_t size, unsigned char *vec); /* mincore: bit 0 of a byte per page */
bool hh_os_grow(void *p, size_t old_size, size_t new_size);    /* in place */
bool hh_os_move(void *p, size_t size, void *dest);             /* pages, not bytes */
uintptr_t hh_os_random(void);
/* A fork child's secrets after a seccomp filter part from its parent's:
 * `salt` is the child's tid. */
void hh_os_random_atfork_child(uint64_t salt);
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
 * mappings' bytes (and an adopting thread, for the dead owner's).
 *
 * Two levels, as the registry: a leaf of HH_REG_LEAF bytes (8 KiB, 32 GiB
 * of address space) is mapped with the registry's leaf for the same chunks
 * (hh_registry_set) and never freed; `top` holds each leaf's distance from
 * `none`, a leaf in the library's BSS that is never written, so that a
 * chunk without a leaf reads 0 with no test and no page touched. A flat
 * table of 32 MiB, as before, counted against RLIMIT_AS and RLIMIT_DATA
 * (under either limit below 256 MiB, every free took the slow path), and
 * mlockall(MCL_CURRENT) made it all resident. */
typedef struct hh_tag_table {
  _Atomic(uint64_t) top[HH_REG_TOP];
  uint8_t none[HH_REG_LEAF];
} hh_tag_table;
extern hh_tag_table hh_tags;
/* The address of the byte of `chunk` (below 2^HH_REG_CHUNK_BITS) in the
 * leaf whose offset is `off`. */
static inline uint8_t *hh_chunk_tag_in(uint64_t off, uintptr_t chunk) {
  return (uint8_t *)((uintptr_t)hh_tags.none + off + (chunk & (HH_REG_LEAF - 1)));
}
static inline uint64_t hh_chunk_tag_leaf(uintptr_t chunk) {
  return atomic_load_explicit(&hh_tags.top[chunk >> HH_REG_LEAF_BITS], memory_order_acquire);
}
static inline uint8_t *hh_chunk_tag_at(uintptr_t chunk) { return hh_chunk_tag_in(hh_chunk_tag_leaf(chunk), chunk); }
/* Other threads' frees read the byte while an adopting thread rewrites it
 * (either value sends them to a correct path). A new mapping's tag is set
 * last, with release: a thread that reads it (acquire) finds the header and
 * the slices' pages written. The mapping's registry entry, set before, made
 * the leaf. */
static inline void hh_chunk_tag_set(uintptr_t mapping, uint8_t tag) {
  uintptr_t chunk = mapping >> HH_MAPPING_SHIFT;
  uint64_t off = hh_chunk_tag_leaf(chunk);
  if (off == 0) return; /* no leaf (never, for a registered chunk): `none` is never written */
  __atomic_store_n(hh_chunk_tag_in(off, chunk), tag, __ATOMIC_RELEASE);
}
/* The tag of the chunk whose index is `chunk` (below 2^HH_REG_CHUNK_BITS),
 * with acquire. */
static inline uint8_t hh_chunk_tag_get(uintptr_t chunk) {
  return __atomic_load_n(hh_chunk_tag_at(chunk), __ATOMIC_ACQUIRE);
}

/* The header owning `addr` (hh_header *), or NULL. */
static inline void *hh_registry_get(uintptr_t addr) {
  if (HH_UNLIKELY(addr >> 47)) return NULL;
  uintptr_t chunk = addr >> HH_MAPPING_SHIFT;
  hh_reg_leaf *leaf = atomic_load_explicit(&hh_registry[chunk >> HH_REG_LEAF_BITS], memory_order_acquire);
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
void hh_meta_lock(void); /* fork: held across fork() */
void hh_meta_unlock(void);
void hh_meta_lock_reset(void);
/* True for any address inside memory hahalloc keeps for itself or hands out
 * (mappings, oversize mappings, meta chunks): the scan's anchors exclude it. */
bool hh_is_internal(uintptr_t addr);

#endif /* HH_OS_H */
