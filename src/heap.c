/*
 * Thread heaps: start-up, one heap per thread, thread exit, and fork.
 *
 * A thread gets its heap on its first allocation. The pointer lives in an
 * initial-exec TLS slot, which needs no allocation (a dynamic TLS access
 * could call malloc and recurse). At thread exit the heap collects what it
 * can, gives free spans back, and is abandoned with its remaining ranges: the
 * next thread to start takes it over whole, and a running thread that needs
 * a new mapping merges it into its own heap first, so memory of exited
 * threads is reused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clock.h"
#include "hooks.h"
#include "internal.h"
#include "lock.h"
#include "options.h"
#include "os.h"
#include "stats.h"

hh_heap hh_empty_heap = {.small = {[0 ... HH_SMALL_DIRECT / HH_ALIGN] = &hh_empty_page},
                         .direct = {[0 ... HH_NO_ROOT] = &hh_empty_page},
                         .tag = HH_TAG_NONE};
__thread hh_heap *hh_tls_heap __attribute__((tls_model("initial-exec"))) = &hh_empty_heap;
uintptr_t hh_key;
_Atomic(int) hh_initialised; /* 0: not yet, 1: in progress, 2: done */

static _Atomic(long) init_tid;
static pthread_key_t heap_key;
static hh_lock heaps_lock = HH_LOCK_INIT;
static hh_heap *heaps;     /* every heap ever made (heaps are never freed) */
static unsigned heap_tags; /* tags given out (hh_chunk_tag) */
static hh_heap *abandoned; /* heaps whose thread exited, with their memory */
static hh_heap *spare;     /* heaps merged into another: empty, reusable */
static _Atomic(int) abandoned_count;
/* Heaps taken by threads whose heap destructor already ran: a destructor of
 * another key, run after ours, allocated. Each is abandoned by our
 * destructor's next round (the key is set again), or, if that was the last
 * round, by whoever finds its thread gone (reclaim_lingering). */
static hh_heap *lingering;
static _Atomic(int) lingering_count;
static __thread int exit_rounds __attribute__((tls_model("initial-exec")));

/* glibc sets a thread's tid in its descriptor before the thread runs (the
 * clone's CLONE_PARENT_SETTID) and again in a fork's child, before the
 * atfork handlers. */
static long current_tid(void) {
  size_t off = hh_pthread_tid_offset;
  if (off != 0) {
    int tid = *(const int *)((const char *)pthread_self() + off);
    if (tid > 0) return tid;
  }
  return syscall(SYS_gettid);
}

__thread char hh_lock_self __attribute__((tls_model("initial-exec")));

/* The leak scan's claim on the heap list's lock. Threads take it as they
 * start and end: a churn of them (detached threads started without pause,
 * whose key destructors allocate) kept the exit report from it until its
 * deadline, and the report was dropped (helper-72: 8 of 26 runs, and
 * --error-exitcode's status lost with it). While the scan waits, the
 * others wait for it to have had the lock. */
static _Atomic int heaps_wanted;

static void heaps_acquire(void) {
  while (HH_UNLIKELY(atomic_load_explicit(&heaps_wanted, memory_order_acquire) != 0)) hh_yield();
  hh_lock_acquire(&heaps_lock);
}

void hh_heaps_lock(void) { heaps_acquire(); }
bool hh_heaps_lock_until(int64_t deadline_ns) {
  atomic_fetch_add(&heaps_wanted, 1);
  bool got = hh_lock_acquire_until(&heaps_lock, deadline_ns);
  atomic_fetch_sub(&heaps_wanted, 1);
  return got;
}
void hh_heaps_unlock(void) { hh_lock_release(&heaps_lock); }
hh_heap *hh_heaps_first(void) { return heaps; }

static void heap_thread_exit(void *arg);
static void atfork_prepare(void);
static void atfork_parent(void);
static void atfork_child(void);

