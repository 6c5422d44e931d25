/*
 * Interfaces between the files of src/report/ (the leak report).
 *
 *   maps.c     reads /proc/self/maps without allocating
 *   unwind.c   stack walking: learned unwind rules, keyed by return address
 *   site.c     allocation sites: capture, per-thread cache, site table
 *   table.c    the grow-only hash table of the site table, the unwind rules
 *              and the scan
 *   stop.c     stop-the-world: park the other threads, save their registers
 *   scan.c     the conservative reachability scan and leak classification
 *   symbols.c  addresses to function, file:line, object+offset
 *   out.c      a non-allocating output buffer: text and JSON helpers
 *   report.c   the exit report, mem_lhihiks, fork and exit handling
 *
 * Memory: while the world is stopped another thread may hold any lock, the
 * meta allocator's included, so the scan takes its memory straight from the
 * OS (hh_report_map) and remembers it, so that it is not scanned as an anchor.
 */
#ifndef HH_REPORT_H
#define HH_REPORT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "entry.h"
#include "internal.h"
#include "stats.h"

/* The first word of a /proc/self/status field ("Seccomp", "VmSwap") into
 * out; false when it cannot be read (report.c). */
bool hh_proc_status(const char *field, char *out, size_t size);

/* stdio's list of streams (glibc exports it); weak, for static builds on
 * other C libraries. */
extern FILE *_IO_list_all __attribute__((weak));

/* ------------------------------------------------------------------ maps.c */

typedef struct hh_map_line {
  uintptr_t start, end;
  bool r, w, x;     /* readable, writable, executable */
  bool shared;      /* MAP_SHARED: 's' in the permissions */
  const char *path; /* "" when anonymous; valid during the callback only */
} hh_map_line;

/* Calls fn for each line of /proc/self/maps; stops early when fn returns
 * false. Returns false when the file could not be read. Never allocates. */
typedef bool (*hh_map_fn)(const hh_map_line *m, void *arg);
bool hh_maps_each(hh_map_fn fn, void *arg);
/* The same for each mapping with pages in swap (smaps' Swap), its path
 * NULL; false when /proc/self/smaps could not be read. Costs a walk of the
 * process's page tables: asked only when it has pages in swap. */
bool hh_maps_each_swapped(hh_map_fn fn, void *arg);
void hh_maps_init(void);         /* at start-up, with the report on: the maps kept open for the exit */
void hh_maps_atfork_child(void); /* a fork child that makes no report: closes them */
/* The line of the mapping that holds `addr` (its path left NULL); false
 * when none does. */
bool hh_maps_find(uintptr_t addr, hh_map_line *out);

/* ------------------------------------------------------------------ unwind.c */

#define HH_MAX_FRAMES 80 /* 64 frames asked for + leading runtime and std:: frames */
#define HH_MAX_WRAPPER_FRAMES 16

/* One frame walk from a public entry point: the entry point's frame address
 * and return address. Fills pcs, returns their count. Every stack word read
 * is appended to `reads` (address, value) so that a cached result can be
 * checked by re-reading them; *nreads becomes -1 when more were read than
 * fit. `depth` counts frames after the leading runtime frames (libc,
 * libstdc++...), so a malloc reached through strdup or operator new still
 * records `depth` frames of the program. `hi` bounds the stack. */
typedef struct hh_read {
  uintptr_t addr, value;
} hh_read;
int hh_unwind(uintptr_t ret, uintptr_t frame, uintptr_t hi, int depth, uintptr_t *pcs, hh_read *reads, int max_reads,
              int *nreads);
/* libgcc's unwinder, called through here: the copy linked into
 * libhahalloc.so (or the program's, in a static link), or the program's own
 * libgcc_s.so.1 when it has one loaded before main (hh_unwind_prefer_loaded):
 * frame information registered at run time (a JIT's code, objects linked
 * without .eh_frame_hdr) is listed in that library, which our copy does not
 * see. A context is read with the accessors of the unwinder that made it. */
