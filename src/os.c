/*
 * The only file that talks to the kernel about memory: mmap, munmap, mremap,
 * madvise. Also the registry (which 4 MiB chunk belongs to which header) and
 * meta memory for the allocator's own tables.
 *
 * None of these calls may change errno on success: free() must keep errno.
 *
 * No mapping is made with MAP_NORESERVE: memory handed to the program is
 * charged to the kernel's overcommit accounting, so a request the kernel
 * would refuse (malloc of 64 TiB on a machine of 24 GiB) fails at once with
 * ENOMEM, as glibc's does, instead of succeeding and faulting later.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <time.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "hooks.h"
#include "lock.h"
#include "os.h"

/* ------------------------------------------------------------------ mmap */

/* errno is left as it was, failed or not: a failure here is often
 * retried (after the caches are emptied) and succeeds, and a malloc that
 * succeeds must not change errno; one that fails says ENOMEM itself. */
void *hh_os_map(size_t size) {
  int saved = errno;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  errno = saved;
  return p == MAP_FAILED ? NULL : p;
}

void hh_os_unmap(void *p, size_t size) {
  int saved = errno;
  munmap(p, size);
  errno = saved;
}

bool hh_os_purge(void *p, size_t size) {
  int saved = errno;
  bool done = madvise(p, size, MADV_DONTNEED) == 0;
  errno = saved;
  return done;
}

bool hh_os_resident(void *p, size_t size, unsigned char *vec) {
  int saved = errno;
  bool done = mincore(p, size, vec) == 0;
  errno = saved;
  return done;
}

#if defined(__SANITIZE_THREAD__)
/* ThreadSanitizer intercepts mmap and munmap, not mremap: memory that
 * mremap moves or extends keeps the shadow of whatever was there before, and
 * the next thread to use it would be reported racing with the last one. The
 * TSan build (tests only) grows by moving, and moves by copying. */
bool hh_os_grow(void *p, size_t old_size, size_t new_size) {
  (void)p, (void)old_size, (void)new_size;
  return false;
}

/* A copy TSan does not watch (its memcpy checks every word: minutes for the
 * tests' big blocks); the source is unmapped and the destination was just
 * mapped, both through its interceptors, so their shadows are right. */
__attribute__((no_sanitize("thread"), optimize("no-tree-loop-distribute-patterns"))) bool
hh_os_move(void *p, size_t size, void *dest) {
  const uint64_t *from = p;
  uint64_t *to = dest;
  for (size_t i = 0; i < size / 8; i++) to[i] = from[i];
  hh_os_unmap(p, size);
  return true;
}
#else
/* Grows a mapping where it is, if the address space after it is free. */
bool hh_os_grow(void *p, size_t old_size, size_t new_size) {
  int saved = errno;
  bool ok = mremap(p, old_size, new_size, 0) != MAP_FAILED;
  errno = saved;
  return ok;
}

/* Moves a mapping's pages onto `dest` (which it replaces) without copying. */
bool hh_os_move(void *p, size_t size, void *dest) {
  if (mremap(p, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, dest) != MAP_FAILED) return true;
  errno = ENOMEM;
  return false;
}
#endif

/* Where the next aligned mapping is likely to fit without trimming: the
 * kernel hands out addresses downwards, so try just below the last one. */
static _Atomic(uintptr_t) aligned_hint;