void hh_init(void) {
  int state = atomic_load(&hh_initialised);
  if (HH_LIKELY(state == 2)) return;
  long tid = current_tid();
  state = 0;
  if (atomic_compare_exchange_strong(&hh_initialised, &state, 1)) {
    int saved = errno; /* the settings' reads of /proc and the environment's files fail as they may */
    atomic_store(&init_tid, tid);
    hh_key = hh_os_random() | 1;
    hh_options_init();
    hh_report_init();
    hh_size_root_init();
    pthread_key_create(&heap_key, heap_thread_exit);
    atomic_store(&hh_initialised, 2);
    /* These may allocate; the allocator is ready for it now. */
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    hh_report_register_exit(); /* early, so it runs after the program's handlers */
    errno = saved;
    return;
  }
  if (state == 1 && atomic_load(&init_tid) == tid) return; /* re-entered from init itself */
  while (atomic_load(&hh_initialised) != 2) hh_yield();
}

static void heap_reset(hh_heap *h) {
  for (unsigned r = 0; r <= HH_NO_ROOT; r++) hh_heap_set_direct(h, r, &hh_empty_page);
  if (h->rng == 0) h->rng = hh_os_random() | 1;
}

/* Whether the thread that took lingering heap h has ended, by the kernel's
 * own word: the tid in the thread's descriptor, which the kernel clears
 * as the thread ends (pthread_join waits on it), compared by a futex
 * requeue of nobody, which never sleeps (a wait with a zero timeout does,
 * until its timer fires: with the heap list's lock held, a churn of
 * threads at exit took 20-120 s against 3-4 s). It fails rather than fault if glibc has since
 * unmapped the descriptor with its stack, and finds another value if it
 * gave it to another thread: gone either way. No tgkill nor getpid, which
 * a seccomp filter may kill for (helper-75: a thread's start died of
 * SIGSYS, or hung, its SIGSYS handler's malloc waiting for the heap list's
 * lock this thread held), while every threaded program's filter allows
 * futex. Where the descriptor's layout is unknown, tgkill, but not under a
 * filter: the heap then lingers. */
static bool thread_gone(const hh_heap *h) {
  size_t off = hh_pthread_tid_offset;
  if (off == 0 || h->linger_thread == 0)
    return !hh_sandboxed() && syscall(SYS_tgkill, (long)getpid(), (long)h->tid, 0L) != 0 && errno == ESRCH;
  static int none; /* where nobody waits: nobody is requeued */
  if (syscall(SYS_futex, (int *)(h->linger_thread + off), FUTEX_CMP_REQUEUE_PRIVATE, 0, 0, &none, h->tid) == 0)
    return false;
  return errno == EAGAIN || errno == EFAULT;
}

#define SWEEP_BYTES ((uint64_t)4 << 20) /* remote frees into an abandoned heap between sweeps */
/* Dirty bytes an abandoned heap keeps for its next owner. mimalloc-bench's
 * mstress ends each of its 200 threads with 8-32 MiB of dirty spans: kept
 * to 16 MiB, a quarter of them purged the rest at exit and their successors
 * faulted it back in (20,000 page faults a run against mimalloc's 9,000;
 * 13,000 with 32 MiB, and 7% less time). */
#define ABANDONED_KEEP ((size_t)32 << 20)
#define ABANDONED_WARM 4 /* abandoned heaps that may keep dirty bytes at once */

/* What a heap about to be abandoned keeps dirty for the thread that takes
 * it over: a pool of workers that replaces its threads finds their memory
 * warm, but a burst of many threads that exit together must not leave one
 * cache each (200 threads at a time would keep 200 heaps' pages). At most
 * ABANDONED_WARM heaps are warm at once: a slot is taken with an atomic
 * add before the heap keeps anything, so threads that exit at the same
 * moment cannot all see a free slot, and given back when a thread takes the
 * heap over or its decay purges it. */
static _Atomic(int) warm_count;

