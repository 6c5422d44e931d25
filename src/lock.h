/*
 * A small spin lock for the allocator's rare global paths (heap list, meta
 * memory, oversize cache). It never allocates and is plain memory, so the
 * child of a fork can simply re-initialise it.
 */
#ifndef HH_LOCK_H
#define HH_LOCK_H

#include <sched.h>
#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#define HH_CPU_RELAX() __builtin_ia32_pause()
#else
#define HH_CPU_RELAX() atomic_signal_fence(memory_order_seq_cst)
#endif

typedef struct hh_lock {
  atomic_flag flag;
} hh_lock;

#define HH_LOCK_INIT {ATOMIC_FLAG_INIT}

static inline void hh_lock_init(hh_lock *l) { atomic_flag_clear(&l->flag); }

static inline void hh_lock_acquire(hh_lock *l) {
  unsigned spins = 0;
  while (atomic_flag_test_and_set_explicit(&l->flag, memory_order_acquire)) {
    if (++spins > 64) sched_yield(); /* the holder may be descheduled: 2 cores */
    else HH_CPU_RELAX();
  }
}

static inline void hh_lock_release(hh_lock *l) {
  atomic_flag_clear_explicit(&l->flag, memory_order_release);
}

#endif
