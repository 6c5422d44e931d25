/*
 * HAHALLOC_* settings and the reporting policy, decided once at start-up
 * (before any allocation is served: getenv, getcwd with a buffer and access
 * never allocate). README.md documents each variable.
 *
 * Who reports. A leak report is made where it is asked for, and nowhere
 * else, because a report in someone else's stderr changes what their
 * program does (test harnesses compare helpers' stderr, build drivers
 * collect it):
 * - a program linked with -lhahalloc (the seed's use) reports at exit;
 * - `hahalloc -- PROG` reports for PROG: the command names the process in
 *   HAHALLOC_CLI_PID; other processes that inherit its environment (PROG's
 *   children) report only with HAHALLOC_TRACE_CHILDREN=1;
 * - a bare LD_PRELOAD is a silent drop-in malloc: no report and no call
 *   sites, unless a HAHALLOC_* variable that shapes a report is set.
 * HAHALLOC_SUMMARY=0 or 1 overrides the default of the last two.
 *
 * Secure execution (AT_SECURE: setuid, setgid, file capabilities). The
 * environment belongs to a less privileged user, so no HAHALLOC_* variable
 * and no PATH lookup has any effect: nothing is spawned, no file is opened,
 * and a linked program's report goes to its own stderr.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "internal.h"

hh_options hh_opt = {
    .report = 0,
    .on_error = 0,
    .output = NULL, /* stderr */
    .json = 0,
    .stack_depth = 1, /* the call site; more frames cost more per malloc */
    .show_reachable = 0,
    .min_size = 0,
    .leak_exitcode = 0,
    .verbose = 0,
    .trace_children = 0,
    .secure = 0,
    .linked = 0,
    .cli = 0,
    .addr2line = NULL,
    .symbolize_ms = 10000,
};
bool hh_sites = false;

static char output_path[4096];    /* HAHALLOC_OUTPUT made absolute */
static char addr2line_path[4096]; /* the symboliser, absolute */

static long parse_long(const char *name, const char *v, long lo, long hi, long fallback) {
  char *end;
  long x = strtol(v, &end, 10);
  if (end == v || *end != '\0' || x < lo || x > hi) {
    hh_dprintf(2, "hahalloc: warning: ignoring %s=%s (expected a number from %ld to %ld)\n", name, v,
               lo, hi);
    return fallback;
  }
  return x;
}

static int parse_bool(const char *name, const char *v, int fallback) {
  if (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on")) return 1;
  if (!strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off")) return 0;
  hh_dprintf(2, "hahalloc: warning: ignoring %s=%s (expected 0 or 1)\n", name, v);
  return fallback;
}

/* ------------------------------------------------------------------ linked or preloaded */

/* Whether the program itself was linked with hahalloc: statically (our code
 * lies in the executable) or dynamically (the executable names
 * libhahalloc in DT_NEEDED). Otherwise the library was preloaded
 * (LD_PRELOAD, /etc/ld.so.preload) or dlopened. Read from the auxiliary
 * vector and the executable's dynamic section, which the loader has
 * relocated in place (DT_STRTAB is then an address, else an offset from
 * the load bias). */
static bool in_executable;

static bool program_linked(void) {
  const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
  size_t n = getauxval(AT_PHNUM);
  if (ph == NULL || n == 0) return true; /* cannot tell: behave as the seed's library */
  uintptr_t bias = 0;
  const ElfW(Dyn) *dyn = NULL;
  for (size_t i = 0; i < n; i++)
    if (ph[i].p_type == PT_PHDR) bias = (uintptr_t)ph - ph[i].p_vaddr;
  uintptr_t me = (uintptr_t)&program_linked;
  for (size_t i = 0; i < n; i++) {
    if (ph[i].p_type == PT_LOAD && me >= bias + ph[i].p_vaddr && me < bias + ph[i].p_vaddr + ph[i].p_memsz) {
      in_executable = true; /* linked statically */
      return true;
    }
    if (ph[i].p_type == PT_DYNAMIC) dyn = (const ElfW(Dyn) *)(bias + ph[i].p_vaddr);
  }
  if (dyn == NULL) return true;
  uintptr_t strtab = 0;
  for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++)
    if (d->d_tag == DT_STRTAB) strtab = d->d_un.d_ptr;
  if (strtab == 0) return false;
  if (strtab < bias) strtab += bias;
  for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
    if (d->d_tag != DT_NEEDED) continue;
    const char *name = (const char *)(strtab + d->d_un.d_val);
    if (!strncmp(name, "libhahalloc.so", 14)) return true;
  }
  return false;
}

