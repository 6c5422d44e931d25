/*
 * The guard: canary bytes after every live block (guard.c says how).
 */
#ifndef HH_GUARD_H
#define HH_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define HH_GUARD_BYTES 16

/* hh_guard (internal.h) is HH_GUARD_BYTES while the guard is on, else 0:
 * what every request grows by. */

/* The canary byte at address `at`: from the address and the process's key,
 * so that no constant a program writes matches it everywhere, and in
 * 0x80..0xfe, so that the writes that overflow most (a string's bytes, its
 * terminating NUL, 0xff) never match it at all. */
static inline uint8_t hh_guard_byte(uintptr_t at) {
  uint8_t b = (uint8_t)(0x80 | ((at ^ hh_key) * 0x9e3779b97f4a7c15ULL) >> 57);
  return b == 0xff ? 0xfe : b;
}
/* Canary bytes after a block of `size` requested bytes in `room` bytes. */
static inline size_t hh_guard_len(size_t size, size_t room) {
  return room - size < HH_GUARD_BYTES ? room - size : HH_GUARD_BYTES;
}
void hh_guard_set(void *block, size_t size, size_t room);
/* The offset past the end of the first damaged canary byte; SIZE_MAX when none. */
size_t hh_guard_damage(const void *block, size_t size, size_t room);

#endif
