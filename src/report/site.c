/*
 * Allocation sites: the stack of frames that led to an allocation, interned
 * to a 32-bit id stored beside the range (hh_track_rec.site).
 *
 * Cost is what matters here: this runs on every malloc while tracking. With
 * the default depth of 1 (the call site: the caller of malloc, or of the
 * runtime wrapper that called it) a call site outside the runtime is decided
 * by its return address alone, so a direct-mapped table in the heap maps it
 * to its id in a few instructions (hh_track, inline in malloc). Otherwise each thread keeps a small
 * direct-mapped cache keyed by the entry point's return address and frame
 * address. An entry also keeps every stack word the walk
 * read (return addresses, saved frame pointers): the walk is a pure function
 * of (return address, frame address, those words), so if they all still
 * hold the same values, the walk would find the same frames and the cached
 * id is exact. In a loop that allocates from one place this is a handful of
 * loads and compares; only new paths walk the stack (unwind.c) and look the
 * frames up in the global site table.
 *
 * Bounds: the walk reads only between the entry point's frame and the end
 * of the stack mapping that holds it (found once per thread in
 * /proc/self/maps), so a wrong guess never faults. A frame on a stack
 * hahalloc handed out (coroutines) records the call site alone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "entry.h"
#include "hooks.h"
#include "lock.h"
#include "options.h"
#include "os.h"
#include "report.h"

/* ------------------------------------------------------------------ site table */

typedef struct site_rec {
  uint32_t id;
  uint32_t n;
  uintptr_t pcs[];
} site_rec;

#define CHUNK_BITS 12
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 512 /* 2 M sites: the packed record's 21 bits */
_Static_assert(((uint64_t)MAX_CHUNKS << CHUNK_BITS) <= (uint64_t)HH_PACKED_SITE_MASK + 1,
               "a packed record holds every site id");

/* Frames -> site: entries are (hash of the frames, site_rec *). Ids -> site:
 * chunks of CHUNK_SIZE pointers. Both are read without a lock. */
static hh_table sites = {.entry = 2 * sizeof(uint64_t), .first_slots = 256};
static _Atomic(site_rec **) site_chunks[MAX_CHUNKS];
static _Atomic(uint32_t) site_total;
static hh_lock sites_lock = HH_LOCK_INIT;

typedef struct frames {
  const uintptr_t *pcs;
  int n;
} frames;

static bool same_frames(const void *entry, const void *arg) {
  const site_rec *r = ((site_rec *const *)entry)[1]; /* after the key */
  const frames *f = arg;
  if (r->n != (uint32_t)f->n) return false;
  for (int i = 0; i < f->n; i++)
    if (r->pcs[i] != f->pcs[i]) return false;
  return true;
}

static uint32_t site_find(uint64_t key, const frames *f) {
  void *e = hh_table_find(&sites, key, same_frames, f);
  return e != NULL ? ((site_rec *const *)e)[1]->id : 0;
}

static uint32_t site_intern(const uintptr_t *pcs, int n) {
  if (n <= 0) return 0;
  frames f = {pcs, n};
  uint64_t key = (uint64_t)n;
  for (int i = 0; i < n; i++) key = hh_hash_step(key, pcs[i]);
  key |= 1; /* never 0, the empty slot */
  uint32_t id = site_find(key, &f);
  if (id) return id;

  hh_lock_acquire(&sites_lock);
  if ((id = site_find(key, &f)) != 0) goto done;
  uint32_t next = atomic_load_explicit(&site_total, memory_order_relaxed) + 1;
  if (next >= (uint32_t)MAX_CHUNKS * CHUNK_SIZE) goto done; /* full: unknown site */
  _Atomic(site_rec **) *chunk = &site_chunks[next >> CHUNK_BITS];
  site_rec **c = atomic_load_explicit(chunk, memory_order_relaxed);
  if (c == NULL) {
    c = hh_meta_alloc(CHUNK_SIZE * sizeof *c); /* zeroed: pages are touched as ids fill them */
    if (c == NULL) goto done;
    atomic_store_explicit(chunk, c, memory_order_release);
  }
  site_rec *r = hh_meta_alloc(sizeof *r + (size_t)n * sizeof *pcs);
  if (r == NULL) goto done;
  r->id = next;
  r->n = (uint32_t)n;
  memcpy(r->pcs, pcs, (size_t)n * sizeof *pcs);
  c[next & (CHUNK_SIZE - 1)] = r;
  atomic_store_explicit(&site_total, next, memory_order_release);
  /* findable last, once its frames are: a table that cannot grow only
   * means the same frames get another id next time */
  struct {
    uint64_t key;
    site_rec *r;
  } e = {key, r};
  hh_table_add(&sites, &e);
  id = next;
done:
  hh_lock_release(&sites_lock);
  return id;
}

const uintptr_t *hh_site_frames(uint32_t id, int *n) {
  if (id == 0 || id > atomic_load_explicit(&site_total, memory_order_acquire)) return NULL;
  site_rec **c = atomic_load_explicit(&site_chunks[id >> CHUNK_BITS], memory_order_acquire);
  if (c == NULL || c[id & (CHUNK_SIZE - 1)] == NULL) return NULL;
  *n = (int)c[id & (CHUNK_SIZE - 1)]->n;
  return c[id & (CHUNK_SIZE - 1)]->pcs;
}

