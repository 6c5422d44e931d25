/* Allocation sites: a stub until the real capture lands. */
#include "internal.h"

uint32_t hh_site_capture(void *ret, void *frame) {
  (void)ret;
  (void)frame;
  return 0;
}