/* ------------------------------------------------------------------ paths */

/* `path` made absolute against the working directory at start-up, so a
 * program that changes directory still reports where the user asked. */
static const char *absolute(const char *path, char *buf, size_t size) {
  if (path[0] == '/') {
    if (strlen(path) >= size) return NULL;
    strcpy(buf, path);
    return buf;
  }
  if (getcwd(buf, size) == NULL) return NULL;
  size_t n = strlen(buf);
  if (n + 1 + strlen(path) >= size) return NULL;
  buf[n] = '/';
  strcpy(buf + n + 1, path);
  return buf;
}

/* The first executable `name` in PATH, as an absolute path. */
static const char *search_path(const char *name, char *buf, size_t size) {
  const char *path = getenv("PATH");
  if (path == NULL || *path == '\0') path = "/usr/local/bin:/usr/bin:/bin";
  size_t nlen = strlen(name);
  for (const char *p = path;;) {
    const char *colon = strchr(p, ':');
    size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
    if (dlen > 0 && p[0] == '/' && dlen + 1 + nlen < size) {
      memcpy(buf, p, dlen);
      buf[dlen] = '/';
      memcpy(buf + dlen + 1, name, nlen + 1);
      if (access(buf, X_OK) == 0) return buf;
    }
    if (colon == NULL) return NULL;
    p = colon + 1;
  }
}

static const char *find_addr2line(const char *v) {
  if (v != NULL && !strcmp(v, "0")) return NULL;
  if (v == NULL || *v == '\0') return search_path("addr2line", addr2line_path, sizeof addr2line_path);
  if (strchr(v, '/')) return absolute(v, addr2line_path, sizeof addr2line_path);
  return search_path(v, addr2line_path, sizeof addr2line_path);
}

/* ------------------------------------------------------------------ start-up */