static size_t abandoned_keep(hh_heap *h) {
  if (!h->warm) {
    if (atomic_fetch_add(&warm_count, 1) >= ABANDONED_WARM) {
      atomic_fetch_sub(&warm_count, 1);
      return 0;
    }
    h->warm = true;
  }
  return ABANDONED_KEEP;
}

static void warm_release(hh_heap *h) {
  if (!h->warm) return;
  h->warm = false;
  atomic_fetch_sub(&warm_count, 1);
}

static void abandon_locked(hh_heap *h) {
  h->abandoned_at = hh_coarse_ms();
  atomic_store(&h->abandoned, 1);
  h->next_abandoned = abandoned;
  abandoned = h;
  atomic_fetch_add(&abandoned_count, 1);
}

#define SWEEPS_PER_TICK 4
static void sweep_unlinked(hh_heap *h, bool trim);

/* Abandoned heaps whose decay tick has passed give their dirty spans back:
 * no thread took them over in time. The heap list's lock keeps adopters
 * away meanwhile. */
void hh_heaps_decay_abandoned(uint64_t now) {
  if (atomic_load_explicit(&abandoned_count, memory_order_relaxed) == 0) return;
  if (atomic_load_explicit(&heaps_wanted, memory_order_relaxed) != 0 || !hh_lock_try(&heaps_lock))
    return; /* busy: the next tick will do */
  /* Remote frees into an exited thread's heap are collected when they add
   * up to SWEEP_BYTES. Fewer can still empty every page it holds: a thread
   * that allocated 4 million blocks and kept 1 in 200 left 465 MiB of
   * pages, which the last 20,000 frees (2.2 MiB) emptied, and nobody
   * collected them (helper-71). A tick sweeps such heaps, abandoned a tick
   * ago or more (a thread that starts meanwhile takes the newest as it
   * is), a few at a time, off the list and outside the lock. */
  hh_heap *sweep[SWEEPS_PER_TICK];
  int nsweep = 0;
  for (hh_heap **pp = &abandoned; *pp != NULL && nsweep < SWEEPS_PER_TICK;) {
    hh_heap *h = *pp;
    if (atomic_load_explicit(&h->abandoned_freed, memory_order_relaxed) != 0 &&
        hh_decay_due(h->abandoned_at + HH_DECAY_MS, now)) {
      *pp = h->next_abandoned;
      atomic_fetch_sub(&abandoned_count, 1);
      sweep[nsweep++] = h;
    } else {
      pp = &h->next_abandoned;
    }
  }
  for (hh_heap *h = abandoned; h != NULL; h = h->next_abandoned)
    if (h->dirty_bytes && hh_decay_due(h->decay_at, now)) {
      hh_span_decay_all(h);
      warm_release(h);
    } else if (h->warm && h->dirty_bytes == 0) {
      /* It keeps nothing: its slot goes to the next heap abandoned. Deep
       * in the list (a start takes the newest), such heaps held every slot
       * of a churn of 100,000 threads, and each heap after them gave its
       * memory back at exit to fault it in again (helper-72: 14-61 s
       * against 4-7 s). */
      warm_release(h);
    }
  hh_lock_release(&heaps_lock);
  for (int i = 0; i < nsweep; i++) sweep_unlinked(sweep[i], false);
}

static void unlink_lingering_locked(hh_heap *h) {
  for (hh_heap **pp = &lingering; *pp != NULL; pp = &(*pp)->next_abandoned) {
    if (*pp == h) {
      *pp = h->next_abandoned;
      h->lingering = false;
      atomic_fetch_sub(&lingering_count, 1);
      return;
    }
  }
}

/* The safety net: a lingering heap whose thread has exited is abandoned
 * (with what it holds), as its thread's exit would have done. Nothing can
 * touch it any more but remote frees, which the adopter collects. A tid the
 * kernel gave to a new thread keeps the heap lingering, never the reverse. */
