/*
 * The report's formats: valgrind-like text, JSON (hahalloc(1) gives the
 * schema), valgrind's memcheck XML (protocol 4, for the tools that read
 * memcheck's), and collapsed stacks (flame graphs).
 *
 * The text speaks the user's language: leaks, their sizes and stacks. The
 * allocator's own words (roots, site numbers, the scan's figures) appear
 * with -v only, and in mem_lhihiks, the seed's summary.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "format.h"
#include "hooks.h"
#include "optable.h"
#include "options.h"
#include "report.h"

static const char *const kind_text[HH_KINDS] = {"definitely lost", "indirectly lost", "possibly lost",
                                                "still reachable"};

/* The record is listed in full. */
static bool lists(const hh_view *v, const hh_record *r) {
  return r->g.listed && (v->show_kinds & (1u << r->g.kind)) && v->leak_check == HH_LEAK_FULL;
}

/* ------------------------------------------------------------------ text */

void hh_write_frames(hh_out *o, const char *prefix, const hh_frame *f, int n) {
  for (int i = 0; i < n; i++) {
    const char *fn = f[i].function ? f[i].function : "???";
    if (!hh_format_hide_addresses)
      hh_out_printf(o, "%s    %s 0x%lX: %s", prefix, i == 0 ? "at" : "by", (unsigned long)f[i].pc, fn);
    else if (f[i].object) /* the offset in the object: no load address */
      hh_out_printf(o, "%s    %s +0x%lX: %s", prefix, i == 0 ? "at" : "by", (unsigned long)f[i].offset, fn);
    else
      hh_out_printf(o, "%s    %s ???: %s", prefix, i == 0 ? "at" : "by", fn);
    if (f[i].file)
      hh_out_printf(o, " (%s:%d)\n", hh_basename(f[i].file), f[i].line);
    else if (f[i].object)
      hh_out_printf(o, " (in %s)\n", f[i].object);
    else
      hh_out_printf(o, "\n");
  }
}

static void size_text(hh_out *o, const hh_record *r) {
  const hh_group *g = &r->g;
  if (g->kind == HH_DEFINITE && g->indirect_bytes)
    hh_out_printf(o, "%'llu (%'llu direct, %'llu indirect) bytes", (unsigned long long)(g->bytes + g->indirect_bytes),
                  (unsigned long long)g->bytes, (unsigned long long)g->indirect_bytes);
  else
    hh_out_printf(o, "%'llu bytes", (unsigned long long)g->bytes);
  hh_out_printf(o, " in %'llu blocks are %s", (unsigned long long)g->blocks, kind_text[g->kind]);
}

static void text_record(hh_out *o, int pid, const hh_view *v, const hh_record *r) {
  hh_out_printf(o, "==%d== ", pid);
  size_text(o, r);
  if (v->at_exit) hh_out_printf(o, " in loss record %u of %zu", r->number, v->numbered);
  if (hh_opt.verbose || !v->at_exit) {
    const hh_group *g = &r->g;
    if (g->blocks > 1 && g->min_size == g->max_size)
      hh_out_printf(o, ", %'llu bytes each", (unsigned long long)g->min_size);
    else if (g->blocks > 1)
      hh_out_printf(o, ", %'llu to %'llu bytes each", (unsigned long long)g->min_size, (unsigned long long)g->max_size);
  }
  if (hh_opt.verbose) hh_out_printf(o, " (site %u)", r->g.site);
  hh_out_printf(o, "\n");
  if (r->nframes == 0)
    hh_out_printf(o,
                  "==%d==    (no stack recorded: HAHALLOC_SUMMARY=0, num-callers=0, or allocated while "
                  "the stack could not be walked)\n",
                  pid);
  char prefix[24];
  hh_snformat(prefix, sizeof prefix, "==%d==", pid);
  hh_write_frames(o, prefix, r->frames, r->nframes);
  hh_out_printf(o, "==%d==\n", pid);
  if (hh_opt.gen_suppressions && v->at_exit) hh_supp_write(o, r->g.kind, r->frames, r->nframes);
}

