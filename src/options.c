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
 * Options come from the HAHALLOC_* variables, then from HAHALLOC_OPTIONS,
 * one variable for them all in valgrind's and LeakSanitizer's names
 * ("leak-check=full:show-leak-kinds=all", src/optable.h), which the
 * hahalloc command sets from its command line; later settings win.
 *
 * Secure execution (AT_SECURE: setuid, setgid, file capabilities). The
 * environment belongs to a less privileged user, so no HAHALLOC_* variable
 * and no PATH lookup has any effect: nothing is spawned, no file is opened,
 * and a linked program's report goes to its own stderr. That report and
 * every error message show no address (hh_format_hide_addresses): a stack's
 * frames show their offsets in their objects.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "format.h"
#include "guard.h"
#include "internal.h"
#include "optable.h"
#include "options.h"
#include "procstart.h"

/* The defaults; every other setting starts at 0 (off, none, stderr). */
hh_options hh_opt = {
    .format = HH_FORMAT_TEXT,
    .leak_check = HH_LEAK_FULL,
    .show_kinds = 1u << 0 | 1u << 2, /* valgrind's default: definite, possible */
    .error_kinds = 1u << 0 | 1u << 2,
    .heuristics = 15, /* all, as valgrind's default */
    .stack_depth = 1, /* the call site, past the runtime's and the standard library's frames */
    .default_suppressions = 1,
    .symbolize_ms = 10000,
    .error_limit = 1,
};
bool hh_sites = false;
bool hh_slack_records = false; /* until the options say no record needs a site */
bool hh_packed_records = false;
bool hh_packed_made = false;
bool hh_slack_made = false;

/* Pages keep call sites in their records while anything reads them; the
 * guard's pages keep full records (its canary widens the slack). */
static void choose_record_form(void) {
  hh_slack_records = !hh_opt.report && !hh_opt.profile && !hh_guard;
  hh_packed_records = !hh_slack_records && !hh_guard;
  if (hh_packed_records) hh_packed_made = true;
  if (hh_slack_records) hh_slack_made = true;
}

static char output_path[4096];    /* log-file made absolute */
static char xml_path[4096];       /* xml-file made absolute */
static char addr2line_path[4096]; /* the symboliser, absolute */
static char supp_paths[16384];    /* suppression files, absolute, one after another */
static size_t supp_used;

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

/* ------------------------------------------------------------------ HAHALLOC_OPTIONS */

static int stack_depth_set; /* num-callers was given: --profile keeps it */

/* The absolute form of `v` in `buf`, or NULL (too long, and said so). */
static const char *path_option(const char *name, const char *v, char *buf, size_t size) {
  const char *p = absolute(v, buf, size);
  if (p == NULL) hh_dprintf(2, "hahalloc: warning: ignoring %s=%s (too long)\n", name, v);
  return p;
}

static const char *output_option(const char *name, const char *v) {
  if (!strcmp(v, "stderr")) return NULL;
  if (!strcmp(v, "stdout")) return "stdout";
  return path_option(name, v, output_path, sizeof output_path);
}

static void add_suppressions(const char *name, const char *v) {
  if (hh_opt.nsupp_files == HH_MAX_SUPP_FILES) {
    hh_dprintf(2, "hahalloc: warning: ignoring %s=%s (at most %d files)\n", name, v, HH_MAX_SUPP_FILES);
    return;
  }
  char *buf = supp_paths + supp_used;
  const char *p = path_option(name, v, buf, sizeof supp_paths - supp_used);
  if (p == NULL) return;
  supp_used += strlen(buf) + 1;
  hh_opt.supp_files[hh_opt.nsupp_files++] = buf;
}

