/*
 * Oversize mappings: a range too big for a mapping (more than HH_LARGE_MAX)
 * gets a mapping of its own, aligned to 4 MiB and a whole number of chunks,
 * each chunk registered to an out-of-band header in meta memory.
 *
 * Mapping and unmapping cost system calls and page faults, and programs that
 * free and reallocate buffers of a few MiB in a loop are common, so a small
 * cache keeps recently freed mappings of up to CACHE_ENTRY_MAX bytes, at most
 * CACHE_TOTAL_MAX in all (a request takes the smallest one that fits, if at
 * most twice its size); anything bigger goes straight back to the OS, so
 * RSS falls after a big free. A cached mapping keeps its memory for
 * CACHE_DECAY_MS: reused by then, it costs no page fault; unused, its pages
 * go back to the system (it stays mapped, for reuse), at the next oversize
 * free or decay tick of any heap. Growing uses mremap: the kernel moves page
 * tables instead of copying.
 *
 * A cached mapping taken for a smaller request keeps the pages of its tail
 * (past the request's chunks) for CACHE_DECAY_MS too, not purged at once: a
 * program that cycles buffers of different sizes through the cache (each of
 * mimalloc-bench's malloc-large's 5-25 MiB buffers takes one of up to twice
 * its size) would otherwise fault the tail back in the next time the
 * mapping serves a bigger request. Purging at once made 515,796 page faults
 * in malloc-large, where glibc makes 510,499; keeping the tail, 161,331 (and
 * 5% more peak RSS). A live mapping's tail is never the program's: its usable
 * size ends with the request's last page. The tails have a budget of their
 * own, TAILS_MAX, beside the cache's CACHE_TOTAL_MAX: a tail past it is
 * purged at once.
 */
#include <pthread.h>
#include <signal.h>

#include "clock.h"
#include "hooks.h"
#include "internal.h"
#include "lock.h"
#include "os.h"

#define CACHE_SLOTS 16
#define CACHE_ENTRY_MAX ((size_t)64 << 20)
#define CACHE_TOTAL_MAX ((size_t)256 << 20)
#define CACHE_DECAY_MS (10 * HH_DECAY_MS)
/* Counted in the cache's budget, the tails cost malloc-large (5-25 MiB
 * buffers; 92 MiB of tails at most) half its page faults back: the cache
 * kept fewer freed mappings. A budget of their own keeps it. */
#define TAILS_MAX (CACHE_TOTAL_MAX / 2)
#define RECENT 64

static hh_lock lock = HH_LOCK_INIT;
static hh_oversize *live; /* every live oversize range */
typedef struct {
  uint8_t *base;
  size_t size;
  uint64_t freed_ms; /* hh_coarse_ms when it was freed */
  bool purged;       /* its pages were given back: they read as zero */
} cache_entry;
static cache_entry cache[CACHE_SLOTS]; /* cache[0] is the newest */
static unsigned cached;
static size_t cached_bytes;
static const void *recent[RECENT]; /* recently freed ranges, to name double frees */
/* Live mappings whose tail still holds the pages of an earlier use, and
 * since when; taken out when the mapping is freed or resized. */
typedef struct {
  hh_oversize *o;
  size_t need;  /* the bytes its request took: the tail is past them */
  size_t bytes; /* the tail's */
  uint64_t since_ms;
} tail_entry;
static tail_entry tails[CACHE_SLOTS];
static unsigned n_tails;
/* The tails' bytes, at most TAILS_MAX: without a bound, 16 tails of up
 * to 32 MiB each could keep 512 MiB resident beside a full cache. */
static size_t tail_bytes;
/* When the oldest tail is due (UINT64_MAX: none), read without the lock so
 * that a decay tick with nothing due costs no system call. */
static _Atomic(uint64_t) tails_due = UINT64_MAX;
/* Cached mappings stay registered, to this tag: the leak scan must not take
 * their stale contents for roots, and a free into one is a double free. */
static const hh_header cached_tag = {0, HH_MAP_CACHED};
static unsigned recent_next;

void hh_oversize_lock(void) { hh_lock_acquire(&lock); }
bool hh_oversize_lock_until(int64_t deadline_ns) { return hh_lock_acquire_until(&lock, deadline_ns); }
void hh_oversize_unlock(void) { hh_lock_release(&lock); }
void hh_oversize_lock_reset(void) { hh_lock_init(&lock); }
hh_oversize *hh_oversize_first(void) { return live; }

