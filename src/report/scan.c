/*
 * The conservative reachability scan, done the way valgrind's memcheck does
 * it (mc_leakcheck.c) so that the figures agree with it:
 *
 * 1. Every live range is a block [start, start + requested size). A word is
 *    a pointer to a block when its value lies in that interval (a pointer
 *    one past the end is not); a 0-byte block is hit only at its start.
 * 2. Anchors (memcheck: the root set): every readable and writable mapping that
 *    is not hahalloc's own (data and bss of every object, the dynamic
 *    loader's and libc's memory, thread-local storage, anonymous mmaps), the
 *    live part of each thread's stack (from its stack pointer minus the
 *    128-byte red zone up), and the registers of every thread. The stack of
 *    an exited thread kept in glibc's stack cache is dead except for its TLS
 *    and control block at the top.
 * 3. From the anchors, a pointer to a block's start makes it reachable, and
 *    an interior pointer makes it "possibly lost"; blocks are scanned
 *    transitively (reachable blocks pass on reachability, possible ones only
 *    possibility).
 * 4. Every block still unreached is a definite leak; scanning each in
 *    address order, unreached blocks it points to (start or interior)
 *    become indirect leaks: memcheck's clique pass. In a cycle of leaked
 *    blocks the lowest address is the definite one.
 *
 * Memory. The scan keeps one byte per live block: a mark array per page,
 * hung on the page descriptor (hh_page.scan_marks) for the length of the
 * scan, so that a word is resolved to its block through the registry, the
 * slice and one multiply, exactly as free() resolves a pointer: no copy of
 * the heap, no sorting. The work list has a fixed size; when it overflows,
 * blocks are flagged pending and picked up by a sweep (as conservative
 * collectors do), so memory stays bounded whatever the heap's shape.
 *
 * Safety. Everything here runs with the world stopped, except threads that
 * could not be stopped in time, which may still run: no malloc, no stdio,
 * no locks, only memory from hh_report_map. Every read of a block, an anchor
 * or the allocator's metadata runs under a fault guard: a page the program
 * protected (a guard page inside a coroutine stack), or memory a thread
 * that could not be stopped unmaps meanwhile, skips that page instead of
 * killing the program. Pages of big blocks and anchors that were never
 * touched are not read (mincore, and pagemap for swapped pages: see
 * mark_cold_data), so the scan adds no resident memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <fcntl.h>
#include <unistd.h>

#include "hooks.h"
#include "clock.h"
#include "fast.h"
#include "format.h"
#include "options.h"
#include "guard.h"
#include "os.h"
#include "report.h"
#include "stats.h"

/* A block's mark (one byte in its page's mark array). */
enum { M_FREE = 0, M_UNREACHED = 1, M_INDIRECT = 2, M_POSSIBLE = 3, M_REACHABLE = 4, M_PENDING = 0x80 };
#define M_STATE(m) ((m)&0x7f)

typedef struct marks {
  uint64_t print; /* the page's state at the census (page_print) */
  uint32_t n;     /* ranges covered */
  uint8_t m[];
} marks;

typedef struct holder {
  uintptr_t start, end; /* user memory */
  hh_mapping *mapping;  /* a mapping of pages, or */
  hh_oversize *oversize;
  hh_heap *owner;      /* the mapping's heap at the census, and */
  uint64_t heap_print; /* ... its counts then (heap_print) */
} holder;

typedef struct mapline {
  uintptr_t start, end;
  uint8_t skip; /* not an anchor */
  uint8_t anon;
  uint8_t ro_file;    /* a file's, readable and not writable: where vtables lie (after RELRO) */
  uint8_t code;       /* executable */
  uint8_t dead;       /* the cached stack of an exited thread (dead_stacks) */
  uint8_t main_stack; /* [stack] */
  /* private anonymous memory ("", [heap], [stack], [anon:name]): its data
   * lies in this process's page tables, or in swap, where PAGEMAP_SCAN
   * sees it. Shared memory (MAP_SHARED | MAP_ANONYMOUS, memfd, files) can
   * hold data in pages this process never mapped, or dropped with
   * MADV_DONTNEED: mincore asks the page cache (helper-70: a thread stack
   * in shared memory lost its block's only pointer). */
  uint8_t private_anon;
  uint8_t shared; /* MAP_SHARED: a page it lost from this process's page tables may hold data (mark_cold_data) */
  uint8_t shmem;  /* shared memory (shared anonymous, memfd, SysV, POSIX): a page not in its cache is a hole */
  uintptr_t from; /* the stack of a thread that has ended (not cached): its TLS and descriptor only */
} mapline;

/* What a word points to. */
typedef struct hit {
  uint8_t *mark;
  uintptr_t start;
  uint64_t size;
} hit;

#define STACK_CAP ((size_t)1 << 20)      /* work list entries (8 MiB) */
#define STACK_CAP_LEAN ((size_t)1 << 12) /* when that much cannot be mapped (RLIMIT_AS): 32 KiB */
#define MAPS_CAP 65536
#define MAPS_CAP_LEAN 4096
#define BIG_BLOCK ((uint64_t)64 << 10)             /* blocks read by resident pages only */
#define MAX_UNREADABLE (16 * HH_SLICE_SIZE / 4096) /* memory pages of the biggest page (census_page) */
#define SWAP_MAPS 256 /* mappings with pages in swap that the scan tells apart; more: read pagemap in all */
#define MAX_EXCL 512
#define MAX_FILE_WORDS 8192

static struct {
  hh_scan *s;
  holder *h;
  size_t nh, h_size;
  uint8_t *mk; /* every page's marks */
  size_t mk_size, mk_used;
  uintptr_t lo, hi; /* user memory of all holders */
  uintptr_t *stack;
  size_t top;
  bool overflow;
  struct {
    uintptr_t start, end;
  } excl[MAX_EXCL]; /* sorted: memory that is not an anchor */
  int nexcl;
  uintptr_t *file_words; /* sorted: FILE buffer pointers stdio's exit will drop */
  size_t nfile_words;
  uintptr_t file_lo, file_hi;
  mapline *maps;
  size_t nmaps, maps_cap;
  bool maps_cut; /* more mappings than maps_cap */
  size_t stack_cap;
  int64_t t0;
  bool progress;
  uintptr_t cur_lo, cur_hi; /* the block being read (drain) */
  int cur_mode;
  uintptr_t last_chunk; /* lookup's cache: the last chunk found, and its header */
  const hh_header *last_hdr;
  /* memcheck's cliques: the bytes each definite block leads (blocks that
   * are lost through it), keyed by its start (struct leader); a leader
   * that a later one takes in hands its bytes over */
  hh_table leaders;
  uint64_t clique_bytes, clique_blocks; /* of the clique being drained */
  hh_table groups;                      /* (site, kind, listed) -> struct group */
  void (*each_fn)(uintptr_t start, uint64_t size, uint8_t *mark, uint32_t site, uint8_t root);
  int pagemap; /* /proc/self/pagemap, or -1; opened when first needed */
  bool pagemap_tried;
  bool pm_off;      /* the kernel has no PAGEMAP_SCAN, or it failed: mincore */
  int swap_known;   /* 0: not asked yet, 1: nothing swapped out, 2: some */
  bool swap_listed; /* swap_at read (only with some swapped out) */
  int nswap;        /* mappings in swap_at, or -1: any may have pages in swap */
  struct {
    uintptr_t start, end;
  } swap_at[SWAP_MAPS];                 /* in address order: the mappings with pages in swap */
  uint64_t cold_file;                   /* bytes of file pages read though not resident */
  uint64_t cold_span;                   /* bytes of file and shared mappings asked page by page */
  uint8_t swap_used;                    /* no_swap_used: 0 not asked, 1 none, 2 some or unknown */
  uintptr_t unreadable[MAX_UNREADABLE]; /* census_page's: the memory pages of a page that faulted */
} S;

/* ------------------------------------------------------------------ the fault guard */

static __thread int guard_on; /* this thread is reading under the guard */
static sigjmp_buf *guard_jb;
static uintptr_t guard_addr; /* the last faulting address */
static struct sigaction old_segv, old_bus;
static sigset_t guard_old_mask;

/* A fault that is not the scan's (another thread's, one the world stop
 * missed because it blocks every signal but the faults): the program's
 * handler takes it, as the kernel would have given it. Put back for the
 * rest of the scan instead, it took the scan's next fault for its own
 * (helper-41: a server whose handler resolves faults on a trap page and
 * _exits on any other ended with 99, no report, in 12 of 15 runs). */
static void to_program(int sig, siginfo_t *si, void *uc) {
  struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
  bool sent = si->si_code <= 0; /* by kill, tgkill, sigqueue: no instruction to run again */
  if (old->sa_handler == SIG_IGN && sent) return;
  if (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN) {
    /* returning re-runs the faulting instruction, which then takes the
     * default action: the process ends, as it would have; a signal sent
     * is sent again, to the same end */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    if (sent) raise(sig);
    return;
  }
  sigset_t mask, saved;
  mask = old->sa_mask;
  if (!(old->sa_flags & SA_NODEFER)) sigaddset(&mask, sig);
  pthread_sigmask(SIG_BLOCK, &mask, &saved);
  if (old->sa_flags & SA_SIGINFO)
    old->sa_sigaction(sig, si, uc);
  else
    old->sa_handler(sig);
  if (old->sa_flags & SA_RESETHAND) old->sa_handler = SIG_DFL; /* put back as such */
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static void on_fault(int sig, siginfo_t *si, void *uc) {
  if (guard_on && si->si_code > 0) { /* a fault of the read, not a signal sent */
    guard_on = 0;
    guard_addr = (uintptr_t)si->si_addr;
    siglongjmp(*guard_jb, 1);
  }
  to_program(sig, si, uc);
}

/* The faults reach the guard even when this thread holds them: the report
 * made by _exit from the program's own SIGSEGV handler (a crash handler
 * that ends the process) died of the scan's first fault, which the kernel
 * delivers by the default action while SIGSEGV is blocked. */
static void guard_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
  sigset_t faults;
  sigemptyset(&faults);
  sigaddset(&faults, SIGSEGV);
  sigaddset(&faults, SIGBUS);
  pthread_sigmask(SIG_UNBLOCK, &faults, &guard_old_mask);
}

static void guard_remove(void) {
  sigaction(SIGSEGV, &old_segv, NULL);
  sigaction(SIGBUS, &old_bus, NULL);
  pthread_sigmask(SIG_SETMASK, &guard_old_mask, NULL);
}

/* The guard's jump buffer lives in the frame that set it, and is put back
 * to the outer one before that frame returns. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif

/* Calls fn(arg) under the guard: false when it faulted (and was cut short). */
static bool guarded(void (*fn)(void *), void *arg) {
  sigjmp_buf jb, *outer = guard_jb;
  int outer_on = guard_on;
  if (sigsetjmp(jb, 0) != 0) {
    S.s->faults++;
    guard_jb = outer;
    guard_on = outer_on;
    return false;
  }
  guard_jb = &jb;
  guard_on = 1;
  fn(arg);
  guard_jb = outer;
  guard_on = outer_on;
  return true;
}

