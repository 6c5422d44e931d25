/*
 * The exit report and mem_lhihiks: runs the scan, symbolizes the stacks of
 * the groups it found, and writes valgrind-like text or the JSON schema of
 * hahalloc(1).
 *
 * When the exit report runs. valgrind scans at the very end of the process,
 * after every destructor and stdio's cleanup; so do we, as near as a
 * library can: the report runs at the later of two points, whichever comes
 * second:
 * - an atexit handler registered at start-up. A shared library starts
 *   before the program's __libc_start_main registers the loader's _dl_fini,
 *   so this handler runs after _dl_fini, that is after every library's
 *   destructors (GnuTLS frees its tables there);
 * - an ELF destructor of the lowest priority. In a static binary the fini
 *   array runs after the atexit handlers; ours runs last of the destructors.
 * Only stdio's own cleanup comes after; the scan accounts for what it will
 * change (scan.c). A program that ends by _exit (dash, forked children)
 * reports from our _exit; death by a signal makes no report.
 *
 * The report never harms the program: every lock it takes is bounded (a
 * thread that a signal interrupted inside the allocator and that then calls
 * exit() gets a one-line explanation instead of a hang), it writes only to
 * its own destination (dest.c), and it keeps errno.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <unwind.h>

#include "hahalloc.h"
#include "format.h"
#include "hooks.h"
#include "lock.h"
#include "lookup.h"
#include "options.h"
#include "os.h"
#include "report.h"

static hh_lock report_lock = HH_LOCK_INIT;
/* Forks waiting for report_lock. The lock is not fair: a thread that ran
 * leak checks back to back took it again each time before a fork's spin
 * did, and the program forked 7 times in 10 s instead of 487 (helper-37).
 * A report made on demand lets such a fork go first. */
static _Atomic(int) forks_waiting;

/* report_lock for a report made on demand, until `deadline`, after any
 * fork that waits for it. */
static bool report_lock_on_demand(int64_t deadline) {
  while (atomic_load(&forks_waiting) > 0 && hh_now_ns() < deadline) hh_yield();
  return hh_lock_acquire_until(&report_lock, deadline);
}
static _Atomic(int) exit_reported;  /* 0, 1 while the exit report is made, 2 after */
static _Atomic(long) exit_reporter; /* the thread making it */
static int report_pid;              /* the process that reports: not a vfork child sharing our memory */
#define EXIT_WAIT_NS (60 * 1000 * 1000 * 1000L)

/* The wait of a thread that must not end the process yet: 2 ms naps. */
static void nap(void) {
  struct timespec ts = {0, 2000000};
  nanosleep(&ts, NULL);
}

/* Another thread ends the process (exit, quick_exit) while this one makes
 * the exit report: it waits for the report, as its exit_group would end it
 * half written (a CI run would pass with a leak). Bounded: the report's own
 * steps have deadlines, and this one too. */
static void wait_for_exit_report(void) {
  if (atomic_load(&exit_reported) != 1 || atomic_load(&exit_reporter) == (long)syscall(SYS_gettid)) return;
  int64_t until = hh_now_ns() + EXIT_WAIT_NS;
  while (atomic_load(&exit_reported) == 1 && hh_now_ns() < until) nap();
}

/* exit() called by a second thread while a first is in it: glibc (before
 * 2.41) runs both, each taking exit handlers off one list, and the one
 * that does not run ours ends the process as soon as it is done, in the
 * middle of the report the other makes (no report at all, and the
 * program's status: a CI run would pass with a leak). With the report on,
 * the second waits for the first to end the process, as glibc 2.41's exit
 * does. Bounded: while the first is still in the program's own exit
 * handlers (no report started), HANDLERS_WAIT_NS, since one of them may
 * be joining the thread that waits (the second then goes on, as glibc
 * before 2.41 would); once the report has started, EXIT_WAIT_NS. A vfork
 * child (other pid, its parent's memory) takes no part. main's return goes
 * to glibc's exit without this call: a thread's exit racing it waits only
 * for a report already started (wait_for_exit_report).
 *
 * Cancellation is off from here on: the exit's naps and the report's file
 * calls are cancellation points, and a thread with a cancel pending would
 * be cancelled inside exit() instead of ending the process. */
#define HANDLERS_WAIT_NS (2 * 1000 * 1000 * 1000L)
static _Atomic(long) exit_caller;
void hh_report_exit_gate(void) {
  if (!hh_opt.report || report_pid == 0 || hh_sandboxed() || (int)getpid() != report_pid) return;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
  long me = (long)syscall(SYS_gettid), first = 0;
  if (!atomic_compare_exchange_strong(&exit_caller, &first, me) && first != me) {
    int64_t start = hh_now_ns(), until = start + EXIT_WAIT_NS;
    for (int64_t now = start; now < until; now = hh_now_ns()) {
      if (atomic_load(&exit_reported) == 0 && now - start > HANDLERS_WAIT_NS) break;
      nap();
    }
  }
  wait_for_exit_report();
}

/* Size of the static TLS block glibc puts at the top of each thread stack
 * (the scan keeps it alive in the stacks of exited threads). */
static size_t static_tls_size(void) {
  static size_t size;
  static bool done;
  if (!done) {
    void *f = dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    if (f) {
      size_t align = 0;
      ((void (*)(size_t *, size_t *))f)(&size, &align);
    }
    done = true;
  }
  return size;
}

/* Where glibc's struct pthread keeps its list_t and tid, and its size: the
 * field descriptors glibc exports for libthread_db (three 32-bit words: the
 * field's size in bits, its count, its offset). 0 when not there (a static
 * binary, another C library). */
static uint32_t thread_db_word(const char *name, int word) {
  const uint32_t *d = dlsym(RTLD_DEFAULT, name);
  return d != NULL ? d[word] : 0;
}

size_t hh_pthread_tid_offset;

static struct {
  size_t list, size; /* the tid's offset: hh_pthread_tid_offset */
  uintptr_t used, user;
} pd_layout;

/* Read once, in a constructor: dlsym takes the loader's lock, which a
 * thread stuck in dlopen at exit would hold for ever. */
__attribute__((constructor)) static void pthread_layout_init(void) {
  (void)static_tls_size();
  if (thread_db_word("_thread_db_pthread_list", 0) == 2 * 8 * sizeof(void *))
    pd_layout.list = thread_db_word("_thread_db_pthread_list", 2);
  pd_layout.size = thread_db_word("_thread_db_sizeof_pthread", 0);
  /* the tid's offset, trusted (by the heaps and the scan) once it reads
   * this thread's id right */
  size_t tid = thread_db_word("_thread_db_pthread_tid", 0) == 32 ? thread_db_word("_thread_db_pthread_tid", 2) : 0;
  if (tid != 0 && tid + sizeof(int) <= pd_layout.size &&
      *(const int *)((const char *)pthread_self() + tid) == (int)syscall(SYS_gettid))
    hh_pthread_tid_offset = tid;
  uintptr_t rtld = (uintptr_t)dlsym(RTLD_DEFAULT, "_rtld_global");
  if (rtld != 0 && thread_db_word("_thread_db_rtld_global__dl_stack_used", 0) == 2 * 8 * sizeof(void *) &&
      thread_db_word("_thread_db_rtld_global__dl_stack_user", 0) == 2 * 8 * sizeof(void *)) {
    pd_layout.used = rtld + thread_db_word("_thread_db_rtld_global__dl_stack_used", 2);
    pd_layout.user = rtld + thread_db_word("_thread_db_rtld_global__dl_stack_user", 2);
  }
}

