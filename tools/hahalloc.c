/*
 * hahalloc: run a program with the hahalloc allocator preloaded and get its
 * heap summary and leak report at exit, as valgrind or heaptrack do:
 *
 *   hahalloc [options] [--] PROGRAM [ARGS...]
 *
 * Options become HAHALLOC_* environment variables, which the library reads.
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char usage[] =
    "usage: hahalloc [options] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Runs PROGRAM with the hahalloc allocator preloaded; at exit it prints a heap\n"
    "summary and a leak report (definitely, indirectly, possibly lost, still\n"
    "reachable), grouped by allocation stack, largest first.\n"
    "\n"
    "options (--opt=value or --opt value):\n"
    "  --output=stderr|stdout|PATH  where the report goes (default stderr, as the\n"
    "                               program had it at start); %p in PATH becomes the\n"
    "                               process id. A file is created mode 0600, or\n"
    "                               appended to: never truncated\n"
    "  --format=text|json           report format (default text); --json = --format=json\n"
    "  --stack-depth=N              frames recorded per allocation, 0-64 (default 1:\n"
    "                               the call site, through strdup or new)\n"
    "  --show-reachable=yes|no      full stacks for still reachable blocks (default no)\n"
    "  --min-size=N                 list only blocks of at least N bytes (default 0: all)\n"
    "  --error-exitcode=N           exit with N when definite leaks are found\n"
    "  --trace-children=yes|no      the processes PROGRAM starts report too (default no)\n"
    "  --summary=yes|no             print the exit report at all (default yes)\n"
    "  --on-error=abort|continue    on a bad free or double free (default abort)\n"
    "  --symbolize-timeout=MS       the most the report waits for addr2line (default 10000)\n"
    "  --verbose                    say more\n"
    "  --lib=PATH                   the libhahalloc.so to preload (default: found next\n"
    "                               to this program, or in ../lib)\n"
    "  -h, --help                   this help\n"
    "\n"
    "environment (what the options set; also usable without this tool, with\n"
    "LD_PRELOAD=libhahalloc.so, which is otherwise a silent drop-in malloc, or a\n"
    "program linked with -lhahalloc, which reports by default):\n"
    "  HAHALLOC_SUMMARY=0|1  HAHALLOC_OUTPUT=...  HAHALLOC_FORMAT=text|json\n"
    "  HAHALLOC_STACK_DEPTH=N  HAHALLOC_SHOW_REACHABLE=0|1  HAHALLOC_MIN_SIZE=N\n"
    "  HAHALLOC_LEAK_EXITCODE=N  HAHALLOC_TRACE_CHILDREN=0|1\n"
    "  HAHALLOC_ON_ERROR=abort|continue  HAHALLOC_VERBOSE=0|1\n"
    "  HAHALLOC_ADDR2LINE=PATH|0  the addr2line used for file:line (0: none)\n"
    "  HAHALLOC_SYMBOLIZE_TIMEOUT_MS=N\n"
    "\n"
    "See hahalloc(1).\n";

static void die(const char *msg, const char *arg) {
  fprintf(stderr, "hahalloc: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  fprintf(stderr, "Try 'hahalloc --help'.\n");
  exit(2);
}

static const char *yes_no(const char *v, const char *opt) {
  if (!strcmp(v, "yes") || !strcmp(v, "1")) return "1";
  if (!strcmp(v, "no") || !strcmp(v, "0")) return "0";
  die("expected yes or no", opt);
  return NULL;
}

static const char *number(const char *v, const char *opt, long lo, long hi) {
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || end == v || *end || n < lo || n > hi) die("expected a number in range", opt);
  return v;
}

static bool exists(const char *p) { return access(p, R_OK) == 0; }

/* The library beside this program (build tree) or in ../lib (installed). */
static const char *find_library(void) {
  static char path[PATH_MAX];
  char self[PATH_MAX];
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
  char buf[65536];
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

/* Why the library cannot load into `file`, or NULL when it can (or when
 * we cannot tell). Follows one #! interpreter. */
static const char *why_no_report(const char *file, int depth) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  const char *why = NULL;
  struct stat st;
  unsigned char h[256];
  ssize_t n = read(fd, h, sizeof h);
  if (fstat(fd, &st) == 0 && (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
                              ((st.st_mode & S_ISGID) && st.st_gid != getegid()))) {
    why = "it is set-user-ID or set-group-ID, and the loader ignores LD_PRELOAD for such programs";
  } else if (n >= 4 && h[0] == '#' && h[1] == '!' && depth == 0) {
    char interp[PATH_MAX];
    size_t i = 2, k = 0;
    while (i < (size_t)n && (h[i] == ' ' || h[i] == '\t')) i++;
    while (i < (size_t)n && h[i] != ' ' && h[i] != '\t' && h[i] != '\n' && k + 1 < sizeof interp)
      interp[k++] = (char)h[i++];
    interp[k] = '\0';
    if (k > 0) why = why_no_report(interp, 1);
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
      if (!interp && !file_contains(fd, "hahalloc heap summary for"))
        why = "it is statically linked, so LD_PRELOAD cannot put hahalloc's malloc in it";
    }
  }
  close(fd);
  return why;
}

/* ------------------------------------------------------------------ running it */

static volatile pid_t child;