#include <unwind.h>
typedef struct hh_unwinder {
  __typeof__(&_Unwind_Backtrace) backtrace;
  __typeof__(&_Unwind_GetIP) get_ip;
  __typeof__(&_Unwind_GetIPInfo) get_ip_info;
  __typeof__(&_Unwind_GetCFA) get_cfa;
  __typeof__(&_Unwind_GetGR) get_gr;
  const void *(*find_fde)(void *pc, void *bases);
} hh_unwinder;
extern hh_unwinder hh_uw;
void hh_unwind_prefer_loaded(void); /* a constructor of the shared library's: dlopen, so before main */
/* False when libgcc's unwinder cannot work in this process (it would abort:
 * a static binary without .eh_frame_hdr). */
bool hh_unwinder_works(void);
/* True when the walk of this thread is already inside the unwinder (an
 * allocation made by the unwinder itself must not recurse into it). */
bool hh_unwind_busy(void);
/* This thread's busy flag (initial-exec TLS: at the same offset from every
 * thread's pointer), for trace.c to read another thread's. */
int *hh_unwind_busy_flag(void);
/* libc, libstdc++, the dynamic loader...: frames that wrap malloc */
bool hh_runtime_object(const char *path);
/* The loaded object whose segments hold `pc`: its path (for the program,
 * the one /proc/self/exe gave at start-up, "" if none) and load base; false
 * when none does. */
bool hh_object_of(uintptr_t pc, const char **name, uintptr_t *base);
/* The same for `n` addresses in one pass over the loaded objects (one
 * take of the loader's lock, which threads in dlopen/dlclose loops can
 * keep from a waiter for a long time: one take per address made such a
 * program's exit report take seconds). names[i] is NULL when no object
 * holds pcs[i]. */
void hh_objects_of(const uintptr_t *pcs, size_t n, const char **names, uintptr_t *bases);
void hh_objects_init(void);                  /* start-up, when a report may be made */
bool hh_object_is_program(const char *name); /* the name hh_objects_of gives the program */
/* The return addresses of this thread's stack from the first frame outside
 * libhahalloc, at most max; 0 when it cannot be walked. When hahalloc is
 * linked into the program its frames cannot be told by their object: the
 * walk starts at the innermost frame and *ours_left is set. Uses libgcc's
 * unwinder: for errors, not for every allocation. */
int hh_backtrace(uintptr_t *pcs, int max, bool *ours_left);
void hh_unwind_atfork_prepare(void);
void hh_unwind_atfork_parent(void);
void hh_unwind_atfork_child(void);

/* ------------------------------------------------------------------ elf.c */

#include <link.h>

/* An ELF file's function symbols (elf.c), mapped read-only. */
typedef struct hh_elf {
  uint8_t *map; /* the file, read-only */
  size_t size;
  int fd;
  ElfW(Shdr) * shdrs; /* read, not mapped */
  size_t nshdrs, shdrs_size, shstrndx;
  const ElfW(Sym) * syms;
  size_t nsyms;
  const char *strs;
  size_t strsize;
} hh_elf;
bool hh_elf_open(const char *path, hh_elf *e); /* false: no symbols (or secure mode) */
void hh_elf_close(hh_elf *e);
/* Whether addr2line can find a line table for the file at `path`: its own
 * .debug_line, or a debug file by build id or .gnu_debuglink (true when it
 * cannot tell). */
bool hh_elf_has_lines(const char *path);
/* Which function covers an address, asked for many at once: one pass over
 * the symbol table names them all. */
typedef struct hh_elf_query {
  uintptr_t vaddr;   /* a link-time address: pc less the object's load base */
  size_t at;         /* the caller's */
  uint32_t name_off; /* the function's name, if score >= 0 */
  int score;         /* of the name among the function's aliases; -1: no function covers vaddr */
} hh_elf_query;
/* Fills q[0..n) (sorted by vaddr) in one pass over e's symbols. */
void hh_elf_functions(const hh_elf *e, hh_elf_query *q, size_t n);
/* The length of the linkage name of q's function, 0 when no function
 * covers q's address; the name goes into buf, cut to size - 1 bytes when
 * it is longer. Names are read from the file, not touched in its mapping
 * (elf.c's read_at says why). */