/* ------------------------------------------------------------------ progress */

/* One line on the stream, written whole and without its lock: the world
 * is stopped, and whoever holds that lock may be stopped with it. Only for
 * an exit report that goes to that stream: with --log-file the program's
 * stderr got the line all the same (helper-76: bash's own tests compare
 * it, and failed under a loaded machine), and a leak check the program
 * asks for prints nothing there. */
static void progress(const char *what) {
  if (S.progress || hh_now_ns() - S.t0 < 2000000000 || !S.s->at_exit || !hh_dest_to_stream()) return;
  S.progress = true;
  char line[160];
  size_t n = hh_snformat(line, sizeof line, "hahalloc: the leak scan is taking a while (%s)...\n", what);
  hh_dest_write(hh_dest_open_stream(), line, n);
}

/* ------------------------------------------------------------------ finding blocks */

static inline bool marks_valid(const void *p) {
  return (uintptr_t)p >= (uintptr_t)S.mk && (uintptr_t)p < (uintptr_t)S.mk + S.mk_used;
}

/* The live block holding address v, if any. Reads metadata that a thread
 * which could not be stopped may change: callers run under the guard. */
/* `size` is read only when it is needed: for an interior pointer, or when
 * `need_size` (a start pointer always hits its block). */
/* The registry's header for v (in [S.lo, S.hi)), the last one kept. */
static inline const hh_header *header_at(uintptr_t v) {
  if ((v >> HH_MAPPING_SHIFT) != S.last_chunk) {
    S.last_hdr = hh_registry_get(v);
    S.last_chunk = v >> HH_MAPPING_SHIFT;
  }
  return S.last_hdr;
}

/* The small or large page of mapping m that holds v, if the census marked
 * it; else NULL. */
static inline const hh_page *marked_page(const hh_mapping *m, uintptr_t v) {
  uint32_t si = (uint32_t)((v - (uintptr_t)m) >> HH_SLICE_SHIFT);
  const hh_page *s = &m->slices[si];
  if ((s->kind != HH_PAGE_SMALL && s->kind != HH_PAGE_LARGE) || s->slice_offset > si) return NULL;
  const hh_page *pg = s - s->slice_offset;
  return marks_valid(pg->scan_marks) ? pg : NULL;
}

static inline bool lookup(uintptr_t v, hit *x, bool need_size) {
  if (v < S.lo || v >= S.hi) return false;
  const hh_header *hdr = header_at(v);
  if (hdr == NULL) return false;
  if (hdr->kind == HH_MAP_PAGES) {
    const hh_page *pg = marked_page((const hh_mapping *)hdr, v);
    if (pg == NULL) return false;
    marks *mk = pg->scan_marks;
    if (pg->kind == HH_PAGE_SMALL) {
      size_t idx = hh_range_index(pg, (const void *)v);
      if (idx >= mk->n || mk->m[idx] == M_FREE) return false;
      uintptr_t start = (uintptr_t)pg->start + idx * pg->block_size;
      uint64_t size = 0;
      if (v != start || need_size) {
        size = hh_rec_size(pg, idx);
        if (v != start && v - start >= size) return false;
      }
      *x = (hit){&mk->m[idx], start, size};
      return true;
    }
    if (mk->m[0] == M_FREE) return false;
    uintptr_t start = (uintptr_t)pg->start;
    uint64_t size = pg->large_rec.size;
    if (v != start && v - start >= size) return false;
    *x = (hit){&mk->m[0], start, size};
    return true;
  }
  if (hdr->kind == HH_MAP_OVERSIZE) {
    const hh_oversize *o = (const hh_oversize *)hdr;
    marks *mk = o->scan_marks;
    if (!marks_valid(mk) || mk->m[0] == M_FREE) return false;
    uintptr_t start = (uintptr_t)o->user;
    if (v < start || (v != start && v - start >= o->size)) return false;
    *x = (hit){&mk->m[0], start, o->size};
    return true;
  }
  return false;
}

/* ------------------------------------------------------------------ marking */

static inline void push(uintptr_t start, uint8_t *mark) {
  if (S.top < S.stack_cap) {
    S.stack[S.top++] = start;
  } else {
    *mark |= M_PENDING;
    S.overflow = true;
  }
}

/* ------------------------------------------------------------------ heuristics
 *
 * C++ keeps some live objects through a pointer inside their block, not to
 * its start, and valgrind's memcheck (--leak-check-heuristics, all by
 * default) takes such a pointer for a start one when the block's shape
 * says why; without them, a program that leaks nothing has "possibly lost"
 * blocks. The four shapes, as memcheck's manual describes them:
 * - newarray: new T[n] of a T with a destructor stores n in the word
 *   before the array, and the program holds the array: the pointer is the
 *   block's start + 8, and its first word, n > 0, divides the rest.
 * - length64: a block that begins with the 64-bit length of the rest, the
 *   pointer just after it.
 * - stdstring: the pre-C++11 std::string's representation (length,
 *   capacity, reference count, then the characters, held at start + 24),
 *   length at most capacity, the block exactly the header, the capacity
 *   and the NUL (valgrind's rule: a looser one took a calloc'd struct held
 *   by a link at offset 24 for a string, reachable where valgrind says
 *   possibly lost).
 * - multipleinheritance: a pointer to a second base class inside an
 *   object: an aligned word inside the block, and both it and the block's
 *   first word are vtable pointers (into a read-only mapping of a file,
 *   whose first entry is code). */

/* The mapping holding address a, from the maps read at the scan's start. */
static const mapline *map_of(uintptr_t a) {
  size_t lo = 0, hi = S.nmaps;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (S.maps[mid].end <= a)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < S.nmaps && S.maps[lo].start <= a ? &S.maps[lo] : NULL;
}

static bool is_vtable_pointer(uintptr_t w) {
  if (w & 7) return false;
  const mapline *l = map_of(w);
  if (l == NULL || !l->ro_file || w + 8 > l->end) return false;
  const mapline *f = map_of(*(const uintptr_t *)w);
  return f != NULL && f->code;
}

/* Bits of hh_opt.heuristics, in hh_heuristic_names' order (optable.h). */
enum { H_STDSTRING = 1, H_LENGTH64 = 2, H_NEWARRAY = 4, H_MULTIPLE_INHERITANCE = 8 };

static HH_NOINLINE bool heuristic_start(uintptr_t v, const hit *x) {
  unsigned on = hh_opt.heuristics;
  const uint64_t *w = (const uint64_t *)x->start;
  uint64_t off = v - x->start, size = x->size;
  if (off == 8 && size >= 8) {
    if ((on & H_LENGTH64) && w[0] == size - 8) return true;
    if ((on & H_NEWARRAY) && w[0] > 0 && w[0] <= size - 8 && (size - 8) % w[0] == 0) return true;
  }
  if ((on & H_STDSTRING) && off == 24 && size >= 25 && w[1] == size - 25 && w[0] <= w[1]) return true;
  return (on & H_MULTIPLE_INHERITANCE) && (off & 7) == 0 && off + 8 <= size &&
         is_vtable_pointer(*(const uintptr_t *)v) && is_vtable_pointer(w[0]);
}

/* ------------------------------------------------------------------ end pointers
 *
 * A block the program asked for whole (its request fills its range) ends
 * where the next range starts, so a pointer to its end is also the next
 * block's start. memcheck keeps a redzone between blocks, where such a
 * pointer points to nothing; here it kept the next block reachable, though
 * the program may have lost it. std::vector holds one, its end of storage,
 * whenever its capacity fills the range (4 longs in 32 bytes): 64 vectors
 * of 4 longs, each followed by a lost 32-byte block, showed no leak where
 * valgrind says 2,048 bytes definitely lost. Which of the two the word
 * means is not known: when the words about it have a vector's shape and
 * its begin is the start of a live block that ends exactly at the word,
 * the word counts as memcheck counts an interior pointer, and the block it
 * alone holds is possibly lost. Taken for a plain start pointer instead,
 * the leak stays hidden; taken for nothing (tried first), a struct of the
 * same shape, {buffer, cursor, next}, made its next block and everything
 * under it "definitely lost" where valgrind calls them reachable
 * (helper-68's differential fuzzing: 19.7 MB in 21 blocks). The shapes,
 * [begin, end, end of storage] with begin <= end <= end of storage:
 * - p is the end of storage: begin at p - 16, end at p - 8;
 * - p is the end of a full vector: begin at p - 8, the end of storage (v
 *   again) at p + 8, in the same page as p.
 * Each is tried on its own: the first's words may match by chance where the
 * second's is the vector (a vector after another member of a struct). */
static HH_NOINLINE bool ends_block_before(uintptr_t begin, uintptr_t v) {
  hit y;
  if (lookup(begin, &y, true)) return y.start == begin && begin + y.size == v;
  /* A vector destroyed at exit leaves its three words behind its freed
   * storage: the same shape, where memcheck's freed block keeps its
   * redzone. Its range's record is its last life's (a free leaves it).
   * gdb's global vector of 16 bytes kept the string after it reachable:
   * 1,179 blocks definitely lost where valgrind says 1,180 (helper-79). */
  const hh_header *hdr = begin >= S.lo && begin < S.hi ? header_at(begin) : NULL;
  const hh_page *pg = hdr != NULL && hdr->kind == HH_MAP_PAGES ? marked_page((const hh_mapping *)hdr, begin) : NULL;
  if (pg == NULL || pg->kind != HH_PAGE_SMALL) return false;
  const marks *mk = pg->scan_marks;
  size_t idx = hh_range_index(pg, (const void *)begin);
  return idx < mk->n && mk->m[idx] == M_FREE && (uintptr_t)pg->start + idx * pg->block_size == begin &&
         begin + hh_rec_size(pg, idx) == v;
}

/* The word at p, found in [a, b), is the start `v` of a block and maybe
 * the end of the block before it. */
static inline bool end_pointer(const uintptr_t *p, uintptr_t a, uintptr_t b, uintptr_t v) {
  uintptr_t at = (uintptr_t)p;
  if (at - a >= 16 && p[-2] < v && p[-1] >= p[-2] && p[-1] <= v && ends_block_before(p[-2], v)) return true;
  return at - a >= 8 && b - at >= 16 && ((at + 8) & 4095) != 0 && p[1] == v && p[-1] < v && ends_block_before(p[-1], v);
}

/* memcheck's lc_push_without_clique_if_a_chunk_ptr: `definite` says the
 * word was found in an anchor or a reachable block. A word of a scanned
 * range [a, b) comes with its address `p`, which may make it an end
 * pointer (above); a register or a single root word comes without. */
