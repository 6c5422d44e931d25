/*
 * The clock: CLOCK_MONOTONIC, read through the vDSO (no system call, no
 * allocation, safe in a signal handler). Every deadline (a lock taken with
 * a time limit, the report's helpers, a stalled write) and every duration
 * the report shows is measured with it; the purge's decay uses the coarse
 * clock below.
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

/* The decay clock: milliseconds from CLOCK_MONOTONIC_COARSE (a tick's
 * precision is enough to delay a purge, and it costs a few loads), in 64
 * bits, so that a deadline is never mistaken for one in the future however
 * long a heap stays idle; never 0, which means "no deadline". */
static inline uint64_t hh_coarse_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) | 1;
}

/* Whether the deadline `at` (0: none) has come at `now`. */
static inline int hh_decay_due(uint64_t at, uint64_t now) { return at != 0 && now >= at; }

#endif