size_t hh_elf_name(const hh_elf *e, const hh_elf_query *q, char *buf, size_t size);
/* `pc` lies in a function of the C++ standard library (std::, __gnu_cxx::)
 * compiled into a loaded object: a container's, an allocator's. */
bool hh_pc_in_std(uintptr_t pc);
void hh_elf_atfork_child(void);

/* ------------------------------------------------------------------ site.c */

/* A site's first frame is its entry point (enum hh_entry) + 1, never a
 * real pc; the return addresses the walk found follow. */
#define HH_ENTRY_PCS (HH_ENTRIES + 1)
static inline bool hh_is_entry_pc(uintptr_t pc) { return pc < HH_ENTRY_PCS; }
/* The frames of site `id` (1..); NULL for 0 or an unknown id. Lock-free. */
const uintptr_t *hh_site_frames(uint32_t id, int *n);
void hh_site_atfork_prepare(void);
void hh_site_atfork_parent(void);
void hh_site_atfork_child(void);

/* ------------------------------------------------------------------ memory */

void *hh_report_map(size_t size); /* zeroed, from the OS; NULL on failure */
void hh_report_unmap(void *p, size_t size);
int hh_report_regions(uintptr_t (*out)[2], int max); /* [start, end) of each */
/* Memory handed out in pieces and given back at once, from hh_report_map. */
typedef struct hh_arena {
  void *chunks;
} hh_arena;
void *hh_arena_alloc(hh_arena *a, size_t size);               /* NULL: out of memory */
char *hh_arena_strndup(hh_arena *a, const char *s, size_t n); /* n bytes of s, and a NUL */
void hh_arena_free(hh_arena *a);

/* ------------------------------------------------------------------ sorting */

/* Sorts the n elements of type T at `a` so that before(&x, &y) holds for
 * no x after y: a shell sort (Knuth's gaps 1, 4, 13...), in place, no
 * allocation; the report's sets are at most a few hundred thousand. */
#define HH_SORT(T, a, n, before)                             \
  do {                                                       \
    size_t gap_ = 1;                                         \
    while (gap_ < (n) / 3) gap_ = gap_ * 3 + 1;              \
    for (; gap_ > 0; gap_ /= 3)                              \
      for (size_t i_ = gap_; i_ < (n); i_++) {               \
        T v_ = (a)[i_];                                      \
        size_t j_ = i_;                                      \
        while (j_ >= gap_ && before(&v_, &(a)[j_ - gap_])) { \
          (a)[j_] = (a)[j_ - gap_];                          \
          j_ -= gap_;                                        \
        }                                                    \
        (a)[j_] = v_;                                        \
      }                                                      \
  } while (0)
static inline bool hh_word_before(const uintptr_t *a, const uintptr_t *b) { return *a < *b; }

/* ------------------------------------------------------------------ table.c */

/* One step of the report's hash: mixes the word v into h. */
static inline uint64_t hh_hash_step(uint64_t h, uint64_t v) {
  h ^= v;
  h *= 0xff51afd7ed558ccdULL;
  return h ^ h >> 32;
}

/* A grow-only hash table of fixed-size entries (table.c says how readers
 * and the writer share it). An entry starts with its key, a nonzero word;
 * the caller's value follows. Entries are never removed. Set `entry`,
 * `first_slots` (a power of two) and `report_memory` (memory from
 * hh_report_map, old tables unmapped as it grows; else meta memory, old
 * tables kept for the readers that may still be in them); the rest zero. */
typedef struct hh_table_mem {
  size_t mask, count;
  uint64_t slots[]; /* (mask + 1) entries of `entry` bytes */
} hh_table_mem;
typedef struct hh_table {
  _Atomic(hh_table_mem *) mem;
  size_t entry; /* bytes per entry, a multiple of 8, key included */
  size_t first_slots;
  bool report_memory;
} hh_table;

static inline uint64_t hh_table_hash(uint64_t key) { return hh_hash_step(0x9e3779b97f4a7c15ULL, key); }
static inline _Atomic(uint64_t) *hh_table_slot_key(const hh_table *t, hh_table_mem *m, size_t i) {
  return (_Atomic(uint64_t) *)((char *)m->slots + i * t->entry);
}
/* The entry of `key` for which same(entry, arg) holds (any entry of `key`
 * when `same` is NULL), or NULL. Lock-free. */
