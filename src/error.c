/*
 * The report of a misuse (a double free, a pointer hahalloc never returned)
 * or of heap corruption, from inside the allocator: written with the
 * non-allocating printf of format.h, with the stacks of the call and of
 * the block's allocation (report/misuse.c), then abort unless
 * HAHALLOC_ON_ERROR=continue.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "format.h"
#include "hooks.h"
#include "internal.h"
#include "options.h"

_Atomic(uint64_t) hh_misuse_errors;

static void error_end(const char *recovery) {
  atomic_fetch_add_explicit(&hh_misuse_errors, 1, memory_order_relaxed);
  if (hh_opt.on_error) {
    hh_dprintf(2, "hahalloc: %s (HAHALLOC_ON_ERROR=continue)\n", recovery);
    return;
  }
  hh_dprintf(2, "hahalloc: aborting; set HAHALLOC_ON_ERROR=continue to report and ignore such calls\n");
  abort();
}

void hh_error(const char *call, const void *ptr, const char *fmt, ...) {
  hh_dprintf(2, "hahalloc: error: %s(%p): ", call, ptr);
  va_list ap;
  va_start(ap, fmt);
  hh_vdprintf(2, fmt, ap);
  va_end(ap);
  hh_dprintf(2, "\n");
  hh_misuse_stacks(ptr);
  error_end("the call is ignored");
}

void hh_corruption(const char *recovery, const void *block, const char *fmt, ...) {
  hh_dprintf(2, "hahalloc: error: heap corruption: ");
  va_list ap;
  va_start(ap, fmt);
  hh_vdprintf(2, fmt, ap);
  va_end(ap);
  hh_dprintf(2, "\n");
  hh_misuse_stacks(block);
  error_end(recovery);
}
