/*
 * The conservative reachability scan, done the way valgrind's memcheck does
 * it (mc_leakcheck.c) so that the figures agree with it:
 *
 * 1. Every live range is a block [start, start + requested size). A word is
 *    a pointer to a block when its value lies in that interval (a pointer
 *    one past the end is not); a 0-byte block is hit only at its start.
 * 2. Roots: every readable and writable mapping that is not hahalloc's own
 *    (data and bss of every object, the dynamic loader's and libc's memory,
 *    thread-local storage, anonymous mmaps), the live part of each thread's
 *    stack (from its stack pointer minus the 128-byte red zone up, as
 *    memcheck, which marks popped stack inaccessible), and the registers of
 *    every thread. The stack of an exited thread kept in glibc's stack cache
 *    is dead except for its TLS and control block at the top.
 * 3. From the roots, a pointer to a block's start makes it reachable, and an
 *    interior pointer makes it "possibly lost" (memcheck's Possible);
 *    blocks are scanned transitively (reachable blocks pass on
 *    reachability, possible ones only possibility).
 * 4. Every block still unreached is a definite leak; scanning each in
 *    address order, unreached blocks it points to (start or interior)
 *    become indirect leaks: memcheck's clique pass. In a cycle of leaked
 *    blocks the lowest address is the definite one.
 * Blocks are sorted by address once and found by two binary searches (the
 *    4 MiB chunk, then the block), so a million live blocks scan quickly.
 *
 * Everything here runs with the world stopped: no malloc, no stdio, no
 * dynamic loader calls, only memory from hh_report_map. A root that faults
 * (a file mapping past its end) is skipped, never fatal.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

enum { ST_UNREACHED = HH_DEFINITE, ST_INDIRECT = HH_INDIRECT, ST_POSSIBLE = HH_POSSIBLE,
       ST_REACHABLE = HH_REACHABLE };

typedef struct blk {
  uintptr_t start;
  uint64_t size; /* requested bytes */
  uint32_t site;
  uint8_t state;
  uint8_t root;
} blk;

typedef struct chunk_ix {
  uintptr_t chunk; /* address >> HH_MAPPING_SHIFT */
  uint32_t lo, hi; /* blocks starting at or after the chunk, and in it */
} chunk_ix;

typedef struct region {
  uintptr_t start, end;
} region;

typedef struct mapline {
  uintptr_t start, end;
  uint8_t kind; /* MAP_SKIP, MAP_DATA */
  uint8_t anon;
} mapline;

enum { MAP_SKIP = 0, MAP_DATA = 1 };

static sigjmp_buf fault_jb;
static volatile sig_atomic_t in_root;

static struct {
  hh_scan *s;
  blk *b;
  size_t n, cap;
  chunk_ix *cx;
  size_t ncx, cx_size;
  uintptr_t min, max;
  uint32_t *stack;
  size_t top, stack_cap;
  region excl[512]; /* sorted: our own memory and big blocks */
  int nexcl;
  mapline *maps;
  size_t nmaps, maps_cap;
  long t0;
  bool progress;
} S;

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Long scans say so on stderr, once, so nobody thinks the program hangs. */
static void progress(const char *what) {
  if (!S.progress && now_ms() - S.t0 > 1000) {
    S.progress = true;
    hh_dprintf(2, "hahalloc: leak scan of %zu blocks is taking a while (%s)...\n", S.n, what);
  }
}

/* ------------------------------------------------------------------ collecting blocks */

static void count_cb(void *ptr, size_t usable, size_t requested, uint32_t site, void *arg) {
  (void)ptr, (void)usable, (void)requested, (void)site;
  (*(size_t *)arg)++;
}

static void fill_cb(void *ptr, size_t usable, size_t requested, uint32_t site, void *arg) {
  (void)arg;
  if (S.n >= S.cap) return;
  blk *x = &S.b[S.n++];
  x->start = (uintptr_t)ptr;
  x->size = requested;
  x->site = site;
  x->state = ST_UNREACHED;
  x->root = usable > HH_LARGE_MAX ? HH_ROOTS + 1 : usable > HH_MEDIUM_MAX ? HH_ROOTS
                                                                          : (uint8_t)hh_root_of(usable);
}

/* LSD radix sort on the 48 address bits: the walk yields long sorted runs
 * but heaps interleave, and libc's qsort may allocate. */
