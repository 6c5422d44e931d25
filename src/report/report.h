/*
 * Interfaces between the files of src/report/ (the leak report).
 *
 *   maps.c     reads /proc/self/maps without allocating
 *   unwind.c   stack walking: learned unwind rules, keyed by return address
 *   site.c     allocation sites: capture, per-thread cache, site table
 *   stop.c     stop-the-world: park the other threads, save their registers
 *   scan.c     the conservative reachability scan and leak classification
 *   symbols.c  addresses to function, file:line, object+offset
 *   out.c      a non-allocating output buffer: text and JSON helpers
 *   report.c   the exit report, mem_lhihiks, fork and exit handling
 *
 * Memory: while the world is stopped another thread may hold any lock, the
 * meta allocator's included, so the scan takes its memory straight from the
 * OS (hh_report_map) and remembers it, so that it is not scanned as a root.
 */
#ifndef HH_REPORT_H
#define HH_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "internal.h"

/* stdio's list of streams (glibc exports it); weak, for static builds on
 * other C libraries. */
extern FILE *_IO_list_all __attribute__((weak));

/* ------------------------------------------------------------------ maps.c */

typedef struct hh_map_line {
  uintptr_t start, end;
  uint64_t offset;
  bool r, w, x, shared;
  unsigned long inode;
  char dev_major_is_zero; /* anonymous or tmpfs-like: "00:xx" */
  const char *path;       /* "" when anonymous; valid during the callback only */
} hh_map_line;

/* Calls fn for each line of /proc/self/maps; stops early when fn returns
 * false. Returns false when the file could not be read. Never allocates. */
typedef bool (*hh_map_fn)(const hh_map_line *m, void *arg);
bool hh_maps_each(hh_map_fn fn, void *arg);

/* ------------------------------------------------------------------ unwind.c */

#define HH_MAX_FRAMES 80 /* 64 frames asked for + leading runtime frames */
#define HH_MAX_WRAPPER_FRAMES 12

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
int hh_unwind(uintptr_t ret, uintptr_t frame, uintptr_t hi, int depth, uintptr_t *pcs,
              hh_read *reads, int max_reads, int *nreads);
/* False when libgcc's unwinder cannot work in this process (it would abort:
 * a static binary without .eh_frame_hdr). */
bool hh_unwinder_works(void);
/* True when the walk of this thread is already inside the unwinder (an
 * allocation made by the unwinder itself must not recurse into it). */
bool hh_unwind_busy(void);
/* libc, libstdc++, the dynamic loader...: frames that wrap malloc */
bool hh_runtime_object(const char *path);
/* The loaded object whose segments hold `pc`: its name ("" for the program)
 * and load base; false when none does. */
bool hh_object_of(uintptr_t pc, const char **name, uintptr_t *base);
void hh_unwind_atfork_prepare(void);
void hh_unwind_atfork_parent(void);
void hh_unwind_atfork_child(void);

/* ------------------------------------------------------------------ site.c */

/* The frames of site `id` (1..); NULL for 0 or an unknown id. Lock-free. */
const uintptr_t *hh_site_frames(uint32_t id, int *n);
uint32_t hh_site_count(void); /* ids are 1..count */
void hh_site_atfork_prepare(void);
void hh_site_atfork_parent(void);
void hh_site_atfork_child(void);

/* ------------------------------------------------------------------ memory */

void *hh_report_map(size_t size);          /* zeroed, from the OS; NULL on failure */
void hh_report_unmap(void *p, size_t size);
int hh_report_regions(uintptr_t (*out)[2], int max); /* [start, end) of each */

/* ------------------------------------------------------------------ stop.c */

typedef struct hh_thread_regs {
  int tid;
  uintptr_t sp;
  uintptr_t self;      /* pthread_self(): the glibc thread control block */
  uintptr_t gregs[23]; /* general registers at the stop */
} hh_thread_regs;

typedef struct hh_world {
  hh_thread_regs *threads; /* stopped threads */
  int count;
  int missed; /* threads that did not answer in time */
} hh_world;

/* Stops every other thread of the process (a signal whose handler saves the
 * registers and waits). Never waits more than about 200 ms in all. */
void hh_world_stop(hh_world *w);
void hh_world_resume(hh_world *w);

/* ------------------------------------------------------------------ scan.c */

enum hh_kind { HH_DEFINITE = 0, HH_INDIRECT = 1, HH_POSSIBLE = 2, HH_REACHABLE = 3, HH_KINDS = 4 };

