/*
 * A small spin lock for the allocator's rare global paths (heap list, meta
 * memory, oversize mappings, the report). It never allocates and is plain
 * memory, so the child of a fork can simply re-initialise it.
 *
 * The lock word holds its owner: the address of a thread-local variable,
 * which identifies the thread at no cost. That lets the exit report, which
 * may run in a thread that a signal interrupted inside the allocator (exit()
 * from a signal handler), see that it already holds a lock instead of
 * spinning on it forever, and give up on any lock after a deadline.
 */
#ifndef HH_LOCK_H
#define HH_LOCK_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"

#if defined(__x86_64__) || defined(__i386__)
#define HH_CPU_RELAX() __builtin_ia32_pause()
#else
#define HH_CPU_RELAX() atomic_signal_fence(memory_order_seq_cst)
#endif

typedef struct hh_lock {
  _Atomic(uintptr_t) owner; /* 0: free */
} hh_lock;

#define HH_LOCK_INIT \
  { 0 }

/* Gives the processor up while a lock is held elsewhere: sched_yield, or
 * once the program has a seccomp filter, a sleep of a few microseconds on
 * a futex, the call every threaded program's filter allows (a filter made
 * from the calls a program makes under glibc, whose malloc never yields,
 * killed a thread churn for sched_yield: helper-75). In os.c. */
void hh_yield(void);

/* This thread's identity as a lock owner. */
extern __thread char hh_lock_self __attribute__((tls_model("initial-exec")));
static inline uintptr_t hh_lock_me(void) { return (uintptr_t)&hh_lock_self; }

static inline void hh_lock_init(hh_lock *l) { atomic_store_explicit(&l->owner, 0, memory_order_relaxed); }

static inline bool hh_lock_try(hh_lock *l) {
  uintptr_t expect = 0;
  return atomic_load_explicit(&l->owner, memory_order_relaxed) == 0 &&
         atomic_compare_exchange_strong_explicit(&l->owner, &expect, hh_lock_me(), memory_order_acquire,
                                                 memory_order_relaxed);
}

static inline void hh_lock_acquire(hh_lock *l) {
  unsigned spins = 0;
  while (!hh_lock_try(l)) {
    if (++spins > 64)
      hh_yield(); /* the holder may be descheduled: 2 cores */
    else
      HH_CPU_RELAX();
  }
}

static inline void hh_lock_release(hh_lock *l) { atomic_store_explicit(&l->owner, 0, memory_order_release); }

/* True when the calling thread holds the lock. */
static inline bool hh_lock_mine(hh_lock *l) {
  return atomic_load_explicit(&l->owner, memory_order_relaxed) == hh_lock_me();
}

/* Acquires the lock unless this thread already holds it (it would never be
 * released) or it is still held at `deadline_ns` (hh_now_ns). */
static inline bool hh_lock_acquire_until(hh_lock *l, int64_t deadline_ns) {
  if (hh_lock_mine(l)) return false;
  unsigned spins = 0;
  while (!hh_lock_try(l)) {
    if (++spins > 64) {
      if (hh_now_ns() > deadline_ns) return false;
      hh_yield();
    } else {
      HH_CPU_RELAX();
    }
  }
  return true;
}

#endif
