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
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

#include "lock.h"
#include "report.h"

static hh_lock report_lock = HH_LOCK_INIT;
static _Atomic(int) exit_reported;

static const char *const kind_name[HH_KINDS] = {"definite", "indirect", "possible", "reachable"};
static const char *const kind_text[HH_KINDS] = {"definitely lost", "indirectly lost", "possibly lost",
                                                 "still reachable"};

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
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

/* libhahalloc's own writable segments, when it is a shared object: its
 * tables hold no pointer of the program's, and the chunk table is large.
 * (Linked statically, its data is the program's: only the scan's own state
 * is left out then.) */
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
    s->excl[s->nexcl][0] = (uintptr_t)hh_chunk_tag;
    s->excl[s->nexcl][1] = (uintptr_t)hh_chunk_tag + sizeof hh_chunk_tag;
    s->nexcl++;
    return 1;
  }
  for (int i = 0; i < info->dlpi_phnum && s->nexcl < 8; i++) {
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

/* ------------------------------------------------------------------ output */

static void text_frame(hh_out *o, int pid, bool first, uintptr_t pc, const hh_line *l,
                       const hh_pcinfo *pi) {
  hh_out_printf(o, "==%d==    %s %p: ", pid, first ? "at" : "by", (void *)pc);
  hh_out_printf(o, "%s", l && l->function ? l->function : "???");
  if (l && l->file) hh_out_printf(o, " (%s:%d)\n", l->file, l->line);
  else if (pi && pi->object) hh_out_printf(o, " (in %s+0x%lx)\n", pi->object, (unsigned long)(pi->offset));
  else hh_out_printf(o, "\n");
}

static void text_stack(hh_out *o, int pid, const hh_symbols *sym, uint32_t site, int max_lines) {
  int n = 0;
  const uintptr_t *pcs = hh_site_frames(site, &n);
  if (pcs == NULL) {
    hh_out_printf(o, "==%d==    (no call site recorded: HAHALLOC_SUMMARY=0, HAHALLOC_STACK_DEPTH=0, or "
                     "allocated while the stack could not be walked)\n", pid);
    return;
  }
  int shown = 0;
  for (int i = 0; i < n && shown < max_lines; i++) {
    const hh_pcinfo *pi = hh_symbols_get(sym, pcs[i]);
    if (pi == NULL || pi->nlines == 0) {
      text_frame(o, pid, shown++ == 0, pcs[i], NULL, pi);
      continue;
    }
    for (int k = 0; k < pi->nlines && shown < max_lines; k++)
      text_frame(o, pid, shown++ == 0, pcs[i], &pi->lines[k], pi);
  }
}

static void text_report(hh_out *o, const hh_scan *s, const hh_symbols *sym, bool at_exit, long ms) {
  int pid = (int)getpid();
  const char *when = at_exit ? "at exit" : "now";
  hh_out_printf(o, "==%d== hahalloc heap summary for %s\n", pid, program_invocation_name);
  hh_out_printf(o, "==%d==     in use %s: %'llu bytes in %'llu blocks\n", pid, when,
                (unsigned long long)s->live_bytes, (unsigned long long)s->live_blocks);
  hh_out_printf(o, "==%d==   total heap usage: %'llu allocs, %'llu frees, %'llu bytes allocated\n", pid,
                (unsigned long long)s->totals.allocs, (unsigned long long)s->totals.frees,
                (unsigned long long)s->totals.bytes_allocated);
  hh_out_printf(o, "==%d==        peak in use: %'llu bytes, in whole blocks\n", pid,
                (unsigned long long)s->totals.peak_bytes);

  hh_out_printf(o, "==%d==\n==%d== use per root (size class):\n", pid, pid);
  hh_out_printf(o, "==%d==   %4s %12s %14s %16s\n", pid, "root", "block size", "blocks in use",
                "bytes in use");
  for (int r = 0; r < HH_ROOTS + 2; r++) {
    if (!s->root_blocks[r]) continue;
    char size[24];
    if (r < HH_ROOTS) {
      int k = 0;
      char rev[24];
      for (unsigned v = hh_root_size[r]; v; v /= 10) rev[k++] = (char)('0' + v % 10);
      int j = 0;
      while (k) size[j++] = rev[--k];
      size[j] = '\0';
    } else {
      strcpy(size, r == HH_ROOTS ? "large" : "oversize");
    }
    hh_out_printf(o, "==%d==   %4d %12s %'14llu %'16llu\n", pid, r, size, (unsigned long long)s->root_blocks[r],
                  (unsigned long long)s->root_bytes[r]);
  }

  if (s->failed)
    hh_out_printf(o, "==%d==\n==%d== (out of memory for the leak scan: totals only)\n", pid, pid);
  bool full_reachable = hh_opt.show_reachable || !at_exit;
  for (int kind = 0; kind < HH_KINDS; kind++) {
    for (size_t i = 0; i < s->ngroups; i++) {
      const hh_group *g = &s->groups[i];
      if (g->kind != kind) continue;
      hh_out_printf(o, "==%d==\n==%d== %'llu bytes in %'llu blocks are %s", pid, pid,
                    (unsigned long long)g->bytes, (unsigned long long)g->blocks, kind_text[kind]);
      if (g->blocks > 1 && g->min_size == g->max_size)
        hh_out_printf(o, ", %'llu bytes each", (unsigned long long)g->min_size);
      else if (g->blocks > 1)
        hh_out_printf(o, ", %'llu to %'llu bytes each", (unsigned long long)g->min_size,
                      (unsigned long long)g->max_size);
      hh_out_printf(o, " (site %u)\n", g->site);
      text_stack(o, pid, sym, g->site, kind == HH_REACHABLE && !full_reachable ? 1 : 64);
    }
  }
  if (s->live_blocks == 0) hh_out_printf(o, "==%d==\n==%d== All heap blocks were freed -- no leaks are possible\n", pid, pid);
  hh_out_printf(o, "==%d==\n==%d== LEAK SUMMARY:\n", pid, pid);
  for (int kind = 0; kind < HH_KINDS; kind++)
    hh_out_printf(o, "==%d==    %15s: %'llu bytes in %'llu blocks\n", pid, kind_text[kind],
                  (unsigned long long)s->kind_bytes[kind], (unsigned long long)s->kind_blocks[kind]);
  if (s->min_size && s->ngroups == 0)
    hh_out_printf(o, "==%d== (no block listed: none is of %'llu bytes or more)\n", pid,
                  (unsigned long long)s->min_size);
  else if (s->min_size)
    hh_out_printf(o, "==%d== (blocks listed above: at least %'llu bytes)\n", pid, (unsigned long long)s->min_size);
  hh_out_printf(o, "==%d== (leak scan: %'llu KiB of roots, %d thread%s, %ld ms)\n", pid,
                (unsigned long long)(s->anchor_bytes >> 10), s->threads, s->threads == 1 ? "" : "s", ms);
  if (s->threads_missed)
    hh_out_printf(o, "==%d== (%d thread%s could not be stopped: the figures above may be approximate)\n",
                  pid, s->threads_missed, s->threads_missed == 1 ? "" : "s");
  if (s->faults)
    hh_out_printf(o, "==%d== (%'llu unreadable pages were skipped: guard pages, or memory unmapped "
                  "during the scan)\n", pid, (unsigned long long)s->faults);
}

static void json_pair(hh_out *o, const char *key, uint64_t v, bool comma) {
  hh_out_printf(o, "\"%s\":%llu%s", key, (unsigned long long)v, comma ? "," : "");
}

static void json_report(hh_out *o, const hh_scan *s, const hh_symbols *sym, long ms) {
  hh_out_printf(o, "{\"pid\":%d,\"program\":", (int)getpid());
  hh_out_json_str(o, program_invocation_name);
  hh_out_printf(o, ",\"totals\":{");
  json_pair(o, "allocs", s->totals.allocs, true);
  json_pair(o, "frees", s->totals.frees, true);
  json_pair(o, "bytes_allocated", s->totals.bytes_allocated, true);
  json_pair(o, "peak_bytes", s->totals.peak_bytes, false);
  hh_out_printf(o, "},\"in_use\":{");
  json_pair(o, "bytes", s->live_bytes, true);
  json_pair(o, "blocks", s->live_blocks, false);
  hh_out_printf(o, "},\"summary\":{");
  for (int k = 0; k < HH_KINDS; k++) {
    hh_out_printf(o, "\"%s\":{", kind_name[k]);
    json_pair(o, "bytes", s->kind_bytes[k], true);
    json_pair(o, "blocks", s->kind_blocks[k], false);
    hh_out_printf(o, "}%s", k + 1 < HH_KINDS ? "," : "");
  }
  hh_out_printf(o, "},\"roots\":[");
  bool first = true;
  for (int r = 0; r < HH_ROOTS + 2; r++) {
    if (!s->root_blocks[r]) continue;
    hh_out_printf(o, "%s{\"root\":%d,\"block_size\":", first ? "" : ",", r);
    if (r < HH_ROOTS) hh_out_printf(o, "%u", hh_root_size[r]);
    else hh_out_printf(o, "null");
    hh_out_printf(o, ",");
    json_pair(o, "blocks", s->root_blocks[r], true);
    json_pair(o, "bytes", s->root_bytes[r], false);
    hh_out_printf(o, "}");
    first = false;
  }
  hh_out_printf(o, "],\"leaks\":[");
  first = true;
  for (int kind = 0; kind < HH_KINDS; kind++)
    for (size_t i = 0; i < s->ngroups; i++) {
      const hh_group *g = &s->groups[i];
      if (g->kind != kind) continue;
      hh_out_printf(o, "%s\n{\"kind\":\"%s\",", first ? "" : ",", kind_name[kind]);
      first = false;
      json_pair(o, "bytes", g->bytes, true);
      json_pair(o, "blocks", g->blocks, true);
      json_pair(o, "min_size", g->min_size, true);
      json_pair(o, "max_size", g->max_size, true);
      json_pair(o, "site", g->site, true);
      hh_out_printf(o, "\"stack\":[");
      int n = 0;
      const uintptr_t *pcs = hh_site_frames(g->site, &n);
      bool ffirst = true;
      for (int f = 0; pcs && f < n; f++) {
        const hh_pcinfo *pi = hh_symbols_get(sym, pcs[f]);
        int lines = pi && pi->nlines ? pi->nlines : 1;
        for (int k = 0; k < lines; k++) {
          const hh_line *l = pi && pi->nlines ? &pi->lines[k] : NULL;
          hh_out_printf(o, "%s{\"function\":", ffirst ? "" : ",");
          ffirst = false;
          hh_out_json_str(o, l ? l->function : NULL);
          hh_out_printf(o, ",\"file\":");
          hh_out_json_str(o, l ? l->file : NULL);
          if (l && l->file) hh_out_printf(o, ",\"line\":%d", l->line);
          else hh_out_printf(o, ",\"line\":null");
          hh_out_printf(o, ",\"object\":");
          hh_out_json_str(o, pi ? pi->object : NULL);
          hh_out_printf(o, ",\"address\":\"%p\",\"offset\":\"%p\"}", (void *)pcs[f],
                        (void *)(pi ? pi->offset : pcs[f]));
        }
      }
      hh_out_printf(o, "]}");
    }
  hh_out_printf(o, "],\"threads\":{\"stopped\":%d,\"missed\":%d},\"scan_ms\":%ld,", s->threads,
                s->threads_missed, ms);
  hh_out_printf(o, "\"scan\":{\"ms\":%ld,\"bytes\":%zu,\"anchor_bytes\":%llu,\"faults\":%llu}}\n", ms,
                s->scan_bytes, (unsigned long long)s->anchor_bytes, (unsigned long long)s->faults);
}

/* ------------------------------------------------------------------ the report */

static hh_symbols *symbolize(const hh_scan *s) {
  uint32_t nsites = hh_site_count();
  size_t bits_size = nsites / 8 + 1;
  uint8_t *seen = hh_report_map(bits_size);
  size_t npcs = 0, cap = 1024;
  uintptr_t *pcs = hh_report_map(cap * sizeof *pcs);
  if (seen == NULL || pcs == NULL) goto out;
  for (size_t i = 0; i < s->ngroups; i++) {
    uint32_t id = s->groups[i].site;
    if (id == 0 || id > nsites || (seen[id / 8] & (1u << (id % 8)))) continue;
    seen[id / 8] |= (uint8_t)(1u << (id % 8));
    int n = 0;
    const uintptr_t *f = hh_site_frames(id, &n);
    for (int k = 0; f && k < n; k++) {
      if (npcs == cap) {
        uintptr_t *bigger = hh_report_map(cap * 2 * sizeof *pcs);
        if (bigger == NULL) goto out;
        memcpy(bigger, pcs, cap * sizeof *pcs);
        hh_report_unmap(pcs, cap * sizeof *pcs);
        pcs = bigger;
        cap *= 2;
      }
      pcs[npcs++] = f[k];
    }
  }
out:;
  hh_symbols *sym = pcs ? hh_symbols_resolve(pcs, npcs) : NULL;
  hh_report_unmap(seen, bits_size);
  hh_report_unmap(pcs, cap * sizeof *pcs);
  return sym;
}

/* Scans and writes one report to `dest`. Returns the number of definitely
 * lost blocks, or -1 when no scan could be made. */
static int64_t report(hh_dest_t dest, size_t min_size, bool at_exit, uintptr_t own_sp,
                      const uintptr_t *regs, int nregs, int64_t deadline) {
  hh_scan s;
  memset(&s, 0, sizeof s);
  s.own_sp = own_sp;
  for (int i = 0; i < nregs && i < 8; i++) s.own_regs[s.nown_regs++] = regs[i];
  s.static_tls = static_tls_size();
  s.min_size = min_size;
  dl_iterate_phdr(own_cb, &s);
  long t0 = now_ms();
  const char *why = hh_scan_run(&s, deadline);
  long ms = now_ms() - t0;
  if (why != NULL) {
    hh_out o;
    hh_out_open(&o, dest);
    hh_out_printf(&o, "==%d== hahalloc: no leak report: %s\n", (int)getpid(), why);
    hh_out_close(&o);
    return -1;
  }
  if (dest.fd >= 0) {
    hh_symbols *sym = symbolize(&s);
    hh_out o;
    hh_out_open(&o, dest);
    if (hh_opt.json) json_report(&o, &s, sym, ms);
    else text_report(&o, &s, sym, at_exit, ms);
    hh_out_close(&o);
    hh_symbols_free(sym);
  }
  hh_scan_free(&s);
  return (int64_t)s.kind_blocks[HH_DEFINITE];
}

/* ------------------------------------------------------------------ at exit */

#define LOCK_WAIT_NS ((int64_t)2000000000) /* the most the report waits for a lock */

static int report_pid; /* the process that reports: not a vfork child sharing our memory */
static _Atomic(int) atexit_passed, destructor_passed;

void hh_report_init(void) {
  report_pid = (int)getpid();
  hh_dest_init();
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

/* The registers a function was called with that it must preserve: the
 * caller's pointers may live only there. rbp is the caller's too, saved by
 * our prologue. (A fallback for when the exit's caller cannot be found.) */
#if defined(__x86_64__)
#define CALLEE_REGS 6
#define SAVE_CALLEE_REGS(r)                                                                      \
  do {                                                                                           \
    __asm__ volatile("movq %%rbx, %0\n\tmovq %%r12, %1\n\tmovq %%r13, %2\n\t"                   \
                     "movq %%r14, %3\n\tmovq %%r15, %4"                                          \
                     : "=m"((r)[0]), "=m"((r)[1]), "=m"((r)[2]), "=m"((r)[3]), "=m"((r)[4]));     \
    (r)[5] = *(uintptr_t *)__builtin_frame_address(0);                                           \
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

static bool is_exit_function(uintptr_t ip) {
  uintptr_t fns[] = {(uintptr_t)&exit, (uintptr_t)&_exit, (uintptr_t)&_Exit, (uintptr_t)&quick_exit};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
    if (ip > fns[i] && ip - fns[i] < 64) return true; /* all are a call or two */
  Dl_info d;
  return dladdr((void *)(ip - 1), &d) && d.dli_sname &&
         (!strcmp(d.dli_sname, "exit") || !strcmp(d.dli_sname, "_exit") || !strcmp(d.dli_sname, "_Exit"));
}

static _Unwind_Reason_Code exit_point_cb(struct _Unwind_Context *ctx, void *arg) {
  struct exit_point *e = arg;
  uintptr_t ip = (uintptr_t)_Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  if (e->state == 0) {
    if (is_exit_function(ip)) {
      e->state = 1;
      e->sp = (uintptr_t)_Unwind_GetCFA(ctx); /* the caller's stack pointer at the call */
    }
    return _URC_NO_REASON;
  }
#if defined(__x86_64__)
  static const int callee_saved[] = {3, 6, 12, 13, 14, 15}; /* DWARF: rbx rbp r12-r15 */
  for (size_t i = 0; i < sizeof callee_saved / sizeof callee_saved[0]; i++)
    e->regs[e->nregs++] = (uintptr_t)_Unwind_GetGR(ctx, callee_saved[i]);
#endif
  e->state = 2;
  return _URC_END_OF_STACK;
}

struct stack_end {
  uintptr_t addr, end;
};

static bool stack_end_cb(const hh_map_line *m, void *arg) {
  struct stack_end *f = arg;
  if (f->addr >= m->start && f->addr < m->end) {
    f->end = m->end;
    return false;
  }
  return true;
}

/* Without an unwinder (a static binary whose destructors deregistered its
 * frame information), the caller's frame starts just above the return
 * address into exit() or _exit(), which are a call or two long: the
 * machinery's frames below it are left out, its saved registers with
 * them. */
static bool find_exit_point_by_return(struct exit_point *e, uintptr_t from) {
  struct stack_end f = {from, 0};
  hh_maps_each(stack_end_cb, &f);
  for (uintptr_t a = from & ~(uintptr_t)7; a + 8 <= f.end && a - from < (256u << 10); a += 8) {
    uintptr_t v = *(const uintptr_t *)a;
    if (v > (uintptr_t)&exit && v - (uintptr_t)&exit < 64) {
      e->sp = a + 8;
      return true;
    }
  }
  return false;
}

static bool find_exit_point(struct exit_point *e) {
  memset(e, 0, sizeof *e);
  if (!hh_unwinder_works()) return find_exit_point_by_return(e, (uintptr_t)__builtin_frame_address(0));
  _Unwind_Backtrace(exit_point_cb, e);
  return e->state == 2 && e->sp != 0;
}

static HH_NOINLINE void exit_report(uintptr_t sp, const uintptr_t *regs, int nregs, bool by_exit) {
  if (!hh_opt.report || (int)getpid() != report_pid) return;
  int expect = 0;
  if (!atomic_compare_exchange_strong(&exit_reported, &expect, 1)) return;
  int saved = errno;
  int64_t deadline = hh_now_ns() + LOCK_WAIT_NS;
  if (by_exit && ftrylockfile(stdout) == 0) { /* the program's output first, and in order */
    fflush_unlocked(stdout);
    funlockfile(stdout);
  }
  if (!hh_lock_acquire_until(&report_lock, deadline)) {
    errno = saved;
    return; /* a report is being made (mem_lhihiks in another thread) */
  }
  struct exit_point e;
  if (find_exit_point(&e)) {
    sp = e.sp;
    if (e.nregs > 0) {
      regs = e.regs;
      nregs = e.nregs;
    }
  }
  hh_dest_t dest = hh_dest_open();
  int64_t definite = 0;
  if (dest.fd >= 0 || hh_opt.leak_exitcode)
    definite = report(dest, hh_opt.min_size, true, sp, regs, nregs, deadline);
  hh_dest_close(dest);
  hh_lock_release(&report_lock);
  errno = saved;
  if (hh_opt.leak_exitcode && definite > 0) {
    if (by_exit) flush_streams();
    syscall(SYS_exit_group, hh_opt.leak_exitcode);
  }
}

/* The atexit handler and the destructor: the second of them reports. */
static HH_NOINLINE void report_atexit(void *unused) {
  (void)unused;
  uintptr_t regs[CALLEE_REGS];
  SAVE_CALLEE_REGS(regs);
  int expect = 0;
  if (atomic_load(&destructor_passed)) exit_report(CALLER_SP(), regs, CALLEE_REGS, true);
  else atomic_compare_exchange_strong(&atexit_passed, &expect, 1);
}

__attribute__((destructor(101))) static HH_NOINLINE void report_destructor(void) {
  uintptr_t regs[CALLEE_REGS];
  SAVE_CALLEE_REGS(regs);
  int expect = 0;
  if (atomic_load(&atexit_passed)) exit_report(CALLER_SP(), regs, CALLEE_REGS, true);
  else atomic_compare_exchange_strong(&destructor_passed, &expect, 1);
}

/* Registered with no object handle: atexit() from a shared object would tie
 * the handler to it, and the loader would run it with that object's
 * destructors, before the libraries unloaded after it. */
extern int __cxa_atexit(void (*fn)(void *), void *arg, void *dso);

void hh_report_register_exit(void) {
  if (__cxa_atexit(report_atexit, NULL, NULL) != 0) atomic_store(&atexit_passed, 1);
}

/* _exit and _Exit end the process without exit handlers: the report is made
 * here, then the process ends as glibc's _exit ends it. (glibc's own exit()
 * reaches its internal _exit, not this one.) */
static HH_NOINLINE __attribute__((noreturn)) void exit_now(int status) {
  uintptr_t regs[CALLEE_REGS];
  SAVE_CALLEE_REGS(regs);
  if (atomic_load(&hh_initialised) == 2) exit_report(CALLER_SP(), regs, CALLEE_REGS, false);
  for (;;) {
    syscall(SYS_exit_group, status);
    syscall(SYS_exit, status);
  }
}

HH_EXPORT __attribute__((noreturn)) void _exit(int status) { exit_now(status); }
HH_EXPORT __attribute__((noreturn)) void _Exit(int status) { exit_now(status); }

/* ------------------------------------------------------------------ mem_lhihiks */

void hh_report_summary(int fd, size_t min_size) {
  uintptr_t regs[CALLEE_REGS];
  SAVE_CALLEE_REGS(regs);
  int saved = errno;
  if (fd == 1 && ftrylockfile(stdout) == 0) {
    fflush_unlocked(stdout);
    funlockfile(stdout);
  }
  int64_t deadline = hh_now_ns() + LOCK_WAIT_NS;
  if (hh_lock_acquire_until(&report_lock, deadline)) {
    report((hh_dest_t){fd, false}, min_size, false, CALLER_SP(), regs, CALLEE_REGS, deadline);
    hh_lock_release(&report_lock);
  }
  errno = saved;
}

/* ------------------------------------------------------------------ fork */

void hh_report_atfork_prepare(void) {
  hh_lock_acquire(&report_lock);
  hh_site_atfork_prepare();
}

void hh_report_atfork_parent(void) {
  hh_site_atfork_parent();
  hh_lock_release(&report_lock);
}

void hh_report_atfork_child(void) {
  hh_site_atfork_child();
  hh_lock_init(&report_lock);
  report_pid = (int)getpid();
}