/* ------------------------------------------------------------------ per-thread state */

#define CACHE_BITS 6
#define CACHE_N (1u << CACHE_BITS)
#define MAX_READS 64

typedef struct centry {
  uintptr_t ret, frame;
  uint32_t site;
  int32_t nreads;
  hh_read reads[]; /* [max_reads] */
} centry;

typedef struct tstate {
  hh_heap *heap; /* the owner's heap: changes when the thread is gone */
  int tid;
  int in_use;
  uintptr_t lo, hi;   /* the stack mapping of the thread */
  uintptr_t alo, ahi; /* another stack it was last seen on (sigaltstack...) */
  struct tstate *next;
  size_t entry_size;
  int max_reads;
  unsigned char cache[]; /* CACHE_N entries of entry_size bytes */
} tstate;

static __thread tstate *tls_state;
static tstate *all_states;
static hh_lock states_lock = HH_LOCK_INIT;

/* The bounds of the stack mapping that holds `addr`. Not once the program
 * has installed a seccomp filter: it may kill the process for opening the
 * maps (a C++ program whose filter refused openat was killed by SIGSYS in
 * its next std::thread's first allocation under the report). The walk is
 * then one frame deep; no report is made anyway (report.c). */
static bool stack_of(uintptr_t addr, uintptr_t *lo, uintptr_t *hi) {
  hh_map_line m;
  bool ok = !hh_sandboxed() && hh_maps_find(addr, &m) && m.r && m.w;
  *lo = ok ? m.start : 0;
  *hi = ok ? m.end : 0;
  return ok;
}

static inline centry *centry_at(tstate *ts, size_t i) { return (centry *)(ts->cache + i * ts->entry_size); }

/* A state whose heap moved on belongs to a thread that has exited. */
static bool state_free(tstate *s) {
  if (!s->in_use) return true;
  return s->heap == NULL || atomic_load_explicit(&s->heap->abandoned, memory_order_relaxed) || s->heap->tid != s->tid;
}

static tstate *state_get(uintptr_t frame) {
  hh_heap *heap = hh_heap_mine();
  if (heap == NULL) return NULL;
  int max_reads = 2 * (hh_opt.stack_depth + 8) + 2; /* two words a frame, wrappers too */
  if (max_reads > MAX_READS) max_reads = MAX_READS;
  size_t esz = sizeof(centry) + (size_t)max_reads * sizeof(hh_read);
  /* A state is claimed with its owner's heap and tid, under the lock: set
   * after it, another thread's state_free read the state, in use, as an
   * exited thread's (a heap not yet set, or the last owner's), and two
   * threads shared one cache (helper-66, ThreadSanitizer). */
  tstate *ts = NULL;
  hh_lock_acquire(&states_lock);
  for (tstate *s = all_states; s; s = s->next)
    if (s != tls_state && state_free(s)) {
      ts = s;
      break;
    }
  if (ts) {
    ts->in_use = 1;
    ts->heap = heap;
    ts->tid = heap->tid;
  }
  hh_lock_release(&states_lock);
  if (ts != NULL) {
    memset(ts->cache, 0, CACHE_N * esz); /* an exited thread's entries */
  } else {
    ts = hh_meta_alloc(sizeof *ts + CACHE_N * esz);
    if (ts == NULL) return NULL;
    ts->in_use = 1;
    ts->heap = heap;
    ts->tid = heap->tid;
    hh_lock_acquire(&states_lock);
    ts->next = all_states;
    all_states = ts;
    hh_lock_release(&states_lock);
  }
  ts->entry_size = esz;
  ts->max_reads = max_reads;
  ts->alo = ts->ahi = 0;
  if (!stack_of(frame, &ts->lo, &ts->hi)) ts->lo = ts->hi = 0;
  tls_state = ts;
  return ts;
}

/* The end of the stack that holds `frame`, or 0 when it must not be walked. */
static uintptr_t stack_end(tstate *ts, uintptr_t frame) {
  if (frame >= ts->lo && frame < ts->hi) return ts->hi;
  if (frame >= ts->alo && frame < ts->ahi) return ts->ahi;
  if (hh_is_internal(frame)) return 0;
  uintptr_t lo, hi;
  if (!stack_of(frame, &lo, &hi)) return 0;
  if (hi == ts->hi)
    ts->lo = lo; /* the main stack grew */
  else {
    ts->alo = lo;
    ts->ahi = hi;
  }
  return hi;
}

static inline size_t cache_index(uintptr_t ret, uintptr_t frame) {
  uint64_t k = (ret ^ (frame << 12) ^ (frame >> 4)) * 0x9e3779b97f4a7c15ULL;
  return (size_t)(k >> (64 - CACHE_BITS));
}

/* Depth 1 (the default): a call site outside the runtime's wrappers depends
 * on its return address alone, so the fast path may find it in the heap's
 * call-site table (hh_track) without validation. */