static inline void *hh_table_find(const hh_table *t, uint64_t key, bool (*same)(const void *entry, const void *arg),
                                  const void *arg) {
  hh_table_mem *m = atomic_load_explicit(&t->mem, memory_order_acquire);
  if (m == NULL) return NULL;
  for (size_t i = hh_table_hash(key) & m->mask;; i = (i + 1) & m->mask) {
    _Atomic(uint64_t) *slot = hh_table_slot_key(t, m, i);
    uint64_t k = atomic_load_explicit(slot, memory_order_acquire);
    if (k == 0) return NULL;
    if (k == key && (same == NULL || same(slot, arg))) return (uint64_t *)slot;
  }
}
/* Adds a copy of `entry` (its key first), even if the key is there
 * already; returns it, or NULL when out of memory. Writers one at a time. */
void *hh_table_add(hh_table *t, const void *entry);
size_t hh_table_count(const hh_table *t);
size_t hh_table_slots(const hh_table *t);
void *hh_table_at(const hh_table *t, size_t i); /* the entry in slot i, or NULL */
void hh_table_free(hh_table *t);                /* report memory only */

/* ------------------------------------------------------------------ stop.c */

typedef struct hh_thread_regs {
  int tid;
  uintptr_t sp;
  uintptr_t self;      /* pthread_self(): the glibc thread control block */
  bool in_call;        /* stopped at a system call: its red zone is not read (live_sp) */
  uintptr_t gregs[23]; /* general registers at the stop */
} hh_thread_regs;

/* A thread asleep in a system call that was not stopped, from syscall(5):
 * its stack pointer (its stack is read whole) and the call's arguments,
 * anchors (a buffer it reads into is often a block only they hold). */
typedef struct hh_asleep {
  uintptr_t sp;
  uintptr_t args[6];
} hh_asleep;

typedef struct hh_world {
  hh_thread_regs *threads; /* stopped threads */
  int count;
  int missed; /* threads that did not answer in time */
  /* Of those: the ones in user mode as the stop ended (not in a system
   * call), running with registers no one has read; and the ones asleep in
   * a system call. */
  int *runners;
  int nrunners;
  hh_asleep *asleep;
  int nasleep;
} hh_world;

/* trace.c: at exit, the threads `tids` (n) that the stop signal could not
 * stop, stopped with ptrace and held until hh_trace_resume (those in
 * their own code) or until the time it or hh_trace_release_by gives (those
 * in a system call); their records
 * go to `out` (n zeroed slots), and the answer is how many. `text_lo` to
 * `text_hi`: the allocator's code; `busy_off`: hh_unwind_busy_flag's offset
 * from a thread's pointer; `libc_lo` to `libc_hi`: the C library's code. */
int hh_trace_stop(const int *tids, int n, hh_thread_regs *out, uintptr_t text_lo, uintptr_t text_hi, intptr_t busy_off,
                  uintptr_t libc_lo, uintptr_t libc_hi);
void hh_trace_resume(int64_t hold_until);
void hh_trace_release_by(int64_t at);
/* The signal set `field` (SigBlk, SigPnd, ShdPnd) of a status(5) text;
 * `*found` says whether it was there. Pure: the tracer calls it. */
uint64_t hh_status_mask(const char *status, const char *field, bool *found);
/* status(5), open at fd, read with `rd` a piece at a time into `buf`
 * (HH_STATUS_BUF bytes) until the line of `field` is whole. The Groups line
 * comes before the signal, capability and seccomp lines: with 300
 * supplementary groups SigBlk lay past the 2,048 bytes once read (a
 * signalfd thread blocking every signal was sent the stop signal at each
 * leak check: helper-85), with 2,100 past 16 KiB (helper-86), and with
 * 1,100 Seccomp past 8 KiB (taken for an inherited filter: no thread could
 * be traced, and every reused big range was cleared by memset). The last
 * HH_STATUS_KEEP bytes of a piece are kept before the next, so that the
 * two lines before SigBlk, SigPnd and ShdPnd, are in `buf` with it, for
 * hh_status_mask. `*state` (unless NULL): the State letter, or 0. False
 * when the field has no line or the read failed. */