static void reclaim_lingering(void) {
  if (atomic_load_explicit(&lingering_count, memory_order_relaxed) == 0) return;
  if (hh_pthread_tid_offset == 0 && hh_sandboxed()) return; /* no answer to be had: no walk */
  int saved = errno;
  heaps_acquire();
  for (hh_heap **pp = &lingering; *pp != NULL;) {
    hh_heap *h = *pp;
    if (!thread_gone(h)) {
      pp = &h->next_abandoned;
      continue;
    }
    *pp = h->next_abandoned;
    h->lingering = false;
    atomic_fetch_sub(&lingering_count, 1);
    abandon_locked(h);
  }
  hh_lock_release(&heaps_lock);
  errno = saved;
}

hh_heap *hh_heap_get_slow(void) {
  hh_init();
  if (hh_heap_mine() != NULL) return hh_tls_heap; /* made while initialising */
  reclaim_lingering();
  bool exiting = exit_rounds > 0;
  hh_heap *h = NULL;
  heaps_acquire();
  if (spare != NULL && exiting) { /* an empty one: it may linger */
    h = spare;
    spare = h->next_abandoned;
  } else if (abandoned != NULL) {
    h = abandoned;
    abandoned = h->next_abandoned;
    atomic_fetch_sub(&abandoned_count, 1);
  } else if (spare != NULL) {
    h = spare;
    spare = h->next_abandoned;
  }
  hh_lock_release(&heaps_lock);
  if (h == NULL) {
    h = hh_meta_alloc(sizeof *h);
    if (h == NULL) return NULL;
    heap_reset(h);
    heaps_acquire();
    /* --profile and the guard must see every free: no heap owns a tag, so
     * every free takes the slow path (hh_release) */
    h->tag = heap_tags < HH_TAG_MAX && !hh_opt.profile && !hh_guard ? (uint8_t)++heap_tags : HH_TAG_NONE;
    h->next_heap = heaps;
    heaps = h;
    hh_lock_release(&heaps_lock);
  }
  warm_release(h);
  atomic_store_explicit(&h->abandoned_freed, 0, memory_order_relaxed); /* its own to collect now */
  h->next_abandoned = NULL;
  h->tid = (int)current_tid();
  atomic_store(&h->abandoned, 0);
  if (exiting) {
    h->linger_thread = (uintptr_t)pthread_self();
    heaps_acquire();
    h->lingering = true;
    h->next_abandoned = lingering;
    lingering = h;
    atomic_fetch_add(&lingering_count, 1);
    hh_lock_release(&heaps_lock);
  }
  hh_tls_heap = h;
  /* Also in a later destructor round: the key is set again, so that ours
   * runs once more and abandons the heap (up to PTHREAD_DESTRUCTOR_ITERATIONS
   * rounds; reclaim_lingering catches an allocation in the last one). */
  pthread_setspecific(heap_key, h);
  return h;
}

static void heap_thread_exit(void *arg) {
  hh_heap *h = arg;
  exit_rounds++;
  if (h == NULL || h != hh_heap_mine()) return;
  /* A warm heap keeps its pages and some dirty spans for the thread that
   * takes it over, which decay if none does (hh_heaps_decay_abandoned);
   * any other gives back every empty page, a root's only one too. */
  hh_remote_flush(h);
  size_t keep = abandoned_keep(h);
  hh_heap_sweep(h, keep ? HH_SWEEP_EMPTY : HH_SWEEP_ALL);
  hh_span_purge(h, keep);
  if (h->dirty_bytes && h->decay_at == 0) h->decay_at = hh_coarse_ms() + HH_DECAY_MS;
  hh_stats_flush(h);
  hh_tls_heap = &hh_empty_heap;
  heaps_acquire();
  if (h->lingering) unlink_lingering_locked(h);
  abandon_locked(h);
  hh_lock_release(&heaps_lock);
}

static void heap_merge(hh_heap *into, hh_heap *h);

/* Moves the memory of one abandoned heap into `into`. Returns the heap that
 * was merged, or NULL when there was none. */