static void remember(uintptr_t ret, uint32_t id) {
  hh_heap *heap = hh_heap_mine();
  if (heap != NULL) hh_callsite_remember(heap, ret, id);
}

/* A signal handler's malloc may read an entry while it is written: the
 * address is cleared first and set last, so that it never meets the other
 * entry's id. */
static void callsite_set(hh_callsite_cache *t, size_t i, uintptr_t ret, uint32_t id) {
  t->ret[i] = 0;
  atomic_signal_fence(memory_order_seq_cst);
  t->id[i] = id;
  atomic_signal_fence(memory_order_seq_cst);
  t->ret[i] = ret;
}

/* The new entry takes the first place; the one it displaces moves to the
 * second (hh_callsite_index). */
void hh_callsite_remember(hh_heap *heap, uintptr_t ret, uint32_t id) {
  if (hh_guard) return; /* every allocation must reach hh_track_new_site */
  hh_callsite_cache *t = &heap->callsite;
  size_t i = hh_callsite_index(ret);
  uintptr_t old = t->ret[i];
  if (old != 0 && old != ret) callsite_set(t, i ^ 1, old, t->id[i]);
  callsite_set(t, i, ret, id);
}

/* `tagged` is the caller's return address with the entry point in its top
 * bits (HH_ENTRY_RET): the site's first frame is that entry point (a pc
 * below HH_ENTRY_PCS), then the return addresses the walk finds. */
static uint32_t capture_walk(uintptr_t tagged, uintptr_t frame);

/* errno as the program left it: the walk may read an object's ELF file and
 * look for its debug file (absent: ENOENT), and a malloc that succeeds
 * must not change errno (the first block a stripped library allocated
 * after its dlopen set it to ENOENT, helper-47). */
static HH_NOINLINE uint32_t capture_slow(uintptr_t tagged, uintptr_t frame) {
  int saved = errno;
  uint32_t id = capture_walk(tagged, frame);
  errno = saved;
  return id;
}

static uint32_t capture_walk(uintptr_t tagged, uintptr_t frame) {
  int depth = hh_opt.stack_depth;
  if (depth <= 0) { /* no sites: remember that for this call site too */
    remember(tagged, 0);
    return 0;
  }
  if (hh_unwind_busy()) return 0;
  tstate *ts = tls_state;
  if (ts == NULL || ts->heap != hh_heap_mine()) ts = state_get(frame);
  if (ts == NULL) return 0;

  uintptr_t ret = hh_entry_untag(tagged);
  uintptr_t pcs[HH_MAX_FRAMES + 1];
  hh_read reads[MAX_READS];
  int nreads = 0, n;
  pcs[0] = hh_entry_of(tagged) + 1;
  uintptr_t hi = stack_end(ts, frame);
  if (hi == 0 || frame + 16 > hi) {
    pcs[1] = ret;
    n = 2;
  } else {
    n = 1 + hh_unwind(ret, frame, hi, depth, pcs + 1, reads, ts->max_reads, &nreads);
  }
  uint32_t id = site_intern(pcs, n);
  if (depth == 1 && n == 2 && pcs[1] == ret && id != 0 && !hh_opt.profile) {
    /* not a wrapper: the pc alone decides (the profile counts every malloc
     * here, so it never lets the fast path decide) */
    remember(tagged, id);
    return id;
  }
  if (nreads >= 0 && hi != 0 && hi == ts->hi) { /* alternate stacks may be unmapped */
    centry *e = centry_at(ts, cache_index(tagged, frame));
    e->ret = tagged;
    e->frame = frame;
    e->site = id;
    e->nreads = nreads;
    memcpy(e->reads, reads, (size_t)nreads * sizeof *reads);
  }
  return id;
}

uint32_t hh_site_capture(void *ret, void *frame) {
  tstate *ts = tls_state;
  uintptr_t r = (uintptr_t)ret, f = (uintptr_t)frame;
  if (HH_LIKELY(ts != NULL && ts->heap == hh_heap_mine())) {
    const centry *e = centry_at(ts, cache_index(r, f));
    if (HH_LIKELY(e->ret == r && e->frame == f)) {
      for (int i = 0; i < e->nreads; i++)
        if (*(const uintptr_t *)e->reads[i].addr != e->reads[i].value) goto slow;
      return e->site;
    }
  }
slow:
  return capture_slow(r, f);
}

/* ------------------------------------------------------------------ fork */

void hh_site_atfork_prepare(void) {
  hh_unwind_atfork_prepare();
  hh_lock_acquire(&sites_lock);
  hh_lock_acquire(&states_lock);
}

void hh_site_atfork_parent(void) {
  hh_lock_release(&states_lock);
  hh_lock_release(&sites_lock);
  hh_unwind_atfork_parent();
}

/* The other threads' caches are free again: their threads are gone. */
void hh_site_atfork_child(void) {
  hh_lock_init(&states_lock);
  hh_lock_init(&sites_lock);
  hh_unwind_atfork_child();
  for (tstate *s = all_states; s; s = s->next)
    if (s != tls_state) s->in_use = 0;
}