static void pthread_layout(hh_scan *s) {
  s->pd_list = pd_layout.list;
  s->pd_tid = hh_pthread_tid_offset;
  s->pd_size = pd_layout.size;
  s->stacks_used = pd_layout.used;
  s->stacks_user = pd_layout.user;
}

/* libhahalloc's own writable segments, when it is a shared object: its
 * tables hold no pointer of the program's. (Linked statically, its data is
 * the program's: only the scan's own state is left out then.) The chunk
 * table, large and mapped apart, is left out in both cases, after. */
static int own_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  hh_scan *s = arg;
  uintptr_t me = (uintptr_t)&own_cb;
  bool mine = false;
  for (int i = 0; i < info->dlpi_phnum && !mine; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    mine = ph->p_type == PT_LOAD && me >= lo && me < lo + ph->p_memsz;
  }
  if (!mine) return 0;
  if (info->dlpi_name == NULL || info->dlpi_name[0] == '\0') {
    /* Linked into the program itself (a static binary): the C library's
     * own tables, which point to blocks it allocated at start-up, are made
     * read-only after start (RELRO) and are anchors all the same. Our big
     * tables are not. */
    for (int i = 0; i < info->dlpi_phnum; i++) {
      const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
      if (ph->p_type != PT_GNU_RELRO) continue;
      s->relro[0] = info->dlpi_addr + ph->p_vaddr;
      s->relro[1] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    }
    return 1;
  }
  int room = (int)(sizeof s->excl / sizeof *s->excl) - 1; /* one left: the chunk table */
  for (int i = 0; i < info->dlpi_phnum && s->nexcl < room; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W)) continue;
    uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(uintptr_t)4095;
    uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + 4095) & ~(uintptr_t)4095;
    s->excl[s->nexcl][0] = lo;
    s->excl[s->nexcl][1] = hi;
    s->nexcl++;
  }
  return 1;
}

/* ------------------------------------------------------------------ the view */

typedef struct report_req {
  hh_dest_t dest;
  size_t min_size;
  bool at_exit;   /* the exit report; else mem_lhihiks or the leak-check API */
  bool quiet_api; /* the leak-check API: no output, names only if suppressions need them */
  int format;
  unsigned show_kinds;
  int leak_check;
  struct hahalloc_leaks *counts; /* the leak-check API's answer */
  bool open_late;                /* `dest` unused: opened when there is something to write */
} report_req;

/* Where report `q` writes: its destination, or for the exit report
 * (open_late) one opened now, after the scan and the symbols. Opened before
 * them, a report file was left empty by a process killed as it ended (a
 * pool's worker that Pool.terminate sends SIGTERM while it exits, under
 * --trace-children: helper-45). `*opened`: the caller closes it. */
static hh_dest_t report_dest(const report_req *q, bool *opened) {
  *opened = q->open_late;
  return q->open_late ? hh_dest_open() : q->dest;
}

static uint64_t frames_hash(const hh_frame *f, int n) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
  for (int i = 0; i < n; i++) h = hh_hash_step(h, f[i].pc + (uint64_t)f[i].line * 0x100000001b3ULL);
  return h;
}

typedef struct keyed {
  uint64_t key; /* kind, listed, stack hash: records to merge sit together */
  hh_record *r;
} keyed;

static bool keyed_before(const keyed *x, const keyed *y) { return x->key < y->key; }

static bool record_before(const hh_record *x, const hh_record *y) {
  if (x->g.kind != y->g.kind) return x->g.kind < y->g.kind;
  uint64_t bx = x->g.bytes + x->g.indirect_bytes, by = y->g.bytes + y->g.indirect_bytes;
  if (bx != by) return bx > by;
  return x->g.site < y->g.site;
}

/* Whether a group's stack is listed with file:line (addr2line runs for it). */
static bool wants_lines(const report_req *q, const hh_group *g) {
  if (q->quiet_api) return false;
  if (q->format == HH_FORMAT_COLLAPSED) return true;
  if (!g->listed) return false;
  if (q->format == HH_FORMAT_JSON) return true;
  return q->leak_check == HH_LEAK_FULL && (q->show_kinds & (1u << g->kind));
}

/* Return addresses to symbolize, and whether each wants its file:line. */
typedef struct pc_list {
  hh_arena *a;
  uintptr_t *pcs;
  uint8_t *lines;
  size_t n, cap;
} pc_list;

static bool add_site(pc_list *l, uint32_t site, bool want) {
  int n = 0;
  const uintptr_t *f = hh_site_frames(site, &n);
  for (int k = 0; f && k < n; k++) {
    if (l->n == l->cap) {
      size_t cap = l->cap ? l->cap * 2 : 1024;
      uintptr_t *pcs = hh_arena_alloc(l->a, cap * sizeof *pcs);
      uint8_t *lines = hh_arena_alloc(l->a, cap);
      if (pcs == NULL || lines == NULL) return false;
      if (l->n) {
        memcpy(pcs, l->pcs, l->n * sizeof *pcs);
        memcpy(lines, l->lines, l->n);
      }
      l->pcs = pcs;
      l->lines = lines;
      l->cap = cap;
    }
    l->lines[l->n] = want;
    l->pcs[l->n++] = f[k];
  }
  return true;
}

/* Names the groups' stacks, applies the suppressions, merges the groups
 * whose stacks read the same, and orders the loss records. */
