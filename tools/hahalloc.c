/*
 * hahalloc: run a program with the hahalloc allocator preloaded and get its
 * heap summary and leak report at exit, as valgrind or heaptrack do:
 *
 *   hahalloc [options] [--] PROGRAM [ARGS...]
 *
 * Options (valgrind's names, src/optable.h) are checked here and passed to
 * the library in HAHALLOC_OPTIONS, after whatever that variable already held.
 * The program runs as a child of this command, which waits for it, passes
 * on the signals sent to the command, and ends the same way (same exit
 * status, or the same signal), so scripts see the program's status. Being
 * the parent lets the command say, in one line, when no report could be
 * made: the program was killed by a signal, or hahalloc's library could not
 * be loaded into it (statically linked, set-user-ID, another architecture).
 *
 * Only PROGRAM reports (HAHALLOC_CLI_PID names it); the processes it starts
 * report too with --trace-children=yes, each into its own file (%p in
 * --output) or appended whole to one.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "optable.h"
#include "procstart.h"

static const char usage[] = "usage: hahalloc [options] [--] PROGRAM [ARGS...]\n"
                            "\n"
                            "Runs PROGRAM with the hahalloc allocator preloaded; at exit it prints a heap\n"
                            "summary and the leaks (definitely, indirectly, possibly lost, still reachable)\n"
                            "with their allocation stacks, as valgrind's memcheck does, at allocator speed.\n"
                            "\n"
                            "Options take --opt=value or --opt value. valgrind's names:\n"
                            "  --leak-check=no|summary|full     leaks not at all, their totals, or listed\n"
                            "                                   with their stacks [full]\n"
                            "  --show-leak-kinds=KINDS          kinds listed: definite,indirect,possible,reachable\n"
                            "                                   or all or none [definite,possible]\n"
                            "  --errors-for-leak-kinds=KINDS    kinds that make --error-exitcode the exit\n"
                            "                                   status [definite,possible]\n"
                            "  --show-reachable=yes|no          yes: --show-leak-kinds=all; no: the default\n"
                            "  --show-possibly-lost=yes|no      list possibly lost blocks [yes]\n"
                            "  --leak-check-heuristics=SET      C++ pointers inside a block that keep it\n"
                            "                                   reachable: stdstring,length64,newarray,\n"
                            "                                   multipleinheritance or all or none [all]\n"
                            "  --error-exitcode=N               exit status N when leaks of those kinds are\n"
                            "                                   found (--leak-check=full only, as valgrind),\n"
                            "                                   or errors were reported and ignored\n"
                            "                                   (HAHALLOC_ON_ERROR=continue) [0: the program's own]\n"
                            "  --log-file=FILE                  the report goes to FILE (%p: the process id,\n"
                            "                                   %q{VAR}: a variable's value); also --output,\n"
                            "                                   which takes stderr or stdout too [stderr]\n"
                            "  --xml=yes|no                     valgrind's memcheck XML instead of text [no]\n"
                            "  --xml-file=FILE                  where the XML goes [the --log-file]\n"
                            "  --num-callers=N                  frames of the program recorded per allocation,\n"
                            "                                   past the C library's and the C++ standard\n"
                            "                                   library's own, 0-64 [1: the call site; more\n"
                            "                                   cost more per allocation]\n"
                            "  --trace-children=yes|no          the processes PROGRAM starts report too [no]\n"
                            "  --suppressions=FILE              leaks not to report: valgrind's format or\n"
                            "                                   LeakSanitizer's leak: lines (repeatable)\n"
                            "  --default-suppressions=yes|no    the built-in suppressions of the C and C++\n"
                            "                                   runtimes and the dynamic loader [yes]\n"
                            "  --gen-suppressions=no|all        a suppression after each leak listed [no]\n"
                            "  -q, --quiet                      the leaks only\n"
                            "  -v, --verbose                    say more: the scan's figures, site numbers,\n"
                            "                                   the use per size class (root)\n"
                            "  --version                        hahalloc's version\n"
                            "hahalloc's own:\n"
                            "  --format=text|json|xml|collapsed the report's format [text]; collapsed: one line\n"
                            "                                   per stack with its bytes, for flame graphs\n"
                            "  --json                           --format=json\n"
                            "  --profile=yes|no                 where memory goes: the sites holding the most\n"
                            "                                   at the peak, and the most bytes in all [no]\n"
                            "  --min-size=N                     list only blocks of at least N bytes [0]\n"
                            "  --summary=yes|no                 make the exit report at all [yes]\n"
                            "  --on-error=abort|continue        on a bad free or double free [abort]\n"
                            "  --error-limit=yes|no             past 1,000 error contexts, count them only [yes]\n"
                            "  --guard=yes|no                   canary bytes after every block: writes past\n"
                            "                                   the end are reported (slower) [no]\n"
                            "  --symbolize-timeout=MS           the most the report waits for addr2line [10000]\n"
                            "  --stack-depth=N                  --num-callers=N\n"
                            "  --lib=PATH                       the libhahalloc.so to preload [next to this\n"
                            "                                   program, or in ../lib]\n"
                            "  -h, --help                       this help\n"
                            "\n"
                            "The options reach the library in HAHALLOC_OPTIONS (key=value:key=value, the\n"
                            "names without dashes), which also works without this command, with\n"
                            "LD_PRELOAD=libhahalloc.so (otherwise a silent drop-in malloc) or in a program\n"
                            "linked with -lhahalloc (which reports by default); LeakSanitizer's names work\n"
                            "there too (detect_leaks, exitcode, log_path, malloc_context_size). So do the\n"
                            "variables of earlier versions, read before HAHALLOC_OPTIONS:\n"
                            "  HAHALLOC_SUMMARY=0|1  HAHALLOC_OUTPUT=...  HAHALLOC_FORMAT=text|json|xml|collapsed\n"
                            "  HAHALLOC_STACK_DEPTH=N  HAHALLOC_SHOW_REACHABLE=0|1  HAHALLOC_MIN_SIZE=N\n"
                            "  HAHALLOC_LEAK_EXITCODE=N  HAHALLOC_TRACE_CHILDREN=0|1\n"
                            "  HAHALLOC_ON_ERROR=abort|continue  HAHALLOC_VERBOSE=0|1  HAHALLOC_GUARD=0|1\n"
                            "  HAHALLOC_ADDR2LINE=PATH|0  the addr2line used for file:line (0: none)\n"
                            "  HAHALLOC_SYMBOLIZE_TIMEOUT_MS=N\n"
                            "\n"
                            "See hahalloc(1).\n";

static void die(const char *msg, const char *arg) {
  fprintf(stderr, "hahalloc: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  fprintf(stderr, "Try 'hahalloc --help'.\n");
  exit(2);
}

/* HAHALLOC_OPTIONS as built so far: the environment's, then ours. */
static char *options;
static size_t options_len, options_cap;

