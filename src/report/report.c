/*
 * The exit report and mem_lhihiks: runs the scan, symbolizes the stacks of
 * the groups it found, and writes valgrind-like text or the JSON schema of
 * README.md.
 *
 * When the exit report runs matters: after the program's atexit handlers
 * and static destructors, so that what they free is not reported. The core
 * registers hh_report_exit with atexit at start-up, which runs after every
 * handler the program registers later; the ELF destructor below runs later
 * still (in the dynamic loader's _dl_fini, or the static binary's fini
 * array, both after all atexit handlers), so when this object's constructor
 * ran, the atexit call only stands back and the destructor reports. Either
 * way it runs once. _exit and death by a signal run neither: no report.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

#include "lock.h"
#include "report.h"

static hh_lock report_lock = HH_LOCK_INIT;
static _Atomic(int) exit_reported;
static bool destructor_armed;

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
  if (info->dlpi_name == NULL || info->dlpi_name[0] == '\0') return 1; /* the program itself */
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

/* ------------------------------------------------------------------ where exit was called */

struct exit_find {
  int state;
  uintptr_t sp;
};

static _Unwind_Reason_Code exit_cb(struct _Unwind_Context *ctx, void *arg) {
  struct exit_find *f = arg;
  uintptr_t ip = (uintptr_t)_Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  if (f->state == 1) { /* the caller of exit: its stack pointer at the call */
    f->sp = (uintptr_t)_Unwind_GetCFA(ctx);
    return _URC_END_OF_STACK;
  }
  Dl_info d;
  if (dladdr((void *)(ip - 1), &d) && d.dli_sname &&
      (d.dli_saddr == (void *)&exit || !strcmp(d.dli_sname, "exit")))
    f->state = 1;
  return _URC_NO_REASON;
}

/* The frames of exit(), the atexit machinery and of this report hold no
 * pointer of the program's, but their unset slots hold stale values from
 * the program's earlier calls. memcheck sees those as undefined and ignores
 * them; we scan the reporting thread's stack from exit's caller up. */
static uintptr_t exit_caller_sp(void) {
  struct exit_find f = {0, 0};
  _Unwind_Backtrace(exit_cb, &f);
  return f.sp;
}

/* ------------------------------------------------------------------ output */

/* stderr is not a terminal and is the same pipe or file as the program's
 * stdout (`2>&1`) or as its parent's: a report written there would land
 * inside the program's own output, or inside the output of the program
 * that started it (git collects its helpers' stderr with their stdout, as
 * do build drivers and test harnesses). */
static bool same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static bool stderr_is_output(void) {
  struct stat err, out;
  if (isatty(2) || fstat(2, &err) != 0) return false;
  if (fstat(1, &out) == 0 && same_file(&err, &out)) return true;
  char path[64] = "/proc/";
  size_t n = strlen(path);
  char num[24];
  int k = 0;
  for (unsigned long v = (unsigned long)getppid(); v; v /= 10) num[k++] = (char)('0' + v % 10);
  while (k) path[n++] = num[--k];
  memcpy(path + n, "/fd/1", sizeof "/fd/1");
  return stat(path, &out) == 0 && same_file(&err, &out);
}

static int open_output(const char *spec) {
  if (spec == NULL || !strcmp(spec, "stderr")) return 2;
  if (!strcmp(spec, "stdout")) return 1;
  char path[4096];
  size_t n = 0;
  for (const char *p = spec; *p && n < sizeof path - 24; p++) {
    if (p[0] == '%' && p[1] == 'p') {
      char num[24];
      int k = 0;
      for (unsigned long v = (unsigned long)getpid(); v; v /= 10) num[k++] = (char)('0' + v % 10);
      while (k) path[n++] = num[--k];
      p++;
    } else {
      path[n++] = *p;
    }
  }
  path[n] = '\0';
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    hh_dprintf(2, "hahalloc: cannot open HAHALLOC_OUTPUT=%s (%s); reporting on stderr\n", path,
               strerror(errno));
    return 2;
  }
  return fd;
}

/* The exit report's file descriptor: stderr by default, unless stderr is
 * someone's output (stderr_is_output): the program's output stays its own,
 * so a `cmd 2>&1 | parser` pipeline or a harness that compares output does
 * not see the report. HAHALLOC_OUTPUT (even set to stderr) asks for it
 * explicitly, and so does the hahalloc command for the program it runs
 * (HAHALLOC_CLI_PID). With HAHALLOC_LEAK_EXITCODE the report is still made,
 * into a sink, for its count of definite leaks. */
