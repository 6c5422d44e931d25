/*
 * The seed's API: hahalloc, frhehe, chahalloc, rehehalloc, mem_lhihiks.
 * Each entry point inlines the fast path and passes its own return and frame
 * addresses down (hahalloc, frameless, its tag: see fast.h), so the
 * allocation site is the caller's.
 */
#include "entry.h"
#include "fast.h"
#include "hahalloc.h"
#include "hooks.h"

HH_EXPORT HH_FRAMELESS void *hahalloc(size_t size) {
  return hh_alloc_fast(size, HH_TAIL_KIND(HH_ENTRY_HAHALLOC), HH_TAIL_FRAME);
}

HH_EXPORT void frhehe(void *ptr) { hh_free_fast(ptr, "frhehe"); }

HH_EXPORT void *chahalloc(size_t size) {
  return hh_calloc_fast(size, HH_ENTRY_RET(HH_ENTRY_CHAHALLOC), HH_ENTRY_FRAME);
}

HH_EXPORT void *rehehalloc(void *ptr, size_t size) {
  return hh_realloc(ptr, size, "rehehalloc", HH_ENTRY_RET(HH_ENTRY_REHEHALLOC), HH_ENTRY_FRAME);
}

HH_EXPORT void mem_lhihiks(size_t size) {
  hh_init();
  hh_report_summary(1, size);
}