static void options_add(const char *s, size_t n) {
  if (options_len + n + 1 > options_cap) {
    options_cap = (options_len + n + 1) * 2 + 256;
    options = realloc(options, options_cap);
    if (options == NULL) die("out of memory", NULL);
  }
  memcpy(options + options_len, s, n);
  options_len += n;
  options[options_len] = '\0';
}

/* key=value, quoted when the value holds a separator or a quote. */
static void pass_option(const char *key, const char *value) {
  if (options_len) options_add(":", 1);
  options_add(key, strlen(key));
  options_add("=", 1);
  bool quote = strpbrk(value, ": \t\n'\"") != NULL;
  char q = strchr(value, '"') ? '\'' : '"';
  if (quote && strchr(value, q)) die("a value cannot hold both kinds of quotes", value);
  if (quote) options_add(&q, 1);
  options_add(value, strlen(value));
  if (quote) options_add(&q, 1);
}

/* A file name made absolute against the current directory, so that a
 * traced child that changes directory still writes where the user said. */
static const char *absolute_path(const char *v) {
  if (v[0] == '/') return v;
  static char cwd[PATH_MAX]; /* static: the command runs under a stack limit of a few KiB too */
  if (getcwd(cwd, sizeof cwd) == NULL) die("cannot find the current directory", strerror(errno));
  size_t n = strlen(cwd) + strlen(v) + 2;
  char *p = malloc(n);
  if (p == NULL) die("out of memory", NULL);
  snprintf(p, n, "%s/%s", cwd, v);
  return p;
}