static inline void mark_at(uintptr_t v, const uintptr_t *p, uintptr_t a, uintptr_t b, bool definite) {
  hit x;
  if (!lookup(v, &x, false)) return;
  uint8_t st = M_STATE(*x.mark);
  if (st == M_REACHABLE) return;
  if (definite && p != NULL && v == x.start && HH_UNLIKELY(end_pointer(p, a, b, v))) definite = false;
  if (definite && (v == x.start || (hh_opt.heuristics && heuristic_start(v, &x)))) {
    *x.mark = (uint8_t)((*x.mark & M_PENDING) | M_REACHABLE);
    push(x.start, x.mark);
  } else if (st == M_UNREACHED) {
    *x.mark = (uint8_t)((*x.mark & M_PENDING) | M_POSSIBLE);
    push(x.start, x.mark);
  }
}

static inline void mark(uintptr_t v, bool definite) { mark_at(v, NULL, 0, 0, definite); }

/* ------------------------------------------------------------------ cliques */

struct leader {
  uint64_t start; /* the key */
  uint64_t bytes, blocks;
};

static struct leader *leader_get(uintptr_t start) { return hh_table_find(&S.leaders, start, NULL, NULL); }

/* Records what a definite block leads. Out of memory, the figure is lost:
 * the kinds stay right, only the "(N direct, M indirect)" split is not. */
static void leader_put(uintptr_t start, uint64_t bytes, uint64_t blocks) {
  struct leader l = {start, bytes, blocks}, *found = leader_get(start);
  if (found != NULL)
    *found = l;
  else
    hh_table_add(&S.leaders, &l);
}

/* memcheck's lc_push_with_clique_if_a_chunk_ptr */
/* In a lost block a vector-shaped end pointer (above) leads nothing into
 * the clique: the block after the storage stays a leader of its own, as
 * memcheck's redzone makes it (definitely lost, not indirectly: the lost
 * total is the same either way). */
static inline void mark_clique(const uintptr_t *p, uintptr_t a, uintptr_t b, uintptr_t leader) {
  uintptr_t v = *p;
  hit x;
  if (!lookup(v, &x, true) || x.start == leader) return;
  if (M_STATE(*x.mark) == M_UNREACHED) {
    if (v == x.start && HH_UNLIKELY(end_pointer(p, a, b, v))) return;
    *x.mark = (uint8_t)((*x.mark & M_PENDING) | M_INDIRECT);
    push(x.start, x.mark);
    S.clique_bytes += x.size;
    S.clique_blocks++;
    struct leader *l = leader_get(x.start); /* an earlier leader, taken in */
    if (l != NULL) {
      S.clique_bytes += l->bytes;
      S.clique_blocks += l->blocks;
      l->bytes = l->blocks = 0;
    }
  }
}

enum { MODE_ANCHOR, MODE_REACHABLE, MODE_POSSIBLE, MODE_CLIQUE };

static bool file_word(uintptr_t p) {
  size_t lo = 0, hi = S.nfile_words;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (S.file_words[mid] < p)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < S.nfile_words && S.file_words[lo] == p;
}

static void scan_words(uintptr_t a, uintptr_t b, int mode, uintptr_t leader) {
  bool files = S.nfile_words && a < S.file_hi && b > S.file_lo;
  if (mode == MODE_CLIQUE) {
    for (uintptr_t p = a; p < b; p += 8) mark_clique((const uintptr_t *)p, a, b, leader);
  } else if (!files) {
    bool definite = mode != MODE_POSSIBLE;
    for (uintptr_t p = a; p < b; p += 8) mark_at(*(const uintptr_t *)p, (const uintptr_t *)p, a, b, definite);
  } else {
    bool definite = mode != MODE_POSSIBLE;
    for (uintptr_t p = a; p < b; p += 8)
      if (!file_word(p)) mark_at(*(const uintptr_t *)p, (const uintptr_t *)p, a, b, definite);
  }
}

/* Words of [a, b) under the guard: a fault in the range skips to the next
 * page; a fault elsewhere (metadata changed by a thread that could not be
 * stopped) gives up the rest of the range. */
static void scan_guarded(uintptr_t a, uintptr_t b, int mode, uintptr_t leader) {
  sigjmp_buf jb, *outer = guard_jb;
  int outer_on = guard_on;
  volatile uintptr_t from = (a + 7) & ~(uintptr_t)7;
  b &= ~(uintptr_t)7;
  if (sigsetjmp(jb, 0) != 0) {
    S.s->faults++;
    uintptr_t f = guard_addr;
    from = f >= from && f < b ? (f | 4095) + 1 : b;
  }
  if (from < b) {
    guard_jb = &jb;
    guard_on = 1;
    scan_words(from, b, mode, leader);
  }
  guard_jb = outer;
  guard_on = outer_on;
}

/* /proc/self/pagemap, opened once, when first needed; -1 if it cannot be. */
static int pagemap_fd(void) {
  if (!S.pagemap_tried) {
    S.pagemap_tried = true;
    S.pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  }
  return S.pagemap;
}

/* Whether the process has pages swapped out (VmSwap), asked once a scan;
 * unreadable counts as some. */
static bool swapped_any(void) {
  if (S.swap_known == 0) {
    char v[32];
    S.swap_known = hh_proc_status("VmSwap", v, sizeof v) && !strcmp(v, "0") ? 1 : 2;
  }
  return S.swap_known == 2;
}

static bool swap_map_cb(const hh_map_line *m, void *arg) {
  (void)arg;
  if (S.nswap >= SWAP_MAPS) {
    S.nswap = -1;
    return false;
  }
  S.swap_at[S.nswap].start = m->start;
  S.swap_at[S.nswap++].end = m->end;
  return true;
}

/* Whether [a, b) may have pages in swap: the process has some (VmSwap),
 * and in a mapping whose smaps counts some (or smaps could not say). A
 * 16 TiB reservation beside one swapped page was read in pagemap whole, a
 * page at a time: 10.9 s (helper-70). Walking smaps costs a walk of the
 * page tables, once a scan, and only when something is in swap. */
static bool swap_may_hold(uintptr_t a, uintptr_t b) {
  if (!swapped_any()) return false;
  if (!S.swap_listed) {
    S.swap_listed = true;
    if (!hh_maps_each_swapped(swap_map_cb, NULL)) S.nswap = -1;
  }
  if (S.nswap < 0) return true;
  for (int i = 0; i < S.nswap && S.swap_at[i].start < b; i++)
    if (S.swap_at[i].end > a) return true;
  return false;
}

/* Pages mincore says are not resident may still hold data: a page of a
 * file mapping whose copy in memory was reclaimed (memory pressure,
 * MADV_PAGEOUT) reads back from its file, and an anonymous page that was
 * swapped out reads back from swap. Only a page never touched is zero,
 * and only those are skipped. A file page is read (up to COLD_FILE_MAX in
 * a scan: a database mapped whole is not read back from disk at exit); an
 * anonymous one when pagemap(5) says it is swapped, asked only where the
 * process has pages in swap (swap_may_hold). */
#define COLD_FILE_MAX ((uint64_t)256 << 20)
/* Address space of shared and file mappings asked page by page (pagemap's
 * read, mincore) in a scan; past it, only the pages the process maps, by
 * PAGEMAP_SCAN, which skips unpopulated page tables whole. A program with
 * 1 TiB of shared anonymous memory reserved (MAP_NORESERVE) and two pages
 * touched exited in 5-14 s, with 16 TiB in 148 s (helper-80): 128 KiB of
 * pagemap read and a mincore for every 64 MiB. */
#define COLD_SPAN_MAX ((uint64_t)4 << 30)
#define SPAN_PAGES 16384 /* mincore's answer for 64 MiB */
#define PAGEMAP_SWAPPED ((uint64_t)1 << 62)
#define PAGEMAP_PRESENT ((uint64_t)1 << 63)
/* Marks in vec (mincore's, `pages` from `page`) the pages not resident
 * that hold data all the same. */
/* Sets bit 0 of vec's byte for each of the `pages` pages from `page` whose
 * pagemap(5) entry has a bit of `mask`, read 4,096 entries at a time.
 * False when pagemap cannot be read. */
static bool pagemap_mark(uintptr_t page, size_t pages, uint64_t mask, unsigned char *vec) {
  static uint64_t entries[4096];
  const size_t most = sizeof entries / sizeof entries[0];
  if (pagemap_fd() < 0) return false;
  for (size_t at = 0; at < pages; at += most) {
    size_t n = pages - at < most ? pages - at : most;
    ssize_t want = (ssize_t)(n * sizeof entries[0]);
    if (pread(S.pagemap, entries, (size_t)want, (off_t)((page / 4096 + at) * sizeof entries[0])) != want) return false;
    for (size_t i = 0; i < n; i++)
      if (entries[i] & mask) vec[at + i] |= 1;
  }
  return true;
}

/* Whether no page of shared memory can be in swap: the system has none in
 * use (sysinfo), asked once a scan. */
static bool no_swap_used(void) {
  if (S.swap_used == 0) {
    struct sysinfo si;
    S.swap_used = sysinfo(&si) == 0 && si.totalswap == si.freeswap ? 1 : 2;
  }
  return S.swap_used == 1;
}

static void mark_cold_data(uintptr_t page, size_t pages, unsigned char *vec, bool file) {
  if (file) {
    /* A private file mapping's page that is not in this process's page
     * tables nor swapped was never written here: the file's own bytes,
     * read from disk for nothing (4 GiB of a sparse file's holes cost
     * the exit 256 MiB of RSS). A shared one's may hold what this process
     * wrote there before the page was reclaimed. */
    const mapline *l = map_of(page);
    if (l != NULL && !l->shared) return;
    /* Shared memory keeps its pages in its own cache, where mincore sees
     * them: one that is not there, with no swap in use, is a hole that
     * reads as zero, and reading it would put a page of zeroes in the
     * shared object, for the other processes too. Reading them up to
     * COLD_FILE_MAX took the exit of a program with 1 GiB of shared
     * anonymous memory to 0.9 s and 264 MB of RSS; past the limit, with
     * the mapping given up by MADV_DONTNEED, the blocks only its pages
     * held were called definitely lost. */
    static unsigned char cached[SPAN_PAGES];
    bool holes = l != NULL && l->shmem && pages <= SPAN_PAGES && !hh_seccomp_inherited() && no_swap_used() &&
                 mincore((void *)page, pages * 4096, cached) == 0;
    for (size_t i = 0; i < pages && S.cold_file < COLD_FILE_MAX; i++)
      if (!(vec[i] & 1) && (!holes || (cached[i] & 1))) {
        vec[i] |= 1;
        S.cold_file += 4096;
      }
    return;
  }
  if (swap_may_hold(page, page + pages * 4096)) pagemap_mark(page, pages, PAGEMAP_SWAPPED, vec);
}

