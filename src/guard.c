/*
 * The guard (HAHALLOC_GUARD=1, --guard): canary bytes after every live
 * block, so that a write past its end is reported with the block's address,
 * size and allocation site, as valgrind reports it, instead of going
 * unnoticed or being met later as damage to a neighbour.
 *
 * Every request is served from a size class at least HH_GUARD_BYTES larger
 * (the generic path adds them before it picks a root: the fast paths, whose
 * constant size-to-root table has no room for them, are off; large and
 * oversize requests map that much more), and the first HH_GUARD_BYTES after the requested size
 * hold bytes derived from their address and the process's key. They are
 * written when the block is recorded and checked when it is freed or
 * reallocated, and by the exit scan for the blocks still live. While the
 * guard is on every allocation takes the recording slow path and every free
 * the generic one (no call-site table, no heap tag), malloc_usable_size
 * answers the requested size, and realloc always moves the block.
 */
#include "guard.h"
#include "format.h"
#include "internal.h"
#include "lookup.h"

size_t hh_guard;

void hh_guard_set(void *block, size_t size, size_t room) {
  uint8_t *p = (uint8_t *)block + size;
  for (size_t i = 0, n = hh_guard_len(size, room); i < n; i++) p[i] = hh_guard_byte((uintptr_t)(p + i));
}

size_t hh_guard_damage(const void *block, size_t size, size_t room) {
  const uint8_t *p = (const uint8_t *)block + size;
  for (size_t i = 0, n = hh_guard_len(size, room); i < n; i++)
    if (p[i] != hh_guard_byte((uintptr_t)(p + i))) return i;
  return SIZE_MAX;
}

void hh_guard_check(void *p, const hh_ref *ref, const char *call) {
  size_t room = ref->kind == HH_REF_OVERSIZE ? ref->oversize->map_size : ref->page->block_size;
  size_t at = hh_guard_damage(p, ref->size, room);
  if (HH_LIKELY(at == SIZE_MAX)) return;
  const uint8_t *bad = (const uint8_t *)p + ref->size + at;
  hh_corruption("the block is freed all the same", p,
                "%s(%p): a write past the end of the %zu-byte block at %p: byte %zu past its "
                "end (at %p) reads 0x%02x",
                call, p, ref->size, p, at, (const void *)bad, *bad);
}