static bool exists(const char *p) { return access(p, R_OK) == 0; }

/* The library beside this program (build tree) or in ../lib (installed). */
static const char *find_library(void) {
  static char path[PATH_MAX];
  static char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return NULL;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash == NULL) return NULL;
  *slash = '\0';
  static const char *const rel[] = {"libhahalloc.so", "../lib/libhahalloc.so.1", "../lib/libhahalloc.so",
                                    "../build/libhahalloc.so"};
  for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
    int k = snprintf(path, sizeof path, "%s/%s", self, rel[i]);
    if (k > 0 && (size_t)k < sizeof path && exists(path)) {
      char *real = realpath(path, NULL);
      if (real) return real;
      return path;
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------ will it report? */

/* The file execvp would run for `name`. */
static bool resolve(const char *name, char *out, size_t size) {
  if (strchr(name, '/')) return snprintf(out, size, "%s", name) < (int)size;
  const char *path = getenv("PATH");
  if (path == NULL) path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path;;) {
    const char *colon = strchr(p, ':');
    int dlen = colon ? (int)(colon - p) : (int)strlen(p);
    int k = snprintf(out, size, "%.*s%s%s", dlen, p, dlen ? "/" : "", name);
    if (k > 0 && (size_t)k < size && access(out, X_OK) == 0) return true;
    if (colon == NULL) return false;
    p = colon + 1;
  }
}

/* Whether the file holds `needle` (a static binary linked with hahalloc
 * carries its report's text). */
static bool file_contains(int fd, const char *needle) {
  size_t nlen = strlen(needle);
  static char buf[65536];
  size_t keep = 0;
  lseek(fd, 0, SEEK_SET);
  for (;;) {
    ssize_t got = read(fd, buf + keep, sizeof buf - keep);
    if (got <= 0) return false;
    size_t have = keep + (size_t)got;
    if (memmem(buf, have, needle, nlen)) return true;
    keep = have < nlen ? have : nlen - 1;
    memmove(buf, buf + have - keep, keep);
  }
}

/* A sanitizer runtime among the libraries a dynamic ELF file needs
 * (DT_NEEDED), by name, or NULL. AddressSanitizer's runtime aborts a
 * program where it is not the first library loaded ("ASan runtime does
 * not come first in initial library list"), and gcc's ThreadSanitizer
 * runtime crashes under any preloaded malloc (mimalloc's and jemalloc's
 * too): both keep their own heap. */
static const char *sanitizer_needed(int fd, const Elf64_Ehdr *eh) {
  Elf64_Phdr dyn = {0}, load[16];
  int nload = 0;
  for (int i = 0; i < eh->e_phnum; i++) {
    Elf64_Phdr ph;
    if (pread(fd, &ph, sizeof ph, (off_t)(eh->e_phoff + (Elf64_Off)i * eh->e_phentsize)) != sizeof ph) return NULL;
    if (ph.p_type == PT_DYNAMIC) dyn = ph;
    if (ph.p_type == PT_LOAD && nload < 16) load[nload++] = ph;
  }
  static Elf64_Dyn d[512];
  size_t nd = dyn.p_filesz / sizeof d[0];
  if (nd == 0) return NULL;
  if (nd > 512) nd = 512;
  if (pread(fd, d, nd * sizeof d[0], (off_t)dyn.p_offset) != (ssize_t)(nd * sizeof d[0])) return NULL;
  Elf64_Addr strtab = 0;
  for (size_t i = 0; i < nd && d[i].d_tag != DT_NULL; i++)
    if (d[i].d_tag == DT_STRTAB) strtab = d[i].d_un.d_ptr;
  off_t stroff = -1;
  for (int i = 0; i < nload; i++)
    if (strtab >= load[i].p_vaddr && strtab < load[i].p_vaddr + load[i].p_filesz)
      stroff = (off_t)(strtab - load[i].p_vaddr + load[i].p_offset);
  if (stroff < 0) return NULL;
  static const struct {
    const char *lib, *name;
  } runtimes[] = {
      {"libasan.so", "AddressSanitizer"}, {"libhwasan.so", "HWAddressSanitizer"}, {"libtsan.so", "ThreadSanitizer"}};
  for (size_t i = 0; i < nd && d[i].d_tag != DT_NULL; i++) {
    if (d[i].d_tag != DT_NEEDED) continue;
    char name[64];
    ssize_t got = pread(fd, name, sizeof name - 1, stroff + (off_t)d[i].d_un.d_val);
    if (got <= 0) continue;
    name[got] = '\0';
    for (size_t k = 0; k < sizeof runtimes / sizeof runtimes[0]; k++)
      if (!strncmp(name, runtimes[k].lib, strlen(runtimes[k].lib))) return runtimes[k].name;
  }
  return NULL;
}