typedef struct hh_group {
  uint32_t site;
  uint8_t kind;
  uint64_t bytes, blocks;
  uint64_t min_size, max_size; /* of its blocks */
} hh_group;

typedef struct hh_scan {
  /* inputs */
  uintptr_t own_sp;     /* the reporting thread's stack is scanned from here up */
  uintptr_t own_regs[8]; /* and these registers of its */
  int nown_regs;
  size_t static_tls;    /* bytes of static TLS and thread control block per thread */
  size_t min_size;      /* groups list blocks of at least this size */
  uintptr_t excl[8][2]; /* more memory that is not an anchor: libhahalloc's own data */
  int nexcl;
  uintptr_t relro[2];   /* a read-only anchor: the RELRO data of a static binary */
  /* results */
  hh_totals totals;
  uint64_t live_bytes, live_blocks;
  uint64_t kind_bytes[HH_KINDS], kind_blocks[HH_KINDS];
  uint64_t root_blocks[HH_ROOTS + 2], root_bytes[HH_ROOTS + 2]; /* per size class */
  hh_group *groups; /* largest first, in hh_report_map memory */
  size_t ngroups, groups_cap;
  int threads, threads_missed;
  uint64_t anchor_bytes; /* anchor memory read */
  uint64_t faults;       /* reads the fault guard caught */
  size_t scan_bytes;     /* the scan's own memory */
  bool failed;           /* out of memory: totals only */
} hh_scan;

/* Runs the whole scan: takes the allocator's locks (giving up at
 * `deadline_ns`, hh_now_ns), stops the world, marks, classifies, groups.
 * Returns NULL, or why no scan could be made. The caller holds no
 * allocator lock. */
const char *hh_scan_run(hh_scan *s, int64_t deadline_ns);
void hh_scan_free(hh_scan *s);

/* ------------------------------------------------------------------ symbols.c */

typedef struct hh_line {
  const char *function; /* demangled; NULL when unknown */
  const char *file;     /* NULL when unknown */
  int line;
} hh_line;

typedef struct hh_pcinfo {
  uintptr_t pc;
  const char *object; /* path of the loaded object, NULL when unknown */
  uintptr_t offset;   /* pc - the object's load address */
  int nlines;         /* > 1: inlined calls, innermost first */
  hh_line *lines;
} hh_pcinfo;

typedef struct hh_symbols hh_symbols;

/* Symbolizes return addresses, after the scan (the world runs again).
 * Function names and file:line come from `addr2line -f -C -i` (binutils)
 * run on each object, so any program built with -g gets them, no
 * -rdynamic needed; otherwise dladdr's exported symbol, otherwise
 * object+offset. All memory is meta memory. */
hh_symbols *hh_symbols_resolve(const uintptr_t *pcs, size_t n);
const hh_pcinfo *hh_symbols_get(const hh_symbols *s, uintptr_t pc);
void hh_symbols_free(hh_symbols *s);

/* ------------------------------------------------------------------ spawn.c */

/* Runs `path argv` (environment `envp`) so that the program cannot tell,
 * and returns its standard output in hh_report_map memory (*len bytes of
 * *cap mapped), or NULL when it failed or was killed at `deadline`
 * (hh_now_ns). */
char *hh_spawn_capture(const char *path, char *const *argv, char *const *envp, int64_t deadline,
                       size_t *len, size_t *cap);

/* ------------------------------------------------------------------ out.c */

/* Where the report goes (dest.c): a descriptor, and whether to close it. */
typedef struct hh_dest_t {
  int fd; /* -1: nowhere */
  bool close;
} hh_dest_t;
void hh_dest_init(void);              /* at start-up: the private duplicate of stderr */
hh_dest_t hh_dest_open(void);         /* the exit report's destination */
hh_dest_t hh_dest_open_stream(void);  /* the stream only (stderr or stdout as at start-up) */
void hh_dest_close(hh_dest_t d);
bool hh_dest_lock(hh_dest_t d);       /* flock, bounded; false: not locked */
void hh_dest_unlock(hh_dest_t d);
/* Writes all of buf: no SIGPIPE, errno kept, gives up after a long stall. */
void hh_dest_write(hh_dest_t d, const char *buf, size_t n);

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
void hh_out_write(hh_out *o, const char *s, size_t n);
/* printf subset: flags ' (thousands separators) and -, width, length l ll z,
 * conversions d i u x s c p %. No allocation. */
void hh_out_printf(hh_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hh_out_json_str(hh_out *o, const char *s); /* "..." escaped, or null */

#endif /* HH_REPORT_H */