enum { HH_STATUS_PIECE = 4096, HH_STATUS_KEEP = 256, HH_STATUS_BUF = HH_STATUS_KEEP + HH_STATUS_PIECE + 1 };
bool hh_status_read(int fd, ssize_t (*rd)(int, void *, size_t), char *buf, const char *field, char *state);
/* Whether system call `nr` (first argument `arg1`), ended by a stop with
 * EINTR, may be made again as if it had not been (stop.c). */
bool hh_call_restartable(long nr, unsigned long arg1);

/* Stops every other thread of the process (a signal whose handler saves the
 * registers and waits). Waits about 200 ms, and up to WAIT_CAP_NS for
 * threads that can still answer (runnable on a busy machine). At exit
 * (`at_exit`) threads asleep in a call a signal would end early are stopped
 * too, and stay stopped until the process ends. */
void hh_world_stop(hh_world *w, bool at_exit);
/* What hh_world_stop needs from the loader (the text of libc and of this
 * library, through dl_iterate_phdr), found once, before the scan takes the
 * allocator's locks: the loader frees and allocates with its own lock held
 * (dlclose), so that lock is taken before ours, never after. */
void hh_world_prepare(void);
void hh_world_resume(void);
/* The exit report is out: threads kept stopped asleep may go after a
 * short grace (stop.c). */
void hh_world_exit_done(void);
/* Whether `sig`, returned to the program by a sigwait-family call with
 * `info`, is a stop signal the stop sent: the thread then stops here as in
 * the handler, and the caller waits again (src/shared/sigwait.c). */
bool hh_stop_waited(int sig, const siginfo_t *info);
/* Between the two: the other threads may be parked holding any lock (the
 * loader's too), so nothing may walk a stack or spawn a process. */
bool hh_world_is_stopped(void);

/* ------------------------------------------------------------------ scan.c */

/* valgrind's leak kinds (their names: hh_kind_names in optable.h) */
enum hh_kind { HH_DEFINITE = 0, HH_INDIRECT = 1, HH_POSSIBLE = 2, HH_REACHABLE = 3, HH_KINDS = 4 };

/* A site's blocks of one kind. Blocks below the report's min_size are
 * grouped apart (listed = false): counted, matched against suppressions,
 * not listed. */
typedef struct hh_group {
  uint32_t site;
  uint8_t kind;
  bool listed;
  bool suppressed; /* by a suppression (report.c) */
  uint64_t bytes, blocks;
  uint64_t min_size, max_size;              /* of its blocks */
  uint64_t indirect_bytes, indirect_blocks; /* definite: what they lead (memcheck's cliques) */
} hh_group;

/* A live block whose guard canary (guard.c) the scan found overwritten:
 * read while the world was stopped, told once it runs again. */
typedef struct hh_overrun {
  uintptr_t start;
  uint64_t size;
  uint32_t site;
  uint32_t at;   /* bytes past the end of the first damaged one */
  uint8_t value; /* what it reads */
} hh_overrun;

typedef struct hh_scan {
  /* inputs */
  uintptr_t own_sp;      /* the reporting thread's stack is scanned from here up */
  uintptr_t own_regs[8]; /* and these registers of its */
  int nown_regs;
  size_t static_tls;                  /* bytes of static TLS and thread control block per thread */
  size_t pd_list, pd_tid, pd_size;    /* glibc's struct pthread: the offsets of its list_t and tid, and its size, from
                                      the descriptors glibc keeps for libthread_db; 0 when unknown (the tid's: or
                                      when it does not read the main thread's id) */
  uintptr_t stacks_used, stacks_user; /* the heads of the loader's rings of stacks in use and of the program's
                                         (the same descriptors), 0 when unknown */
  size_t min_size;                    /* groups list blocks of at least this size */
  uintptr_t excl[8][2];               /* more memory that is not an anchor: libhahalloc's own data */
  int nexcl;
  uintptr_t relro[2]; /* a read-only anchor: the RELRO data of a static binary */
  /* results */
  hh_totals totals;
  uint64_t live_bytes, live_blocks;
  uint64_t kind_bytes[HH_KINDS], kind_blocks[HH_KINDS];
  uint64_t ignored_bytes, ignored_blocks;                       /* hahalloc_ignore */
  uint64_t root_blocks[HH_ROOTS + 2], root_bytes[HH_ROOTS + 2]; /* per size class */
  hh_group *groups;                                             /* largest first, in hh_report_map memory */
  size_t ngroups, groups_cap;
  int threads, threads_missed;
  uint64_t runner_blocks, runner_bytes; /* of heaps whose threads were not stopped and ran: taken for reachable */
  bool at_exit;             /* the exit report: threads asleep are stopped too, never woken (hh_world_stop) */
  uint64_t anchor_bytes;    /* anchor memory read */
  uint64_t faults;          /* reads the fault guard caught */
  uint64_t overrun;         /* HAHALLOC_GUARD: live blocks whose canary was overwritten */
  hh_overrun overrun_at[8]; /* the first of them */
  size_t scan_bytes;        /* the scan's own memory */
  bool failed;              /* out of memory for the loss records: some are not listed */
} hh_scan;