/* Which of the `pages` pages from `page` hold data this process put there
 * (bit 0 of each of vec's bytes). For anonymous memory, mincore's answer.
 * For a file's pages (`file`), pagemap(5)'s, by read: a page mapped in
 * this process's page tables, or swapped. mincore says which are in the
 * page cache, and each cold page the scan read brought its neighbours
 * there by read-ahead: a 4 GiB sparse file mapped MAP_PRIVATE read-write,
 * 8 pages of it written, made the exit take 5.5 s and 4.2 GB of RSS, a
 * 64 GiB one 82 s and 19 GB (helper-77). pagemap answers for anonymous
 * memory too where a seccomp filter inherited at exec may kill the
 * process for mincore (systemd's @system-service has none: a service run
 * under the hahalloc command died of SIGSYS at exit, helper-75). -1:
 * neither can tell. */
static int resident(uintptr_t page, size_t pages, unsigned char *vec, bool file) {
  if (!file && !hh_seccomp_inherited()) return mincore((void *)page, pages * 4096, vec);
  memset(vec, 0, pages);
  return pagemap_mark(page, pages, PAGEMAP_PRESENT | PAGEMAP_SWAPPED, vec) ? 0 : -1;
}

/* Memory that holds data, found by the run, not by the page, where the
 * kernel can. mincore answers for every page of a range, touched or not: a
 * sparse mapping cost the scan its whole size. A program that reserves
 * 16 TiB read-write with MAP_NORESERVE and touches three pages
 * (ThreadSanitizer's shadow is such a mapping) made the exit scan take
 * 21-29 s, most of it reading pagemap for each page that was not resident.
 * For private anonymous memory, Linux 6.7's PAGEMAP_SCAN ioctl walks the page
 * tables, skips unpopulated ones whole, and lists the runs of pages that
 * are resident or swapped and not the shared zero page: 1 ms for that
 * program. Its argument and result are the kernel's ABI (linux/fs.h,
 * pagemap.rst), declared here because older headers lack them. On an older
 * kernel, when the call fails, and for files and shared memory (whose
 * pages may hold data this process has not mapped), mincore says which
 * pages are resident (SPAN_PAGES at a time, its answer skipped a word at a
 * time), and pagemap which are swapped only when some are. */
struct pm_region {
  uint64_t start, end, categories;
};
struct pm_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PM_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PM_PRESENT ((uint64_t)1 << 3)
#define PM_SWAPPED ((uint64_t)1 << 4)
#define PM_PFNZERO ((uint64_t)1 << 5)
#define PM_RUNS 64

typedef void run_fn(uintptr_t lo, uintptr_t hi, void *arg);

/* The runs of [a, b) by PAGEMAP_SCAN: where the kernel stopped answering
 * (b when it answered for all). */
static uintptr_t runs_by_pagemap(uintptr_t a, uintptr_t b, run_fn *fn, void *arg) {
  struct pm_region run[PM_RUNS];
  uintptr_t pos = a & ~(uintptr_t)4095, end = (b + 4095) & ~(uintptr_t)4095;
  while (pos < end) {
    if (S.pm_off || pagemap_fd() < 0) return pos < a ? a : pos;
    struct pm_scan_arg q = {.size = sizeof q,
                            .start = pos,
                            .end = end,
                            .vec = (uintptr_t)run,
                            .vec_len = PM_RUNS,
                            .category_inverted = PM_PFNZERO,
                            .category_mask = PM_PFNZERO,
                            .category_anyof_mask = PM_PRESENT | PM_SWAPPED,
                            .return_mask = PM_PRESENT | PM_SWAPPED};
    long n = ioctl(S.pagemap, PM_SCAN, &q);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || n > PM_RUNS || q.walk_end <= pos || q.walk_end > end) {
      S.pm_off = true; /* not this kernel's, or not here: mincore from now on */
      continue;
    }
    for (long i = 0; i < n; i++) {
      uintptr_t lo = (uintptr_t)run[i].start, hi = (uintptr_t)run[i].end;
      if (lo < a) lo = a;
      if (hi > b) hi = b;
      if (lo < hi) fn(lo, hi, arg);
    }
    pos = (uintptr_t)q.walk_end;
  }
  return b;
}

/* Calls fn(lo, hi, arg) on each run [lo, hi) of [a, b) whose pages hold
 * data, in address order (`file`: [a, b) is not private anonymous memory,
 * but a file's or shared; see mapline.private_anon). When the
 * kernel cannot tell (mincore fails: memory a thread that could not be
 * stopped unmaps), the rest is one run, read under the guard. */
static void each_populated(uintptr_t a, uintptr_t b, bool file, run_fn *fn, void *arg) {
  static unsigned char vec[SPAN_PAGES]; /* fn never calls back here: a run of an anchor is read as it is */
  if (!file) a = runs_by_pagemap(a, b, fn, arg);
  uintptr_t page = a & ~(uintptr_t)4095;
  while (page < b) {
    if (file && S.cold_span >= COLD_SPAN_MAX) {
      /* past the expanse asked about cold pages: the pages this process
       * maps, by the page tables' walk where the kernel has it */
      page = runs_by_pagemap(page < a ? a : page, b, fn, arg) & ~(uintptr_t)4095;
      if (page >= b) break;
    }
    size_t pages = (b - page + 4095) / 4096;
    if (pages > SPAN_PAGES) pages = SPAN_PAGES;
    if (file) S.cold_span += (uint64_t)pages * 4096;
    if (resident(page, pages, vec, file) != 0) {
      fn(page < a ? a : page, b, arg); /* cannot tell: read it all */
      break;
    }
    mark_cold_data(page, pages, vec, file);
    for (size_t i = 0; i < pages; i++) {
      uint64_t w;
      if (i + 8 <= pages && (i & 7) == 0 && (memcpy(&w, vec + i, 8), (w & 0x0101010101010101ull) == 0)) {
        i += 7; /* eight untouched pages */
        continue;
      }
      if (!(vec[i] & 1)) continue;
      size_t j = i;
      while (j + 1 < pages && (vec[j + 1] & 1)) j++;
      uintptr_t lo = page + i * 4096, hi = page + (j + 1) * 4096;
      if (lo < a) lo = a;
      if (hi > b) hi = b;
      if (lo < hi) fn(lo, hi, arg);
      i = j;
    }
    page += pages * 4096;
  }
}

typedef struct {
  int mode;
  bool anchor;
  uintptr_t leader;
} populated_scan;

static void scan_populated(uintptr_t lo, uintptr_t hi, void *arg) {
  const populated_scan *c = arg;
  scan_guarded(lo, hi, c->mode, c->leader);
  if (c->anchor) S.s->anchor_bytes += hi - lo;
}

/* The pages of [a, b) that hold data only (`file`: as for each_populated):
 * memory never touched is zero, and reading it would populate
 * page tables and, for big blocks, resident memory. */
static void scan_resident(uintptr_t a, uintptr_t b, int mode, uintptr_t leader, bool anchor, bool file) {
  populated_scan c = {mode, anchor, leader};
  each_populated(a, b, file, scan_populated, &c);
}

static void sweep_pending(void);

/* Scans the popped blocks, as their marks say, under one guard for the
 * whole drain (a guard per block would cost a sigsetjmp each). A fault
 * inside the block being read skips to its next page; a fault anywhere else
 * (its metadata changed under us) gives the block up. */
static void drain(bool clique, uintptr_t leader) {
  sigjmp_buf jb, *outer = guard_jb;
  int outer_on = guard_on;
  if (sigsetjmp(jb, 0) != 0) {
    S.s->faults++;
    uintptr_t f = guard_addr;
    guard_jb = &jb;
    guard_on = 1;
    if (f >= S.cur_lo && f < S.cur_hi) {
      S.cur_lo = (f | 4095) + 1;
      goto resume;
    }
  }
  guard_jb = &jb;
  guard_on = 1;
  for (;;) {
    while (S.top > 0) {
      uintptr_t start = S.stack[--S.top];
      hit x;
      if (!lookup(start, &x, true) || x.start != start) continue;
      S.cur_mode = clique ? MODE_CLIQUE : M_STATE(*x.mark) == M_REACHABLE ? MODE_REACHABLE : MODE_POSSIBLE;
      uint64_t size = x.size;
      if (size >= BIG_BLOCK) { /* resident pages only, each run under its own guard */
        scan_resident(start, start + size, S.cur_mode, leader, false, false);
        guard_jb = &jb;
        guard_on = 1;
        continue;
      }
      S.cur_lo = (start + 7) & ~(uintptr_t)7;
      S.cur_hi = (start + size) & ~(uintptr_t)7;
    resume:
      scan_words(S.cur_lo, S.cur_hi, S.cur_mode, leader);
    }
    if (!S.overflow) break;
    guard_on = 0;
    sweep_pending();
    guard_jb = &jb;
    guard_on = 1;
  }
  guard_jb = outer;
  guard_on = outer_on;
}

/* ------------------------------------------------------------------ walking holders */

/* The next page of `m` in use (small or large) from slice *i on, *i moved
 * past it; NULL at the end. Runs under the guard: the descriptors may be
 * changed by a thread that could not be stopped. */
static hh_page *next_page(hh_mapping *m, uint32_t *i) {
  while (*i < HH_SLICES) {
    hh_page *pg = &m->slices[*i];
    *i += pg->slice_count ? pg->slice_count : 1;
    if (pg->kind == HH_PAGE_SMALL || pg->kind == HH_PAGE_LARGE) return pg;
  }
  return NULL;
}

/* Calls fn(start, size, mark, site) for every block of a holder, in address
 * order. Runs under the guard. */
typedef void (*block_fn)(uintptr_t start, uint64_t size, uint8_t *mark, uint32_t site, uint8_t root);

static void page_blocks(hh_page *pg, block_fn fn) {
  marks *mk = pg->scan_marks;
  if (!marks_valid(mk)) return;
  if (pg->kind == HH_PAGE_LARGE) {
    /* free when another thread freed it and its owner has not collected
     * it yet (an exited thread's heap collects only now and then) */
    if (mk->m[0] != M_FREE) fn((uintptr_t)pg->start, pg->large_rec.size, &mk->m[0], pg->large_rec.site, HH_ROOTS);
    return;
  }
  for (uint32_t k = 0; k < mk->n; k++)
    if (mk->m[k] != M_FREE)
      fn((uintptr_t)pg->start + (uintptr_t)k * pg->block_size, hh_rec_size(pg, k), &mk->m[k], hh_rec_site(pg, k),
         pg->root);
}

static void holder_blocks(const holder *h, block_fn fn) {
  if (h->oversize) {
    marks *mk = h->oversize->scan_marks;
    if (marks_valid(mk) && mk->m[0] != M_FREE)
      fn((uintptr_t)h->oversize->user, h->oversize->size, &mk->m[0], h->oversize->site, HH_ROOTS + 1);
    return;
  }
  hh_page *pg;
  for (uint32_t i = 1; (pg = next_page(h->mapping, &i)) != NULL;) page_blocks(pg, fn);
}

/* Every holder, under one guard each: a holder whose metadata faults is
 * given up (a thread that could not be stopped released it). */
static void holder_cb(void *h) { holder_blocks(h, S.each_fn); }

