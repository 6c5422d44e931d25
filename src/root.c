/*
 * Roots: the size classes. The seed had 22 roots, one per power of two; a
 * power-of-two class wastes up to half of every block, so we keep the word
 * and cut finer: 16-byte steps up to 128 bytes, then four roots per doubling
 * (at most 25% waste) up to HH_MEDIUM_MAX. A root's page holds at least
 * eight ranges: one slice (64 KiB) up to 8 KiB blocks, then 2, 4, 8 and 16
 * slices. Every power of two is a root, which aligned allocation relies on.
 */
#include <stdlib.h>

#include "internal.h"

const uint32_t hh_root_size[HH_ROOTS] = {
    16,    32,    48,    64,    80,    96,    112,   128,   160,   192,   224,   256,   320,   384,   448,    512,
    640,   768,   896,   1024,  1280,  1536,  1792,  2048,  2560,  3072,  3584,  4096,  5120,  6144,  7168,   8192,
    10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768, 40960, 49152, 57344, 65536, 81920, 98304, 114688, 131072};

const uint8_t hh_root_slices[HH_ROOTS] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  1,  1,  1,
                                          1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8, 16, 16, 16, 16};

/* Root of each size up to HH_SMALL_DIRECT, indexed by (size + 15) / 16.
 * Its last root is HH_SMALL_ROOTS - 1, of 1024 bytes. */
const uint8_t hh_small_root[HH_SMALL_DIRECT / HH_ALIGN + 1] = {
    0,  0,  1,  2,  3,  4,  5,  6,  7,  8,  8,  9,  9,  10, 10, 11, 11, 12, 12, 12, 12, 13,
    13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15, 16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17,
    17, 17, 17, 17, 17, 18, 18, 18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19, 19};

/* hh_size_root is built by the compiler, in read-only data: filling it at
 * start-up cost every process 8,193 hh_root_of calls and three pages of
 * its own (about 15 us on the bench machine, where the whole start of a
 * small program takes 600). HH_SIZE_ROOT is hh_root_of for a multiple of
 * 16, spelled as a constant expression: hh_size_root_init checks the table
 * against hh_root_of at every root's bounds. */
#define HH_SIZE_ROOT(i) (uint8_t)((i) <= 8 ? ((i) == 0 ? 0u : (unsigned)(i)-1u) : HH_ROOT_ABOVE_128((size_t)(i)*16))
#define HH_SIZE_ROOT4(i) HH_SIZE_ROOT(i), HH_SIZE_ROOT((i) + 1), HH_SIZE_ROOT((i) + 2), HH_SIZE_ROOT((i) + 3)
#define HH_SIZE_ROOT16(i) HH_SIZE_ROOT4(i), HH_SIZE_ROOT4((i) + 4), HH_SIZE_ROOT4((i) + 8), HH_SIZE_ROOT4((i) + 12)
#define HH_SIZE_ROOT64(i) \
  HH_SIZE_ROOT16(i), HH_SIZE_ROOT16((i) + 16), HH_SIZE_ROOT16((i) + 32), HH_SIZE_ROOT16((i) + 48)
#define HH_SIZE_ROOT256(i) \
  HH_SIZE_ROOT64(i), HH_SIZE_ROOT64((i) + 64), HH_SIZE_ROOT64((i) + 128), HH_SIZE_ROOT64((i) + 192)
#define HH_SIZE_ROOT1024(i) \
  HH_SIZE_ROOT256(i), HH_SIZE_ROOT256((i) + 256), HH_SIZE_ROOT256((i) + 512), HH_SIZE_ROOT256((i) + 768)
#define HH_SIZE_ROOT4096(i) \
  HH_SIZE_ROOT1024(i), HH_SIZE_ROOT1024((i) + 1024), HH_SIZE_ROOT1024((i) + 2048), HH_SIZE_ROOT1024((i) + 3072)
_Static_assert(HH_MEDIUM_MAX / HH_ALIGN == 8192, "hh_size_root's initializer covers 8,193 sizes");
const uint8_t hh_size_root[HH_MEDIUM_MAX / HH_ALIGN + 1] = {HH_SIZE_ROOT4096(0), HH_SIZE_ROOT4096(4096),
                                                            HH_SIZE_ROOT(8192)};
size_t hh_medium_fast_max = HH_MEDIUM_MAX;
uint8_t hh_small_from[HH_SMALL_ROOTS + 1];

static void check_size_root(size_t size) {
  if (hh_size_root[(size + HH_ALIGN - 1) / HH_ALIGN] != hh_root_of(size)) abort();
}

void hh_size_root_init(void) {
  /* the table against hh_root_of: each root's smallest and largest size */
  for (unsigned r = 0; r < HH_ROOTS; r++) {
    check_size_root(r == 0 ? 0 : hh_root_size[r - 1] + 1);
    check_size_root(hh_root_size[r]);
  }
  /* under the guard, a size's root must hold its guard bytes too, which
   * the table does not add: the generic path serves every medium size */
  if (hh_guard) hh_medium_fast_max = 0;
  /* hh_small_root is sorted: each root's indexes follow the previous root's */
  for (unsigned i = HH_SMALL_DIRECT / HH_ALIGN + 1; i-- > 0;) hh_small_from[hh_small_root[i]] = (uint8_t)i;
  hh_small_from[HH_SMALL_ROOTS] = HH_SMALL_DIRECT / HH_ALIGN + 1;
  /* The fast paths store a malloc's slack unchecked, in the width of its
   * root's slack records (hh_track): the most any root leaves, a request
   * one byte above the root beneath (0 bytes in the first), must fit. */
  for (unsigned r = 0; r < HH_ROOTS; r++) {
    uint32_t slack = hh_root_size[r] - (r == 0 ? 0 : hh_root_size[r - 1] + 1);
    if (slack > (hh_root_size[r] <= HH_SMALL_DIRECT ? HH_SLACK8_MAX : HH_SLACK16_MAX)) abort();
  }
}
_Static_assert(HH_SMALL_DIRECT == 1024, "hh_small_root covers sizes up to 1024");

/* Smallest root that holds `size` bytes and whose block size is a multiple
 * of `align` (a power of two up to HH_SLICE_SIZE): pages start on a slice
 * boundary, so every range of such a root is aligned. */
unsigned hh_root_for_alignment(size_t size, size_t align) {
  if (size < align) size = align;
  if (size > HH_MEDIUM_MAX || align > HH_SLICE_SIZE) return HH_ROOTS;
  for (unsigned r = hh_root_of(size); r < HH_ROOTS; r++)
    if (hh_root_size[r] % align == 0) return r;
  return HH_ROOTS;
}