static bool sort_blocks(void) {
  size_t bytes = S.n * sizeof(blk);
  blk *tmp = hh_report_map(bytes);
  size_t *count = hh_report_map(65536 * sizeof(size_t));
  if (tmp == NULL || count == NULL) {
    hh_report_unmap(tmp, bytes);
    hh_report_unmap(count, 65536 * sizeof(size_t));
    return false;
  }
  blk *src = S.b, *dst = tmp;
  for (int shift = 0; shift < 48; shift += 16) {
    memset(count, 0, 65536 * sizeof(size_t));
    for (size_t i = 0; i < S.n; i++) count[(src[i].start >> shift) & 0xffff]++;
    size_t sum = 0;
    for (size_t d = 0; d < 65536; d++) {
      size_t c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (size_t i = 0; i < S.n; i++) dst[count[(src[i].start >> shift) & 0xffff]++] = src[i];
    blk *t = src;
    src = dst;
    dst = t;
  }
  /* three passes: the result is in tmp */
  memcpy(S.b, src, bytes);
  hh_report_unmap(tmp, bytes);
  hh_report_unmap(count, 65536 * sizeof(size_t));
  return true;
}

static uintptr_t blk_end(const blk *x) { return x->start + (x->size ? x->size : 1); }

static bool build_index(void) {
  size_t need = 0;
  for (size_t i = 0; i < S.n; i++)
    need += ((blk_end(&S.b[i]) - 1) >> HH_MAPPING_SHIFT) - (S.b[i].start >> HH_MAPPING_SHIFT) + 1;
  S.cx_size = (need + 1) * sizeof(chunk_ix);
  S.cx = hh_report_map(S.cx_size);
  if (S.cx == NULL) return false;
  S.ncx = 0;
  for (size_t i = 0; i < S.n; i++) {
    uintptr_t sc = S.b[i].start >> HH_MAPPING_SHIFT, ec = (blk_end(&S.b[i]) - 1) >> HH_MAPPING_SHIFT;
    if (S.ncx && S.cx[S.ncx - 1].chunk == sc) {
      S.cx[S.ncx - 1].hi = (uint32_t)i + 1;
    } else {
      S.cx[S.ncx++] = (chunk_ix){sc, (uint32_t)i, (uint32_t)i + 1};
    }
    for (uintptr_t c = sc + 1; c <= ec; c++) S.cx[S.ncx++] = (chunk_ix){c, (uint32_t)i + 1, (uint32_t)i + 1};
  }
  S.min = S.n ? S.b[0].start : 1;
  S.max = 0;
  for (size_t i = 0; i < S.n; i++)
    if (blk_end(&S.b[i]) > S.max) S.max = blk_end(&S.b[i]);
  return true;
}

/* The block whose [start, start + size) holds p, or -1. */
static inline long find_block(uintptr_t p) {
  uintptr_t c = p >> HH_MAPPING_SHIFT;
  size_t lo = 0, hi = S.ncx;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (S.cx[mid].chunk < c) lo = mid + 1;
    else hi = mid;
  }
  if (lo == S.ncx || S.cx[lo].chunk != c) return -1;
  size_t a = S.cx[lo].lo, b = S.cx[lo].hi;
  /* last block starting at or before p, among those starting in the chunk */
  while (a < b) {
    size_t mid = (a + b) / 2;
    if (S.b[mid].start <= p) a = mid + 1;
    else b = mid;
  }
  if (a == 0) return -1;
  const blk *x = &S.b[a - 1];
  if (p >= x->start && (p < x->start + x->size || p == x->start)) return (long)(a - 1);
  return -1;
}

/* ------------------------------------------------------------------ marking */

static inline void push(size_t j) {
  if (S.top < S.stack_cap) S.stack[S.top++] = (uint32_t)j;
}

/* memcheck's lc_push_without_clique_if_a_chunk_ptr */
static inline void mark(uintptr_t v, bool prior_definite) {
  if (v < S.min || v >= S.max) return;
  long j = find_block(v);
  if (j < 0) return;
  blk *x = &S.b[j];
  if (x->state == ST_REACHABLE) return;
  if (v == x->start && prior_definite) {
    x->state = ST_REACHABLE;
    push((size_t)j);
  } else if (x->state == ST_UNREACHED) {
    x->state = ST_POSSIBLE;
    push((size_t)j);
  }
}

/* memcheck's lc_push_with_clique_if_a_chunk_ptr */
static inline void mark_clique(uintptr_t v, size_t leader) {
  if (v < S.min || v >= S.max) return;
  long j = find_block(v);
  if (j < 0 || (size_t)j == leader) return;
  blk *x = &S.b[j];
  if (x->state == ST_UNREACHED) {
    x->state = ST_INDIRECT;
    push((size_t)j);
  }
}

