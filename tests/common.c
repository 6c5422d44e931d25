#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ children */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n) {
  if (*len + n + 1 > *cap) {
    size_t nc = *cap ? *cap : 4096;
    while (nc < *len + n + 1) nc *= 2;
    char *nb = realloc(*buf, nc);
    if (!nb) abort();
    *buf = nb;
    *cap = nc;
  }
  memcpy(*buf + *len, data, n);
  *len += n;
  (*buf)[*len] = '\0';
}

/* The parent's half: reads both pipes until EOF or the deadline, then reaps. */
static bool collect(pid_t pid, int out_fd, int err_fd, int timeout_s, hh_child *c) {
  size_t out_cap = 0, err_cap = 0;
  memset(c, 0, sizeof *c);
  append(&c->out, &c->out_len, &out_cap, "", 0);
  append(&c->err, &c->err_len, &err_cap, "", 0);
  double deadline = now_s() + timeout_s;
  struct pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    double left = deadline - now_s();
    if (left <= 0) break;
    int r = poll(fds, 2, (int)(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        if (i == 0)
          append(&c->out, &c->out_len, &out_cap, buf, (size_t)n);
        else
          append(&c->err, &c->err_len, &err_cap, buf, (size_t)n);
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      }
    }
  }
  for (;;) {
    pid_t w = waitpid(pid, &c->status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (now_s() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &c->status, 0);
      c->timed_out = true;
      break;
    }
    usleep(1000);
  }
  for (int i = 0; i < 2; i++)
    if (fds[i].fd >= 0) close(fds[i].fd);
  return !c->timed_out;
}

/* The child's half: default signal actions, no core files, pipes as 1 and 2. */
static void child_setup(int out_pipe[2], int err_pipe[2]) {
  static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGALRM, SIGPIPE};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  dup2(out_pipe[1], 1);
  dup2(err_pipe[1], 2);
  close(out_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[0]);
  close(err_pipe[1]);
}

static void apply_env(const char *const *env) {
  for (; env && *env; env++) {
    const char *eq = strchr(*env, '=');
    if (!eq) {
      unsetenv(*env);
      continue;
    }
    char name[128];
    size_t n = (size_t)(eq - *env);
    if (n >= sizeof name) continue;
    memcpy(name, *env, n);
    name[n] = '\0';
    setenv(name, eq + 1, 1);
  }
}

/* Forks a child with stdout and stderr on pipes; in the child, runs
 * body(arg) and exits with its status (which an exec may replace). */
static bool spawn(int (*body)(void *), void *arg, int timeout_s, hh_child *c) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC)) abort();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) abort();
  if (pid == 0) {
    child_setup(out_pipe, err_pipe);
    int rc = body(arg);
    fflush(NULL);
    _exit(rc);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  return collect(pid, out_pipe[0], err_pipe[0], timeout_s, c);
}

void hh_test_env(char **argv) {
  if (getenv("HAHALLOC_SUMMARY") != NULL) return;
  setenv("HAHALLOC_SUMMARY", "0", 1);
  execv("/proc/self/exe", argv);
  perror("execv /proc/self/exe"); /* run on as we are */
}

bool hh_fork_run(int (*fn)(void *), void *arg, int timeout_s, hh_child *c) { return spawn(fn, arg, timeout_s, c); }

typedef struct exec_args {
  const char *const *argv, *const *env;
} exec_args;

static int exec_body(void *p) {
  const exec_args *x = p;
  apply_env(x->env);
  execv(x->argv[0], (char *const *)x->argv);
  dprintf(2, "exec %s: %s\n", x->argv[0], strerror(errno));
  return 127;
}

bool hh_exec_run(const char *const *argv, const char *const *env, int timeout_s, hh_child *c) {
  exec_args x = {argv, env};
  return spawn(exec_body, &x, timeout_s, c);
}

bool hh_exec_self(const char *name, const char *arg, const char *const *env, int timeout_s, hh_child *c) {
  static char self[4096];
  if (!self[0]) {
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) abort();
    self[n] = '\0';
  }
  const char *argv[] = {self, "--child", name, arg ? arg : "", NULL};
  return hh_exec_run(argv, env, timeout_s, c);
}

void hh_child_free(hh_child *c) {
  free(c->out);
  free(c->err);
  c->out = c->err = NULL;
}

const char *hh_child_describe(const hh_child *c) {
  static char buf[64];
  if (c->timed_out)
    snprintf(buf, sizeof buf, "timed out");
  else if (WIFEXITED(c->status))
    snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(c->status));
  else if (WIFSIGNALED(c->status))
    snprintf(buf, sizeof buf, "killed by %s", sigabbrev_np(WTERMSIG(c->status)) ?: "?");
  else
    snprintf(buf, sizeof buf, "status %#x", c->status);
  return buf;
}

bool hh_child_exited_ok(const hh_child *c) {
  return !c->timed_out && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
}

bool hh_child_aborted(const hh_child *c) {
  return !c->timed_out && WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGABRT;
}