static bool build_view(hh_view *v, const report_req *q, hh_scan *s, hh_arena *a, hh_symbols **sym, hh_out *errs,
                       hh_profile_view *prof) {
  memset(v, 0, sizeof *v);
  v->s = s;
  v->at_exit = q->at_exit;
  v->show_kinds = q->show_kinds;
  v->leak_check = q->leak_check;
  for (int k = 0; k < HH_KINDS; k++) {
    v->kind_bytes[k] = s->kind_bytes[k];
    v->kind_blocks[k] = s->kind_blocks[k];
  }
  v->supp_bytes = s->ignored_bytes;
  v->supp_blocks = s->ignored_blocks;
  hh_supp *supps = NULL;
  size_t nsupps = hh_supp_load(&supps, errs);
  v->supps = supps;
  v->nsupps = nsupps;
  bool user_supps = hh_supp_user();

  /* every pc of every group and of the profile's sites, and whether it
   * needs file:line */
  pc_list l = {.a = a};
  bool any_lines = false;
  for (size_t i = 0; i < s->ngroups; i++) {
    bool want = wants_lines(q, &s->groups[i]) || user_supps;
    any_lines |= want;
    if (!add_site(&l, s->groups[i].site, want)) return false;
  }
  for (size_t i = 0; prof && i < prof->npeak + prof->ntotal; i++) {
    any_lines = true;
    if (!add_site(&l, i < prof->npeak ? prof->peak[i].site : prof->total[i - prof->npeak].site, true)) return false;
  }
  *sym = hh_symbols_resolve(l.pcs, l.lines, l.n, any_lines);
  if (prof) {
    prof->sym = *sym;
    v->profile = prof;
  }

  /* the records, suppressed ones left out */
  hh_record *rec = hh_arena_alloc(a, (s->ngroups + 1) * sizeof *rec);
  keyed *keys = hh_arena_alloc(a, (s->ngroups + 1) * sizeof *keys);
  hh_frame *tmp = hh_arena_alloc(a, HH_MAX_SHOWN * sizeof *tmp);
  if (rec == NULL || keys == NULL || tmp == NULL) return false;
  size_t n = 0;
  for (size_t i = 0; i < s->ngroups; i++) {
    hh_group *g = &s->groups[i];
    int nf = hh_site_display(*sym, g->site, tmp, HH_MAX_SHOWN);
    hh_supp *m = hh_supp_match(supps, nsupps, g->kind, tmp, nf);
    if (m != NULL) {
      g->suppressed = true;
      m->count++;
      if (hh_opt.error_kinds & (1u << g->kind)) m->errors++;
      m->bytes += g->bytes;
      m->blocks += g->blocks;
      v->supp_bytes += g->bytes;
      v->supp_blocks += g->blocks;
      v->kind_bytes[g->kind] -= g->bytes;
      v->kind_blocks[g->kind] -= g->blocks;
      continue;
    }
    hh_frame *fr = nf ? hh_arena_alloc(a, (size_t)nf * sizeof *fr) : NULL;
    if (nf && fr == NULL) return false;
    if (nf) memcpy(fr, tmp, (size_t)nf * sizeof *fr);
    rec[n] = (hh_record){.g = *g, .frames = fr, .nframes = nf};
    keys[n] = (keyed){(frames_hash(fr, nf) & ~(uint64_t)7) | (uint64_t)g->kind << 1 | g->listed, &rec[n]};
    n++;
  }

  /* one record per stack: sites whose stacks read the same are merged */
  HH_SORT(keyed, keys, n, keyed_before);
  hh_record *out = hh_arena_alloc(a, (n + 1) * sizeof *out);
  if (out == NULL) return false;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    const hh_record *r = keys[i].r;
    hh_record *prev = m ? &out[m - 1] : NULL;
    if (prev && i > 0 && keys[i - 1].key == keys[i].key && prev->g.kind == r->g.kind && prev->g.listed == r->g.listed &&
        hh_frames_equal(prev->frames, prev->nframes, r->frames, r->nframes)) {
      hh_group *g = &prev->g;
      g->bytes += r->g.bytes;
      g->blocks += r->g.blocks;
      g->indirect_bytes += r->g.indirect_bytes;
      g->indirect_blocks += r->g.indirect_blocks;
      if (r->g.min_size < g->min_size) g->min_size = r->g.min_size;
      if (r->g.max_size > g->max_size) g->max_size = r->g.max_size;
      if (r->g.site < g->site) g->site = r->g.site;
      continue;
    }
    out[m++] = *r;
  }
  HH_SORT(hh_record, out, m, record_before);
  for (size_t i = 0; i < m; i++)
    if (out[i].g.listed) out[i].number = (uint32_t)++v->numbered;
  v->rec = out;
  v->nrec = m;
  return true;
}

/* ------------------------------------------------------------------ the leak-check API's baseline */

typedef struct base_entry {
  uint32_t site;
  uint32_t kind;
  uint64_t bytes, blocks;
} base_entry;

static base_entry *baseline; /* sorted by (site, kind), in memory from the OS */
static size_t baseline_n, baseline_size;

static bool base_before(const base_entry *x, const base_entry *y) {
  return x->site != y->site ? x->site < y->site : x->kind < y->kind;
}

static const base_entry *base_find(uint32_t site, uint32_t kind) {
  size_t lo = 0, hi = baseline_n;
  base_entry key = {site, kind, 0, 0};
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (base_before(&baseline[mid], &key))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < baseline_n && baseline[lo].site == site && baseline[lo].kind == kind ? &baseline[lo] : NULL;
}

/* The counts of the API, from the scan's groups (before merging): what
 * each (site, kind) holds more than at the baseline is new. */
static void api_counts(const hh_view *v, const hh_scan *s, struct hahalloc_leaks *c, bool set_baseline) {
  memset(c, 0, sizeof *c);
  struct hahalloc_leak_count *kinds[HH_KINDS] = {&c->definite, &c->indirect, &c->possible, &c->reachable};
  struct hahalloc_leak_count *fresh[HH_KINDS] = {&c->new_definite, &c->new_indirect, &c->new_possible,
                                                 &c->new_reachable};
  for (int k = 0; k < HH_KINDS; k++) {
    kinds[k]->bytes = v->kind_bytes[k];
    kinds[k]->blocks = v->kind_blocks[k];
  }
  c->suppressed.bytes = v->supp_bytes;
  c->suppressed.blocks = v->supp_blocks;
  size_t n = 0;
  for (size_t i = 0; i < s->ngroups; i++) {
    const hh_group *g = &s->groups[i];
    if (g->suppressed) continue;
    const base_entry *b = base_find(g->site, g->kind);
    uint64_t b_bytes = b ? b->bytes : 0, b_blocks = b ? b->blocks : 0;
    if (g->bytes > b_bytes) fresh[g->kind]->bytes += g->bytes - b_bytes;
    if (g->blocks > b_blocks) fresh[g->kind]->blocks += g->blocks - b_blocks;
    n++;
  }
  if (!set_baseline) return;
  hh_report_unmap(baseline, baseline_size);
  baseline_n = 0;
  baseline_size = (n + 1) * sizeof *baseline;
  baseline = hh_report_map(baseline_size);
  if (baseline == NULL) return;
  /* merge the groups of one (site, kind): small blocks are grouped apart */
  for (size_t i = 0; i < s->ngroups; i++) {
    const hh_group *g = &s->groups[i];
    if (!g->suppressed) baseline[baseline_n++] = (base_entry){g->site, g->kind, g->bytes, g->blocks};
  }
  HH_SORT(base_entry, baseline, baseline_n, base_before);
  size_t m = 0;
  for (size_t i = 0; i < baseline_n; i++) {
    if (m && baseline[m - 1].site == baseline[i].site && baseline[m - 1].kind == baseline[i].kind) {
      baseline[m - 1].bytes += baseline[i].bytes;
      baseline[m - 1].blocks += baseline[i].blocks;
    } else {
      baseline[m++] = baseline[i];
    }
  }
  baseline_n = m;
}

/* ------------------------------------------------------------------ the report */

int64_t hh_report_started_ns;

/* RLIMIT_CPU counts the exit scan's time against the program's limit: a
 * program that spent 0.8 s of its 1 s died of SIGXCPU in the scan, its
 * status lost (helper-80). At exit the soft limit is raised to the hard one
 * (the program is ending: a SIGXCPU it would see is the scan's doing), and
 * where what is left under the hard limit (SIGKILL) is less than the scan
 * may take, a second and a second per GiB resident, no scan is made. The
 * reason, or NULL. */