/* Applies one option; false when the value is not one of the option's. */
static bool apply(const hh_optdef *d, const char *v) {
  if (!hh_opt_valid(d, v)) return false;
  switch (d->id) {
  case HH_O_LEAK_CHECK: {
    static const int levels[] = {HH_LEAK_NO, HH_LEAK_SUMMARY, HH_LEAK_FULL, HH_LEAK_FULL};
    hh_opt.leak_check = levels[hh_opt_choice(d->choices, v)];
    break;
  }
  case HH_O_SHOW_LEAK_KINDS: hh_opt.show_kinds = (unsigned)hh_opt_kinds(v); break;
  case HH_O_ERRORS_FOR_LEAK_KINDS: hh_opt.error_kinds = (unsigned)hh_opt_kinds(v); break;
  case HH_O_LEAK_CHECK_HEURISTICS: hh_opt.heuristics = (unsigned)hh_opt_heuristics(v); break;
  case HH_O_SHOW_REACHABLE: /* valgrind: yes lists every kind, no the default ones */
    hh_opt.show_kinds = hh_opt_bool(v) ? 15u : 1u << 0 | 1u << 2;
    break;
  case HH_O_SHOW_POSSIBLY_LOST:
    if (hh_opt_bool(v))
      hh_opt.show_kinds |= 1u << 2;
    else
      hh_opt.show_kinds &= ~(1u << 2);
    break;
  case HH_O_LOG_FILE: hh_opt.output = output_option(d->name, v); break;
  case HH_O_LOG_PATH: { /* LeakSanitizer writes PATH.<pid> */
    char with_pid[4096];
    size_t n = strlen(v);
    if (n + 4 > sizeof with_pid) return false;
    memcpy(with_pid, v, n);
    memcpy(with_pid + n, ".%p", 4);
    hh_opt.output = path_option(d->name, with_pid, output_path, sizeof output_path);
    break;
  }
  case HH_O_XML:
    if (hh_opt_bool(v))
      hh_opt.format = HH_FORMAT_XML;
    else if (hh_opt.format == HH_FORMAT_XML)
      hh_opt.format = HH_FORMAT_TEXT;
    break;
  case HH_O_XML_FILE: hh_opt.xml_output = path_option(d->name, v, xml_path, sizeof xml_path); break;
  case HH_O_NUM_CALLERS:
    hh_opt.stack_depth = (int)strtol(v, NULL, 10);
    stack_depth_set = 1;
    break;
  case HH_O_TRACE_CHILDREN: hh_opt.trace_children = hh_opt_bool(v); break;
  case HH_O_SUPPRESSIONS: add_suppressions(d->name, v); break;
  case HH_O_DEFAULT_SUPPRESSIONS: hh_opt.default_suppressions = hh_opt_bool(v); break;
  case HH_O_GEN_SUPPRESSIONS: hh_opt.gen_suppressions = strcmp(v, "no") != 0; break;
  case HH_O_QUIET: hh_opt.quiet = hh_opt_bool(v); break;
  case HH_O_VERBOSE: hh_opt.verbose = d->type == HH_OT_NUM ? strtol(v, NULL, 10) > 0 : hh_opt_bool(v); break;
  case HH_O_ERROR_EXITCODE: hh_opt.leak_exitcode = (int)strtol(v, NULL, 10); break;
  case HH_O_FORMAT: hh_opt.format = hh_opt_choice(d->choices, v); break;
  case HH_O_JSON:
    if (hh_opt_bool(v)) hh_opt.format = HH_FORMAT_JSON;
    break;
  case HH_O_MIN_SIZE: hh_opt.min_size = (size_t)strtol(v, NULL, 10); break;
  case HH_O_ON_ERROR: hh_opt.on_error = strcmp(v, "continue") == 0; break;
  case HH_O_ERROR_LIMIT: hh_opt.error_limit = hh_opt_bool(v); break;
  case HH_O_SYMBOLIZE_TIMEOUT: hh_opt.symbolize_ms = (int)strtol(v, NULL, 10); break;
  case HH_O_PROFILE: hh_opt.profile = hh_opt_bool(v); break;
  case HH_O_GUARD: hh_opt.guard = hh_opt_bool(v) > 0; break;
  default: break; /* summary: read by the caller; the command's own */
  }
  return true;
}

/* HAHALLOC_OPTIONS: "key=value:key=value" (LeakSanitizer's form), keys
 * without dashes, separated by ':' or white space; a value may be quoted
 * with ' or " (a path holding ':'). Later keys win. */