void *hh_os_map_aligned(size_t size, size_t align) {
  uintptr_t hint = atomic_load_explicit(&aligned_hint, memory_order_relaxed);
  if (hint > size + align) {
    int saved = errno;
    void *p = mmap((void *)(hint - size), size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    errno = saved;
    if (p != MAP_FAILED) {
      if (((uintptr_t)p & (align - 1)) == 0) {
        atomic_store_explicit(&aligned_hint, (uintptr_t)p, memory_order_relaxed);
        return p;
      }
      hh_os_unmap(p, size);
    }
  }
  /* Over-allocate and trim both ends. */
  uint8_t *raw = hh_os_map(size + align);
  if (raw == NULL) return NULL;
  uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
  size_t head = start - (uintptr_t)raw;
  size_t tail = align - head;
  if (head) hh_os_unmap(raw, head);
  if (tail) hh_os_unmap((void *)(start + size), tail);
  atomic_store_explicit(&aligned_hint, start, memory_order_relaxed);
  return (void *)start;
}

void hh_yield(void) {
  if (HH_LIKELY(!hh_sandboxed())) {
    sched_yield();
    return;
  }
  static int never_woken;
  struct timespec pause = {0, 20000};
  int saved = errno;
  syscall(SYS_futex, &never_woken, FUTEX_WAIT_PRIVATE, 0, &pause, NULL, 0);
  errno = saved;
}

/* splitmix64's finaliser (Steele, Lea and Flood, 2014): a counter's steps
 * made into well-mixed words. */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Secrets after a seccomp filter: drawn from the first one the kernel gave
 * (start-up draws it, for hh_key), by a counter, with no system call. A
 * program whose filter allowed only the calls it made itself under glibc
 * (which asks getrandom once, at start-up) died of SIGSYS at its next
 * thread's first malloc, when the new heap drew its secrets (helper-75). */
static _Atomic(uint64_t) derived;

void hh_os_random_atfork_child(uint64_t salt) {
  uint64_t seed = atomic_load_explicit(&derived, memory_order_relaxed);
  if (seed != 0) atomic_store_explicit(&derived, mix64(seed ^ mix64(salt)) | 1, memory_order_relaxed);
}

uintptr_t hh_os_random(void) {
  if (hh_sandboxed()) {
    uint64_t none = 0; /* no draw before the filter: the clock seeds the counter */
    atomic_compare_exchange_strong(&derived, &none, mix64((uint64_t)hh_now_ns() ^ (uintptr_t)&none) | 1);
    return (uintptr_t)mix64(atomic_fetch_add_explicit(&derived, 0x9E3779B97F4A7C15ull, memory_order_relaxed));
  }
  uint64_t r[2]; /* the secret, and the seed of those derived after a filter */
  int saved = errno;
  /* the system call, not glibc's getrandom: that is a cancellation point
   * (glibc 2.36), and a thread's first malloc draws its heap's secrets
   * here; malloc must never be one (a thread cancelled inside it would
   * leave its heap half made and its mutexes held) */
  if (syscall(SYS_getrandom, r, sizeof r, GRND_NONBLOCK) != (long)sizeof r) {
    uint64_t t = (uint64_t)hh_now_ns() * 0x9E3779B97F4A7C15ull ^ (uintptr_t)&r ^ (uint64_t)getpid() << 32;
    r[0] = mix64(t);
    r[1] = mix64(t + 0x9E3779B97F4A7C15ull);
  }
  uint64_t none = 0;
  atomic_compare_exchange_strong(&derived, &none, r[1] | 1);
  errno = saved;
  return (uintptr_t)r[0];
}

/* ------------------------------------------------------------------ registry
 * Entries are written by the thread that maps or unmaps their chunk. */

_Atomic(hh_reg_leaf *) hh_registry[HH_REG_TOP];
hh_tag_table hh_tags;

/* The tag leaf of the chunks of the registry leaf `top`, made before the
 * registry's own: a chunk registered always has its byte. */
static bool tag_leaf_make(uintptr_t top) {
  _Atomic(uint64_t) *slot = &hh_tags.top[top];
  if (atomic_load_explicit(slot, memory_order_acquire) != 0) return true;
  uint8_t *fresh = hh_os_map(HH_REG_LEAF);
  if (fresh == NULL) return false;
  uint64_t none = 0;
  if (!atomic_compare_exchange_strong(slot, &none, (uint64_t)((uintptr_t)fresh - (uintptr_t)hh_tags.none)))
    hh_os_unmap(fresh, HH_REG_LEAF); /* another thread won */
  return true;
}

bool hh_registry_set(uintptr_t addr, void *hdr) {
  if (addr >> 47) return false;
  uintptr_t chunk = addr >> HH_MAPPING_SHIFT;
  _Atomic(hh_reg_leaf *) *slot = &hh_registry[chunk >> HH_REG_LEAF_BITS];
  hh_reg_leaf *leaf = atomic_load_explicit(slot, memory_order_acquire);
  if (leaf == NULL) {
    if (hdr == NULL) return true;
    if (!tag_leaf_make(chunk >> HH_REG_LEAF_BITS)) return false;
    hh_reg_leaf *fresh = hh_os_map(sizeof(hh_reg_leaf));
    if (fresh == NULL) return false;
    if (atomic_compare_exchange_strong(slot, &leaf, fresh)) {
      leaf = fresh;
    } else {
      hh_os_unmap(fresh, sizeof(hh_reg_leaf)); /* another thread won; `leaf` is theirs */
    }
  }
  atomic_store_explicit(&(*leaf)[chunk & (HH_REG_LEAF - 1)], hdr, memory_order_release);
  return true;
}

bool hh_registry_set_range(uintptr_t base, size_t size, void *hdr) {
  for (size_t off = 0; off < size; off += HH_MAPPING_SIZE) {
    if (!hh_registry_set(base + off, hdr)) {
      for (size_t done = 0; done < off; done += HH_MAPPING_SIZE) hh_registry_set(base + done, NULL);
      return false;
    }
  }
  return true;
}

/* ------------------------------------------------------------------ meta memory
 * Small tables (heaps, report structures) come from 4 MiB chunks carved by
 * a bump pointer, with a free list per power of two; big ones get chunks of
 * their own. Every chunk is registered with the meta tag so that the leak
 * scan never takes the allocator's own tables for anchors. */

static const hh_header meta_tag = {0, HH_MAP_META};
#define META_TAG ((void *)&meta_tag)
#define META_MIN_SHIFT 6
#define META_CLASSES 16 /* 64 B .. 2 MiB */

static hh_lock meta_lock = HH_LOCK_INIT;
static uint8_t *meta_bump, *meta_end;
static void *meta_free_list[META_CLASSES];

static unsigned meta_class(size_t size) {
  unsigned c = 0;
  while (((size_t)1 << (c + META_MIN_SHIFT)) < size) c++;
  return c;
}

static void *meta_map(size_t size) {
  size = (size + HH_MAPPING_MASK) & ~(size_t)HH_MAPPING_MASK;
  uint8_t *p = hh_os_map_aligned(size, HH_MAPPING_SIZE);
  if (p == NULL) return NULL;
  if (!hh_registry_set_range((uintptr_t)p, size, META_TAG)) {
    hh_os_unmap(p, size);
    return NULL;
  }
  return p;
}

void *hh_meta_alloc(size_t size) {
  if (size == 0) size = 1;
  unsigned c = meta_class(size);
  if (c >= META_CLASSES) return meta_map(size);
  size_t bytes = (size_t)1 << (c + META_MIN_SHIFT);
  hh_lock_acquire(&meta_lock);
  void *p = meta_free_list[c];
  if (p != NULL) {
    meta_free_list[c] = *(void **)p;
    hh_lock_release(&meta_lock);
    __builtin_memset(p, 0, bytes);
    return p;
  }
  if (meta_bump == NULL || (size_t)(meta_end - meta_bump) < bytes) {
    uint8_t *chunk = meta_map(HH_MAPPING_SIZE);
    if (chunk == NULL) {
      hh_lock_release(&meta_lock);
      return NULL;
    }
    meta_bump = chunk; /* the rest of the old chunk is abandoned: at most 2 MiB */
    meta_end = chunk + HH_MAPPING_SIZE;
  }
  p = meta_bump;
  meta_bump += bytes;
  hh_lock_release(&meta_lock);
  return p; /* fresh mmap memory is zero */
}

void hh_meta_free(void *p, size_t size) {
  if (p == NULL) return;
  if (size == 0) size = 1;
  unsigned c = meta_class(size);
  if (c >= META_CLASSES) {
    size = (size + HH_MAPPING_MASK) & ~(size_t)HH_MAPPING_MASK;
    hh_registry_set_range((uintptr_t)p, size, NULL);
    hh_os_unmap(p, size);
    return;
  }
  hh_lock_acquire(&meta_lock);
  *(void **)p = meta_free_list[c];
  meta_free_list[c] = p;
  hh_lock_release(&meta_lock);
}

bool hh_is_internal(uintptr_t addr) { return hh_registry_get(addr) != NULL; }

void hh_meta_lock(void) { hh_lock_acquire(&meta_lock); }
void hh_meta_unlock(void) { hh_lock_release(&meta_lock); }
void hh_meta_lock_reset(void) { hh_lock_init(&meta_lock); }