static const char *cpu_limit_near(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_CPU, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return NULL;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit up = {rl.rlim_max, rl.rlim_max};
    if (setrlimit(RLIMIT_CPU, &up) == 0) rl.rlim_cur = rl.rlim_max;
  }
  if (rl.rlim_cur == RLIM_INFINITY) return NULL;
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return NULL;
  int64_t used_us =
      ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
  char rss[32]; /* kB */
  int64_t resident_kib = hh_proc_status("VmRSS", rss, sizeof rss) ? strtoll(rss, NULL, 10) : 0;
  int64_t need_us = 1000000 + resident_kib; /* a second, and a second per GiB (a microsecond a KiB, near enough) */
  if ((int64_t)rl.rlim_cur * 1000000 - used_us >= need_us) return NULL;
  return "the program's CPU time limit (RLIMIT_CPU) is nearly spent, and the scan's time would count against it";
}

/* Scans and writes one report to `q->dest` (and answers the API). Returns
 * the number of blocks of the kinds that are errors (error_kinds), or -1
 * when no scan could be made. */
static int64_t report(const report_req *q, uintptr_t own_sp, const uintptr_t *regs, int nregs, int64_t deadline,
                      bool set_baseline) {
  if (hh_sandboxed()) return -1; /* even writing says so through calls a filter may refuse */
  hh_scan s;
  memset(&s, 0, sizeof s);
  s.own_sp = own_sp;
  for (int i = 0; i < nregs && i < 8; i++) s.own_regs[s.nown_regs++] = regs[i];
  s.static_tls = static_tls_size();
  pthread_layout(&s);
  s.min_size = q->min_size;
  s.at_exit = q->at_exit;
  dl_iterate_phdr(own_cb, &s);
  int64_t t0 = hh_now_ms();
  const char *why = q->at_exit ? cpu_limit_near() : NULL;
  if (why == NULL) why = hh_scan_run(&s, deadline);
  long ms = (long)(hh_now_ms() - t0);
  if (why == NULL && q->at_exit)
    for (uint64_t i = 0; i < s.overrun && i < sizeof s.overrun_at / sizeof *s.overrun_at; i++)
      hh_misuse_overrun_at_exit(&s.overrun_at[i]);
  if (why != NULL) {
    bool opened;
    hh_dest_t dest = report_dest(q, &opened);
    if (dest.fd >= 0) {
      hh_out o;
      hh_out_open(&o, dest);
      hh_out_printf(&o, "==%d== hahalloc: no leak report: %s\n", (int)getpid(), why);
      if (q->at_exit && hh_opt.leak_exitcode)
        hh_out_printf(&o, "==%d== hahalloc: exit status %d (--error-exitcode): leaks could not be ruled out\n",
                      (int)getpid(), hh_opt.leak_exitcode);
      hh_out_close(&o);
    }
    if (opened) hh_dest_close(dest);
    return -1;
  }
  hh_arena a = {NULL};
  hh_symbols *sym = NULL;
  hh_view v;
  hh_out errs;
  hh_out_open_mem(&errs);
  hh_profile_view prof;
  bool profiled = hh_opt.profile && q->at_exit && hh_profile_view_build(&prof, &a, q->format == HH_FORMAT_COLLAPSED);
  bool built = build_view(&v, q, &s, &a, &sym, &errs, profiled ? &prof : NULL);
  v.ms = ms;
  v.arena = &a;
  if (!built) { /* out of memory for the view: the totals as they are */
    v.nrec = 0;
    v.s = &s;
    v.profile = NULL;
  }
  bool opened;
  hh_dest_t dest = report_dest(q, &opened);
  if (dest.fd >= 0) {
    hh_out o;
    hh_out_open(&o, dest);
    if (q->format != HH_FORMAT_XML && q->format != HH_FORMAT_JSON) hh_out_append(&o, &errs);
    switch (q->format) {
    case HH_FORMAT_JSON: hh_write_json(&o, &v); break;
    case HH_FORMAT_XML: hh_write_xml(&o, &v); break;
    case HH_FORMAT_COLLAPSED: hh_write_collapsed(&o, &v); break;
    default: hh_write_text(&o, &v); break;
    }
    hh_out_close(&o);
  }
  if (opened) hh_dest_close(dest);
  hh_out_close(&errs);
  if (q->counts) api_counts(&v, &s, q->counts, false);
  if (set_baseline) {
    struct hahalloc_leaks unused;
    api_counts(&v, &s, &unused, true);
  }
  int64_t errors = 0;
  for (int k = 0; k < HH_KINDS; k++)
    if (hh_opt.error_kinds & (1u << k)) errors += (int64_t)v.kind_blocks[k];
  hh_symbols_free(sym);
  hh_supp_free();
  hh_arena_free(&a);
  hh_scan_free(&s);
  return errors;
}

/* ------------------------------------------------------------------ at exit */

#define LOCK_WAIT_NS ((int64_t)2000000000) /* the most the report waits for a lock */

static _Atomic(int) atexit_passed, destructor_passed;

/* ------------------------------------------------------------------ seccomp */

/* A seccomp filter may refuse any system call, or kill the process for
 * it; a program that allowed itself only what it needs was killed by
 * SIGSYS in the report at exit. Once the program has installed one
 * (src/shared/seccomp.c), or while it is installing one, no report is
 * made: at exit nothing is written (--error-exitcode still counts the
 * errors met), mem_lhihiks prints nothing and hahalloc_leak_check answers
 * -1. The one line that says so is written before the first install, when
 * no filter of the program's is in force yet.
 *
 * A filter inherited through exec is not taken for one: container
 * runtimes and service managers put every process under one (Docker's
 * default answers EPERM), under which the report is made as ever, its
 * refused calls costing only what they would have shown. What such a
 * filter does cannot be told without making the calls. */
static _Atomic(int) sandbox_installed; /* an install succeeded: for good */
static _Atomic(int) sandbox_pending;   /* installs in progress */
static _Atomic(int) sandbox_noted;

bool hh_sandboxed(void) {
  return atomic_load_explicit(&sandbox_installed, memory_order_acquire) != 0 ||
         atomic_load_explicit(&sandbox_pending, memory_order_acquire) != 0;
}

/* The buffer is mapped, not on the stack: this may run in malloc on a
 * coroutine's stack of 4 KiB (the first call site of a thread through a
 * wrapper asks hh_seccomp_inherited, maps.c). The file is read to the
 * field's line whole (hh_status_read): 8 KiB once, and with 1,100
 * supplementary groups Seccomp lay past it. */
bool hh_proc_status(const char *field, char *out, size_t size) {
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  char *buf = fd >= 0 && size > 0 ? hh_os_map(HH_STATUS_BUF) : NULL;
  if (buf == NULL) {
    if (fd >= 0) close(fd);
    return false;
  }
  bool whole = hh_status_read(fd, read, buf, field, NULL);
  close(fd);
  char key[40];
  hh_snformat(key, sizeof key, "\n%s:", field);
  const char *f = whole ? strstr(buf, key) : NULL;
  size_t k = 0;
  if (f != NULL) {
    f += strlen(key);
    while (*f == ' ' || *f == '\t') f++;
    while (f[k] != '\0' && f[k] != ' ' && f[k] != '\t' && f[k] != '\n' && k + 1 < size) {
      out[k] = f[k];
      k++;
    }
  }
  out[k] = '\0';
  hh_os_unmap(buf, HH_STATUS_BUF);
  return k > 0;
}