hh_heap *hh_heap_adopt_abandoned(hh_heap *into) {
  reclaim_lingering();
  if (atomic_load_explicit(&abandoned_count, memory_order_relaxed) == 0) return NULL;
  heaps_acquire();
  hh_heap *h = abandoned;
  if (h != NULL) {
    abandoned = h->next_abandoned;
    atomic_fetch_sub(&abandoned_count, 1);
  }
  hh_lock_release(&heaps_lock);
  if (h != NULL) {
    warm_release(h);
    heap_merge(into, h);
  }
  return h;
}

/* Remote frees into the heap of an exited thread: once they add up to
 * SWEEP_BYTES, the freeing thread takes the heap for a moment, collects
 * them, retires the pages they emptied and gives the dirty memory beyond
 * ABANDONED_KEEP back, then leaves the heap abandoned and whole for the next
 * thread that starts. So RSS falls when an exited thread's blocks are freed,
 * and a thread churn (a pool of workers, mimalloc-bench's mstress) finds the
 * memory of its predecessors warm instead of mapping and faulting in more,
 * as it would if the heap were merged into the freeing thread's. */
static bool unlink_abandoned_locked(hh_heap *h) {
  for (hh_heap **pp = &abandoned; *pp != NULL; pp = &(*pp)->next_abandoned) {
    if (*pp == h) {
      *pp = h->next_abandoned;
      atomic_fetch_sub(&abandoned_count, 1);
      return true;
    }
  }
  return false;
}

/* Sweeps an abandoned heap taken off the list (so that nobody adopts or
 * sweeps it meanwhile), gives back what it does not keep (`trim`: all it
 * can), and leaves it abandoned again. */
static void sweep_unlinked(hh_heap *h, bool trim) {
  atomic_store_explicit(&h->abandoned_freed, 0, memory_order_relaxed);
  if (trim) warm_release(h);
  size_t keep = trim ? 0 : abandoned_keep(h);
  hh_heap_sweep(h, keep ? HH_SWEEP_EMPTY : HH_SWEEP_ALL);
  hh_span_purge(h, keep);
  heaps_acquire();
  abandon_locked(h);
  hh_lock_release(&heaps_lock);
}

void hh_heap_abandoned_freed(hh_heap *owner, size_t bytes) {
  uint64_t had = atomic_fetch_add_explicit(&owner->abandoned_freed, bytes, memory_order_relaxed);
  if (had >= SWEEP_BYTES || had + bytes < SWEEP_BYTES) return; /* only the free that crosses it */
  heaps_acquire();
  bool found = unlink_abandoned_locked(owner);
  hh_lock_release(&heaps_lock);
  /* Another thread has it (its sweep may have passed these frees' pages:
   * the count stays for the tick's sweep), or took it over. */
  if (!found) return;
  sweep_unlinked(owner, false);
}

/* One heap off the list at a time, each once a call: with the whole list
 * taken at once, threads that started meanwhile found no heap to take and
 * made new ones, which are never freed, and each trim then had more to
 * sweep (helper-74: 84 -> 559 heaps in a minute of trims every 10 ms). */
void hh_heaps_trim_abandoned(void) {
  static uint64_t rounds; /* heap list's lock */
  heaps_acquire();
  uint64_t round = ++rounds;
  hh_lock_release(&heaps_lock);
  for (;;) {
    heaps_acquire();
    hh_heap *h = abandoned;
    while (h != NULL && h->trim_round == round) h = h->next_abandoned;
    if (h != NULL) {
      unlink_abandoned_locked(h);
      h->trim_round = round;
    }
    hh_lock_release(&heaps_lock);
    if (h == NULL) return;
    sweep_unlinked(h, true);
  }
}