static void read_environment(void) {
  const char *v;
  int summary = -1; /* unset */
  int asked = 0;    /* a variable that shapes a report is set */
  if ((v = getenv("HAHALLOC_SUMMARY")) != NULL) summary = parse_bool("HAHALLOC_SUMMARY", v, 1);
  if ((v = getenv("HAHALLOC_ON_ERROR")) != NULL) {
    if (!strcmp(v, "continue")) hh_opt.on_error = 1;
    else if (!strcmp(v, "abort")) hh_opt.on_error = 0;
    else hh_dprintf(2, "hahalloc: warning: ignoring HAHALLOC_ON_ERROR=%s (abort or continue)\n", v);
  }
  if ((v = getenv("HAHALLOC_OUTPUT")) != NULL && *v) {
    asked = 1;
    if (!strcmp(v, "stderr")) hh_opt.output = NULL;
    else if (!strcmp(v, "stdout")) hh_opt.output = "stdout";
    else if ((hh_opt.output = absolute(v, output_path, sizeof output_path)) == NULL)
      hh_dprintf(2, "hahalloc: warning: HAHALLOC_OUTPUT=%s is too long; reporting on stderr\n", v);
  }
  if ((v = getenv("HAHALLOC_FORMAT")) != NULL) {
    asked = 1;
    if (!strcmp(v, "json")) hh_opt.json = 1;
    else if (!strcmp(v, "text")) hh_opt.json = 0;
    else hh_dprintf(2, "hahalloc: warning: ignoring HAHALLOC_FORMAT=%s (text or json)\n", v);
  }
  if ((v = getenv("HAHALLOC_STACK_DEPTH")) != NULL) {
    asked = 1;
    hh_opt.stack_depth = (int)parse_long("HAHALLOC_STACK_DEPTH", v, 0, 64, hh_opt.stack_depth);
  }
  if ((v = getenv("HAHALLOC_SHOW_REACHABLE")) != NULL) {
    asked = 1;
    hh_opt.show_reachable = parse_bool("HAHALLOC_SHOW_REACHABLE", v, 0);
  }
  if ((v = getenv("HAHALLOC_MIN_SIZE")) != NULL) {
    asked = 1;
    hh_opt.min_size = (size_t)parse_long("HAHALLOC_MIN_SIZE", v, 0, 1L << 46, 0);
  }
  if ((v = getenv("HAHALLOC_LEAK_EXITCODE")) != NULL) {
    asked = 1;
    hh_opt.leak_exitcode = (int)parse_long("HAHALLOC_LEAK_EXITCODE", v, 0, 255, 0);
  }
  if ((v = getenv("HAHALLOC_TRACE_CHILDREN")) != NULL) {
    asked = 1;
    hh_opt.trace_children = parse_bool("HAHALLOC_TRACE_CHILDREN", v, 0);
  }
  if ((v = getenv("HAHALLOC_SYMBOLIZE_TIMEOUT_MS")) != NULL)
    hh_opt.symbolize_ms = (int)parse_long("HAHALLOC_SYMBOLIZE_TIMEOUT_MS", v, 0, 3600000, hh_opt.symbolize_ms);
  if ((v = getenv("HAHALLOC_VERBOSE")) != NULL) hh_opt.verbose = parse_bool("HAHALLOC_VERBOSE", v, 0);

  if ((v = getenv("HAHALLOC_CLI_PID")) != NULL) {
    /* under the hahalloc command: its program, and its children if traced */
    hh_opt.cli = strtol(v, NULL, 10) == (long)getpid() ? HH_CLI_PROGRAM : HH_CLI_CHILD;
    hh_opt.report = hh_opt.cli == HH_CLI_PROGRAM || hh_opt.trace_children;
    if (summary == 0) hh_opt.report = 0;
  } else {
    hh_opt.report = summary >= 0 ? summary : hh_opt.linked || asked;
  }
  if (hh_opt.report) hh_opt.addr2line = find_addr2line(getenv("HAHALLOC_ADDR2LINE"));
}

void hh_options_init(void) {
  hh_opt.secure = getauxval(AT_SECURE) != 0;
  hh_opt.linked = program_linked();
  if (hh_opt.secure) hh_opt.report = hh_opt.linked; /* nothing from the environment */
  else read_environment();
  /* In a static binary the C library allocates before it can unwind a
   * stack: call sites are captured once our constructor runs. */
  hh_sites = hh_opt.report && hh_opt.stack_depth > 0 && !in_executable;
  if (hh_opt.verbose)
    hh_dprintf(2,
               "hahalloc: pid %d: %s, report %s, output %s, format %s, stack depth %d, "
               "show reachable %s, min size %zu, leak exit code %d, on error %s, symboliser %s\n",
               (int)getpid(), hh_opt.linked ? "linked" : "preloaded", hh_opt.report ? "on" : "off",
               hh_opt.output ? hh_opt.output : "stderr", hh_opt.json ? "json" : "text",
               hh_opt.stack_depth, hh_opt.show_reachable ? "yes" : "no", hh_opt.min_size,
               hh_opt.leak_exitcode, hh_opt.on_error ? "continue" : "abort",
               hh_opt.addr2line ? hh_opt.addr2line : "none");
}

/* Our constructor: the program is about to run. */
void hh_options_started(void) { hh_sites = hh_opt.report && hh_opt.stack_depth > 0; }

/* A fork child of the hahalloc command's program is one of its children. */
void hh_options_atfork_child(void) {
  if (hh_opt.cli == HH_CLI_PROGRAM) {
    hh_opt.cli = HH_CLI_CHILD;
    if (!hh_opt.trace_children) {
      hh_opt.report = 0;
      hh_sites = false;
    }
  }
}