static void root_table(hh_out *o, int pid, const hh_scan *s) {
  hh_out_printf(o, "==%d== use per root (size class):\n", pid);
  hh_out_printf(o, "==%d==   %4s %12s %14s %16s\n", pid, "root", "block size", "blocks in use", "bytes in use");
  for (int r = 0; r < HH_ROOTS + 2; r++) {
    if (!s->root_blocks[r]) continue;
    char size[24];
    if (r < HH_ROOTS)
      hh_snformat(size, sizeof size, "%u", hh_root_size[r]);
    else
      hh_snformat(size, sizeof size, "%s", r == HH_ROOTS ? "large" : "oversize");
    hh_out_printf(o, "==%d==   %4d %12s %'14llu %'16llu\n", pid, r, size, (unsigned long long)s->root_blocks[r],
                  (unsigned long long)s->root_bytes[r]);
  }
  hh_out_printf(o, "==%d==\n", pid);
}

/* valgrind's last line, which test scripts look for ("ERROR SUMMARY: 0
 * errors", helper-76: jq's shtest failed under the hahalloc command for
 * its want of it). Its errors: each misuse met (a double free, a bad
 * pointer, damage), in as many contexts as kinds and call stacks they
 * were met from (misuse.c), and with --leak-check=full each
 * loss record of the kinds --errors-for-leak-kinds names, as valgrind
 * counts them; suppressed, the loss records of those kinds that
 * suppressions took, from as many suppressions as took any. */
static void error_summary(hh_out *o, int pid, const hh_view *v) {
  uint64_t misuse = atomic_load_explicit(&hh_misuse_errors, memory_order_relaxed), leaks = 0, supp = 0, supps = 0;
  uint64_t contexts = atomic_load_explicit(&hh_misuse_contexts, memory_order_relaxed);
  if (v->leak_check == HH_LEAK_FULL) {
    for (size_t i = 0; i < v->nrec; i++)
      if (hh_opt.error_kinds & (1u << v->rec[i].g.kind)) leaks++;
    for (size_t i = 0; i < v->nsupps; i++)
      if (v->supps[i].errors) {
        supp += v->supps[i].errors;
        supps++;
      }
  }
  hh_out_printf(o, "==%d==\n==%d== ERROR SUMMARY: %llu errors from %llu contexts (suppressed: %llu from %llu)\n", pid,
                pid, (unsigned long long)(misuse + leaks), (unsigned long long)(contexts + leaks),
                (unsigned long long)supp, (unsigned long long)supps);
}