static void read_options(const char *s, int *summary, int *asked) {
  while (*s) {
    while (*s == ':' || *s == ' ' || *s == '\t' || *s == '\n') s++;
    if (*s == '\0') break;
    const char *key = s;
    while (*key == '-') key++; /* "--leak-check=full" is read as "leak-check=full" */
    s = key;
    while (*s && *s != '=' && *s != ':' && *s != ' ' && *s != '\t' && *s != '\n') s++;
    size_t klen = (size_t)(s - key);
    char value[4096];
    size_t vlen = 0;
    bool has_value = *s == '=';
    if (has_value) {
      s++;
      char quote = (*s == '\'' || *s == '"') ? *s++ : 0;
      while (*s && (quote ? *s != quote : (*s != ':' && *s != ' ' && *s != '\t' && *s != '\n'))) {
        if (vlen + 1 < sizeof value) value[vlen++] = *s;
        s++;
      }
      if (quote && *s == quote) s++;
    }
    value[vlen] = '\0';
    const hh_optdef *d = hh_optdef_find(key, klen);
    if (d == NULL || d->command_only) {
      if (d == NULL) hh_dprintf(2, "hahalloc: warning: HAHALLOC_OPTIONS: unknown option '%.*s'\n", (int)klen, key);
      continue;
    }
    /* Any option of the report asks for one, its value right or not: a
     * value out of range (num-callers=100) is warned about and ignored,
     * and must not turn the report off without a word. What a misused
     * call does (on-error, error-limit, guard) is not a report. */
    if (d->id != HH_O_SUMMARY && d->id != HH_O_ON_ERROR && d->id != HH_O_ERROR_LIMIT && d->id != HH_O_GUARD) *asked = 1;
    if (!has_value) {
      if (d->type != HH_OT_FLAG) {
        hh_dprintf(2, "hahalloc: warning: HAHALLOC_OPTIONS: '%.*s' needs a value\n", (int)klen, key);
        continue;
      }
      strcpy(value, "yes");
    }
    if (!apply(d, value)) {
      hh_dprintf(2, "hahalloc: warning: HAHALLOC_OPTIONS: ignoring %.*s=%s\n", (int)klen, key, value);
      continue;
    }
    if (d->id == HH_O_SUMMARY) *summary = hh_opt_bool(value);
  }
}

/* ------------------------------------------------------------------ start-up */

/* The variable `name`, applied as option `opt`; returns whether it is set. */
static bool variable(const char *name, const char *opt) {
  const char *v = getenv(name);
  if (v == NULL) return false;
  const hh_optdef *d = hh_optdef_find(opt, strlen(opt));
  if (!apply(d, v)) hh_dprintf(2, "hahalloc: warning: ignoring %s=%s\n", name, v);
  return true;
}