/* Whether a seccomp filter was in force when first asked: one inherited
 * through exec (a service manager's, such as systemd's
 * SystemCallFilter=@system-service, which has no mincore and kills by
 * default), or the program's. /proc/self/status's Seccomp field, read once;
 * unreadable counts as a filter. Asked before the calls such a filter may
 * kill for: mincore (the clearing of reused memory in alloc.c, the exit
 * scan), the lookup of one mapping (maps.c), ptrace (trace.c) and kcmp. */
bool hh_seccomp_inherited(void) {
  static _Atomic(int) state; /* 0: not read yet, 1: none, 2: a filter */
  int s = atomic_load_explicit(&state, memory_order_relaxed);
  if (HH_LIKELY(s != 0)) return s == 2;
  int saved = errno;
  char v[32];
  bool filter = !hh_proc_status("Seccomp", v, sizeof v) || strcmp(v, "0") != 0;
  errno = saved;
  atomic_store_explicit(&state, filter ? 2 : 1, memory_order_relaxed);
  return filter;
}

bool hh_sandbox_entering(bool strict) {
  hh_init();
  /* a vfork child shares our memory: its filter is not ours (report_pid
   * is this process's, fork children's too) */
  if (report_pid != 0 && (int)getpid() != report_pid) return false;
  atomic_fetch_add(&sandbox_pending, 1);
  /* a report under way finishes first: the filter could kill it midway */
  if (hh_lock_acquire_until(&report_lock, hh_now_ns() + LOCK_WAIT_NS)) hh_lock_release(&report_lock);
  int expect = 0;
  if (hh_opt.report && atomic_load(&sandbox_installed) == 0 &&
      atomic_compare_exchange_strong(&sandbox_noted, &expect, 1))
    hh_say("hahalloc: note: the program installs a seccomp %s: once it is in force, no leak report is made "
           "at exit and mem_lhihiks prints nothing (the filter may refuse the report's system calls or kill "
           "the program for them)\n",
           strict ? "strict mode" : "filter");
  return true;
}

void hh_sandbox_done(bool installed) {
  if (installed) atomic_store(&sandbox_installed, 1);
  atomic_fetch_sub(&sandbox_pending, 1);
}

/* getpid only when asked: a vfork child's calls (kept.c) are made in our
 * memory, and must not change what the process that reports holds. Never
 * under the program's seccomp filter, where no report is made: a program
 * whose filter killed for getpid died of SIGSYS in its own close_range,
 * which met the report's descriptors. */
bool hh_report_process(void) { return !hh_sandboxed() && (int)getpid() == report_pid; }

void hh_report_init(void) {
  hh_report_started_ns = hh_now_ns();
  report_pid = (int)getpid();
  hh_dest_init();
  hh_maps_init();
  if (hh_opt.report) hh_objects_init(); /* else when first needed: a misuse's stack, mem_lhihiks */
}

/* Flushes the program's streams that no other thread is using, as stdio's
 * exit would, before the process ends without it (the leak exit code). */
static void flush_streams(void) {
  if (&_IO_list_all == NULL) return;
  int steps = 0;
  for (FILE *fp = _IO_list_all; fp != NULL && steps < 100000; fp = fp->_chain, steps++) {
    if (ftrylockfile(fp) != 0) continue;
    fflush_unlocked(fp);
    funlockfile(fp);
  }
}

/* ------------------------------------------------------------------ the report's own stack */

/* The report runs on a stack of its own: it needs some 20 KiB (the scan,
 * the thread stop, the symbols, the files), and is made on the stack of
 * whichever thread ends the process, or calls mem_lhihiks: a thread of
 * PTHREAD_STACK_MIN (16 KiB), a coroutine's, or the alternate signal stack
 * of a crash handler that calls _exit (SIGSTKSZ, 8 KiB), each with a guard
 * page below (helper-41: SIGSEGV, no report, and the exit status lost).
 * The switch keeps a frame pointer chain and call frame information across
 * it, so the unwinder (the exit's caller, find_exit_point) and debuggers
 * walk from the report's frames back to the program's. The stack is the
 * report's memory (hh_report_map), never scanned as a root. The sanitizer
 * builds stay on the thread's stack: their runtimes track its bounds. */
#define REPORT_STACK ((size_t)1 << 20)
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define HH_OWN_STACK 1
/* fn(arg) with the stack pointer at `top` (16-byte aligned) */
void hh_on_stack(void (*fn)(void *), void *arg, void *top) __attribute__((visibility("hidden")));
__asm__(".text\n"
        ".p2align 4\n"
        ".globl hh_on_stack\n"
        ".hidden hh_on_stack\n"
        ".type hh_on_stack, @function\n"
        "hh_on_stack:\n"
        ".cfi_startproc\n"
        ".cfi_signal_frame\n" /* gdb: the caller's frame may lie below this one */
        "pushq %rbp\n"
        ".cfi_def_cfa_offset 16\n"
        ".cfi_offset %rbp, -16\n"
        "movq %rsp, %rbp\n"
        ".cfi_def_cfa_register %rbp\n"
        "movq %rdx, %rsp\n"
        "movq %rdi, %rax\n"
        "movq %rsi, %rdi\n"
        "callq *%rax\n"
        "movq %rbp, %rsp\n"
        "popq %rbp\n"
        ".cfi_def_cfa %rsp, 8\n"
        "ret\n"
        ".cfi_endproc\n"
        ".size hh_on_stack, .-hh_on_stack\n");
#else
#define HH_OWN_STACK 0
#endif

#if HH_OWN_STACK
/* The report's stack: a guard page, an alternate signal stack of
 * REPORT_ALTSTACK for the time of the report when the thread was on its own
 * (below), another guard page, then the stack. */
#define REPORT_ALTSTACK ((size_t)64 << 10)

struct on_stack {
  void (*fn)(void *);
  void *arg;
  stack_t alt, old_alt;
  bool swap_alt;
};

/* On the report's stack. A report started in a handler that runs on the
 * program's alternate signal stack (a crash handler calling _exit) has
 * left it, as far as the kernel can tell: the scan's fault guard
 * (SA_ONSTACK) would put its frames at the top of that stack, over the
 * live handler's frames (helper-43: a SIGUSR1 handler on a 32 KiB
 * alternate stack that called hahalloc_leak_check returned into the
 * scan's context and died). So the thread gets an alternate stack of the
 * report's until it goes back, which sigaltstack allows only off both. */
static void on_stack_entry(void *arg) {
  struct on_stack *o = arg;
  if (o->swap_alt && sigaltstack(&o->alt, NULL) != 0) o->swap_alt = false;
  o->fn(o->arg);
  if (o->swap_alt) sigaltstack(&o->old_alt, NULL);
}
#endif

/* fn(arg) on a stack of the report's, or on this one when none can be
 * mapped. */
static void on_report_stack(void (*fn)(void *), void *arg) {
#if HH_OWN_STACK
  int saved = errno;
  char *stack = hh_report_map(REPORT_STACK);
  if (stack != NULL && mprotect(stack, 4096, PROT_NONE) == 0 &&
      mprotect(stack + 4096 + REPORT_ALTSTACK, 4096, PROT_NONE) == 0) {
    struct on_stack o = {.fn = fn, .arg = arg};
    o.swap_alt = sigaltstack(NULL, &o.old_alt) == 0 && (o.old_alt.ss_flags & SS_ONSTACK);
    o.alt = (stack_t){.ss_sp = stack + 4096, .ss_size = REPORT_ALTSTACK, .ss_flags = 0};
    errno = saved;
    hh_on_stack(on_stack_entry, &o, stack + REPORT_STACK);
    saved = errno;
    hh_report_unmap(stack, REPORT_STACK);
    errno = saved;
    return;
  }
  if (stack != NULL) hh_report_unmap(stack, REPORT_STACK);
  errno = saved;
#endif
  fn(arg);
}