/* Runs the whole scan: takes the allocator's locks (giving up at
 * `deadline_ns`, hh_now_ns), stops the world, marks, classifies, groups.
 * Returns NULL, or why no scan could be made. The caller holds no
 * allocator lock. */
const char *hh_scan_run(hh_scan *s, int64_t deadline_ns);
void hh_scan_free(hh_scan *s);

/* ------------------------------------------------------------------ misuse.c */

/* HAHALLOC_GUARD, after the exit scan (the world runs again): a live block
 * whose canary the scan found overwritten, told on stderr with its
 * allocation's stack. */
void hh_misuse_overrun_at_exit(const hh_overrun *r);

/* ------------------------------------------------------------------ symbols.c */

typedef struct hh_line {
  const char *function; /* demangled; NULL when unknown */
  const char *mangled;  /* the linkage name (as suppressions name it); NULL when unknown */
  const char *file;     /* NULL when unknown */
  int line;             /* > 0 when file is known */
} hh_line;

typedef struct hh_pcinfo {
  uintptr_t pc;
  const char *object; /* path of the loaded object, NULL when unknown */
  const char *file;   /* the file to read its symbols and lines from, or NULL: not its path (symbols.c) */
  uintptr_t offset;   /* pc - the object's load address */
  int nlines;         /* > 1: inlined calls, innermost first */
  hh_line *lines;
} hh_pcinfo;

typedef struct hh_symbols hh_symbols;

/* Symbolizes return addresses, after the scan (the world runs again).
 * Every address gets its object and the function whose symbol covers it;
 * those with lines[i] set (or all, when lines is NULL) also get file:line
 * and inlined frames from `addr2line -f -i` (binutils) run on each object,
 * so any program built with -g gets them, no -rdynamic needed. Entry-point
 * pcs (hh_is_entry_pc) are left out. Without `spawn`, no helper runs
 * (addr2line, c++filt): names from the symbol tables only, mangled. Memory
 * from hh_report_map. */
hh_symbols *hh_symbols_resolve(const uintptr_t *pcs, const uint8_t *lines, size_t n, bool spawn);
const hh_pcinfo *hh_symbols_get(const hh_symbols *s, uintptr_t pc);
void hh_symbols_free(hh_symbols *s);

/* ------------------------------------------------------------------ frames.c */

/* One frame of a stack as the report shows it. */
typedef struct hh_frame {
  uintptr_t pc;         /* the address shown: the return address less one (the entry point's for the first) */
  const char *function; /* demangled; NULL: unknown ("???") */
  const char *mangled;  /* linkage name; NULL: unknown */
  const char *file;     /* NULL: unknown */
  int line;             /* > 0 with file */
  const char *object;   /* the loaded object's path; NULL: unknown */
  uintptr_t offset;     /* pc less the object's load base */
} hh_frame;
#define HH_MAX_SHOWN 160
/* The frames of `site`: its entry point, then its frames with inlined calls
 * expanded, down to main. Returns their count (at most max). */