void hh_write_text(hh_out *o, const hh_view *v) {
  int pid = (int)getpid();
  const hh_scan *s = v->s;
  bool quiet = hh_opt.quiet && v->at_exit;
  if (!quiet) {
    hh_out_printf(o, "==%d== hahalloc heap summary for %s\n", pid, program_invocation_name);
    hh_out_printf(o, "==%d==     in use %s: %'llu bytes in %'llu blocks\n", pid, v->at_exit ? "at exit" : "now",
                  (unsigned long long)s->live_bytes, (unsigned long long)s->live_blocks);
    hh_out_printf(o, "==%d==   total heap usage: %'llu allocs, %'llu frees, %'llu bytes allocated\n", pid,
                  (unsigned long long)s->totals.allocs, (unsigned long long)s->totals.frees,
                  (unsigned long long)s->totals.bytes_allocated);
    hh_out_printf(o, "==%d==        peak in use: %'llu bytes, in whole blocks\n", pid,
                  (unsigned long long)s->totals.peak_bytes);
    hh_out_printf(o, "==%d==\n", pid);
    if (hh_opt.verbose || !v->at_exit) root_table(o, pid, s);
    if (s->failed)
      hh_out_printf(o, "==%d== (out of memory for the leak scan: some loss records are not listed)\n==%d==\n", pid,
                    pid);
  }
  if (v->profile && !quiet) hh_profile_write_text(o, pid, v);
  for (size_t i = 0; i < v->nrec; i++)
    if (lists(v, &v->rec[i])) text_record(o, pid, v, &v->rec[i]);
  uint64_t unshown = atomic_load_explicit(&hh_errors_unshown, memory_order_relaxed);
  if (v->at_exit && unshown > 0)
    hh_out_printf(o, "==%d== %'llu more errors were met and not shown (past the first %'d)\n", pid,
                  (unsigned long long)unshown, HH_ERRORS_SHOWN);
  if (quiet) return;
  if (v->leak_check == HH_LEAK_NO) {
    if (v->at_exit && s->live_blocks)
      hh_out_printf(o, "==%d== For a leak analysis, rerun with --leak-check=full\n", pid);
  } else {
    if (s->live_blocks == 0)
      hh_out_printf(o, "==%d== All heap blocks were freed -- no leaks are possible\n==%d==\n", pid, pid);
    hh_out_printf(o, "==%d== LEAK SUMMARY:\n", pid);
    for (int kind = 0; kind < HH_KINDS; kind++)
      hh_out_printf(o, "==%d==    %15s: %'llu bytes in %'llu blocks\n", pid, kind_text[kind],
                    (unsigned long long)v->kind_bytes[kind], (unsigned long long)v->kind_blocks[kind]);
    hh_out_printf(o, "==%d==         suppressed: %'llu bytes in %'llu blocks\n", pid, (unsigned long long)v->supp_bytes,
                  (unsigned long long)v->supp_blocks);
    if (v->at_exit && v->leak_check == HH_LEAK_SUMMARY &&
        v->kind_blocks[HH_DEFINITE] + v->kind_blocks[HH_INDIRECT] + v->kind_blocks[HH_POSSIBLE])
      hh_out_printf(o, "==%d== Rerun with --leak-check=full to see the stacks of the leaks\n", pid);
    else if (v->at_exit && v->leak_check == HH_LEAK_FULL && v->kind_blocks[HH_REACHABLE] &&
             !(v->show_kinds & (1u << HH_REACHABLE)))
      hh_out_printf(o, "==%d== Still reachable blocks are not listed: --show-leak-kinds=all lists them\n", pid);
  }
  if (s->min_size && v->leak_check == HH_LEAK_FULL)
    hh_out_printf(o, "==%d== (blocks listed above: at least %'llu bytes)\n", pid, (unsigned long long)s->min_size);
  if (s->threads_missed)
    hh_out_printf(o, "==%d== (%d thread%s could not be stopped: the figures above may be approximate)\n", pid,
                  s->threads_missed, s->threads_missed == 1 ? "" : "s");
  if (atomic_load_explicit(&hh_heap_damage, memory_order_relaxed))
    hh_out_printf(o,
                  "==%d== (the heap was found damaged, see the errors above: a free block whose free-list link was "
                  "overwritten can read as in use, so the figures above may count it, as a leak too)\n",
                  pid);
  if (s->runner_blocks)
    hh_out_printf(o,
                  "==%d== (%'llu bytes in %'llu blocks of threads that ran during the scan are counted as still "
                  "reachable)\n",
                  pid, (unsigned long long)s->runner_bytes, (unsigned long long)s->runner_blocks);
  if (v->at_exit) error_summary(o, pid, v);
  if (hh_opt.verbose) {
    hh_out_printf(o, "==%d== (leak scan: %'llu KiB of anchors, %d thread%s, %ld ms, %'zu KiB of memory)\n", pid,
                  (unsigned long long)(s->anchor_bytes >> 10), s->threads, s->threads == 1 ? "" : "s", v->ms,
                  s->scan_bytes >> 10);
    if (s->faults)
      hh_out_printf(o,
                    "==%d== (%'llu unreadable pages were skipped: guard pages, or memory unmapped "
                    "during the scan)\n",
                    pid, (unsigned long long)s->faults);
    for (size_t i = 0; i < v->nsupps; i++)
      if (v->supps[i].count)
        hh_out_printf(o, "==%d== (suppressed by %s: %'llu bytes in %'llu blocks, %s)\n", pid, v->supps[i].name,
                      (unsigned long long)v->supps[i].bytes, (unsigned long long)v->supps[i].blocks,
                      v->supps[i].origin);
  }
}

/* ------------------------------------------------------------------ JSON */

static void json_pair(hh_out *o, const char *key, uint64_t v, bool comma) {
  hh_out_printf(o, "\"%s\":%llu%s", key, (unsigned long long)v, comma ? "," : "");
}