static void scan_words(uintptr_t a, uintptr_t b, bool prior_definite) {
  a = (a + 7) & ~(uintptr_t)7;
  b &= ~(uintptr_t)7;
  for (uintptr_t p = a; p < b; p += 8) mark(*(const uintptr_t *)p, prior_definite);
}

static void drain(bool clique, size_t leader) {
  while (S.top > 0) {
    const blk *x = &S.b[S.stack[--S.top]];
    uintptr_t a = (x->start + 7) & ~(uintptr_t)7, e = (x->start + x->size) & ~(uintptr_t)7;
    if (clique) {
      for (uintptr_t p = a; p < e; p += 8) mark_clique(*(const uintptr_t *)p, leader);
    } else {
      scan_words(a, e, x->state == ST_REACHABLE);
    }
  }
}

/* ------------------------------------------------------------------ roots */


static void on_fault(int sig) {
  if (in_root) siglongjmp(fault_jb, 1);
  signal(sig, SIG_DFL); /* not ours: die as the program would have */
  raise(sig);
}

/* Resident pages only: untouched anonymous memory is zero, and reading it
 * would populate page tables for nothing (huge reservations). */
static void scan_resident(uintptr_t a, uintptr_t b) {
  static unsigned char vec[4096];
  uintptr_t page = a & ~(uintptr_t)4095;
  while (page < b) {
    size_t pages = (b - page + 4095) / 4096;
    if (pages > sizeof vec) pages = sizeof vec;
    if (mincore((void *)page, pages * 4096, vec) != 0) {
      scan_words(page < a ? a : page, b, true); /* cannot tell: scan it all */
      S.s->root_bytes_scanned += b - (page < a ? a : page);
      return;
    }
    for (size_t i = 0; i < pages; i++) {
      if (!(vec[i] & 1)) continue;
      size_t j = i;
      while (j + 1 < pages && (vec[j + 1] & 1)) j++;
      uintptr_t lo = page + i * 4096, hi = page + (j + 1) * 4096;
      if (lo < a) lo = a;
      if (hi > b) hi = b;
      if (lo < hi) {
        scan_words(lo, hi, true);
        S.s->root_bytes_scanned += hi - lo;
      }
      i = j;
    }
    page += pages * 4096;
    progress("roots");
  }
}

/* [a, b) minus hahalloc's chunks and our exclusions. */
static void scan_root(uintptr_t a, uintptr_t b) {
  while (a < b) {
    uintptr_t end = (a | HH_MAPPING_MASK) + 1;
    if (end > b || end == 0) end = b;
    if (hh_is_internal(a)) {
      a = end;
      continue;
    }
    uintptr_t p = a;
    for (int i = 0; i < S.nexcl && p < end; i++) {
      if (S.excl[i].end <= p || S.excl[i].start >= end) continue;
      if (S.excl[i].start > p) scan_resident(p, S.excl[i].start);
      p = S.excl[i].end;
    }
    if (p < end) scan_resident(p, end);
    a = end;
  }
}

static void scan_root_safe(uintptr_t a, uintptr_t b) {
  if (sigsetjmp(fault_jb, 1) == 0) {
    in_root = 1;
    scan_root(a, b);
  }
  in_root = 0;
}

static void add_excl(uintptr_t a, uintptr_t b) {
  if (S.nexcl >= (int)(sizeof S.excl / sizeof S.excl[0])) return;
  int i = S.nexcl++;
  while (i > 0 && S.excl[i - 1].start > a) {
    S.excl[i] = S.excl[i - 1];
    i--;
  }
  S.excl[i] = (region){a, b};
}

static bool maps_cb(const hh_map_line *m, void *arg) {
  (void)arg;
  if (S.nmaps >= S.maps_cap) return false;
  mapline *l = &S.maps[S.nmaps];
  l->start = m->start;
  l->end = m->end;
  l->anon = m->path[0] == '\0';
  l->kind = MAP_DATA;
  if (!m->r || !m->w) l->kind = MAP_SKIP;
  else if (m->path[0] == '[' && strcmp(m->path, "[heap]") && strcmp(m->path, "[stack]") &&
           strncmp(m->path, "[anon", 5))
    l->kind = MAP_SKIP; /* [vvar], [vsyscall], [vdso] */
  else if (!strncmp(m->path, "/dev/", 5) && strcmp(m->path, "/dev/zero") &&
           strncmp(m->path, "/dev/shm/", 9))
    l->kind = MAP_SKIP; /* device memory: reading it may hang or have effects */
  S.nmaps++;
  return true;
}

