/*
 * The seed's API: hahalloc, frhehe, chahalloc, rehehalloc, mem_lhihiks.
 * Each entry point inlines the fast path and passes its own return and frame
 * addresses down, so the allocation site is the caller's.
 */
#include "fast.h"
#include "hahalloc.h"

#define RET __builtin_return_address(0)
/* The frame address as a frame pointer would hold it (CFA - 16), without
 * making the fast paths set one up. */
#define FRAME ((void *)((char *)__builtin_dwarf_cfa() - 16))

HH_EXPORT HH_FRAMELESS void *hahalloc(size_t size) {
  return hh_alloc_fast(size, HH_TAIL_RET, HH_TAIL_FRAME);
}

HH_EXPORT void frhehe(void *ptr) { hh_free_fast(ptr, "frhehe"); }

HH_EXPORT void *chahalloc(size_t size) { return hh_calloc_fast(size, RET, FRAME); }

HH_EXPORT void *rehehalloc(void *ptr, size_t size) {
  return hh_realloc(ptr, size, "rehehalloc", RET, FRAME);
}

HH_EXPORT void mem_lhihiks(size_t size) {
  hh_init();
  hh_report_summary(1, size);
}