static void read_environment(void) {
  const char *v;
  int summary = -1; /* unset */
  int asked = 0;    /* a variable that shapes a report is set */
  if ((v = getenv("HAHALLOC_SUMMARY")) != NULL) {
    summary = hh_opt_bool(v); /* -1 (unset) when it is not a boolean */
    if (summary < 0) hh_dprintf(2, "hahalloc: warning: ignoring HAHALLOC_SUMMARY=%s (expected 0 or 1)\n", v);
  }
  variable("HAHALLOC_ON_ERROR", "on-error");
  variable("HAHALLOC_GUARD", "guard");
  if ((v = getenv("HAHALLOC_OUTPUT")) != NULL && *v) {
    asked = 1;
    hh_opt.output = output_option("HAHALLOC_OUTPUT", v);
  }
  asked |= variable("HAHALLOC_FORMAT", "format");
  asked |= variable("HAHALLOC_STACK_DEPTH", "num-callers");
  asked |= variable("HAHALLOC_SHOW_REACHABLE", "show-reachable");
  asked |= variable("HAHALLOC_MIN_SIZE", "min-size");
  asked |= variable("HAHALLOC_LEAK_EXITCODE", "error-exitcode");
  asked |= variable("HAHALLOC_TRACE_CHILDREN", "trace-children");
  variable("HAHALLOC_SYMBOLIZE_TIMEOUT_MS", "symbolize-timeout");
  variable("HAHALLOC_VERBOSE", "verbose");
  if ((v = getenv("HAHALLOC_OPTIONS")) != NULL) read_options(v, &summary, &asked);
  if (hh_opt.profile && !stack_depth_set) hh_opt.stack_depth = 12;       /* stacks for the picture */
  if (hh_opt.profile && hh_opt.stack_depth == 0) hh_opt.stack_depth = 1; /* it counts by site */

  if ((v = getenv("HAHALLOC_CLI_PID")) != NULL) {
    /* under the hahalloc command: its program, and its children if traced */
    /* PID:COMMAND:START:NS. The pid alone can be another process's: in
     * a nested pid namespace, or a number used again (procstart.h). The
     * program is in the command's namespace and, where /proc says, a child
     * of the command as it started; any other process is a child of the
     * program's, which keeps its status and reports only if traced. */
    char *end;
    bool mine = strtol(v, &end, 10) == (long)getpid();
    long command = 0;
    unsigned long long start = 0, ns = 0, my_ns, parent_start = 0;
    if (*end == ':') { /* the fields after the pid, all or none: a malformed one is no program's */
      char *p = end + 1;
      command = (*p >= '0' && *p <= '9') ? strtol(p, &end, 10) : -1;
      bool whole = command > 0 && command <= INT_MAX && *end == ':' && (end[1] >= '0' && end[1] <= '9');
      if (whole) start = strtoull(end + 1, &end, 10);
      whole = whole && *end == ':' && (end[1] >= '0' && end[1] <= '9'); /* 0: the command had no /proc */
      if (whole) ns = strtoull(end + 1, &end, 10);
      if (!whole || *end != '\0') mine = false, command = 0;
    }
    if (mine && ns != 0 && (my_ns = hh_pid_namespace()) != 0 && my_ns != ns) mine = false;
    if (mine && command > 0) {
      bool child = getppid() == command;
      if (start != 0) parent_start = hh_proc_start((int)command); /* 0: not known here */
      hh_opt.cli_command_parent = child && start != 0 && parent_start == start && hh_proc_is_own();
      if (!child || (parent_start != 0 && parent_start != start)) mine = false;
    }
    hh_opt.cli = mine ? HH_CLI_PROGRAM : HH_CLI_CHILD;
    hh_opt.cli_command = (int)command;
    hh_opt.report = hh_opt.cli == HH_CLI_PROGRAM || hh_opt.trace_children;
    if (summary == 0) hh_opt.report = 0;
  } else {
    hh_opt.report = summary >= 0 ? summary : hh_opt.linked || asked;
  }
  if (hh_opt.report) hh_opt.addr2line = find_addr2line(getenv("HAHALLOC_ADDR2LINE"));
}

void hh_options_init(void) {
  hh_opt.secure = getauxval(AT_SECURE) != 0;
  hh_format_hide_addresses = hh_opt.secure;
  hh_opt.linked = program_linked();
  if (hh_opt.secure)
    hh_opt.report = hh_opt.linked; /* nothing from the environment */
  else
    read_environment();
  /* In a static binary the C library allocates before it can unwind a
   * stack: call sites are captured once our constructor runs. */
  hh_sites = hh_opt.report && hh_opt.stack_depth > 0 && !in_executable;
  hh_guard = hh_opt.guard ? HH_GUARD_BYTES : 0;
  choose_record_form();
  /* Not in a process the command does not trace: it says nothing, and its
   * stderr is someone else's output (every compiler a build starts). */
  if (hh_opt.verbose && (hh_opt.cli != HH_CLI_CHILD || hh_opt.report))
    hh_dprintf(2,
               "hahalloc: pid %d: %s, report %s, output %s, format %d, leak check %d, kinds shown %x, "
               "kinds that are errors %x, stack depth %d, min size %zu, exit code %d, suppression files "
               "%d, profile %s, on error %s, guard %s, symboliser %s\n",
               (int)getpid(), hh_opt.linked ? "linked" : "preloaded", hh_opt.report ? "on" : "off",
               hh_opt.output ? hh_opt.output : "stderr", hh_opt.format, hh_opt.leak_check, hh_opt.show_kinds,
               hh_opt.error_kinds, hh_opt.stack_depth, hh_opt.min_size, hh_opt.leak_exitcode, hh_opt.nsupp_files,
               hh_opt.profile ? "on" : "off", hh_opt.on_error ? "continue" : "abort", hh_opt.guard ? "on" : "off",
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
      choose_record_form();
    }
  }
}