void hh_write_json(hh_out *o, const hh_view *v) {
  const hh_scan *s = v->s;
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
  /* misuses and heap corruption met so far, and those of them not written (error.c) */
  hh_out_printf(o, "},\"errors\":%llu,\"errors_not_shown\":%llu,\"summary\":{",
                (unsigned long long)atomic_load_explicit(&hh_misuse_errors, memory_order_relaxed),
                (unsigned long long)atomic_load_explicit(&hh_errors_unshown, memory_order_relaxed));
  for (int k = 0; k < HH_KINDS; k++) {
    hh_out_printf(o, "\"%s\":{", hh_kind_names[k]);
    json_pair(o, "bytes", v->kind_bytes[k], true);
    json_pair(o, "blocks", v->kind_blocks[k], false);
    hh_out_printf(o, "},");
  }
  hh_out_printf(o, "\"suppressed\":{");
  json_pair(o, "bytes", v->supp_bytes, true);
  json_pair(o, "blocks", v->supp_blocks, false);
  hh_out_printf(o, "}},\"roots\":[");
  bool first = true;
  for (int r = 0; r < HH_ROOTS + 2; r++) {
    if (!s->root_blocks[r]) continue;
    hh_out_printf(o, "%s{\"root\":%d,\"block_size\":", first ? "" : ",", r);
    if (r < HH_ROOTS)
      hh_out_printf(o, "%u", hh_root_size[r]);
    else
      hh_out_printf(o, "null");
    hh_out_printf(o, ",");
    json_pair(o, "blocks", s->root_blocks[r], true);
    json_pair(o, "bytes", s->root_bytes[r], false);
    hh_out_printf(o, "}");
    first = false;
  }
  hh_out_printf(o, "],\"leaks\":[");
  first = true;
  for (size_t i = 0; i < v->nrec; i++) {
    const hh_record *r = &v->rec[i];
    const hh_group *g = &r->g;
    if (!g->listed) continue;
    hh_out_printf(o, "%s\n{\"kind\":\"%s\",", first ? "" : ",", hh_kind_names[g->kind]);
    first = false;
    json_pair(o, "bytes", g->bytes, true);
    json_pair(o, "blocks", g->blocks, true);
    json_pair(o, "min_size", g->min_size, true);
    json_pair(o, "max_size", g->max_size, true);
    if (g->kind == HH_DEFINITE) json_pair(o, "indirect_bytes", g->indirect_bytes, true);
    json_pair(o, "site", g->site, true);
    json_pair(o, "loss_record", r->number, true);
    hh_out_printf(o, "\"stack\":[");
    for (int f = 0; f < r->nframes; f++) {
      const hh_frame *fr = &r->frames[f];
      hh_out_printf(o, "%s{\"function\":", f ? "," : "");
      hh_out_json_str(o, fr->function);
      hh_out_printf(o, ",\"mangled\":");
      hh_out_json_str(o, fr->mangled);
      hh_out_printf(o, ",\"file\":");
      hh_out_json_str(o, fr->file);
      if (fr->file)
        hh_out_printf(o, ",\"line\":%d", fr->line);
      else
        hh_out_printf(o, ",\"line\":null");
      hh_out_printf(o, ",\"object\":");
      hh_out_json_str(o, fr->object);
      hh_out_printf(o, ",\"address\":\"%p\",\"offset\":\"%p\"}", (void *)fr->pc, (void *)fr->offset);
    }
    hh_out_printf(o, "]}");
  }
  hh_out_printf(o, "],\"suppressions\":[");
  first = true;
  for (size_t i = 0; i < v->nsupps; i++) {
    const hh_supp *sp = &v->supps[i];
    if (!sp->count) continue;
    hh_out_printf(o, "%s{\"name\":", first ? "" : ",");
    hh_out_json_str(o, sp->name);
    hh_out_printf(o, ",\"file\":");
    hh_out_json_str(o, sp->origin);
    hh_out_printf(o, ",");
    json_pair(o, "bytes", sp->bytes, true);
    json_pair(o, "blocks", sp->blocks, false);
    hh_out_printf(o, "}");
    first = false;
  }
  hh_out_printf(o, "],");
  if (v->profile) hh_profile_write_json(o, v);
  hh_out_printf(o, "\"threads\":{\"stopped\":%d,\"missed\":%d,\"ran_blocks\":%llu,\"ran_bytes\":%llu},\"scan_ms\":%ld,",
                s->threads, s->threads_missed, (unsigned long long)s->runner_blocks,
                (unsigned long long)s->runner_bytes, v->ms);
  hh_out_printf(o, "\"scan\":{\"ms\":%ld,\"bytes\":%zu,\"anchor_bytes\":%llu,\"faults\":%llu}}\n", v->ms, s->scan_bytes,
                (unsigned long long)s->anchor_bytes, (unsigned long long)s->faults);
}