/* Why the library cannot load into `file`, or NULL when it can (or when
 * we cannot tell). Follows one #! interpreter. `*alone`: the program must
 * run without the library preloaded (a sanitizer's runtime). */
static const char *why_no_report(const char *file, int depth, bool *alone) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  const char *why = NULL;
  struct stat st;
  unsigned char h[256];
  ssize_t n = read(fd, h, sizeof h);
  if (fstat(fd, &st) == 0 &&
      (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) || ((st.st_mode & S_ISGID) && st.st_gid != getegid()))) {
    why = "it is set-user-ID or set-group-ID, and the loader ignores LD_PRELOAD for such programs";
  } else if (n >= 4 && h[0] == '#' && h[1] == '!' && depth == 0) {
    static char interp[PATH_MAX]; /* depth 0 only */
    size_t i = 2, k = 0;
    while (i < (size_t)n && (h[i] == ' ' || h[i] == '\t')) i++;
    while (i < (size_t)n && h[i] != ' ' && h[i] != '\t' && h[i] != '\n' && k + 1 < sizeof interp)
      interp[k++] = (char)h[i++];
    interp[k] = '\0';
    if (k > 0) why = why_no_report(interp, 1, alone);
  } else if (n >= (ssize_t)sizeof(Elf64_Ehdr) && !memcmp(h, ELFMAG, SELFMAG)) {
    if (h[EI_CLASS] != ELFCLASS64) {
      why = "it is a 32-bit program and hahalloc's library is 64-bit";
    } else {
      Elf64_Ehdr eh;
      memcpy(&eh, h, sizeof eh);
      bool interp = false;
      for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (Elf64_Off)i * eh.e_phentsize)) != sizeof ph) break;
        if (ph.p_type == PT_INTERP) interp = true;
      }
      const char *sanitizer = interp ? sanitizer_needed(fd, &eh) : NULL;
      if (!interp && !file_contains(fd, "hahalloc heap summary for")) {
        why = "it is statically linked, so LD_PRELOAD cannot put hahalloc's malloc in it";
      } else if (sanitizer != NULL) {
        static char text[200];
        snprintf(text, sizeof text,
                 "it is built with %s, whose runtime keeps its own heap and must be loaded first, so it ran "
                 "without hahalloc's library",
                 sanitizer);
        why = text;
        *alone = true;
      }
    }
  }
  close(fd);
  return why;
}

/* ------------------------------------------------------------------ running it */

static volatile pid_t child;
static bool session_leader; /* the command leads its session (getsid), as the program would without it */
static bool own_group;      /* the program leads a process group of its own (no terminal) */
/* How long after a hangup's SIGHUP its SIGCONT may come. */
#define HANGUP_CONT_NS (100 * 1000000LL)

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Signals a fault or the command's own code raises (SIGSEGV, abort(),
 * a write to a closed pipe) are the command's, not the program's. */
static bool about_the_command(int sig, const siginfo_t *info) {
  switch (sig) {
  case SIGSEGV:
  case SIGBUS:
  case SIGFPE:
  case SIGILL:
  case SIGTRAP:
  case SIGSYS:
  case SIGABRT:
  case SIGPIPE:
  case SIGXFSZ:
  case SIGXCPU: return info == NULL || info->si_code > 0 || info->si_pid == 0 || info->si_pid == getpid();
  default: return false;
  }
}