/* glibc puts a thread's control block at the top of its stack mapping; it
 * starts with tcbhead_t { tcb = self, dtv, self = self }. */
static uintptr_t find_tcb(const mapline *l) {
  uintptr_t lo = l->end - 65536 > l->start ? l->end - 65536 : l->start;
  for (uintptr_t p = (l->end - 64) & ~(uintptr_t)63; p >= lo && p + 24 <= l->end; p -= 64) {
    const uintptr_t *w = (const uintptr_t *)p;
    if (w[0] == p && w[2] == p) return p;
  }
  return 0;
}

static HH_NOINLINE uintptr_t find_tcb_safe(const mapline *l) {
  volatile uintptr_t tcb = 0;
  if (sigsetjmp(fault_jb, 1) == 0) {
    in_root = 1;
    tcb = find_tcb(l);
  }
  in_root = 0;
  return tcb;
}

static void scan_maps(const hh_world *w) {
  for (size_t i = 0; i < S.nmaps; i++) {
    const mapline *l = &S.maps[i];
    if (l->kind == MAP_SKIP) continue;
    /* a live thread's stack: from its stack pointer up */
    uintptr_t sp = 0;
    if (S.s->own_sp >= l->start && S.s->own_sp < l->end) sp = S.s->own_sp;
    for (int t = 0; t < w->count; t++) {
      const hh_thread_regs *r = &w->threads[t];
      if (r->tid && r->sp >= l->start && r->sp < l->end && (sp == 0 || r->sp - 128 < sp))
        sp = r->sp - 128;
    }
    if (sp) {
      scan_root_safe(sp < l->start ? l->start : sp, l->end);
      continue;
    }
    /* the cached stack of an exited thread: only its TLS is alive */
    if (l->anon && w->missed == 0 && S.s->static_tls && !hh_is_internal(l->start)) {
      uintptr_t tcb = find_tcb_safe(l);
      bool live = tcb == (uintptr_t)pthread_self();
      for (int t = 0; t < w->count && !live; t++) live = w->threads[t].tid && w->threads[t].self == tcb;
      if (tcb && !live) {
        /* static TLS and the control block fill the top static_tls bytes */
        uintptr_t from = l->end - l->start > S.s->static_tls ? l->end - S.s->static_tls : l->start;
        scan_root_safe(from, l->end);
        continue;
      }
    }
    scan_root_safe(l->start, l->end);
  }
}

/* ------------------------------------------------------------------ grouping */

/* Heapsort by bytes, descending, then by site (in place, no allocation). */
static bool group_before(const hh_group *x, const hh_group *y) {
  return x->bytes > y->bytes || (x->bytes == y->bytes && x->site > y->site);
}

static void sift_down(hh_group *g, size_t root, size_t n) {
  for (;;) {
    size_t child = 2 * root + 1;
    if (child >= n) return;
    if (child + 1 < n && group_before(&g[child], &g[child + 1])) child++;
    if (!group_before(&g[root], &g[child])) return;
    hh_group t = g[root];
    g[root] = g[child];
    g[child] = t;
    root = child;
  }
}

static void group_sort(hh_group *g, size_t n) {
  for (size_t start = n / 2; start-- > 0;) sift_down(g, start, n);
  for (size_t end = n; end-- > 1;) {
    hh_group t = g[0];
    g[0] = g[end];
    g[end] = t;
    sift_down(g, 0, end);
  }
}

static void make_groups(hh_scan *s) {
  size_t cap = 64;
  while (cap < 2 * S.n + 16) cap *= 2;
  hh_group *t = hh_report_map(cap * sizeof *t);
  if (t == NULL) return;
  size_t n = 0;
  for (size_t i = 0; i < S.n; i++) {
    const blk *x = &S.b[i];
    if (x->size < s->min_size) continue;
    uint64_t h = ((uint64_t)x->site * 4 + x->state) * 0x9e3779b97f4a7c15ULL;
    size_t k = (size_t)(h >> 20) & (cap - 1);
    while (t[k].blocks && (t[k].site != x->site || t[k].kind != x->state)) k = (k + 1) & (cap - 1);
    hh_group *g = &t[k];
    if (g->blocks == 0) {
      g->site = x->site;
      g->kind = x->state;
      g->min_size = x->size;
      n++;
    }
    g->blocks++;
    g->bytes += x->size;
    if (x->size < g->min_size) g->min_size = x->size;
    if (x->size > g->max_size) g->max_size = x->size;
  }
  size_t j = 0;
  for (size_t k = 0; k < cap; k++)
    if (t[k].blocks) t[j++] = t[k];
  group_sort(t, j);
  s->groups = t;
  s->ngroups = j;
  s->groups_size = cap * sizeof *t;
}