void hh_child_dispatch(int argc, char **argv, const hh_child_entry *table) {
  if (argc < 3 || strcmp(argv[1], "--child") != 0) return;
  for (; table && table->name; table++)
    if (strcmp(table->name, argv[2]) == 0) exit(table->fn(argc > 3 ? argv[3] : ""));
  fprintf(stderr, "unknown child %s\n", argv[2]);
  exit(126);
}

/* ------------------------------------------------------------ text */

bool hh_contains(const char *haystack, const char *needle) {
  return haystack && needle && strcasestr(haystack, needle) != NULL;
}

const char *hh_ptr_hex(const void *p, char buf[32]) {
  snprintf(buf, 32, "%lx", (unsigned long)(uintptr_t)p);
  return buf;
}

/* ------------------------------------------------------------ patterns */

#define GOLDEN 0x9E3779B97F4A7C15ULL

/* whole-word access to a byte buffer */
typedef uint64_t __attribute__((may_alias)) word_t;

uint64_t hh_mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

uint64_t hh_block_hash(const void *p, size_t size, uint64_t seed) {
  return hh_mix((uint64_t)(uintptr_t)p ^ hh_mix(size + seed * GOLDEN));
}

/* The byte at offset i of a block with this hash: byte i%8 of word i/8, so
 * that whole 8-byte words can be written at once. */
static inline unsigned char pat(uint64_t hash, size_t i) {
  uint64_t w = hash ^ ((uint64_t)(i >> 3) * GOLDEN);
  return (unsigned char)(w >> ((i & 7) * 8));
}

/* Calls fn on each [from, to) hh_fill writes, in increasing order. */
#define FOR_EACH_FILLED(size, from, to, body)                       \
  do {                                                              \
    if ((size) <= HH_FULL_FILL) {                                   \
      size_t from = 0, to = (size);                                 \
      body;                                                         \
    } else {                                                        \
      {                                                             \
        size_t from = 0, to = 256;                                  \
        body;                                                       \
      }                                                             \
      for (size_t k_ = 16384; k_ + 64 <= (size)-256; k_ += 16384) { \
        size_t from = k_, to = k_ + 64;                             \
        body;                                                       \
      }                                                             \
      {                                                             \
        size_t from = (size)-256, to = (size);                      \
        body;                                                       \
      }                                                             \
    }                                                               \
  } while (0)

static void fill_range(unsigned char *p, size_t from, size_t to, uint64_t hash) {
  size_t i = from;
  for (; i < to && ((uintptr_t)(p + i) & 7); i++) p[i] = pat(hash, i);
  /* p is 16-aligned, so here i is a multiple of 8 */
  for (; i + 8 <= to; i += 8) *(word_t *)(p + i) = hash ^ ((uint64_t)(i >> 3) * GOLDEN);
  for (; i < to; i++) p[i] = pat(hash, i);
}

static size_t check_range(const unsigned char *p, size_t from, size_t to, uint64_t hash) {
  size_t i = from;
  for (; i < to && ((uintptr_t)(p + i) & 7); i++)
    if (p[i] != pat(hash, i)) return i;
  for (; i + 8 <= to; i += 8)
    if (*(const word_t *)(p + i) != (hash ^ ((uint64_t)(i >> 3) * GOLDEN))) break;
  for (; i < to; i++)
    if (p[i] != pat(hash, i)) return i;
  return SIZE_MAX;
}

void hh_fill(void *p, size_t size, uint64_t hash) {
  if (!size) return;
  FOR_EACH_FILLED(size, from, to, fill_range(p, from, to, hash));
}

size_t hh_check(const void *p, size_t size, size_t prefix, uint64_t hash) {
  size_t bad = SIZE_MAX;
  if (!size) return bad;
  if (prefix > size) prefix = size;
  FOR_EACH_FILLED(size, from, to, {
    if (bad == SIZE_MAX && from < prefix) bad = check_range(p, from, to < prefix ? to : prefix, hash);
  });
  return bad;
}

bool hh_check_zero_sampled(const void *p, size_t size) {
  bool ok = true;
  if (!size) return true;
  FOR_EACH_FILLED(size, from, to, {
    if (ok) ok = hh_all_zero((const unsigned char *)p + from, to - from);
  });
  return ok;
}

bool hh_all_equal(const void *p, size_t size, unsigned char c) {
  const unsigned char *b = p;
  size_t i = 0;
  uint64_t w = 0x0101010101010101ULL * c;
  for (; i < size && ((uintptr_t)(b + i) & 7); i++)
    if (b[i] != c) return false;
  for (; i + 8 <= size; i += 8)
    if (*(const word_t *)(b + i) != w) return false;
  for (; i < size; i++)
    if (b[i] != c) return false;
  return true;
}

bool hh_all_zero(const void *p, size_t size) { return hh_all_equal(p, size, 0); }

/* ------------------------------------------------------------ /proc */

long hh_status_kb(const char *field) { return hh_proc_kb("/proc/self/status", field); }

long hh_proc_kb(const char *path, const char *field) {
  char buf[8192];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  size_t len = strlen(field);
  for (char *line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
    if (strncmp(line, field, len) == 0 && line[len] == ':') return strtol(line + len + 1, NULL, 10);
  return -1;
}