/* How far apart two copies of one signal from one sender may come to be
 * merged: GNU timeout's come microseconds apart; a busy machine may hold
 * the second a little. */
#define MERGE_NS (5 * 1000000LL)

/* Signals sent to this command go to the program. The terminal's own
 * (Ctrl-C, Ctrl-\) reach the program directly: passing them on would
 * deliver them twice. */
static void forward(int sig, siginfo_t *info, void *uc) {
  (void)uc;
  if (about_the_command(sig, info)) { /* its default action, on the command, as the handler returns */
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  bool stop = sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
  /* From the program to its parent (a server telling whoever started it
   * that it is ready, as Xorg does with SIGUSR1): without the command, that
   * is the command's parent. Passed on to the program, it came back to the
   * sender, whose default action for SIGUSR1 ends it. Only where the
   * program leads a group of its own: in the terminal's group, a kill(0)
   * of the program's (a shell's `trap 'kill 0' EXIT`, vim's Ctrl-Z) also
   * reaches the command, and relayed it killed the interactive shell, or
   * left the job stopped with no prompt (helper-83). */
  if (info != NULL && child > 0 && info->si_pid == child && own_group &&
      (info->si_code == SI_USER || info->si_code == SI_QUEUE || info->si_code == SI_TKILL)) {
    pid_t parent = getppid();
    if (info->si_code == SI_QUEUE)
      sigqueue(parent, sig, info->si_value);
    else
      kill(parent, sig);
    return;
  }
  /* From the terminal (SI_KERNEL): the program, in the terminal's group,
   * has its own copy. Not of a hangup's SIGHUP and SIGCONT, which the
   * kernel sends to the session's leader alone: where the command leads
   * the session (run by script(1), ssh -t, a pty's first process), the
   * program would get neither and run on after the hangup. */
  if (info != NULL && info->si_code == SI_KERNEL) {
    /* the hangup's SIGCONT comes right after its SIGHUP; alone, it is an
     * orphaned group's, which the program had too (helper-83) */
    static long long hangup_ns;
    if (sig == SIGHUP && session_leader && child > 0) {
      kill(child, sig);
      hangup_ns = now_ns();
    } else if (sig == SIGCONT && hangup_ns != 0 && now_ns() - hangup_ns < HANGUP_CONT_NS && child > 0) {
      kill(child, sig);
      hangup_ns = 0;
    }
    /* stop with the job, for the shell's job control; not where the command
     * leads the session (a pty's first process): its group is orphaned,
     * where the kernel stops nobody on the terminal's stop signals, and the
     * command stopped alone for good (helper-83) */
    if (stop && !session_leader) raise(SIGSTOP);
    return;
  }
  /* GNU timeout signals the command, then its own process group, which
   * holds the command: two copies a few microseconds apart, which a
   * program it ran itself would get while the first is still pending,
   * merged into one. Passed on one by one, they would arrive apart and
   * run the program's handler twice. So one copy from the same sender, a
   * member of this group, that came while the one before was passed on
   * (pending then) or within MERGE_NS of it is merged, as the kernel would
   * have merged it; one at most for each copy passed on. A window counted
   * from the last copy, dropped ones too, kept 1 of 10 signals a script
   * sent 40 ms apart (helper-45). */
  static int merge_sig;
  static pid_t merge_pid;
  static bool merge_pending;
  static long long merge_ns;
  bool mergeable = info != NULL && info->si_code == SI_USER && sig < SIGRTMIN; /* RT signals queue */
  long long now = 0;
  if (mergeable) {
    now = now_ns();
    bool copy = sig == merge_sig && info->si_pid == merge_pid && (merge_pending || now - merge_ns < MERGE_NS);
    merge_sig = 0;
    if (copy && getpgid(info->si_pid) == getpgrp()) return;
  }
  if (child > 0) kill(child, sig);
  if (mergeable) {
    sigset_t pending;
    merge_sig = sig;
    merge_pid = info->si_pid;
    merge_ns = now;
    merge_pending = sigpending(&pending) == 0 && sigismember(&pending, sig) == 1;
  }
  if (stop) raise(SIGSTOP); /* the program stops: so does the command, as its parent sees it */
}

static const char *signal_name(int sig) {
  const char *d = sigabbrev_np(sig);
  return d ? d : "?";
}

int main(int argc, char **argv) {
  const char *lib = NULL;
  const char *env_options = getenv("HAHALLOC_OPTIONS");
  if (env_options && *env_options) options_add(env_options, strlen(env_options));
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--")) {
      i++;
      break;
    }
    if (a[0] != '-' || a[1] == '\0') break;
    const char *name = a + (a[1] == '-' ? 2 : 1);
    const char *eq = strchr(name, '=');
    size_t klen = eq ? (size_t)(eq - name) : strlen(name);
    const char *v = eq ? eq + 1 : NULL;
    /* single-dash names are the one-letter ones (-q, -v, -h) */
    const hh_optdef *d = (a[1] == '-' || klen == 1) ? hh_optdef_find(name, klen) : NULL;
    if (d == NULL || memchr(name, '_', klen)) die("unknown option", a);
    if (v == NULL) {
      if (d->type == HH_OT_FLAG)
        v = "yes";
      else if (d->type == HH_OT_BOOL) /* --opt, --opt yes, --opt no */
        v = i + 1 < argc && hh_opt_bool(argv[i + 1]) >= 0 ? argv[++i] : "yes";
      else if (i + 1 < argc)
        v = argv[++i];
      else
        die("missing value for", a);
    }
    if (!hh_opt_valid(d, v)) {
      char what[256];
      snprintf(what, sizeof what, "bad value for %.*s", (int)(name - a + (ptrdiff_t)klen), a); /* as typed */
      die(what, v);
    }
    if (d->id == HH_O_HELP) {
      fputs(usage, stdout);
      return 0;
    }
    if (d->id == HH_O_VERSION) {
      printf("hahalloc-%s\n", HH_VERSION);
      return 0;
    }
    if (d->id == HH_O_LIB) {
      lib = v;
      continue;
    }
    if (d->type == HH_OT_PATH || (d->type == HH_OT_OUTPUT && strcmp(v, "stderr") && strcmp(v, "stdout")))
      v = absolute_path(v);
    pass_option(d->name, v);
  }
  if (i >= argc) die("no program to run", NULL);
  if (lib == NULL) lib = find_library();
  if (lib == NULL || !exists(lib)) die("cannot find libhahalloc.so (use --lib=PATH)", lib);

  static char file[PATH_MAX];
  bool alone = false;
  const char *why = resolve(argv[i], file, sizeof file) ? why_no_report(file, 0, &alone) : NULL;

  /* Ours first, so that it wins over any other preloaded allocator. */
  const char *old = getenv("LD_PRELOAD");
  size_t len = strlen(lib) + (old ? strlen(old) + 1 : 0) + 1;
  char *preload = malloc(len);
  if (preload == NULL) die("out of memory", NULL);
  snprintf(preload, len, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "");
  if (!alone) setenv("LD_PRELOAD", preload, 1);
  if (options_len) setenv("HAHALLOC_OPTIONS", options, 1);

  /* exec failures come back through this pipe; success closes it */
  int report[2];
  /* Without room for it (RLIMIT_NOFILE at 4: the program may still run),
   * an exec failure is told by the status alone (127 or 126). */
  if (pipe2(report, O_CLOEXEC) != 0) report[0] = report[1] = -1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  /* Without a controlling terminal (CI, cron, a harness's session) there
   * is no job control to keep, and the program gets a process group of
   * its own: a signal sent to the command's group (GNU timeout signals the
   * command and then its group, a harness may killpg) then reaches the
   * program once, passed on by the command, not once directly and once
   * more passed on, which would run a handler twice and make a graceful
   * shutdown a forced one. With a terminal, the program stays in the
   * terminal's process group, so that it may read from it and Ctrl-C and
   * Ctrl-Z reach it. */
  int tty = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
  own_group = tty < 0;
  session_leader = getsid(0) == getpid();
  if (tty >= 0) close(tty);
  /* Every signal the program could be sent is passed on: one the command
   * let take its default action would end the command, and the program
   * with it (PR_SET_PDEATHSIG), though the program handles it. Not
   * SIGCHLD (the command's own), nor glibc's internal ones (sigaction
   * refuses them). Put in place before the fork, with every signal blocked
   * until the program's pid is known: installed after it, a signal sent
   * as soon as the program said it was ready could find the command
   * before its handlers, and SIGXCPU then ended the command and the
   * program (1 run in a few hundred on a busy machine). SIGCHLD takes its
   * default: ignored (a parent may leave it so), the kernel would reap the
   * program itself and the wait below find no child. The program gets the
   * command's own dispositions and mask back before exec. */
  static struct sigaction before[NSIG];
  static bool changed[NSIG];
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigset_t all, mask;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &mask);
  /* A hangup's SIGCONT comes with its SIGHUP, and would run first, nested
   * in SIGHUP's frame: held until SIGHUP's handler has passed it on (the
   * program, stopped, would take neither otherwise; helper-84). */
  struct sigaction hup = sa;
  sigaddset(&hup.sa_mask, SIGCONT);
  for (int sig = 1; sig < NSIG; sig++)
    changed[sig] = sig != SIGKILL && sig != SIGSTOP &&
                   sigaction(sig,
                             sig == SIGCHLD  ? &dfl
                             : sig == SIGHUP ? &hup
                                             : &sa,
                             &before[sig]) == 0;
  pid_t parent = getpid();
  unsigned long long parent_start = hh_proc_start(parent), parent_ns = hh_pid_namespace();
  pid_t pid = fork();
  if (pid < 0) die("cannot fork", strerror(errno));
  if (pid == 0) {
    for (int sig = 1; sig < NSIG; sig++)
      if (changed[sig]) sigaction(sig, &before[sig], NULL);
    sigprocmask(SIG_SETMASK, &mask, NULL);
    if (report[0] >= 0) close(report[0]);
    /* Killed with the command: a harness that kills it (SIGKILL, which
     * cannot be passed on) must not leave the program running, holding
     * its pipes, and reporting after the harness is gone. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(128 + SIGKILL); /* the command died before the line above */
    if (own_group) setpgid(0, 0);
    /* the program, and the command it may report through (procstart.h) */
    char num[96];
    snprintf(num, sizeof num, "%ld:%ld:%llu:%llu", (long)getpid(), (long)parent, parent_start, parent_ns);
    setenv("HAHALLOC_CLI_PID", num, 1);
    execvp(argv[i], argv + i);
    int e = errno;
    fprintf(stderr, "hahalloc: cannot run %s: %s\n", argv[i], strerror(e));
    if (report[1] >= 0 && write(report[1], &e, sizeof e) < 0) { /* the parent sees the exit status anyway */
    }
    _exit(e == ENOENT ? 127 : 126);
  }
  if (own_group) setpgid(pid, pid); /* also here: a signal may come before the child runs */
  child = pid;
  sigprocmask(SIG_SETMASK, &mask, NULL); /* what came meanwhile is passed on now */
  if (report[1] >= 0) close(report[1]);
  int exec_errno = 0;
  bool exec_failed = report[0] >= 0 && read(report[0], &exec_errno, sizeof exec_errno) == (ssize_t)sizeof exec_errno;
  if (report[0] >= 0) close(report[0]);

  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) die("cannot wait for the program", strerror(errno));
  child = 0; /* reaped: its pid may be another process's now */
  if (WIFEXITED(status)) {
    if (why && !exec_failed) fprintf(stderr, "hahalloc: no leak report for %s: %s\n", argv[i], why);
    return WEXITSTATUS(status);
  }
  int sig = WTERMSIG(status);
  if (!exec_failed)
    fprintf(stderr, "hahalloc: no leak report for %s: it was killed by signal %d (SIG%s)\n", argv[i], sig,
            signal_name(sig));
  /* end the same way, without a core of our own */
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  raise(sig);
  return 128 + sig;
}