/* The registers a function was called with that it must preserve: the
 * caller's pointers may live only there. rbp is the caller's too, saved by
 * our prologue. (A fallback for when the exit's caller cannot be found.) */
#if defined(__x86_64__)
#define CALLEE_REGS 6
#define SAVE_CALLEE_REGS(r)                                                                   \
  do {                                                                                        \
    __asm__ volatile("movq %%rbx, %0\n\tmovq %%r12, %1\n\tmovq %%r13, %2\n\t"                 \
                     "movq %%r14, %3\n\tmovq %%r15, %4"                                       \
                     : "=m"((r)[0]), "=m"((r)[1]), "=m"((r)[2]), "=m"((r)[3]), "=m"((r)[4])); \
    (r)[5] = *(uintptr_t *)__builtin_frame_address(0);                                        \
  } while (0)
#else
#define CALLEE_REGS 1
#define SAVE_CALLEE_REGS(r) ((r)[0] = 0, __builtin_unwind_init())
#endif
/* The stack above the caller of the function that uses it. */
#define CALLER_SP() ((uintptr_t)__builtin_frame_address(0) + 16)

/* Where the program called exit() (or _exit): the scan's anchors on this
 * thread's stack are the frames from that caller up, and the caller's
 * callee-saved registers as they were at the call. Those may live in the
 * frames of the exit machinery (__run_exit_handlers saves them there),
 * whose other slots hold stale values of the program's earlier calls, which
 * valgrind, seeing them undefined, ignores: so the registers are recovered
 * by the unwinder (from the call frame information), and those frames are
 * not scanned. */
struct exit_point {
  int state; /* 0: looking for exit, 1: found, 2: done */
  uintptr_t sp;
  uintptr_t regs[8];
  int nregs;
};

/* glibc's exit, _exit and _Exit, as address ranges (their symbols'
 * sizes), found in a constructor. The walk from the report up to the exit's
 * caller asked dladdr for every frame's name, 8 times an exit, and dladdr
 * takes the loader's lock: at the exit of a program whose threads loop on
 * dlopen and dlclose, which keep that lock (glibc's is not fair), each ask
 * waited up to 1.4 s (5 asks: 2.6 s of one exit's 3.2). With the ranges
 * the walk takes no lock; dladdr stays for a process where they could not
 * be found (a static link: no loader to wait for). */
static struct { uintptr_t lo, hi; } exit_ranges[3];
static size_t n_exit_ranges;

__attribute__((constructor)) static void exit_ranges_init(void) {
  static const char *const names[] = {"exit", "_exit", "_Exit"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    void *f = dlsym(RTLD_NEXT, names[i]); /* glibc's, past ours */
    Dl_info d;
    const ElfW(Sym) *sym = NULL;
    if (f != NULL && dladdr1(f, &d, (void **)&sym, RTLD_DL_SYMENT) && sym != NULL && sym->st_size != 0 &&
        (uintptr_t)d.dli_saddr == (uintptr_t)f) {
      exit_ranges[n_exit_ranges].lo = (uintptr_t)f;
      exit_ranges[n_exit_ranges].hi = (uintptr_t)f + sym->st_size;
      n_exit_ranges++;
    }
  }
  if (n_exit_ranges != sizeof names / sizeof names[0]) n_exit_ranges = 0; /* all or none: dladdr then */
}

static bool is_exit_function(uintptr_t ip) {
  uintptr_t fns[] = {(uintptr_t)&exit, (uintptr_t)&_exit, (uintptr_t)&_Exit, (uintptr_t)&quick_exit};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
    if (ip > fns[i] && ip - fns[i] < 64) return true; /* all are a call or two */
  if (n_exit_ranges != 0) {
    for (size_t i = 0; i < n_exit_ranges; i++)
      if (ip - 1 >= exit_ranges[i].lo && ip - 1 < exit_ranges[i].hi) return true;
    return false;
  }
  Dl_info d;
  return dladdr((void *)(ip - 1), &d) && d.dli_sname &&
         (!strcmp(d.dli_sname, "exit") || !strcmp(d.dli_sname, "_exit") || !strcmp(d.dli_sname, "_Exit"));
}

static _Unwind_Reason_Code exit_point_cb(struct _Unwind_Context *ctx, void *arg) {
  struct exit_point *e = arg;
  uintptr_t ip = (uintptr_t)hh_uw.get_ip(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  if (e->state == 0) {
    if (is_exit_function(ip)) {
      e->state = 1;
      e->sp = (uintptr_t)hh_uw.get_cfa(ctx); /* the caller's stack pointer at the call */
    }
    return _URC_NO_REASON;
  }
#if defined(__x86_64__)
  static const int callee_saved[] = {3, 6, 12, 13, 14, 15}; /* DWARF: rbx rbp r12-r15 */
  for (size_t i = 0; i < sizeof callee_saved / sizeof callee_saved[0]; i++)
    e->regs[e->nregs++] = (uintptr_t)hh_uw.get_gr(ctx, callee_saved[i]);
#endif
  e->state = 2;
  return _URC_END_OF_STACK;
}

/* Without an unwinder (a static binary whose destructors deregistered its
 * frame information), the caller's frame starts just above the return
 * address into exit() or _exit(), which are a call or two long: the
 * machinery's frames below it are left out, its saved registers with
 * them. */
static bool find_exit_point_by_return(struct exit_point *e, uintptr_t from) {
  hh_map_line stack;
  if (!hh_maps_find(from, &stack)) return false;
  for (uintptr_t a = from & ~(uintptr_t)7; a + 8 <= stack.end && a - from < (256u << 10); a += 8) {
    uintptr_t v = *(const uintptr_t *)a;
    if (v > (uintptr_t)&exit && v - (uintptr_t)&exit < 64) {
      e->sp = a + 8;
      return true;
    }
  }
  return false;
}

/* `from`: an address of the thread's stack below the exit's frames (the
 * report may run on a stack of its own). */
static bool find_exit_point(struct exit_point *e, uintptr_t from) {
  memset(e, 0, sizeof *e);
  if (!hh_unwinder_works()) return find_exit_point_by_return(e, from);
  hh_uw.backtrace(exit_point_cb, e);
  return e->state == 2 && e->sp != 0;
}

/* --error-exitcode: the process ends with it when leaks of the error kinds
 * were found, or errors were reported (and ignored) while it ran. */
static void exit_status(bool leaks_are_errors, bool by_exit) {
  if (hh_opt.leak_exitcode && (leaks_are_errors || atomic_load_explicit(&hh_misuse_errors, memory_order_relaxed) > 0)) {
    if (by_exit) flush_streams();
    syscall(SYS_exit_group, hh_opt.leak_exitcode);
  }
}

/* The program's signal handlers wait while this thread makes the exit
 * report: one that calls exit() (an alarm going off as the program ends)
 * ended the process in the middle of the report, before a line of it was
 * out (11 of 30 runs of such a program). Only signals the program handles:
 * a default action (a kill, Ctrl-C without a handler) still ends the
 * process at once, and the faults the scan's guard takes must reach it. A
 * signal held is delivered when the report is done, to this thread, whose
 * handler's exit() then ends the process with its status. Taken meanwhile
 * by another thread (released after the scan), its handler's exit() waits
 * for this one's, as a second exit() always does here: the process ends
 * as if the report had taken no time, with the first exit's status. */
static void hold_handlers(sigset_t *old) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction sa;
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP || sig == SIGSYS ||
        sigaction(sig, NULL, &sa) != 0 || sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)
      continue;
    sigaddset(&set, sig);
  }
  pthread_sigmask(SIG_BLOCK, &set, old);
}