static size_t chunks_of(size_t size) { return (size + HH_MAPPING_MASK) & ~(size_t)HH_MAPPING_MASK; }

static cache_entry cache_remove(unsigned i) {
  cache_entry e = cache[i];
  cached_bytes -= e.size;
  for (unsigned j = i + 1; j < cached; j++) cache[j - 1] = cache[j];
  cached--;
  return e;
}

/* Takes the smallest cached mapping of at least `size` bytes, and at most
 * twice that (its tail is purged later: see the top). */
static bool cache_take(size_t size, cache_entry *got) {
  unsigned best = cached;
  for (unsigned i = 0; i < cached; i++)
    if (cache[i].size >= size && cache[i].size <= 2 * size && (best == cached || cache[i].size < cache[best].size))
      best = i;
  if (best == cached) return false;
  *got = cache_remove(best);
  return true;
}

/* Under the lock, after `tails` changed. */
static void tails_due_update(void) {
  uint64_t due = UINT64_MAX;
  for (unsigned i = 0; i < n_tails; i++)
    if (tails[i].since_ms + CACHE_DECAY_MS < due) due = tails[i].since_ms + CACHE_DECAY_MS;
  atomic_store_explicit(&tails_due, due, memory_order_relaxed);
}

static void tail_remove(unsigned i) {
  tail_bytes -= tails[i].bytes;
  tails[i] = tails[--n_tails];
}

static void tail_forget(const hh_oversize *o) {
  for (unsigned i = 0; i < n_tails; i++)
    if (tails[i].o == o) {
      tail_remove(i);
      tails_due_update();
      return;
    }
}

/* The pages past the first `need` bytes of a live mapping. `need` is the
 * room its request asked hh_oversize_alloc for (with the guard's bytes,
 * which o->size leaves out), rounded to chunks. Not o->size, which the
 * caller of hh_oversize_alloc sets without the lock: realloc in place and
 * malloc_usable_size raise it only to the request's last page, within
 * `need`, and a resize that succeeds takes the mapping out of `tails`
 * (one that fails leaves the mapping as it was). */
static void tail_purge(const hh_oversize *o, size_t need) {
  if (o->map_size > need) hh_os_purge(o->user + need, o->map_size - need);
}

/* Purges the tails kept for CACHE_DECAY_MS. Under the lock, so that the
 * mapping can be neither freed (and its pages reused) nor resized meanwhile:
 * one madvise, which the kernel makes in a few milliseconds for the largest
 * tail, once per mapping taken. With every signal held: a handler that
 * freed an oversize block on this thread would wait for the lock this
 * thread holds, for ever (helper-65: a SIGALRM every 100 us freeing 5 MiB
 * blocks hung the program in 3 runs of 3), and exit() from one would find
 * the lock held and lose the report. Under the program's own seccomp
 * filter, which may not allow rt_sigprocmask, no tail is kept (see
 * hh_oversize_alloc), and one kept before it stays until its range is
 * freed. */