#define NO_REPORT (-1)
#define SINK (-2) /* hh_out drops what it cannot write */
static int open_exit_output(void) {
  if (!hh_opt.output_set && stderr_is_output()) return hh_opt.leak_exitcode ? SINK : NO_REPORT;
  return open_output(hh_opt.output);
}

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
  hh_out_printf(o, "==%d== (leak scan: %'llu KiB of roots, %d thread%s, %ld ms", pid,
                (unsigned long long)(s->root_bytes_scanned >> 10), s->threads, s->threads == 1 ? "" : "s", ms);
  if (s->threads_missed) hh_out_printf(o, "; %d thread%s did not stop", s->threads_missed, s->threads_missed == 1 ? "" : "s");
  hh_out_printf(o, ")\n");
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
  hh_out_printf(o, "],\"threads\":{\"stopped\":%d,\"missed\":%d},\"scan_ms\":%ld}\n", s->threads,
                s->threads_missed, ms);
}

/* ------------------------------------------------------------------ the report */

static hh_symbols *symbolize(const hh_scan *s) {
  uint32_t nsites = hh_site_count();
  size_t bits_size = (nsites / 8 + 1 + 7) & ~(size_t)7;
  uint8_t *seen = hh_meta_alloc(bits_size);
  size_t npcs = 0, cap = 1024;
  uintptr_t *pcs = hh_meta_alloc(cap * sizeof *pcs);
  if (seen == NULL || pcs == NULL) goto out;
  memset(seen, 0, bits_size);
  for (size_t i = 0; i < s->ngroups; i++) {
    uint32_t id = s->groups[i].site;
    if (id == 0 || id > nsites || (seen[id / 8] & (1u << (id % 8)))) continue;
    seen[id / 8] |= (uint8_t)(1u << (id % 8));
    int n = 0;
    const uintptr_t *f = hh_site_frames(id, &n);
    for (int k = 0; f && k < n; k++) {
      if (npcs == cap) {
        uintptr_t *bigger = hh_meta_alloc(cap * 2 * sizeof *pcs);
        if (bigger == NULL) goto out;
        memcpy(bigger, pcs, cap * sizeof *pcs);
        hh_meta_free(pcs, cap * sizeof *pcs);
        pcs = bigger;
        cap *= 2;
      }
      pcs[npcs++] = f[k];
    }
  }
out:;
  hh_symbols *sym = pcs ? hh_symbols_resolve(pcs, npcs) : NULL;
  if (seen) hh_meta_free(seen, bits_size);
  if (pcs) hh_meta_free(pcs, cap * sizeof *pcs);
  return sym;
}

/* Returns the number of definitely lost blocks. */
static uint64_t report(int fd, size_t min_size, bool at_exit, uintptr_t own_sp) {
  hh_scan s;
  memset(&s, 0, sizeof s);
  s.own_sp = own_sp;
  s.static_tls = static_tls_size();
  s.min_size = min_size;
  s.leak_check = true;
  dl_iterate_phdr(own_cb, &s);
  long t0 = now_ms();
  hh_scan_run(&s);
  long ms = now_ms() - t0;
  hh_symbols *sym = symbolize(&s);
  hh_out o;
  hh_out_open(&o, fd);
  if (hh_opt.json) json_report(&o, &s, sym, ms);
  else text_report(&o, &s, sym, at_exit, ms);
  hh_out_close(&o);
  hh_symbols_free(sym);
  hh_scan_free(&s);
  return s.kind_blocks[HH_DEFINITE];
}

static HH_NOINLINE void exit_report(uintptr_t fallback_sp) {
  int expect = 0;
  if (!hh_opt.summary || !atomic_compare_exchange_strong(&exit_reported, &expect, 1)) return;
  fflush(stdout); /* the program's output first, and in order */
  int fd = open_exit_output();
  if (fd == NO_REPORT) return;
  uintptr_t sp = exit_caller_sp();
  hh_lock_acquire(&report_lock);
  uint64_t definite = report(fd, hh_opt.min_size, true, sp ? sp : fallback_sp);
  hh_lock_release(&report_lock);
  if (fd > 2) close(fd);
  if (hh_opt.leak_exitcode && definite > 0) {
    fflush(NULL);
    _exit(hh_opt.leak_exitcode);
  }
}

void hh_report_exit(void) {
  if (destructor_armed) return; /* the destructor reports, later */
  exit_report((uintptr_t)__builtin_frame_address(0) + 16);
}

__attribute__((constructor)) static void report_constructor(void) { destructor_armed = true; }

__attribute__((destructor)) static void report_destructor(void) {
  exit_report((uintptr_t)__builtin_frame_address(0) + 16);
}

void hh_report_summary(int fd, size_t min_size) {
  /* callee-saved registers may hold the caller's pointers: spill them into
   * this frame, which is scanned */
  __builtin_unwind_init();
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0) - 64;
  if (fd == 1) fflush(stdout);
  hh_lock_acquire(&report_lock);
  report(fd, min_size, false, sp);
  hh_lock_release(&report_lock);
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
}