struct exit_args {
  uintptr_t sp;
  const uintptr_t *regs;
  int nregs;
  bool by_exit;
};

/* The exit report proper, on the report's stack (exit_report). */
static void exit_report_body(void *arg) {
  struct exit_args *a = arg;
  uintptr_t sp = a->sp;
  const uintptr_t *regs = a->regs;
  int nregs = a->nregs;
  bool by_exit = a->by_exit;
  int saved = errno;
  sigset_t held;
  hold_handlers(&held);
  int64_t deadline = hh_now_ns() + LOCK_WAIT_NS;
  if (by_exit && ftrylockfile(stdout) == 0) { /* the program's output first, and in order */
    fflush_unlocked(stdout);
    funlockfile(stdout);
  }
  if (!hh_lock_acquire_until(&report_lock, deadline)) {
    errno = saved;
    exit_status(false, by_exit); /* a report is being made (mem_lhihiks in another thread) */
    atomic_store(&exit_reported, 2);
    pthread_sigmask(SIG_SETMASK, &held, NULL);
    errno = saved;
    return;
  }
  struct exit_point e;
  if (find_exit_point(&e, a->sp)) {
    sp = e.sp;
    if (e.nregs > 0) {
      regs = e.regs;
      nregs = e.nregs;
    }
  }
  int64_t errors = 0;
  if (hh_dest_available() || hh_opt.leak_exitcode) {
    report_req q = {.dest = {-1, false},
                    .open_late = true,
                    .min_size = hh_opt.min_size,
                    .at_exit = true,
                    .format = hh_opt.format,
                    .show_kinds = hh_opt.show_kinds,
                    .leak_check = hh_opt.leak_check};
    errors = report(&q, sp, regs, nregs, deadline, false);
  }
  hh_lock_release(&report_lock);
  errno = saved;
  /* as valgrind: leaks are errors only when listed in full (--leak-check=summary
   * counts them, and exits with the program's own status). A report that
   * could not be made (errors < 0) is one too: a test run asked to fail on
   * leaks must not pass because none were looked for (helper-72). */
  exit_status((hh_opt.leak_check == HH_LEAK_FULL && errors > 0) || errors < 0, by_exit);
  atomic_store(&exit_reported, 2); /* not before: a waiting exit(0) would end the process first */
  hh_world_exit_done();
  pthread_sigmask(SIG_SETMASK, &held, NULL); /* a signal held is taken here, by its handler */
  errno = saved;
}

static HH_NOINLINE void exit_report(uintptr_t sp, const uintptr_t *regs, int nregs, bool by_exit) {
  if (!hh_opt.report) return;
  if (hh_sandboxed()) { /* not even getpid: the filter may kill for it */
    exit_status(false, by_exit);
    return;
  }
  if (!hh_report_process()) return;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL); /* see hh_report_exit_gate */
  int expect = 0;
  if (!atomic_compare_exchange_strong(&exit_reported, &expect, 1)) {
    wait_for_exit_report();
    return;
  }
  atomic_store(&exit_reporter, (long)syscall(SYS_gettid));
  struct exit_args a = {sp, regs, nregs, by_exit};
  on_report_stack(exit_report_body, &a);
}

/* The atexit handler and the destructor: the second of them reports. Its
 * caller's frames are scanned from the stack pointer at the call, and the
 * callee-saved registers as they are here: the handlers below use none. */
static HH_NOINLINE void report_if_second(_Atomic(int) *other_passed, _Atomic(int) *passed) {
  uintptr_t regs[CALLEE_REGS];
  SAVE_CALLEE_REGS(regs);
  int expect = 0;
  if (atomic_load(other_passed))
    exit_report(CALLER_SP(), regs, CALLEE_REGS, true);
  else
    atomic_compare_exchange_strong(passed, &expect, 1);
}

static HH_NOINLINE void report_atexit(void *unused) {
  (void)unused;
  report_if_second(&destructor_passed, &atexit_passed);
}

__attribute__((destructor(101))) static HH_NOINLINE void report_destructor(void) {
  report_if_second(&atexit_passed, &destructor_passed);
}

/* Registered with no object handle: atexit() from a shared object would tie
 * the handler to it, and the loader would run it with that object's
 * destructors, before the libraries unloaded after it. */
extern int __cxa_atexit(void (*fn)(void *), void *arg, void *dso);

/* exit() in a process that shares this memory without being the one that
 * reports: a vfork child (src/shared/exit.c says why it ends here). Its
 * streams are flushed, as exit would; its handlers and destructors, its
 * parent's, are left to its parent. */
void hh_report_vfork_exit(int status) {
  if (!hh_opt.report || report_pid == 0 || hh_sandboxed() || (int)getpid() == report_pid) return;
  /* Only when the memory is the reporter's indeed: a child of _Fork() or
   * of a raw clone has a copy of its own (no atfork handler made it the
   * reporter), and must exit as glibc's exit does. Without kcmp (a seccomp
   * filter, a non-dumpable parent), glibc's exit too: no other sign tells
   * a vfork child from a raw fork's surely, and the parent's report is
   * less than the child's own handlers. */
  if (hh_seccomp_inherited() || syscall(SYS_kcmp, (pid_t)getpid(), (pid_t)report_pid, KCMP_VM, 0UL, 0UL) != 0)
    return; /* a filter inherited at exec may kill for kcmp (helper-75) */
  flush_streams();
  for (;;) {
    syscall(SYS_exit_group, status);
    syscall(SYS_exit, status);
  }
}

/* quick_exit runs the at_quick_exit handlers, then ends the process
 * through glibc's own _exit (not the one below): without this handler
 * there was no report at all. Registered first, it runs after the
 * program's; like _exit it flushes nothing. */
static HH_NOINLINE void report_quick_exit(void) {
  uintptr_t regs[CALLEE_REGS];
  SAVE_CALLEE_REGS(regs);
  if (atomic_load(&hh_initialised) == 2) exit_report(CALLER_SP(), regs, CALLEE_REGS, false);
}

void hh_report_register_exit(void) {
  if (__cxa_atexit(report_atexit, NULL, NULL) != 0) atomic_store(&atexit_passed, 1);
  at_quick_exit(report_quick_exit);
}

/* _exit and _Exit end the process without exit handlers: the report is made
 * here, then the process ends as glibc's _exit ends it. (glibc's own exit()
 * reaches its internal _exit, not this one.) */