static void each_block(block_fn fn) {
  S.each_fn = fn;
  for (size_t i = 0; i < S.nh; i++) guarded(holder_cb, &S.h[i]);
}

static bool pending_full;
static void pending_cb(uintptr_t start, uint64_t size, uint8_t *mark, uint32_t site, uint8_t root) {
  (void)size, (void)site, (void)root;
  if (!(*mark & M_PENDING) || pending_full) return;
  if (S.top == S.stack_cap) {
    pending_full = true;
    return;
  }
  *mark &= (uint8_t)~M_PENDING;
  S.stack[S.top++] = start;
}

static void sweep_pending(void) {
  S.overflow = false;
  pending_full = false;
  each_block(pending_cb);
  if (pending_full) S.overflow = true;
}

/* ------------------------------------------------------------------ collecting holders */

typedef struct census {
  size_t holders, mark_bytes;
} census;

static size_t marks_bytes(uint32_t n) { return (sizeof(marks) + n + 7) & ~(size_t)7; }

typedef struct census_call {
  hh_heap *heap;
  census *c; /* pass 1: counted here; pass 2 (NULL): marks filled in */
} census_call;

/* A page's state: an allocation or a free by its owner moves `free` and
 * `used`, another thread's free `thread_free`, a large range's its record.
 * Runs under the guard. */
static uint64_t page_print(const hh_page *pg) {
  const volatile hh_page *v = pg;
  uint64_t large;
  memcpy(&large, (const void *)&pg->large_rec, sizeof large);
  return ((uint64_t)v->free << 32 | v->used) ^ atomic_load_explicit(&pg->thread_free, memory_order_relaxed) * 3 ^
         v->capacity * 0x9e3779b97f4a7c15ULL ^ large ^ v->kind;
}

/* A heap's counts: `tally` or `allocs` grow with every malloc, `room`
 * moves with every free. Unlike a page's state they never come back to
 * what they were (a malloc and a free that swap two ranges leave the page
 * as it was). Runs under the guard. */
static uint64_t heap_print(const hh_heap *h) {
  const volatile hh_stats *st = &h->stats;
  return st->tally ^ (st->allocs * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)st->room << 17);
}

typedef struct mark_call {
  const hh_page *page;
  marks *mk;
  const uintptr_t *unreadable;
  int nunreadable;
} mark_call;

static void mark_free_cb(void *arg) {
  const mark_call *c = arg;
  hh_page_mark_free(c->page, c->mk->m, c->mk->n, c->unreadable, c->nunreadable);
}

/* A page's free ranges, each read under the guard. A live block the
 * program made unreadable (mprotect PROT_NONE: a guard page of its own)
 * faulted where its link was read, and the census of the rest of its heap
 * was dropped: its blocks counted as freed, its leaks not listed
 * (helper-71: "5 allocs, 3 frees" for five blocks lost). The memory page
 * that faulted is listed, the ranges whose links lie there are taken as
 * live without reading, and the page is marked again. MAX_UNREADABLE
 * covers the biggest page (16 slices); a fault that comes again (a free
 * range's link the program made unreadable, a misuse) takes all the
 * page's ranges as live. */
static void census_page(const hh_page *pg, marks *mk) {
  uintptr_t *unreadable = S.unreadable;
  mark_call c = {pg, mk, unreadable, 0};
  for (;;) {
    memset(mk->m, M_UNREACHED, mk->n);
    if (guarded(mark_free_cb, &c)) return;
    uintptr_t f = guard_addr & ~(uintptr_t)4095;
    for (int k = 0; k < c.nunreadable; k++)
      if (unreadable[k] == f) c.nunreadable = MAX_UNREADABLE; /* the same fault again: not a link's */
    if (c.nunreadable == MAX_UNREADABLE) {
      memset(mk->m, M_UNREACHED, mk->n);
      return;
    }
    unreadable[c.nunreadable++] = f;
  }
}

static void census_heap(void *arg) {
  census_call *cc = arg;
  census *c = cc->c;
  size_t steps = 0;
  uint64_t hp = c == NULL ? heap_print(cc->heap) : 0;
  for (hh_mapping *m = cc->heap->mappings; m != NULL && steps++ < ((size_t)1 << 24); m = m->next) {
    if (c == NULL) {
      if (S.nh == S.h_size / sizeof(holder)) return;
      S.h[S.nh++] = (holder){(uintptr_t)m + HH_SLICE_SIZE, (uintptr_t)m + HH_MAPPING_SIZE, m, NULL, cc->heap, hp};
    } else {
      c->holders++;
    }
    hh_page *pg;
    for (uint32_t i = 1; (pg = next_page(m, &i)) != NULL;) {
      uint64_t capacity = pg->kind == HH_PAGE_LARGE ? 1 : hh_page_capacity(pg);
      uint32_t cap = capacity > HH_SLICE_SIZE / HH_ALIGN ? 0 : (uint32_t)capacity; /* 0: damaged */
      size_t bytes = marks_bytes(cap);
      if (c != NULL) {
        c->mark_bytes += bytes;
      } else if (S.mk_used + bytes <= S.mk_size) {
        marks *mk = (marks *)(S.mk + S.mk_used);
        S.mk_used += bytes;
        mk->n = cap;
        census_page(pg, mk);
        mk->print = page_print(pg);
        pg->scan_marks = mk;
      }
    }
  }
}

/* Pass 1 (count) and pass 2 (fill) over every mapping and oversize range. */
static void census_heaps(census *c) {
  for (hh_heap *heap = hh_heaps_first(); heap != NULL; heap = heap->next_heap) {
    census_call cc = {heap, c};
    guarded(census_heap, &cc);
  }
  for (hh_oversize *o = hh_oversize_first(); o != NULL; o = o->next) {
    if (c != NULL) {
      c->holders++;
      c->mark_bytes += marks_bytes(1);
      continue;
    }
    if (S.nh == S.h_size / sizeof(holder) || S.mk_used + marks_bytes(1) > S.mk_size) break;
    S.h[S.nh++] = (holder){(uintptr_t)o->user, (uintptr_t)o->user + o->map_size, NULL, o, NULL, 0};
    marks *mk = (marks *)(S.mk + S.mk_used);
    S.mk_used += marks_bytes(1);
    mk->n = 1;
    mk->m[0] = M_UNREACHED;
    o->scan_marks = mk;
  }
}

static bool holder_before(const holder *a, const holder *b) { return a->start < b->start; }

static void sort_holders(void) {
  HH_SORT(holder, S.h, S.nh, holder_before);
  S.lo = S.nh ? S.h[0].start : 1;
  S.hi = 0;
  for (size_t i = 0; i < S.nh; i++)
    if (S.h[i].end > S.hi) S.hi = S.h[i].end;
}

/* ------------------------------------------------------------------ anchors */

static void add_excl(uintptr_t a, uintptr_t b) {
  if (S.nexcl >= MAX_EXCL) return;
  int i = S.nexcl++;
  while (i > 0 && S.excl[i - 1].start > a) {
    S.excl[i] = S.excl[i - 1];
    i--;
  }
  S.excl[i].start = a;
  S.excl[i].end = b;
}

static void anchor_piece(uintptr_t lo, uintptr_t hi, bool file, bool populated) {
  if (populated) {
    populated_scan c = {MODE_ANCHOR, true, 0};
    scan_populated(lo, hi, &c);
  } else {
    scan_resident(lo, hi, MODE_ANCHOR, 0, true, file);
  }
}

/* [a, b) minus hahalloc's chunks and the exclusions; `file`: as for
 * each_populated; `populated`: every page of [a, b) holds data (a run
 * each_populated found), so it is read without asking again. */
static void scan_anchor_runs(uintptr_t a, uintptr_t b, bool file, bool populated) {
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
      if (S.excl[i].start > p) anchor_piece(p, S.excl[i].start, file, populated);
      p = S.excl[i].end;
    }
    if (p < end) anchor_piece(p, end, file, populated);
    a = end;
    progress("anchors");
  }
}

/* An anonymous anchor is taken by the runs that hold data (each_populated),
 * so that its untouched expanse costs no lookup of a chunk per 4 MiB. */
static void anchor_populated(uintptr_t lo, uintptr_t hi, void *arg) {
  (void)arg;
  scan_anchor_runs(lo, hi, false, true);
}

static void scan_anchor(uintptr_t a, uintptr_t b, bool file) {
  if (file)
    scan_anchor_runs(a, b, true, false);
  else
    each_populated(a, b, false, anchor_populated, NULL);
}

static bool maps_cb(const hh_map_line *m, void *arg) {
  (void)arg;
  if (S.nmaps >= S.maps_cap) {
    S.maps_cut = true;
    return false;
  }
  mapline *l = &S.maps[S.nmaps++];
  l->start = m->start;
  l->end = m->end;
  l->anon = m->path[0] == '\0';
  l->ro_file = m->r && !m->w && !l->anon;
  l->code = m->x;
  l->main_stack = !strcmp(m->path, "[stack]");
  l->private_anon = l->anon || l->main_stack || !strcmp(m->path, "[heap]") || !strncmp(m->path, "[anon:", 6);
  l->shared = m->shared;
  l->shmem = m->shared &&
             (!strncmp(m->path, "/dev/zero", 9) || !strncmp(m->path, "/memfd:", 7) || !strncmp(m->path, "/SYSV", 5) ||
              !strncmp(m->path, "/dev/shm/", 9) || !strncmp(m->path, "[anon_shmem:", 12));
  l->skip = 0;
  if (!m->r || !m->w)
    l->skip = 1;
  else if (m->path[0] == '[' && strcmp(m->path, "[heap]") && strcmp(m->path, "[stack]") && strncmp(m->path, "[anon", 5))
    l->skip = 1; /* [vvar], [vsyscall], [vdso] */
  else if (!strncmp(m->path, "/dev/", 5) && strncmp(m->path, "/dev/zero", 9) && strncmp(m->path, "/dev/shm/", 9))
    l->skip = 1; /* device memory: reading it may hang or have effects (MAP_SHARED | MAP_ANONYMOUS shows as
                    "/dev/zero (deleted)": ordinary memory) */
  return true;
}

/* glibc puts a thread's control block at the top of its stack mapping; it
 * starts with tcbhead_t { tcb = self, dtv, self = self }. */
typedef struct tcb_call {
  const mapline *l;
  uintptr_t tcb;
} tcb_call;

/* Reads only the resident pages of the top 64 KiB: a cached stack's other
 * pages were given back (glibc purges them), and reading one would make it
 * resident again, 200 KiB for a program that ran a few threads. The control
 * block lies in a page the thread used. */