/* ------------------------------------------------------------------ valgrind's XML */

/*
 * memcheck's XML, protocol 4 (valgrind's docs/internals/xml-output-protocol4.txt
 * describes it): the same header, one <error> per loss record listed, with
 * the leak kinds' names (Leak_DefinitelyLost...), <xwhat> with the text and
 * the leaked bytes and blocks, and the stack as <frame>s of <ip>, <obj>,
 * <fn>, <dir>, <file>, <line>; then the counts of errors and suppressions.
 */
static const char *const xml_kind[HH_KINDS] = {"Leak_DefinitelyLost", "Leak_IndirectlyLost", "Leak_PossiblyLost",
                                               "Leak_StillReachable"};

/* The program's command line, from /proc/self/cmdline. */
static void xml_argv(hh_out *o) {
  char buf[8192];
  ssize_t n = 0;
  int fd = hh_opt.secure ? -1 : open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
  }
  if (n < 0) n = 0;
  buf[n] = '\0';
  hh_out_printf(o, "  <argv>\n");
  bool first = true;
  for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1) {
    hh_out_printf(o, "    <%s>", first ? "exe" : "arg");
    hh_out_xml_str(o, buf + i);
    hh_out_printf(o, "</%s>\n", first ? "exe" : "arg");
    first = false;
  }
  if (first) {
    hh_out_printf(o, "    <exe>");
    hh_out_xml_str(o, program_invocation_name);
    hh_out_printf(o, "</exe>\n");
  }
  hh_out_printf(o, "  </argv>\n");
}

/* The options the report runs with, as valgrind lists its own. */
static void xml_vargv(hh_out *o) {
  hh_out_printf(o, "  <vargv>\n    <exe>hahalloc</exe>\n");
  const char *opts = hh_opt.secure ? NULL : getenv("HAHALLOC_OPTIONS");
  for (const char *p = opts; p && *p;) {
    while (*p == ':' || *p == ' ') p++;
    if (!*p) break;
    const char *e = p;
    char quote = 0;
    while (*e && (quote || (*e != ':' && *e != ' '))) {
      if (*e == '\'' || *e == '"') quote = quote == *e ? 0 : quote ? quote : *e;
      e++;
    }
    char arg[4200];
    size_t n = (size_t)(e - p) < sizeof arg - 3 ? (size_t)(e - p) : sizeof arg - 3;
    arg[0] = arg[1] = '-';
    memcpy(arg + 2, p, n);
    arg[n + 2] = '\0';
    hh_out_printf(o, "    <arg>");
    hh_out_xml_str(o, arg);
    hh_out_printf(o, "</arg>\n");
    p = e;
  }
  hh_out_printf(o, "  </vargv>\n");
}

extern int64_t hh_report_started_ns;

static void xml_time(hh_out *o) {
  int64_t ms = (hh_now_ns() - hh_report_started_ns) / 1000000;
  if (ms < 0) ms = 0;
  hh_out_printf(o, "00:%02ld:%02ld:%02ld.%03ld ", (long)(ms / 3600000), (long)(ms / 60000 % 60), (long)(ms / 1000 % 60),
                (long)(ms % 1000));
}

static void xml_frame(hh_out *o, const hh_frame *f) {
  hh_out_printf(o, "    <frame>\n      <ip>0x%lX</ip>\n", (unsigned long)f->pc);
  if (f->object) {
    hh_out_printf(o, "      <obj>");
    hh_out_xml_str(o, f->object);
    hh_out_printf(o, "</obj>\n");
  }
  if (f->function) {
    hh_out_printf(o, "      <fn>");
    hh_out_xml_str(o, f->function);
    hh_out_printf(o, "</fn>\n");
  }
  if (f->file) {
    const char *base = hh_basename(f->file);
    if (base != f->file) {
      hh_out_printf(o, "      <dir>");
      hh_out_xml_strn(o, f->file, (size_t)(base - 1 - f->file));
      hh_out_printf(o, "</dir>\n");
    }
    hh_out_printf(o, "      <file>");
    hh_out_xml_str(o, base);
    hh_out_printf(o, "</file>\n      <line>%d</line>\n", f->line);
  }
  hh_out_printf(o, "    </frame>\n");
}

