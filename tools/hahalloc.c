/*
 * hahalloc: run a program with the hahalloc allocator preloaded and get its
 * heap summary and leak report at exit, as valgrind or heaptrack do:
 *
 *   hahalloc [options] [--] PROGRAM [ARGS...]
 *
 * Options become HAHALLOC_* environment variables (the library reads them)
 * and the program replaces this process (exec), so its exit status and
 * signals are its own. --error-exitcode=N makes the library exit with N
 * after the report when definite leaks were found. Children the program
 * starts inherit the preload and report too (use --output=FILE.%p).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: hahalloc [options] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Runs PROGRAM with the hahalloc allocator preloaded; at exit it prints a heap\n"
    "summary and a leak report (definitely, indirectly, possibly lost, still\n"
    "reachable), grouped by allocation stack, largest first.\n"
    "\n"
    "options:\n"
    "  --output=stderr|stdout|PATH  where the report goes (default stderr);\n"
    "                               %p in PATH becomes the process id\n"
    "  --format=text|json           report format (default text); --json = --format=json\n"
    "  --stack-depth=N              frames recorded per allocation, 0-64 (default 1:\n"
    "                               the call site, through strdup or new)\n"
    "  --show-reachable=yes|no      full stacks for still reachable blocks (default no)\n"
    "  --min-size=N                 list only blocks of at least N bytes (default 0: all)\n"
    "  --error-exitcode=N           exit with N when definite leaks are found\n"
    "  --summary=yes|no             print the exit report at all (default yes)\n"
    "  --on-error=abort|continue    on a bad free or double free (default abort)\n"
    "  --verbose                    say more\n"
    "  --lib=PATH                   the libhahalloc.so to preload (default: found next\n"
    "                               to this program, or in ../lib)\n"
    "  -h, --help                   this help\n"
    "\n"
    "environment (what the options set; also usable without this tool, with\n"
    "LD_PRELOAD=libhahalloc.so or a program linked with -lhahalloc):\n"
    "  HAHALLOC_SUMMARY=0|1  HAHALLOC_OUTPUT=...  HAHALLOC_FORMAT=text|json\n"
    "  HAHALLOC_STACK_DEPTH=N  HAHALLOC_SHOW_REACHABLE=0|1  HAHALLOC_MIN_SIZE=N\n"
    "  HAHALLOC_LEAK_EXITCODE=N  HAHALLOC_ON_ERROR=abort|continue  HAHALLOC_VERBOSE=0|1\n"
    "  HAHALLOC_ADDR2LINE=PATH|0  the addr2line used for file:line (0: none)\n"
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
    const char *v = eq ? eq + 1 : "";
    size_t klen = eq ? (size_t)(eq - a) : strlen(a);
#define IS(name) (klen == strlen(name) && !strncmp(a, name, klen))
    if (IS("-h") || IS("--help")) {
      fputs(usage, stdout);
      return 0;
    } else if (IS("--output")) {
      if (!*v) die("--output needs a value", a);
      setenv("HAHALLOC_OUTPUT", v, 1);
    } else if (IS("--format")) {
      if (strcmp(v, "text") && strcmp(v, "json")) die("expected text or json", a);
      setenv("HAHALLOC_FORMAT", v, 1);
    } else if (IS("--json")) {
      setenv("HAHALLOC_FORMAT", "json", 1);
    } else if (IS("--stack-depth")) {
      setenv("HAHALLOC_STACK_DEPTH", number(v, a, 0, 64), 1);
    } else if (IS("--show-reachable")) {
      setenv("HAHALLOC_SHOW_REACHABLE", eq ? yes_no(v, a) : "1", 1);
    } else if (IS("--min-size")) {
      setenv("HAHALLOC_MIN_SIZE", number(v, a, 0, LONG_MAX), 1);
    } else if (IS("--error-exitcode")) {
      setenv("HAHALLOC_LEAK_EXITCODE", number(v, a, 0, 255), 1);
    } else if (IS("--summary")) {
      setenv("HAHALLOC_SUMMARY", yes_no(v, a), 1);
    } else if (IS("--on-error")) {
      if (strcmp(v, "abort") && strcmp(v, "continue")) die("expected abort or continue", a);
      setenv("HAHALLOC_ON_ERROR", v, 1);
    } else if (IS("--verbose")) {
      setenv("HAHALLOC_VERBOSE", "1", 1);
    } else if (IS("--lib")) {
      lib = v;
    } else {
      die("unknown option", a);
    }
#undef IS
  }
  if (i >= argc) die("no program to run", NULL);
  /* The report is what this command is for: the program it runs (this very
   * process, after exec) reports even when its stderr is its stdout. Its
   * own children keep the library's default (see HAHALLOC_OUTPUT in
   * hahalloc(1)). */
  char pid[24];
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  setenv("HAHALLOC_CLI_PID", pid, 1);
  if (lib == NULL) lib = find_library();
  if (lib == NULL || !exists(lib)) die("cannot find libhahalloc.so (use --lib=PATH)", lib);

  /* Ours first, so that it wins over any other preloaded allocator. */
  const char *old = getenv("LD_PRELOAD");
  size_t len = strlen(lib) + (old ? strlen(old) + 1 : 0) + 1;
  char *preload = malloc(len);
  if (preload == NULL) die("out of memory", NULL);
  snprintf(preload, len, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "");
  setenv("LD_PRELOAD", preload, 1);

  execvp(argv[i], argv + i);
  fprintf(stderr, "hahalloc: cannot run %s: %s\n", argv[i], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}