/* ------------------------------------------------------------------ the run */

static void classify(const hh_world *w) {
  /* registers of the stopped threads and of this one */
  for (int t = 0; t < w->count; t++) {
    const hh_thread_regs *r = &w->threads[t];
    if (!r->tid) continue;
    for (int k = 0; k < 23; k++) mark(r->gregs[k], true);
    /* a stack inside a heap block (coroutines): that block is in use */
    if (hh_is_internal(r->sp)) {
      long j = find_block(r->sp);
      if (j >= 0) mark(S.b[j].start, true);
    }
  }
  for (int k = 0; k < 8; k++) mark(S.s->own_regs[k], true);
  drain(false, 0);

  /* roots */
  struct sigaction sa, old_segv, old_bus;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fault;
  sa.sa_flags = SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
  scan_maps(w);
  sigaction(SIGSEGV, &old_segv, NULL);
  sigaction(SIGBUS, &old_bus, NULL);
  drain(false, 0);

  /* cliques of unreached blocks */
  for (size_t i = 0; i < S.n; i++) {
    if (S.b[i].state != ST_UNREACHED) continue;
    push(i);
    drain(true, i);
    if ((i & 0xffff) == 0) progress("leaked blocks");
  }
}

void hh_scan_run(hh_scan *s) {
  memset(&S, 0, sizeof S);
  S.s = s;
  S.t0 = now_ms();
  hh_heaps_lock();
  hh_oversize_lock();
  hh_world w;
  hh_world_stop(&w);
  s->threads = w.count + 1;
  s->threads_missed = w.missed;
  hh_stats_totals(&s->totals);

  size_t count = 0;
  hh_for_each_live_range(count_cb, &count);
  /* frees are not counted as they happen: every range counted as allocated
   * is either freed or live now */
  s->totals.frees = s->totals.allocs > count ? s->totals.allocs - count : 0;
  S.cap = count;
  S.b = count ? hh_report_map(count * sizeof(blk)) : NULL;
  S.stack_cap = 2 * count + 16;
  S.stack = hh_report_map(S.stack_cap * sizeof(uint32_t));
  S.maps_cap = 65536;
  S.maps = hh_report_map(S.maps_cap * sizeof(mapline));
  bool ok = S.stack && S.maps && (count == 0 || S.b);
  if (ok && count) {
    hh_for_each_live_range(fill_cb, NULL);
    ok = sort_blocks() && build_index();
  }
  if (ok) {
    uintptr_t own[256][2];
    int nown = hh_report_regions(own, 256);
    for (int i = 0; i < nown; i++) add_excl(own[i][0], own[i][1]);
    for (int i = 0; i < s->nexcl; i++) add_excl(s->excl[i][0], s->excl[i][1]);
    add_excl((uintptr_t)&S, (uintptr_t)(&S + 1)); /* it holds block addresses */
    /* big blocks may sit in chunks the registry does not name */
    for (size_t i = 0; i < S.n; i++)
      if (S.b[i].size > HH_MEDIUM_MAX) add_excl(S.b[i].start, S.b[i].start + S.b[i].size);
    hh_maps_each(maps_cb, NULL);
    if (s->leak_check && S.n) classify(&w);
    else
      for (size_t i = 0; i < S.n; i++) S.b[i].state = ST_REACHABLE;
  }
  hh_world_resume(&w);
  hh_oversize_unlock();
  hh_heaps_unlock();

  s->failed = !ok;
  for (size_t i = 0; i < S.n; i++) {
    const blk *x = &S.b[i];
    s->live_bytes += x->size;
    s->live_blocks++;
    s->kind_bytes[x->state] += x->size;
    s->kind_blocks[x->state]++;
    if (x->size < s->min_size) continue; /* the table lists what the report lists */
    s->root_blocks[x->root]++;
    s->root_bytes[x->root] += x->size;
  }
  if (ok) make_groups(s);
  hh_report_unmap(S.b, S.cap * sizeof(blk));
  hh_report_unmap(S.cx, S.cx_size);
  hh_report_unmap(S.stack, S.stack_cap * sizeof(uint32_t));
  hh_report_unmap(S.maps, S.maps_cap * sizeof(mapline));
}

void hh_scan_free(hh_scan *s) {
  hh_report_unmap(s->groups, s->groups_size);
  s->groups = NULL;
}