static void xml_suppression(hh_out *o, const hh_record *r) {
  hh_out_printf(o,
                "  <suppression>\n    <sname>insert_a_suppression_name_here</sname>\n"
                "    <skind>Memcheck:Leak</skind>\n    <skaux>match-leak-kinds: %s</skaux>\n",
                hh_kind_names[r->g.kind]);
  for (int i = 0; i < r->nframes; i++) {
    const hh_frame *f = &r->frames[i];
    if (f->mangled) {
      hh_out_printf(o, "    <sframe> <fun>");
      hh_out_xml_str(o, f->mangled);
      hh_out_printf(o, "</fun> </sframe>\n");
    } else {
      hh_out_printf(o, "    <sframe> <obj>");
      hh_out_xml_str(o, f->object ? f->object : "*");
      hh_out_printf(o, "</obj> </sframe>\n");
    }
  }
  hh_out_printf(o, "    <rawtext>\n<![CDATA[\n");
  hh_supp_write(o, r->g.kind, r->frames, r->nframes);
  hh_out_printf(o, "]]>\n    </rawtext>\n  </suppression>\n");
}

void hh_write_xml(hh_out *o, const hh_view *v) {
  hh_out_printf(o,
                "<?xml version=\"1.0\"?>\n\n<valgrindoutput>\n\n<protocolversion>4</protocolversion>\n"
                "<protocoltool>memcheck</protocoltool>\n\n<preamble>\n"
                "  <line>hahalloc, a fast allocator with a leak report</line>\n"
                "  <line>Using hahalloc %s</line>\n  <line>Command: ",
                HH_VERSION);
  hh_out_xml_str(o, program_invocation_name);
  hh_out_printf(o, "</line>\n</preamble>\n\n<pid>%d</pid>\n<ppid>%d</ppid>\n<tool>memcheck</tool>\n\n<args>\n",
                (int)getpid(), (int)getppid());
  xml_vargv(o);
  xml_argv(o);
  hh_out_printf(o, "</args>\n\n<status>\n  <state>RUNNING</state>\n  <time>00:00:00:00.000 </time>\n</status>\n\n");
  hh_out_printf(o, "\n<status>\n  <state>FINISHED</state>\n  <time>");
  xml_time(o);
  hh_out_printf(o, "</time>\n</status>\n\n");
  for (size_t i = 0; i < v->nrec; i++) {
    const hh_record *r = &v->rec[i];
    if (!lists(v, r)) continue;
    hh_out_printf(o, "<error>\n  <unique>0x%x</unique>\n  <tid>1</tid>\n  <kind>%s</kind>\n  <xwhat>\n    <text>",
                  r->number - 1, xml_kind[r->g.kind]);
    size_text(o, r);
    hh_out_printf(o,
                  " in loss record %u of %zu</text>\n    <leakedbytes>%llu</leakedbytes>\n"
                  "    <leakedblocks>%llu</leakedblocks>\n  </xwhat>\n  <stack>\n",
                  r->number, v->numbered, (unsigned long long)(r->g.bytes + r->g.indirect_bytes),
                  (unsigned long long)r->g.blocks);
    for (int f = 0; f < r->nframes; f++) xml_frame(o, &r->frames[f]);
    hh_out_printf(o, "  </stack>\n");
    if (hh_opt.gen_suppressions) xml_suppression(o, r);
    hh_out_printf(o, "</error>\n\n");
  }
  hh_out_printf(o, "<errorcounts>\n</errorcounts>\n\n<suppcounts>\n");
  for (size_t i = 0; i < v->nsupps; i++) {
    if (!v->supps[i].count) continue;
    hh_out_printf(o, "  <pair>\n    <count>%llu</count>\n    <name>", (unsigned long long)v->supps[i].count);
    hh_out_xml_str(o, v->supps[i].name);
    hh_out_printf(o, "</name>\n  </pair>\n");
  }
  hh_out_printf(o, "</suppcounts>\n\n</valgrindoutput>\n\n");
}