static HH_NOINLINE __attribute__((noreturn)) void exit_with(int status, uintptr_t sp, const uintptr_t *regs) {
  if (atomic_load(&hh_initialised) == 2) exit_report(sp, regs, CALLEE_REGS, false);
  for (;;) {
    syscall(SYS_exit_group, status);
    syscall(SYS_exit, status);
  }
}

/* The registers first, in a function that keeps nothing across a call (see
 * hh_report_summary): here `status` went into rbx before rbx was read. */
static HH_NOINLINE __attribute__((noreturn)) void exit_now(int status) {
  uintptr_t regs[CALLEE_REGS];
  SAVE_CALLEE_REGS(regs);
  exit_with(status, CALLER_SP(), regs);
}

HH_EXPORT __attribute__((noreturn)) void _exit(int status) { exit_now(status); }
HH_EXPORT __attribute__((noreturn)) void _Exit(int status) { exit_now(status); }

/* ------------------------------------------------------------------ mem_lhihiks */

struct report_call {
  const report_req *q;
  uintptr_t sp;
  const uintptr_t *regs;
  int nregs;
  int64_t deadline;
  bool set_baseline;
  int64_t result;
};

static void report_call(void *arg) {
  struct report_call *c = arg;
  c->result = report(c->q, c->sp, c->regs, c->nregs, c->deadline, c->set_baseline);
}

/* report(), on the report's own stack (on_report_stack). */
static int64_t report_apart(const report_req *q, uintptr_t own_sp, const uintptr_t *regs, int nregs, int64_t deadline,
                            bool set_baseline) {
  struct report_call c = {q, own_sp, regs, nregs, deadline, set_baseline, -1};
  /* report() makes none under a filter, and mapping its stack and
   * sigaltstack are calls a filter may kill for (malloc_stats after an
   * install died of SIGSYS, helper-75) */
  if (hh_sandboxed()) return -1;
  on_report_stack(report_call, &c);
  return c.result;
}

static HH_NOINLINE void summary(int fd, size_t min_size, uintptr_t sp, const uintptr_t *regs) {
  int saved = errno, cancel;
  /* mem_lhihiks is no cancellation point, though the report's file calls are */
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
  if (fd == 1 && ftrylockfile(stdout) == 0) {
    fflush_unlocked(stdout);
    funlockfile(stdout);
  }
  int64_t deadline = hh_now_ns() + LOCK_WAIT_NS;
  if (report_lock_on_demand(deadline)) {
    report_req q = {.dest = {fd, false},
                    .min_size = min_size,
                    .format = HH_FORMAT_TEXT,
                    .show_kinds = 15,
                    .leak_check = HH_LEAK_FULL};
    report_apart(&q, sp, regs, CALLEE_REGS, deadline, false);
    hh_lock_release(&report_lock);
  }
  pthread_setcancelstate(cancel, NULL);
  errno = saved;
}

/* The registers are read before anything else happens here, in a function
 * that needs none of them: with the work in the same function, the
 * compiler may move an argument it keeps across calls into one of them
 * first, and the caller's value there was lost (a block only a register of
 * the program held was called definitely lost once the function grew). */
HH_NOINLINE void hh_report_summary(int fd, size_t min_size) {
  uintptr_t regs[CALLEE_REGS];
  SAVE_CALLEE_REGS(regs);
  summary(fd, min_size, CALLER_SP(), regs);
}

/* ------------------------------------------------------------------ the leak-check API */

/* The scan now, with no output: counts per kind, suppressions applied, and
 * what grew since the baseline. */
static HH_NOINLINE int leak_check(struct hahalloc_leaks *out, bool set_baseline, uintptr_t sp, const uintptr_t *regs,
                                  int nregs) {
  hh_init();
  int saved = errno;
  int64_t deadline = hh_now_ns() + LOCK_WAIT_NS;
  int64_t errors = -1;
  if (report_lock_on_demand(deadline)) {
    report_req q = {.dest = {-1, false},
                    .quiet_api = true,
                    .format = HH_FORMAT_TEXT,
                    .show_kinds = 15,
                    .leak_check = HH_LEAK_FULL,
                    .counts = out};
    errors = report_apart(&q, sp, regs, nregs, deadline, set_baseline);
    hh_lock_release(&report_lock);
  }
  errno = saved;
  if (errors < 0) return -1;
  if (out == NULL) return 0;
  const struct hahalloc_leak_count *fresh[HH_KINDS] = {&out->new_definite, &out->new_indirect, &out->new_possible,
                                                       &out->new_reachable};
  size_t blocks = 0;
  for (int k = 0; k < HH_KINDS; k++)
    if (hh_opt.error_kinds & (1u << k)) blocks += fresh[k]->blocks;
  return blocks > INT32_MAX ? INT32_MAX : (int)blocks;
}

HH_EXPORT HH_NOINLINE int hahalloc_leak_check(struct hahalloc_leaks *out) {
  uintptr_t regs[CALLEE_REGS];
  SAVE_CALLEE_REGS(regs);
  struct hahalloc_leaks scratch;
  return leak_check(out ? out : &scratch, false, CALLER_SP(), regs, CALLEE_REGS);
}

HH_EXPORT HH_NOINLINE int hahalloc_leak_baseline(void) {
  uintptr_t regs[CALLEE_REGS];
  SAVE_CALLEE_REGS(regs);
  struct hahalloc_leaks scratch;
  return leak_check(&scratch, true, CALLER_SP(), regs, CALLEE_REGS) < 0 ? -1 : 0;
}

HH_EXPORT void hahalloc_ignore(const void *ptr) {
  if (ptr == NULL) return;
  hh_init();
  hh_ref ref;
  if (!hh_lookup(ptr, "hahalloc_ignore", &ref)) return;
  switch (ref.kind) {
  case HH_REF_SMALL: hh_rec_ignore(ref.page, ref.index); break;
  case HH_REF_LARGE: ref.page->large_rec.site |= HH_SITE_IGNORED; break;
  case HH_REF_OVERSIZE: ref.oversize->site |= HH_SITE_IGNORED; break;
  }
}

/* ------------------------------------------------------------------ fork */

void hh_report_atfork_prepare(void) {
  atomic_fetch_add(&forks_waiting, 1);
  hh_lock_acquire(&report_lock);
  atomic_fetch_sub(&forks_waiting, 1);
  hh_site_atfork_prepare();
  hh_profile_atfork_prepare();
}

void hh_report_atfork_parent(void) {
  hh_profile_atfork_parent();
  hh_site_atfork_parent();
  hh_lock_release(&report_lock);
}

void hh_report_atfork_child(void) {
  /* Under the program's seccomp filter (inherited by the child) no report
   * is made, and the calls that ready one (getpid, the report's
   * descriptors' fcntl, fstat and close) may be killed for: helper-75's
   * fork children died of SIGSYS. report_pid 0: nothing of the report. */
  bool sandboxed = hh_sandboxed();
  hh_errors_atfork_child();
  hh_dest_atfork_child(sandboxed); /* under a filter, in memory only */
  if (!sandboxed) hh_maps_atfork_child();
  hh_profile_atfork_child();
  hh_site_atfork_child();
  hh_elf_atfork_child();
  hh_lock_init(&report_lock);
  report_pid = sandboxed ? 0 : (int)getpid();
  atomic_store(&exit_caller, 0); /* a thread of the parent's in exit() is not here */
}