#define TCB_SPAN 65536
static void find_tcb_cb(void *arg) {
  tcb_call *c = arg;
  const mapline *l = c->l;
  uintptr_t lo = l->end - TCB_SPAN > l->start ? l->end - TCB_SPAN : l->start;
  lo &= ~(uintptr_t)4095;
  unsigned char vec[TCB_SPAN / 4096];
  size_t pages = (l->end - lo + 4095) / 4096;
  bool known = resident(lo, pages, vec, false) == 0;
  /* x86-64 glibc's thread control block begins with tcb, dtv, self, two
   * ints, sysinfo, then the stack guard and the pointer guard, which every
   * thread shares: random words that no self-pointing record of the
   * program's repeats by chance. */
#if defined(__x86_64__)
  const uintptr_t *own = (const uintptr_t *)pthread_self();
  const size_t words = 7;
#else
  const size_t words = 3;
#endif
  for (uintptr_t p = (l->end - 64) & ~(uintptr_t)63; p >= lo && p + words * 8 <= l->end; p -= 64) {
    if (known && !(vec[(p - lo) / 4096] & 1)) {
      p &= ~(uintptr_t)4095; /* the page's last line is next */
      continue;
    }
    const uintptr_t *w = (const uintptr_t *)p;
#if defined(__x86_64__)
    if (w[0] == p && w[2] == p && w[5] == own[5] && w[6] == own[6]) {
#else
    if (w[0] == p && w[2] == p) {
#endif
      c->tcb = p;
      return;
    }
  }
}

static uintptr_t find_tcb(const mapline *l) {
  tcb_call c = {l, 0};
  guarded(find_tcb_cb, &c);
  return c.tcb;
}

/* Whether mapping `l` is the stack of thread `tid`, whose control block is
 * `self`: the main thread's [stack], or the mapping that holds the control
 * block (glibc puts it at the top of the stack it makes, or of one the
 * program gives). */
static bool own_stack(const mapline *l, int tid, uintptr_t self) {
  return l->main_stack ? tid == (int)getpid() : self >= l->start && self < l->end;
}

/* Where the scan of a live stack in mapping `l` starts: the lowest stack
 * pointer in it (a stopped thread's less its 128-byte red zone; this
 * thread's own from its caller), or 0: all of it. Frames below are dead, as
 * valgrind takes them. Cut only when every stack pointer in `l` is its own
 * thread's (own_stack): one in other memory is a coroutine's, and the
 * coroutine stacks carved from the same mapping below it are alive
 * (helper-46); one mapping may hold two threads' stacks (pthread_attr_setstack
 * on one mmap, helper-48); and the kernel merges neighbouring mappings. Not
 * cut either where a thread asleep in a call that was not stopped has its
 * stack pointer: no one read its registers, and a block a callee-saved one
 * holds across the call may have its only other copy below (helper-49: 4
 * false leaks of 4 workers). */
static uintptr_t live_sp(const mapline *l, const hh_world *w) {
  uintptr_t sp = 0;
  if (S.s->own_sp >= l->start && S.s->own_sp < l->end) {
    if (!own_stack(l, (int)syscall(SYS_gettid), (uintptr_t)pthread_self())) return 0;
    sp = S.s->own_sp;
  }
  for (int t = 0; t < w->count; t++) {
    const hh_thread_regs *r = &w->threads[t];
    if (!r->tid || r->sp < l->start || r->sp >= l->end) continue;
    if (!own_stack(l, r->tid, r->self)) return 0;
    uintptr_t from = r->sp - (r->in_call ? 0 : 128); /* a leaf's red zone, but at a system call */
    if (sp == 0 || from < sp) sp = from;
  }
  for (int t = 0; t < w->nasleep; t++)
    if (w->asleep[t].sp >= l->start && w->asleep[t].sp < l->end) return 0;
  return sp;
}

/* A block whose start is `v`, taken for freed: it is gone from the scan
 * and from the report, as if freed before it. */
static void forget(uintptr_t v) {
  hit x;
  if (lookup(v, &x, false) && x.start == v) *x.mark = M_FREE;
}

/* glibc frees an exited thread's dynamic TLS when its cached stack is
 * reused (get_cached_stack) and its DTV when the stack is freed
 * (_dl_deallocate_tls); valgrind sees both freed, by __libc_freeres at
 * exit. The scan takes them for freed too, so that they do not hold what
 * the thread's __thread pointers held: a block only such a pointer of a
 * dlopen'd library kept is definitely lost, not indirectly lost under the
 * runtime's DTV. x86-64: tcbhead_t's second word is the DTV, one entry past
 * the block glibc allocated (its length in entry -1), entries of two
 * words whose second is the block to free (glibc's dtv_t). */
#define DTV_SURPLUS 14 /* glibc's spare DTV entries: every DTV has at least these */
static void forget_dtv_cb(void *arg) {
#if defined(__x86_64__)
  const uintptr_t *tcb = arg;
  uintptr_t dtv = tcb[1];
  if (dtv < 16 || (dtv & 15) != 0) return;
  /* Only a DTV as glibc makes it: a block of exactly len + 2 entries. A
   * thread on a stack the program gave has its DTV freed when it ends, and
   * the block at that address may be the program's now: it must not be
   * taken for one, nor what it points to. */
  hit x;
  if (!lookup(dtv - 16, &x, true) || x.start != dtv - 16) return;
  uint64_t len = *(const uint64_t *)(dtv - 16);
  if (len < DTV_SURPLUS || len > ((uint64_t)1 << 20) || x.size != (len + 2) * 16) return;
  /* each module's block holds the TLS pointer beside it (val, to_free) */
  for (uint64_t k = 1; k <= len; k++) {
    uintptr_t val = *(const uintptr_t *)(dtv + 16 * k), to_free = *(const uintptr_t *)(dtv + 16 * k + 8);
    if (to_free == 0) continue;
    if (!lookup(to_free, &x, true) || x.start != to_free || val < to_free || val - to_free >= x.size) return;
  }
  for (uint64_t k = 1; k <= len; k++) {
    uintptr_t to_free = *(const uintptr_t *)(dtv + 16 * k + 8);
    if (to_free != 0) forget(to_free);
  }
  forget(dtv - 16);
#else
  (void)arg;
#endif
}

/* Which of glibc's lists holds an ended thread's descriptor. Its list_t
 * (next, prev) links it into one of the loader's rings: stacks in use
 * (threads running, or ended and not yet joined), stacks the program gave
 * (the main thread's among them), and the cache of joined or detached
 * threads' stacks. Only the cache is dead memory: valgrind's exit frees it
 * (__libc_freeres), and scans an ended thread's stack that is not joined,
 * or a stack the program gave, as any other mapping. The list's offset in
 * the descriptor is found on a live one: the first pair of words whose
 * neighbours point back at it. A ring's head is its one element that is no
 * descriptor (no self-pointers), in the loader's data. */
static struct {
  size_t off, probe; /* the list's offset (0: not found); the offset being tried */
  uintptr_t found;   /* what a guarded read below gives */
  int walk;          /* steps taken round a ring (mark_ring_dtvs_cb) */
  size_t tid;        /* the tid's offset (0: not known) */
} L;

static void read_tid_cb(void *d) { L.found = *(const uint32_t *)((uintptr_t)d + L.tid); }

static bool is_descriptor(uintptr_t d) {
  const uintptr_t *w = (const uintptr_t *)d;
  return (d & 7) == 0 && w[0] == d && w[2] == d;
}

static bool linked(uintptr_t e) {
  uintptr_t next = ((const uintptr_t *)e)[0], prev = ((const uintptr_t *)e)[1];
  if (next == e || prev == e || next == 0 || prev == 0 || ((next | prev) & 7)) return false;
  return ((const uintptr_t *)next)[1] == e && ((const uintptr_t *)prev)[0] == e;
}

static void linked_cb(void *e) { L.found = linked((uintptr_t)e); }

static void probe_list_cb(void *self) {
  for (; L.probe < 2048; L.probe += 8)
    if (linked((uintptr_t)self + L.probe)) {
      L.off = L.probe;
      return;
    }
}

static void ring_head_cb(void *arg) {
  uintptr_t e = (uintptr_t)arg, x = e;
  L.found = 0;
  if (!linked(e)) return;
  for (int n = 0; n < (1 << 20); n++) {
    x = ((const uintptr_t *)x)[0];
    if (x == e) return;
    if (!is_descriptor(x - L.off)) {
      L.found = x;
      return;
    }
  }
}

/* The head of the ring descriptor `d` is linked in, or 0 (not linked: a
 * stack the program gave, its thread joined). */
static uintptr_t ring_head(uintptr_t d) {
  if (L.off == 0 || !guarded(ring_head_cb, (void *)(d + L.off))) return 0;
  return L.found;
}

/* A thread's DTV, which its control block points into one entry past the
 * block's start: a live thread's is in use, and so are the dynamic TLS
 * blocks it names, which hold the thread's __thread variables of dlopen'd
 * libraries. Marked from its start, so that what those variables hold is
 * reachable (valgrind, seeing only the interior pointer, says possibly
 * lost, or reachable when a register happens to hold one). */
static void mark_dtv_cb(void *tcb) {
#if defined(__x86_64__)
  uintptr_t dtv = ((const uintptr_t *)tcb)[1];
  if (dtv >= 16 && (dtv & 15) == 0) mark(dtv - 16, true);
#else
  (void)tcb;
#endif
}

/* Marks the DTV of every descriptor in the ring whose head is `head`. */
static void mark_ring_dtvs_cb(void *head) {
  for (uintptr_t x = ((const uintptr_t *)head)[0]; x != (uintptr_t)head && L.walk < (1 << 20); L.walk++) {
    if (is_descriptor(x - L.off)) mark_dtv_cb((void *)(x - L.off));
    x = ((const uintptr_t *)x)[0];
  }
}

/* The cached stacks of exited threads, which glibc keeps for the next ones:
 * nothing in them is alive, their TLS included (a __thread pointer, or the
 * value a thread returned to a join that dropped it, is lost, as valgrind
 * says). Found before anything is marked, so that what they held is never
 * taken for reachable through them. */
static void dead_stacks(const hh_world *w) {
  if (!S.s->static_tls) return;
  /* the rings of the stacks in use and of those the program gave */
  uintptr_t used_head = 0, user_head = 0;
  bool guessed = false; /* a head placed by its neighbour, not seen */
  L.off = 0;
#if defined(__x86_64__)
  uintptr_t self = (uintptr_t)pthread_self();
  used_head = S.s->stacks_used;
  user_head = S.s->stacks_user;
  /* glibc's own offset first, checked on this thread; else a probe */
  L.found = 0;
  if (S.s->pd_list != 0 && guarded(linked_cb, (void *)(self + S.s->pd_list)) && L.found) L.off = S.s->pd_list;
  for (L.probe = 64; L.probe < 2048 && L.off == 0; L.probe += 8) guarded(probe_list_cb, (void *)self);
  /* a thread's tid, which the kernel clears when it ends (the offset was
   * checked on the main thread at start-up, report.c) */
  L.tid = S.s->pd_tid;
  /* The heads are glibc's (the loader's data, through libthread_db's
   * descriptors), believed when this thread's own ring is one of them.
   * Else they are learnt: the main thread's ring is the program's, another
   * live thread's the one in use; and the two heads sit side by side in the
   * loader's data (glibc 2.34 to 2.36: in use, then the program's). */
  if (used_head != 0 && L.off != 0) {
    uintptr_t h = ring_head(self);
    if (h != used_head && h != user_head) used_head = user_head = 0;
  }
  if (used_head == 0 || user_head == 0) {
    used_head = user_head = 0;
    for (int t = -1; t < w->count; t++) {
      uintptr_t d = t < 0 ? self : w->threads[t].self;
      int tid = t < 0 ? (int)syscall(SYS_gettid) : w->threads[t].tid;
      if (d == 0 || tid == 0) continue;
      uintptr_t h = ring_head(d);
      if (tid == getpid())
        user_head = h;
      else if (h != 0 && used_head == 0)
        used_head = h;
    }
    if (used_head == user_head) used_head = 0; /* a live thread on a stack the program gave */
    guessed = used_head == 0 || user_head == 0;
    if (used_head == 0 && user_head != 0) used_head = user_head - 2 * sizeof(uintptr_t);
    if (user_head == 0 && used_head != 0) user_head = used_head + 2 * sizeof(uintptr_t);
  }
  /* every descriptor of the rings in use and of the program's: threads
   * running, stopped or not (asleep), and ended but not joined */
  L.walk = 0;
  if (used_head != 0) guarded(mark_ring_dtvs_cb, (void *)used_head);
  L.walk = 0;
  if (user_head != 0) guarded(mark_ring_dtvs_cb, (void *)user_head);
#endif
  /* A thread that could not be stopped is told from a dead one only by
   * its ring. */
  if (w->missed != 0 && (L.off == 0 || used_head == 0 || user_head == 0 || guessed)) return;
  for (size_t i = 0; i < S.nmaps; i++) {
    mapline *l = &S.maps[i];
    if (l->skip || !l->anon || hh_is_internal(l->start)) continue;
    if (live_sp(l, w)) continue; /* a live thread's stack */
    uintptr_t tcb = find_tcb(l);
    if (tcb == 0) continue;
    bool live = tcb == (uintptr_t)pthread_self();
    for (int t = 0; t < w->count && !live; t++) live = w->threads[t].tid && w->threads[t].self == tcb;
    if (live) continue;
#if defined(__x86_64__)
    if (L.off != 0) {
      /* Not cached: a stack the program gave, or a thread ended and not
       * joined (its stack still in use). */
      uintptr_t h = ring_head(tcb);
      if (h == 0 || h == user_head || h == used_head) {
        /* A stack glibc made for a thread that has ended (tid cleared), not
         * joined: its frames are dead, valgrind stops reading a stack at its
         * pointer. The TLS and descriptor at the top count. A stack the
         * program gave (unlinked, or in its ring) is its memory: all of it. */
        L.found = 1;
        if (h == used_head && L.tid != 0 && guarded(read_tid_cb, (void *)tcb) && L.found == 0) {
          size_t tls = S.s->static_tls > S.s->pd_size ? S.s->static_tls - S.s->pd_size : S.s->static_tls;
          l->from = tcb - tls > l->start ? tcb - tls : l->start;
        }
        continue;
      }
    }
#endif
    l->dead = 1;
    guarded(forget_dtv_cb, (void *)tcb);
  }
}

static void scan_maps(const hh_world *w) {
  for (size_t i = 0; i < S.nmaps; i++) {
    const mapline *l = &S.maps[i];
    if (l->skip || l->dead) continue;
    /* a live thread's stack: from its stack pointer up */
    uintptr_t sp = live_sp(l, w);
    if (sp) {
      scan_anchor(sp < l->start ? l->start : sp, l->end, !l->private_anon);
      continue;
    }
    scan_anchor(l->from ? l->from : l->start, l->end, !l->private_anon);
  }
}

/* stdio's exit (_IO_cleanup, after the last atexit handler) makes every
 * stream that was used and is buffered unbuffered: a buffer the program
 * gave with setvbuf is then no longer pointed to, as valgrind, which scans
 * after it, sees. The scan runs before it, so it ignores those pointer
 * fields of such streams (it changes nothing in them). */
#define STDIO_USER_BUF 0x0001
#define STDIO_UNBUFFERED 0x0002

#define FILE_FIELDS 8
static void file_words_cb(void *arg) {
  const size_t *fields = arg;
  int steps = 0;
  for (FILE *fp = _IO_list_all; fp != NULL && steps < 100000; fp = fp->_chain, steps++) {
    if ((fp->_flags & STDIO_UNBUFFERED) || fp->_mode == 0 || !(fp->_flags & STDIO_USER_BUF)) continue;
    for (size_t k = 0; k < FILE_FIELDS && S.nfile_words < MAX_FILE_WORDS; k++)
      S.file_words[S.nfile_words++] = (uintptr_t)fp + fields[k];
  }
}

static void file_exclusions(void) {
  if (&_IO_list_all == NULL || S.file_words == NULL) return;
  static const size_t fields[] = {offsetof(FILE, _IO_read_ptr),  offsetof(FILE, _IO_read_end),
                                  offsetof(FILE, _IO_read_base), offsetof(FILE, _IO_write_base),
                                  offsetof(FILE, _IO_write_ptr), offsetof(FILE, _IO_write_end),
                                  offsetof(FILE, _IO_buf_base),  offsetof(FILE, _IO_buf_end)};
  S.nfile_words = 0;
  if (!guarded(file_words_cb, (void *)fields)) S.nfile_words = 0;
  size_t n = S.nfile_words;
  HH_SORT(uintptr_t, S.file_words, n, hh_word_before);
  S.nfile_words = n;
  if (n) {
    S.file_lo = S.file_words[0];
    S.file_hi = S.file_words[n - 1] + 8;
  }
}

/* ------------------------------------------------------------------ classification */

static void mark_cb(void *arg) { mark(*(const uintptr_t *)arg, true); }
static void mark_guarded(uintptr_t v) { guarded(mark_cb, &v); }

static void clique_cb(uintptr_t start, uint64_t size, uint8_t *mark, uint32_t site, uint8_t root);
static void ignored_cb(uintptr_t start, uint64_t size, uint8_t *mark, uint32_t site, uint8_t root);
static void held_by_runners(const hh_world *w);

static void classify(const hh_world *w) {
  dead_stacks(w);
  /* registers of the stopped threads and of this one */
  for (int t = 0; t < w->count; t++) {
    const hh_thread_regs *r = &w->threads[t];
    if (!r->tid) continue;
    for (int k = 0; k < 23; k++) mark_guarded(r->gregs[k]);
    /* a stack inside a heap block (coroutines): that block is in use */
    mark_guarded(r->sp);
  }
  for (int k = 0; k < S.s->nown_regs; k++) mark_guarded(S.s->own_regs[k]);
  /* threads asleep in a call, not stopped: the call's arguments */
  for (int t = 0; t < w->nasleep; t++)
    for (int k = 0; k < 6; k++) mark_guarded(w->asleep[t].args[k]);
  each_block(ignored_cb);
  drain(false, 0);
  scan_maps(w);
  if (S.s->relro[1] > S.s->relro[0]) scan_anchor(S.s->relro[0], S.s->relro[1], true);
  drain(false, 0);
  if (w->missed) held_by_runners(w);
  /* cliques of unreached blocks, in address order */
  each_block(clique_cb);
}

/* Threads that could not be stopped (they block every signal, or sleep
 * through a leak check made while the program runs) may run during the
 * scan. A range marked in use at the census that such a thread frees and
 * takes again meanwhile, linking it where the scan has already read, would
 * be called lost, and so would the blocks a running thread holds only in
 * its registers, which no one has read (a list it rebuilds: 100-450 KB of
 * false definite leaks in every run, which tripped --error-exitcode on a
 * correct program). Taken for reachable, with what they point to:
 * - every block of the heap of a thread in user mode as the stop ended
 *   (hh_world.runners), or whose counts moved since the census (heap_print);
 * - the blocks of every page whose state moved (page_print: another
 *   thread's frees into a page of a heap that was stopped).
 * That is the whole heap, leaks of threads that ended before it and left it
 * to the runner included: narrower rules (the mappings the runner's own
 * heap made, the pages whose state moved) called a runner's blocks lost
 * when it had taken its heap over whole, or when its malloc and free
 * swapped two ranges of a page back (helper-48). A leak missed there is
 * the lesser harm; the report says how many blocks were counted so. A
 * thread asleep in a system call throughout is judged as any thread. */
static void runner_cb(uintptr_t start, uint64_t size, uint8_t *mark, uint32_t site, uint8_t root) {
  (void)site, (void)root;
  if (M_STATE(*mark) == M_REACHABLE) return;
  *mark = (uint8_t)((*mark & M_PENDING) | M_REACHABLE);
  S.s->runner_blocks++;
  S.s->runner_bytes += size;
  push(start, mark);
}

static const hh_world *runners_of;

static void runner_holder_cb(void *arg) {
  holder *h = arg;
  int tid = h->owner->tid;
  bool runs = heap_print(h->owner) != h->heap_print;
  for (int i = 0; i < runners_of->nrunners && !runs; i++) runs = runners_of->runners[i] == tid;
  hh_page *pg;
  for (uint32_t i = 1; (pg = next_page(h->mapping, &i)) != NULL;) {
    const marks *mk = pg->scan_marks;
    if (marks_valid(mk) && (runs || page_print(pg) != mk->print)) page_blocks(pg, runner_cb);
  }
}

static void held_by_runners(const hh_world *w) {
  runners_of = w;
  for (size_t i = 0; i < S.nh; i++)
    if (S.h[i].owner != NULL) guarded(runner_holder_cb, &S.h[i]);
  drain(false, 0);
}

static void clique_cb(uintptr_t start, uint64_t size, uint8_t *mark, uint32_t site, uint8_t root) {
  (void)size, (void)site, (void)root;
  if (M_STATE(*mark) != M_UNREACHED) return;
  S.clique_bytes = S.clique_blocks = 0;
  S.stack[S.top++] = start;
  drain(true, start);
  if (S.clique_bytes) leader_put(start, S.clique_bytes, S.clique_blocks);
  progress("leaked blocks");
}

/* Blocks the program asked to be ignored (hahalloc_ignore) are anchors: what
 * they point to is reachable, as LeakSanitizer's ignored objects. */
static void ignored_cb(uintptr_t start, uint64_t size, uint8_t *mark, uint32_t site, uint8_t root) {
  (void)size, (void)root;
  if (!(site & HH_SITE_IGNORED) || M_STATE(*mark) == M_REACHABLE) return;
  *mark = (uint8_t)((*mark & M_PENDING) | M_REACHABLE);
  push(start, mark);
}

/* ------------------------------------------------------------------ tallies */

static const uint8_t state_kind[5] = {0, HH_DEFINITE, HH_INDIRECT, HH_POSSIBLE, HH_REACHABLE};

struct group {
  uint64_t key; /* site, kind and listed, plus one */
  hh_group g;
};

/* In a fork child, whether the block is in a heap of a thread the fork
 * left behind, which may have been stopped between writing a new block's
 * record and its guard bytes (heap.c, atfork_child). */
static bool forked_away(uintptr_t start) {
  const hh_header *hdr = hh_registry_get(start);
  if (hdr == NULL || hdr->kind != HH_MAP_PAGES) return false;
  const hh_heap *owner = atomic_load_explicit(&((const hh_mapping *)hdr)->heap, memory_order_relaxed);
  return owner != NULL && owner->forked_away;
}

/* HAHALLOC_GUARD: the canary after a live block (guard.c). Large and
 * oversize blocks were given at least HH_GUARD_BYTES more than asked. */
static void overrun_cb(uintptr_t start, uint64_t size, uint8_t *mark, uint32_t site, uint8_t root) {
  (void)mark;
  size_t room = root < HH_ROOTS ? hh_root_size[root] : size + HH_GUARD_BYTES;
  size_t at = size > room ? SIZE_MAX : hh_guard_damage((const void *)start, size, room);
  if (at == SIZE_MAX || forked_away(start)) return;
  hh_scan *s = S.s;
  if (s->overrun < sizeof s->overrun_at / sizeof *s->overrun_at)
    s->overrun_at[s->overrun] = (hh_overrun){start, size, site, (uint32_t)at, ((const uint8_t *)start)[size + at]};
  s->overrun++;
}

static void tally_cb(uintptr_t start, uint64_t size, uint8_t *mark, uint32_t site, uint8_t root) {
  hh_scan *s = S.s;
  s->live_bytes += size;
  s->live_blocks++;
  if (site & HH_SITE_IGNORED) {
    s->ignored_bytes += size;
    s->ignored_blocks++;
    return;
  }
  uint8_t kind = state_kind[M_STATE(*mark) <= M_REACHABLE ? M_STATE(*mark) : M_REACHABLE];
  s->kind_bytes[kind] += size;
  s->kind_blocks[kind]++;
  bool listed = size >= s->min_size;
  if (listed) { /* the table lists what the report lists */
    s->root_blocks[root]++;
    s->root_bytes[root] += size;
  }
  uint64_t key = (((uint64_t)site * HH_KINDS + kind) << 1 | listed) + 1;
  struct group *found = hh_table_find(&S.groups, key, NULL, NULL);
  if (found == NULL) {
    struct group fresh = {key, {.site = site, .kind = kind, .listed = listed, .min_size = size}};
    found = hh_table_add(&S.groups, &fresh);
    if (found == NULL) {
      s->failed = true;
      return;
    }
  }
  hh_group *g = &found->g;
  g->blocks++;
  g->bytes += size;
  if (size < g->min_size) g->min_size = size;
  if (size > g->max_size) g->max_size = size;
  if (kind == HH_DEFINITE) {
    const struct leader *l = leader_get(start);
    if (l != NULL) {
      g->indirect_bytes += l->bytes;
      g->indirect_blocks += l->blocks;
    }
  }
}

/* Most bytes first, then by site. */
static bool group_before(const hh_group *x, const hh_group *y) {
  return x->bytes > y->bytes || (x->bytes == y->bytes && x->site > y->site);
}

/* The groups, out of their table into an array of their own, sorted. */
static void groups_finish(hh_scan *s) {
  size_t n = hh_table_count(&S.groups);
  s->groups = n ? hh_report_map(n * sizeof(hh_group)) : NULL;
  if (s->groups == NULL) {
    s->failed |= n > 0;
    return;
  }
  s->groups_cap = n;
  size_t j = 0;
  for (size_t i = 0; i < hh_table_slots(&S.groups); i++) {
    const struct group *e = hh_table_at(&S.groups, i);
    if (e != NULL) s->groups[j++] = e->g;
  }
  s->ngroups = j;
  HH_SORT(hh_group, s->groups, j, group_before);
}

/* ------------------------------------------------------------------ the run */

/* Whether the process has about as many mappings as vm.max_map_count
 * allows, where the scan's own mmap fails with ENOMEM too (helper-80:
 * 32,750 single pages mapped, and the message blamed the address space). */
static bool count_cb(const hh_map_line *m, void *arg) {
  (void)m;
  ++*(long *)arg;
  return true;
}

static bool at_map_limit(void) {
  char b[32];
  int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, b, sizeof b - 1);
  close(fd);
  if (n <= 0) return false;
  b[n] = '\0';
  long most = strtol(b, NULL, 10), maps = 0;
  return most > 0 && hh_maps_each(count_cb, &maps) && maps + 64 >= most;
}