/* ------------------------------------------------------------------ collapsed stacks */

/* One line per stack, outermost frame first, frames separated by ';', then
 * the bytes: the format flamegraph.pl, inferno and speedscope read. Stacks
 * that read the same (two sites in one function) are one line. */
typedef struct cline {
  char *stack;
  uint64_t bytes;
} cline;

static size_t put(char *buf, size_t at, size_t cap, const char *s, size_t n) {
  for (size_t i = 0; i < n && at + 1 < cap; i++) buf[at++] = s[i] == ';' ? ':' : s[i]; /* ';' separates frames */
  return at;
}

static size_t put_hex(char *buf, size_t at, size_t cap, uintptr_t v) {
  char hex[24];
  return put(buf, at, cap, hex, hh_snformat(hex, sizeof hex, "0x%lx", (unsigned long)v));
}

static char *collapsed_stack(hh_arena *a, const hh_frame *fr, int n) {
  char buf[16384];
  size_t at = 0;
  for (int i = n; i-- > 0;) {
    const hh_frame *f = &fr[i];
    if (f->function) {
      at = put(buf, at, sizeof buf, f->function, strlen(f->function));
    } else if (f->object) {
      const char *base = hh_basename(f->object);
      at = put(buf, at, sizeof buf, base, strlen(base));
      at = put(buf, at, sizeof buf, "+", 1);
      at = put_hex(buf, at, sizeof buf, f->offset);
    } else {
      at = put_hex(buf, at, sizeof buf, f->pc);
    }
    if (i && at + 1 < sizeof buf) buf[at++] = ';';
  }
  buf[at] = '\0';
  char *copy = hh_arena_alloc(a, at + 1);
  if (copy) memcpy(copy, buf, at + 1);
  return copy;
}

static bool cline_before(const cline *x, const cline *y) { return strcmp(x->stack, y->stack) < 0; }

void hh_collapsed_write(hh_out *o, hh_arena *a, const hh_symbols *sym, const uint32_t *site, const uint64_t *bytes,
                        const hh_frame *const *frames, const int *nframes, size_t n) {
  cline *v = hh_arena_alloc(a, (n + 1) * sizeof *v);
  hh_frame *tmp = hh_arena_alloc(a, HH_MAX_SHOWN * sizeof *tmp);
  if (v == NULL || tmp == NULL) return;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    const hh_frame *fr = frames ? frames[i] : tmp;
    int nf = frames ? nframes[i] : hh_site_display(sym, site[i], tmp, HH_MAX_SHOWN);
    if (nf == 0 || bytes[i] == 0) continue;
    v[m].stack = collapsed_stack(a, fr, nf);
    v[m].bytes = bytes[i];
    if (v[m].stack) m++;
  }
  HH_SORT(cline, v, m, cline_before); /* then one line per stack */
  for (size_t i = 0; i < m;) {
    uint64_t sum = 0;
    size_t j = i;
    while (j < m && !strcmp(v[j].stack, v[i].stack)) sum += v[j++].bytes;
    hh_out_printf(o, "%s %llu\n", v[i].stack, (unsigned long long)sum);
    i = j;
  }
}

void hh_write_collapsed(hh_out *o, const hh_view *v) {
  if (v->profile) {
    hh_profile_write_collapsed(o, v);
    return;
  }
  const hh_frame **frames = hh_arena_alloc(v->arena, (v->nrec + 1) * sizeof *frames);
  int *nframes = hh_arena_alloc(v->arena, (v->nrec + 1) * sizeof *nframes);
  uint64_t *bytes = hh_arena_alloc(v->arena, (v->nrec + 1) * sizeof *bytes);
  if (frames == NULL || nframes == NULL || bytes == NULL) return;
  for (size_t i = 0; i < v->nrec; i++) {
    frames[i] = v->rec[i].frames;
    nframes[i] = v->rec[i].nframes;
    bytes[i] = v->rec[i].g.bytes;
  }
  hh_collapsed_write(o, v->arena, NULL, NULL, bytes, frames, nframes, v->nrec);
}