/* Signals sent to this command go to the program. The terminal's own
 * (Ctrl-C, Ctrl-\) reach the program directly: passing them on would
 * deliver them twice. */
static void forward(int sig, siginfo_t *info, void *uc) {
  (void)uc;
  if (info != NULL && info->si_code == SI_KERNEL) return;
  if (child > 0) kill(child, sig);
}

static const char *signal_name(int sig) {
  const char *d = sigabbrev_np(sig);
  return d ? d : "?";
}

int main(int argc, char **argv) {
  const char *lib = NULL;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--")) {
      i++;
      break;
    }
    if (a[0] != '-') break;
    const char *eq = strchr(a, '=');
    size_t klen = eq ? (size_t)(eq - a) : strlen(a);
    const char *v = eq ? eq + 1 : NULL;
#define IS(name) (klen == strlen(name) && !strncmp(a, name, klen))
/* the option's value: after '=', or the next argument */
#define VALUE() (v != NULL ? v : (i + 1 < argc ? argv[++i] : (die("missing value for", a), "")))
    if (IS("-h") || IS("--help")) {
      fputs(usage, stdout);
      return 0;
    } else if (IS("--output")) {
      const char *x = VALUE();
      if (!*x) die("--output needs a value", a);
      setenv("HAHALLOC_OUTPUT", x, 1);
    } else if (IS("--format")) {
      const char *x = VALUE();
      if (strcmp(x, "text") && strcmp(x, "json")) die("expected text or json", a);
      setenv("HAHALLOC_FORMAT", x, 1);
    } else if (IS("--json")) {
      setenv("HAHALLOC_FORMAT", "json", 1);
    } else if (IS("--stack-depth")) {
      setenv("HAHALLOC_STACK_DEPTH", number(VALUE(), a, 0, 64), 1);
    } else if (IS("--show-reachable")) {
      setenv("HAHALLOC_SHOW_REACHABLE", v ? yes_no(v, a) : "1", 1);
    } else if (IS("--min-size")) {
      setenv("HAHALLOC_MIN_SIZE", number(VALUE(), a, 0, LONG_MAX), 1);
    } else if (IS("--error-exitcode")) {
      setenv("HAHALLOC_LEAK_EXITCODE", number(VALUE(), a, 0, 255), 1);
    } else if (IS("--trace-children")) {
      setenv("HAHALLOC_TRACE_CHILDREN", yes_no(VALUE(), a), 1);
    } else if (IS("--summary")) {
      setenv("HAHALLOC_SUMMARY", yes_no(VALUE(), a), 1);
    } else if (IS("--on-error")) {
      const char *x = VALUE();
      if (strcmp(x, "abort") && strcmp(x, "continue")) die("expected abort or continue", a);
      setenv("HAHALLOC_ON_ERROR", x, 1);
    } else if (IS("--symbolize-timeout")) {
      setenv("HAHALLOC_SYMBOLIZE_TIMEOUT_MS", number(VALUE(), a, 0, 3600000), 1);
    } else if (IS("--verbose")) {
      setenv("HAHALLOC_VERBOSE", "1", 1);
    } else if (IS("--lib")) {
      lib = VALUE();
    } else {
      die("unknown option", a);
    }
#undef VALUE
#undef IS
  }
  if (i >= argc) die("no program to run", NULL);
  if (lib == NULL) lib = find_library();
  if (lib == NULL || !exists(lib)) die("cannot find libhahalloc.so (use --lib=PATH)", lib);

  /* Ours first, so that it wins over any other preloaded allocator. */
  const char *old = getenv("LD_PRELOAD");
  size_t len = strlen(lib) + (old ? strlen(old) + 1 : 0) + 1;
  char *preload = malloc(len);
  if (preload == NULL) die("out of memory", NULL);
  snprintf(preload, len, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "");
  setenv("LD_PRELOAD", preload, 1);

  char file[PATH_MAX];
  const char *why = resolve(argv[i], file, sizeof file) ? why_no_report(file, 0) : NULL;

  /* exec failures come back through this pipe; success closes it */
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) die("cannot create a pipe", strerror(errno));
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  pid_t pid = fork();
  if (pid < 0) die("cannot fork", strerror(errno));
  if (pid == 0) {
    close(report[0]);
    char num[24];
    snprintf(num, sizeof num, "%ld", (long)getpid());
    setenv("HAHALLOC_CLI_PID", num, 1);
    execvp(argv[i], argv + i);
    int e = errno;
    fprintf(stderr, "hahalloc: cannot run %s: %s\n", argv[i], strerror(e));
    if (write(report[1], &e, sizeof e) < 0) { /* the parent sees the exit status anyway */
    }
    _exit(e == ENOENT ? 127 : 126);
  }
  child = pid;
  close(report[1]);
  static const int forwarded[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGWINCH};
  for (size_t k = 0; k < sizeof forwarded / sizeof forwarded[0]; k++) sigaction(forwarded[k], &sa, NULL);
  int exec_errno = 0;
  bool exec_failed = read(report[0], &exec_errno, sizeof exec_errno) == (ssize_t)sizeof exec_errno;
  close(report[0]);

  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) die("cannot wait for the program", strerror(errno));
  if (WIFEXITED(status)) {
    if (why && !exec_failed)
      fprintf(stderr, "hahalloc: no leak report for %s: %s\n", argv[i], why);
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