const char *hh_scan_run(hh_scan *s, int64_t deadline_ns) {
  memset(&S, 0, sizeof S);
  S.pagemap = -1;
  S.s = s;
  S.leaders.entry = sizeof(struct leader);
  S.leaders.first_slots = 256;
  S.leaders.report_memory = true;
  S.groups.entry = sizeof(struct group);
  S.groups.first_slots = 64;
  S.groups.report_memory = true;
  S.t0 = hh_now_ns();
  /* The loader's lock before ours: a thread whose first free is in dlclose
   * holds the loader's lock and waits for the heap list's (it has no heap
   * yet), and the stop's first dl_iterate_phdr made under the heap list's
   * lock waited for the loader's: the exit hung (1 in about 60 runs of two
   * threads in dlopen/dlclose loops on a busy machine). */
  hh_world_prepare();
  if (!hh_heaps_lock_until(deadline_ns))
    return "the allocator's heap list stayed locked (exit() called from a signal handler that "
           "interrupted the allocator, or a thread stuck inside it)";
  if (!hh_oversize_lock_until(deadline_ns)) {
    hh_heaps_unlock();
    return "the allocator's list of large blocks stayed locked";
  }
  /* memory first: mmap never waits for a stopped thread */
  /* Under a tight RLIMIT_AS the big tables give way to small ones: the work
   * list overflows into pending sweeps sooner, and stdio's user buffers are
   * not told apart (FILE_WORDS: the scan only gets less exact). */
  bool ok, maps_read = false;
  S.maps_cap = MAPS_CAP;
  S.maps = hh_report_map(S.maps_cap * sizeof(mapline));
  if (S.maps == NULL) S.maps = hh_report_map((S.maps_cap = MAPS_CAP_LEAN) * sizeof(mapline));
  S.file_words = hh_report_map(MAX_FILE_WORDS * sizeof(uintptr_t));
  S.stack_cap = STACK_CAP;
  S.stack = hh_report_map(S.stack_cap * sizeof(uintptr_t));
  if (S.stack == NULL) S.stack = hh_report_map((S.stack_cap = STACK_CAP_LEAN) * sizeof(uintptr_t));

  hh_world w;
  hh_world_stop(&w, s->at_exit);
  guard_install();
  s->threads = w.count + 1;
  s->threads_missed = w.missed;
  hh_stats_totals(&s->totals);

  census c = {0, 0};
  census_heaps(&c);
  /* room for what threads that could not be stopped may add meanwhile */
  S.h_size = (c.holders + 64) * sizeof(holder);
  S.mk_size = c.mark_bytes + ((size_t)1 << 20);
  S.h = hh_report_map(S.h_size);
  S.mk = hh_report_map(S.mk_size);
  if (S.mk == NULL) S.mk = hh_report_map(S.mk_size = c.mark_bytes + ((size_t)64 << 10)); /* less spare room */
  if (S.stack == NULL || S.maps == NULL || S.h == NULL || S.mk == NULL) {
    /* the big tables took the room the rest needs: small ones, and again */
    if (S.stack_cap != STACK_CAP_LEAN || S.stack == NULL) {
      hh_report_unmap(S.stack, S.stack_cap * sizeof(uintptr_t));
      S.stack = NULL;
    }
    if (S.maps_cap != MAPS_CAP_LEAN || S.maps == NULL) {
      hh_report_unmap(S.maps, S.maps_cap * sizeof(mapline));
      S.maps = NULL;
    }
    hh_report_unmap(S.file_words, MAX_FILE_WORDS * sizeof(uintptr_t));
    S.file_words = NULL;
    if (S.h == NULL) S.h = hh_report_map(S.h_size);
    if (S.mk == NULL) S.mk = hh_report_map(S.mk_size);
    if (S.maps == NULL) S.maps = hh_report_map((S.maps_cap = MAPS_CAP_LEAN) * sizeof(mapline));
    if (S.stack == NULL) S.stack = hh_report_map((S.stack_cap = STACK_CAP_LEAN) * sizeof(uintptr_t));
  }
  ok = S.stack != NULL && S.maps != NULL && S.h != NULL && S.mk != NULL;
  if (ok) {
    census_heaps(NULL);
    sort_holders();
    uintptr_t own[256][2];
    int nown = hh_report_regions(own, 256);
    for (int i = 0; i < nown; i++) add_excl(own[i][0], own[i][1]);
    for (int i = 0; i < s->nexcl; i++) add_excl(s->excl[i][0], s->excl[i][1]);
    add_excl((uintptr_t)&S, (uintptr_t)(&S + 1)); /* it holds block addresses */
    /* Without every mapping, what a global or a mapping holds would be
     * called lost: no classification at all, rather than a wrong one. */
    maps_read = hh_maps_each(maps_cb, NULL) && S.nmaps > 0 && !S.maps_cut;
    if (maps_read) {
      file_exclusions();
      classify(&w);
      each_block(tally_cb);
      if (hh_guard) each_block(overrun_cb);
    }
  }
  guard_remove();
  hh_world_resume();
  hh_oversize_unlock();
  hh_heaps_unlock();
  if (S.pagemap >= 0) close(S.pagemap);

  s->failed |= !ok;
  if (ok && maps_read) groups_finish(s);
  s->totals.frees = s->totals.allocs > s->live_blocks ? s->totals.allocs - s->live_blocks : 0;
  s->scan_bytes = S.mk_size + S.h_size + S.stack_cap * sizeof(uintptr_t);
  hh_report_unmap(S.stack, S.stack_cap * sizeof(uintptr_t));
  hh_report_unmap(S.maps, S.maps_cap * sizeof(mapline));
  hh_report_unmap(S.file_words, MAX_FILE_WORDS * sizeof(uintptr_t));
  hh_report_unmap(S.h, S.h_size);
  hh_report_unmap(S.mk, S.mk_size); /* the pages' marks now lie outside any scan's memory */
  hh_table_free(&S.groups);
  hh_table_free(&S.leaders);
  if (!ok)
    return at_map_limit() ? "out of memory for the leak scan: the process has as many mappings as the kernel allows "
                            "(vm.max_map_count)"
                          : "out of memory for the leak scan (a limit on the address space?)";
  if (!maps_read)
    return S.maps_cut ? "more mappings than the leak scan has room for"
                      : "the process's mappings could not be read (/proc/self/maps)";
  return NULL;
}

void hh_scan_free(hh_scan *s) {
  hh_report_unmap(s->groups, s->groups_cap * sizeof(hh_group));
  s->groups = NULL;
}