static void heap_merge(hh_heap *into, hh_heap *h) {
  hh_mapping *m = h->mappings, *last = NULL;
  for (; m != NULL; m = m->next) {
    atomic_store_explicit(&m->heap, into, memory_order_release);
    hh_chunk_tag_set((uintptr_t)m, hh_mapping_tag(into));
    last = m;
  }
  if (last != NULL) {
    last->next = into->mappings;
    if (into->mappings) into->mappings->prev = last;
    into->mappings = h->mappings;
  }
  for (unsigned r = 0; r < HH_ROOTS; r++) {
    hh_page *p;
    while ((p = h->queue[r].first) != NULL) {
      hh_queue_remove(&h->queue[r], p);
      hh_queue_push_back(&into->queue[r], p);
    }
  }
  hh_page *p;
  while ((p = h->full.first) != NULL) {
    hh_queue_remove(&h->full, p);
    hh_queue_push_back(&into->full, p);
  }
  hh_spans_move(into, h);
  into->empty_mappings += h->empty_mappings;
  atomic_store(&into->remote_full, 1); /* frees may have landed while nobody owned them */

  h->mappings = NULL;
  h->empty_mappings = 0;
  heap_reset(h);
  heaps_acquire();
  h->next_abandoned = spare;
  spare = h;
  hh_lock_release(&heaps_lock);
}

/* ------------------------------------------------------------------ fork */

static void atfork_prepare(void) {
  hh_report_atfork_prepare();
  heaps_acquire();
  hh_oversize_lock();
  hh_meta_lock();
}

static void atfork_parent(void) {
  hh_meta_unlock();
  hh_oversize_unlock();
  hh_lock_release(&heaps_lock);
  hh_report_atfork_parent();
}

/* Only the forking thread exists in the child. The heaps of the others may
 * have been in the middle of an update when the fork happened (their fast
 * paths take no lock), so the child never walks their lists: they become
 * orphans, marked abandoned but never adopted, and the memory they held is
 * simply not reused in the child. Frees of their ranges in the child still
 * work (they are remote frees). Heaps on the abandoned or spare list at
 * the fork were quiescent: they stay reusable. An abandoned heap on
 * neither list was in another thread's hands: swept (sweep_unlinked),
 * merged (hh_heap_adopt_abandoned) or being taken by a thread that starts.
 * It is an orphan too, its lists maybe torn: before, only heaps not marked
 * abandoned were, and a leak check in the child could read such a heap's
 * half-swept pages as damage. */
static void atfork_child(void) {
  hh_meta_lock_reset();
  hh_oversize_lock_reset();
  hh_lock_init(&heaps_lock);
  atomic_store(&heaps_wanted, 0); /* a scan waiting in another thread, which the child does not have */
  hh_heap *self = hh_heap_mine();
  /* lingering heaps belong to threads the child does not have, and may be
   * mid-update: orphans like the others (marked below), never reclaimed */
  for (hh_heap *h = lingering; h != NULL; h = h->next_abandoned) h->lingering = false;
  lingering = NULL;
  atomic_store(&lingering_count, 0);
  if (self != NULL && self->lingering) self->lingering = false;
  for (hh_heap *h = abandoned; h != NULL; h = h->next_abandoned) h->fork_listed = true;
  for (hh_heap *h = spare; h != NULL; h = h->next_abandoned) h->fork_listed = true;
  for (hh_heap *h = heaps; h != NULL; h = h->next_heap) {
    bool listed = h->fork_listed;
    h->fork_listed = false;
    if (h == self || listed) continue;
    atomic_store(&h->abandoned, 1); /* an orphan: on neither list */
    h->forked_away = true;          /* its lists may be torn: no damage is reported in them */
    warm_release(h);                /* its slot (helper-77: a child could lose all ABANDONED_WARM) */
  }
  if (self != NULL) self->tid = (int)current_tid();
  hh_os_random_atfork_child((uint64_t)current_tid());
  hh_options_atfork_child();
  hh_report_atfork_child();
}

__attribute__((constructor)) static void hh_constructor(void) {
  (void)hh_heap_get();
  hh_options_started();
}