int hh_site_display(const hh_symbols *sym, uint32_t site, hh_frame *out, int max);
/* The same for the n return addresses at pcs (entry-point pcs included). */
int hh_pcs_display(const hh_symbols *sym, const uintptr_t *pcs, int n, hh_frame *out, int max);
bool hh_frames_equal(const hh_frame *a, int na, const hh_frame *b, int nb);
/* The frames as the text report writes them, each line after `prefix`
 * ("==PID==", or "hahalloc:" under an error) (write.c). */
struct hh_out;
void hh_write_frames(struct hh_out *o, const char *prefix, const hh_frame *f, int n);
const char *hh_basename(const char *path);

/* ------------------------------------------------------------------ spawn.c */

/* Runs `path argv` (environment `envp`) so that the program cannot tell,
 * and returns its standard output in hh_report_map memory (*len bytes of
 * *cap mapped), or NULL when it failed or was killed at `deadline`
 * (hh_now_ns). */
char *hh_spawn_capture(const char *path, char *const *argv, char *const *envp, int64_t deadline, size_t *len,
                       size_t *cap);

/* ------------------------------------------------------------------ out.c */

/* Where the report goes (dest.c): a descriptor, and whether to close it. */
typedef struct hh_dest_t {
  int fd; /* -1: nowhere */
  bool close;
} hh_dest_t;
void hh_dest_init(void);                   /* at start-up: the private duplicate of stderr */
void hh_dest_atfork_child(bool sandboxed); /* a fork child that makes no report: drops it */
int hh_high_dup(int fd);                   /* a close-on-exec duplicate near the top of the table, or -1 */
bool hh_dest_available(void);              /* a report would have somewhere to go */
bool hh_dest_to_stream(void);              /* the report goes to the program's stream, not to a file */
hh_dest_t hh_dest_open(void);              /* the exit report's destination */
hh_dest_t hh_dest_open_stream(void);       /* the stream only (stderr or stdout as at start-up) */
void hh_dest_close(hh_dest_t d);
bool hh_dest_lock(hh_dest_t d); /* flock, bounded; false: not locked */
void hh_dest_unlock(hh_dest_t d);
/* Writes all of buf: no SIGPIPE, errno kept, gives up after a long stall. */
void hh_dest_write(hh_dest_t d, const char *buf, size_t n);

/* The descriptors kept open for the report, out of the program's way
 * (kept.c; the program's calls: src/shared/fdcalls.c). */
bool hh_report_process(void); /* this is the process that reports (report.c), not a vfork child in its memory */
void hh_fd_keep(int *fd, const dev_t *dev, const ino_t *ino); /* at start-up: *fd is one, while it names dev/ino */
bool hh_fd_kept(int fd);                                      /* fd is one of ours, hidden */
int hh_fd_kept_between(int lo, int hi);                       /* one of ours in [lo, hi), or -1 */
bool hh_fd_make_room(int fd);                     /* ours at fd moved elsewhere (or dropped); false: none was there */
void hh_fd_forget(unsigned first, unsigned last); /* the program closes these: ours among them are gone */
int hh_fcntl_raw(int fd, int cmd, long arg);      /* the kernel's fcntl, for our own descriptors */
struct stat;
int hh_fstat_raw(int fd, struct stat *st); /* the kernel's fstat, the same */

/* Report text is built in memory from the OS and written in large pieces,
 * under the destination's lock, so that it is not interleaved with other
 * reports and never calls malloc. */
typedef struct hh_out {
  hh_dest_t dest;
  char *buf;
  size_t len, cap;
  bool locked;
} hh_out;