static void tails_decay(uint64_t now) {
  if (atomic_load_explicit(&tails_due, memory_order_relaxed) > now || hh_sandboxed()) return;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  if (hh_lock_try(&lock)) { /* never waits: see hh_oversize_decay */
    for (unsigned i = 0; i < n_tails;) {
      if (tails[i].since_ms + CACHE_DECAY_MS > now) {
        i++;
        continue;
      }
      tail_purge(tails[i].o, tails[i].need);
      tail_remove(i);
    }
    tails_due_update();
    hh_lock_release(&lock);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Gives back the pages of cached mappings unused for CACHE_DECAY_MS, oldest
 * first. Each is taken out of the cache while it is purged (no thread may
 * reuse it meanwhile) and put back as the oldest, unless the cache filled. */
void hh_oversize_decay(uint64_t now) {
  tails_decay(now);
  for (;;) {
    /* never waits: a decay tick may come from any malloc or free, and the
     * lock's holder may be the code this thread interrupted */
    if (!hh_lock_try(&lock)) return;
    unsigned i = cached;
    /* `now` may be older than a free made meanwhile by another thread */
    while (i > 0 && (cache[i - 1].purged || cache[i - 1].freed_ms + CACHE_DECAY_MS > now)) i--;
    if (i == 0) {
      hh_lock_release(&lock);
      return;
    }
    cache_entry e = cache_remove(i - 1);
    hh_lock_release(&lock);
    /* refused for locked pages (mlockall): unmapped instead, not kept as
     * purged (its pages still hold the old bytes) */
    e.purged = hh_os_purge(e.base, e.size);
    hh_lock_acquire(&lock);
    bool room = e.purged && cached < CACHE_SLOTS && cached_bytes + e.size <= CACHE_TOTAL_MAX;
    if (room) {
      cache[cached++] = e;
      cached_bytes += e.size;
    }
    hh_lock_release(&lock);
    if (!room) {
      hh_registry_set_range((uintptr_t)e.base, e.size, NULL);
      hh_os_unmap(e.base, e.size);
    }
  }
}

hh_oversize *hh_oversize_alloc(size_t size, size_t align) {
  size_t map_size = chunks_of(size ? size : 1), need = map_size;
  size_t map_align = align > HH_MAPPING_SIZE ? align : HH_MAPPING_SIZE;
  hh_oversize *o = hh_meta_alloc(sizeof *o);
  if (o == NULL) return NULL;
  uint8_t *base = NULL;
  bool dirty = false, tail = false;
  if (map_align == HH_MAPPING_SIZE) {
    cache_entry e;
    hh_lock_acquire(&lock);
    bool hit = cache_take(map_size, &e);
    hh_lock_release(&lock);
    if (hit) {
      base = e.base;
      dirty = !e.purged;
      tail = dirty && e.size > map_size; /* purged later: see the top */
      map_size = e.size;
    }
  }
  if (base == NULL) base = hh_os_map_aligned(map_size, map_align);
  if (base == NULL && hh_heap_mine() != NULL) {
    /* Out of address space (RLIMIT_AS, say): give back what is only kept for
     * reuse, then try once more. */
    hh_mapping_release_all(hh_heap_mine());
    hh_oversize_cache_flush();
    base = hh_os_map_aligned(map_size, map_align);
  }
  if (base == NULL) {
    hh_meta_free(o, sizeof *o);
    return NULL;
  }
  o->cookie = hh_key ^ (uintptr_t)o;
  o->kind = HH_MAP_OVERSIZE;
  o->map_size = map_size;
  o->size = size;
  o->user = base;
  o->dirty = dirty;
  o->site = 0;
  o->scan_marks = NULL;
  if (!hh_registry_set_range((uintptr_t)base, map_size, o)) {
    hh_os_unmap(base, map_size);
    hh_meta_free(o, sizeof *o);
    return NULL;
  }
  hh_lock_acquire(&lock);
  o->prev = NULL;
  o->next = live;
  if (live) live->prev = o;
  live = o;
  if (tail && n_tails < CACHE_SLOTS && tail_bytes + (map_size - need) <= TAILS_MAX && !hh_sandboxed()) {
    tails[n_tails++] = (tail_entry){o, need, map_size - need, hh_coarse_ms()};
    tail_bytes += map_size - need;
    tails_due_update();
    tail = false;
  }
  hh_lock_release(&lock);
  if (tail) tail_purge(o, need); /* no room to wait (no slot, or past the budget): at once */
  return o;
}

static void unlink_live(hh_oversize *o) {
  if (o->prev)
    o->prev->next = o->next;
  else
    live = o->next;
  if (o->next) o->next->prev = o->prev;
}

bool hh_oversize_free(hh_oversize *o, void *p, const char *call) {
  hh_lock_acquire(&lock);
  if (o->kind != HH_MAP_OVERSIZE || o->user != p) { /* lost a race with another free of p */
    hh_lock_release(&lock);
    hh_error(call, p, "double free (a block of more than %'zu bytes, already freed)", HH_LARGE_MAX);
    return false;
  }
  o->kind = 0;
  unlink_live(o);
  tail_forget(o);
  recent[recent_next++ % RECENT] = p;
  hh_lock_release(&lock);

  uint8_t *base = o->user;
  size_t size = o->map_size;
  hh_meta_free(o, sizeof *o);
  if (size > CACHE_ENTRY_MAX) {
    hh_registry_set_range((uintptr_t)base, size, NULL);
    hh_os_unmap(base, size);
    return true;
  }
  hh_registry_set_range((uintptr_t)base, size, (void *)&cached_tag); /* cannot fail: the leaves exist */
  /* Cache it, evicting the oldest entries to stay within the budget. */
  uint8_t *evict[CACHE_SLOTS + 1];
  size_t evict_size[CACHE_SLOTS + 1];
  unsigned n_evict = 0;
  hh_lock_acquire(&lock);
  while (cached > 0 && (cached == CACHE_SLOTS || cached_bytes + size > CACHE_TOTAL_MAX)) {
    cached--;
    evict[n_evict] = cache[cached].base;
    evict_size[n_evict++] = cache[cached].size;
    cached_bytes -= cache[cached].size;
  }
  for (unsigned j = cached; j > 0; j--) cache[j] = cache[j - 1];
  uint64_t now = hh_coarse_ms();
  cache[0] = (cache_entry){base, size, now, false};
  cached++;
  cached_bytes += size;
  hh_lock_release(&lock);
  for (unsigned i = 0; i < n_evict; i++) {
    hh_registry_set_range((uintptr_t)evict[i], evict_size[i], NULL);
    hh_os_unmap(evict[i], evict_size[i]);
  }
  hh_oversize_decay(now);
  return true;
}

/* Unmaps every cached mapping. */
void hh_oversize_cache_flush(void) {
  for (;;) {
    hh_lock_acquire(&lock);
    if (cached == 0) {
      hh_lock_release(&lock);
      return;
    }
    cached--;
    uint8_t *base = cache[cached].base;
    size_t size = cache[cached].size;
    cached_bytes -= size;
    hh_lock_release(&lock);
    hh_registry_set_range((uintptr_t)base, size, NULL);
    hh_os_unmap(base, size);
  }
}

bool hh_oversize_recently_freed(const void *p) {
  bool found = false;
  hh_lock_acquire(&lock);
  for (unsigned i = 0; i < RECENT && !found; i++) found = recent[i] == p;
  hh_lock_release(&lock);
  return found;
}

void hh_oversize_grow_size(hh_oversize *o, size_t size) {
  hh_lock_acquire(&lock);
  if (size > o->size && size <= o->map_size) o->size = size;
  hh_lock_release(&lock);
}

static void *resize(hh_oversize *o, size_t size) {
  size_t old = o->map_size, want = chunks_of(size);
  uint8_t *base = o->user;
  if (want <= old) {
    if (want < old) { /* give the tail back */
      hh_registry_set_range((uintptr_t)(base + want), old - want, NULL);
      hh_os_unmap(base + want, old - want);
      o->map_size = want;
    }
    o->size = size;
    return base;
  }
  /* Grow in place if the address space after it is free... */
  if (hh_os_grow(base, old, want)) {
    if (!hh_registry_set_range((uintptr_t)(base + old), want - old, o)) {
      hh_os_unmap(base + old, want - old);
      return NULL;
    }
    o->map_size = want;
    o->size = size;
    return base;
  }
  /* ...else move the pages to a new aligned place without copying them. */
  uint8_t *dest = hh_os_map_aligned(want, HH_MAPPING_SIZE);
  if (dest == NULL) return NULL;
  if (!hh_registry_set_range((uintptr_t)dest, want, o)) {
    hh_os_unmap(dest, want);
    return NULL;
  }
  /* Unregister the old place while it is still ours: once mremap returns, the
   * kernel may hand that address to another thread's mmap at once. */
  hh_registry_set_range((uintptr_t)base, old, NULL);
  if (!hh_os_move(base, old, dest)) {
    hh_registry_set_range((uintptr_t)base, old, o);
    hh_registry_set_range((uintptr_t)dest, want, NULL);
    hh_os_unmap(dest, want);
    return NULL;
  }
  recent[recent_next++ % RECENT] = base;
  o->user = dest;
  o->map_size = want;
  o->size = size;
  return dest;
}

/* Resizes a live oversize range. The whole resize holds the lock, which the
 * leak scan holds while it reads blocks: a scan never meets a range whose
 * pages moved or shrank before its header says so. */
void *hh_oversize_realloc(hh_oversize *o, size_t size) {
  hh_lock_acquire(&lock);
  void *q = resize(o, size);
  /* resized, it ends with the chunks the request takes: no tail. A resize
   * that failed left the mapping as it was, and its tail to the decay. */
  if (q != NULL) tail_forget(o);
  hh_lock_release(&lock);
  return q;
}
