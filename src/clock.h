/*
 * The clock: CLOCK_MONOTONIC, read through the vDSO (no system call, no
 * allocation, safe in a signal handler). Every deadline (a lock taken with
 * a time limit, the report's helpers, a stalled write) and every duration
 * the report shows is measured with it.
 */
#ifndef HH_CLOCK_H
#define HH_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t hh_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t hh_now_ms(void) { return hh_now_ns() / 1000000; }

#endif