void hh_out_open(hh_out *o, hh_dest_t dest);
void hh_out_close(hh_out *o); /* flushes */
/* The printf of format.h, into the output. */
void hh_out_printf(hh_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hh_out_json_str(hh_out *o, const char *s); /* "..." escaped, or null */

/* A memory-only output (no destination), copied into another with
 * hh_out_append. */
void hh_out_open_mem(hh_out *o);
void hh_out_append(hh_out *o, const hh_out *from);
void hh_out_xml_str(hh_out *o, const char *s);              /* escaped for XML text, nothing for NULL */
void hh_out_xml_strn(hh_out *o, const char *s, size_t len); /* the first len bytes of s, escaped */

/* ------------------------------------------------------------------ supp.c */

/* A suppression (valgrind's format or LeakSanitizer's leak: line) and what
 * it suppressed in this report. */
typedef struct hh_supp {
  const char *name, *origin;
  unsigned kinds; /* match-leak-kinds: bits 1 << enum hh_kind */
  int nframes;
  void *frames;     /* valgrind's frames (supp.c) */
  const char *lsan; /* LeakSanitizer's pattern, or NULL */
  uint64_t count, bytes, blocks;
  uint64_t errors; /* of them, loss records of the kinds that are errors (--errors-for-leak-kinds) */
} hh_supp;
/* The built-in set and the files of hh_opt.supp_files (none in secure
 * mode), read now; problems are written to `errs` (may be NULL). Valid
 * until hh_supp_free. */
size_t hh_supp_load(hh_supp **out, hh_out *errs);
void hh_supp_free(void);
bool hh_supp_user(void); /* suppression files are in use */
/* The first suppression matching a stack of `kind`, or NULL. */
hh_supp *hh_supp_match(hh_supp *v, size_t n, unsigned kind, const hh_frame *fr, int nf);
/* Writes a suppression for this stack, as valgrind's --gen-suppressions. */
void hh_supp_write(hh_out *o, unsigned kind, const hh_frame *fr, int nf);

/* ------------------------------------------------------------------ profile.c */

#define HH_PROFILE_TOP 10
typedef struct hh_profile_entry {
  uint32_t site;
  int64_t value;  /* what the list is ordered by */
  int64_t blocks; /* at the peak */
  uint64_t allocs, bytes;
} hh_profile_entry;
typedef struct hh_profile_view {
  hh_profile_entry *peak; /* the sites holding the most at the peak, most first */
  size_t npeak;
  hh_profile_entry *total; /* the sites that allocated the most bytes */
  size_t ntotal;
  uint64_t peak_bytes; /* in use when the sites' shares were copied (within 1% of the peak) */
  uint64_t peak_max;   /* the most requested bytes ever in use */
  size_t sites;
  const hh_symbols *sym;
} hh_profile_view;
/* Picks the sites to show (every site with bytes at the peak when
 * every_site, for the collapsed stacks). */
bool hh_profile_view_build(hh_profile_view *p, hh_arena *a, bool every_site);

/* ------------------------------------------------------------------ write.c */

/* A loss record: one stack and one kind, with its blocks. */
typedef struct hh_record {
  hh_group g;
  const hh_frame *frames;
  int nframes;
  uint32_t number; /* "loss record N of M" */
} hh_record;

/* What the writers show. */
typedef struct hh_view {
  const hh_scan *s;
  bool at_exit;   /* the exit report, not mem_lhihiks */
  long ms;        /* the scan's time */
  hh_record *rec; /* kinds in order, largest first */
  size_t nrec, numbered;
  unsigned show_kinds;
  int leak_check;
  uint64_t kind_bytes[HH_KINDS], kind_blocks[HH_KINDS]; /* less what is suppressed */
  uint64_t supp_bytes, supp_blocks;
  const hh_supp *supps;
  size_t nsupps;
  const hh_profile_view *profile; /* --profile, or NULL */
  hh_arena *arena;                /* for the writers' own tables */
} hh_view;

/* Collapsed stacks: one line per stack (the frames given, or those of each
 * site), outermost frame first, then its bytes; stacks that read the same
 * are summed. */
void hh_collapsed_write(hh_out *o, hh_arena *a, const hh_symbols *sym, const uint32_t *site, const uint64_t *bytes,
                        const hh_frame *const *frames, const int *nframes, size_t n);
void hh_profile_write_text(hh_out *o, int pid, const hh_view *v);
void hh_profile_write_json(hh_out *o, const hh_view *v);
void hh_profile_write_collapsed(hh_out *o, const hh_view *v);
void hh_write_text(hh_out *o, const hh_view *v);
void hh_write_json(hh_out *o, const hh_view *v);
void hh_write_xml(hh_out *o, const hh_view *v);
void hh_write_collapsed(hh_out *o, const hh_view *v);

#endif /* HH_REPORT_H */
