/*
 * Running a helper (addr2line, c++filt) that the program cannot see.
 *
 * A child of the program would be seen: its exit raises SIGCHLD (ps exits
 * when its handler runs), the program's wait(-1) may reap it, and it
 * inherits the program's descriptors and signal handlers. Linux sends no
 * exit signal for a child cloned with exit signal 0 and hides it from every
 * wait but __WALL ones, but exec resets the exit signal to SIGCHLD. So the
 * helper is a grandchild:
 *
 *   report thread --clone(CLONE_VM, no exit signal)--> go-between
 *   go-between    --clone(CLONE_VM|CLONE_VFORK, SIGCHLD)--> helper --exec-->
 *
 * The go-between never execs: its end raises nothing in the program, and
 * only our __WALL wait sees it. The helper's SIGCHLD goes to the go-between,
 * which waits for it. Both share our memory until the exec, so they run
 * with every signal blocked (no handler of the program may run there),
 * touch nothing but their own stacks, and make raw system calls (glibc's
 * wrappers write errno, which is the reporting thread's). The helper gets
 * the pipe as stdout, /dev/null as stdin and stderr and no other
 * descriptor. At the deadline the helper is killed and the go-between reaps
 * it; the helper also dies with the go-between (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "hooks.h"
#include "raw.h"
#include "report.h"

#if defined(__x86_64__)

typedef struct spawn {
  const char *path;
  char *const *argv, *const *envp;
  int out;                  /* the pipe's write end */
  int parent;               /* the go-between's pid, for the helper */
  _Atomic(int) helper;      /* the helper's pid while it is not reaped, else 0 */
  _Atomic(int) helper_lock; /* held to signal the helper, and to reap it */
  char *stack2;             /* the helper's stack (top) until it execs */
} spawn;

static __attribute__((noreturn)) void helper_main(spawn *a) {
  RAW(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  if (RAW(SYS_getppid, 0) != a->parent) RAW(SYS_exit, 127); /* the go-between is already gone */
  /* Both moved above 2 first: the pipe may be fd 1 or /dev/null fd 0 (the
   * program closed them), and dup2 onto itself would keep close-on-exec. */
  long out = RAW(SYS_fcntl, a->out, F_DUPFD, 3);
  long null = RAW(SYS_open, "/dev/null", O_RDWR);
  if (null >= 0 && null < 3) null = RAW(SYS_fcntl, null, F_DUPFD, 3);
  if (out < 0 || null < 0 || RAW(SYS_dup2, out, 1) < 0 || RAW(SYS_dup2, null, 0) < 0 || RAW(SYS_dup2, null, 2) < 0)
    RAW(SYS_exit, 127);
  if (RAW(SYS_close_range, 3, ~0u, 0) != 0)
    for (int fd = 3; fd < 65536; fd++) RAW(SYS_close, fd);
  RAW(SYS_execve, a->path, a->argv, a->envp);
  for (;;) RAW(SYS_exit, 127);
}

/* clone(CLONE_VM | CLONE_VFORK | SIGCHLD) onto a->stack2: the child runs
 * helper_main(a) there and never returns; the caller resumes once the
 * child has exec'd or exited. */
static int helper_start(void *arg) { helper_main(arg); }

static long clone_helper(spawn *a) { return raw_clone(helper_start, a->stack2, CLONE_VM | CLONE_VFORK | SIGCHLD, a); }

static int go_between(void *arg) {
  spawn *a = arg;
  a->parent = (int)RAW(SYS_getpid, 0);
  long pid = clone_helper(a);
  if (pid > 0) atomic_store(&a->helper, (int)pid);
  int status = 127;
  siginfo_t info;
  if (pid > 0) {
    /* wait for its end without reaping it, so that its pid stays its own
     * while the caller may still signal it; then reap it under the lock */
    while (RAW(SYS_waitid, P_PID, pid, &info, WEXITED | WNOWAIT | __WALL, 0) == -EINTR) {}
    while (atomic_exchange(&a->helper_lock, 1)) {}
    atomic_store(&a->helper, 0);
    atomic_store(&a->helper_lock, 0);
    while (RAW(SYS_wait4, pid, &status, __WALL, 0) == -EINTR) {}
  }
  RAW(SYS_exit, 0);
  return 0;
}

/* Kills the helper, or the go-between when there is no helper (the helper
 * then dies with it): never a pid that was reaped and may be reused. */
static void kill_helper(spawn *a, int go_between_pid) {
  while (atomic_exchange(&a->helper_lock, 1)) {}
  int h = atomic_load(&a->helper);
  kill(h > 0 ? h : go_between_pid, SIGKILL);
  atomic_store(&a->helper_lock, 0);
}

/* Starts the helper; returns the go-between's pid (reap it with __WALL). */
static int start(spawn *a, char *stack1, size_t size) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = raw_clone(go_between, stack1 + size, CLONE_VM, a); /* exit signal: none */
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return pid < 0 ? -1 : (int)pid;
}

#else
#error "spawn.c: the helper's start is written for x86-64"
#endif

char *hh_spawn_capture(const char *path, char *const *argv, char *const *envp, int64_t deadline, size_t *len,
                       size_t *cap) {
  *len = 0;
  *cap = 0;
  if (hh_sandboxed()) return NULL; /* clone and execve are what a seccomp filter refuses first */
  int saved = errno;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return NULL;
  enum { STACK = 64 * 1024 };
  char *stacks = hh_report_map(2 * STACK);
  if (stacks == NULL) {
    close(fds[0]);
    close(fds[1]);
    errno = saved;
    return NULL;
  }
  spawn a = {path, argv, envp, fds[1], 0, 0, 0, stacks + 2 * STACK};
  int pid = start(&a, stacks, STACK);
  close(fds[1]);
  char *out = NULL;
  size_t c = 65536, n = 0;
  bool killed = false;
  if (pid > 0) out = hh_report_map(c);
  while (out != NULL) {
    if (n == c) {
      char *bigger = hh_report_map(c * 2);
      if (bigger == NULL) break;
      memcpy(bigger, out, n);
      hh_report_unmap(out, c);
      out = bigger;
      c *= 2;
    }
    int64_t left = (deadline - hh_now_ns()) / 1000000;
    if (left <= 0) { /* the go-between then reaps it and ends */
      kill_helper(&a, pid);
      killed = true;
      break;
    }
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    int r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    ssize_t got = read(fds[0], out + n, c - n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    n += (size_t)got;
  }
  close(fds[0]);
  /* reap the go-between (which reaps the helper); a helper that lingers
   * after closing its output is killed, and so is a stuck go-between */
  for (int tries = 0; pid > 0; tries++) {
    int status;
    int r = waitpid(pid, &status, __WALL | WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (r == 0 && tries == 2000 && !killed) {
      kill_helper(&a, pid);
      killed = true;
    }
    if (r == 0 && tries == 4000) kill(pid, SIGKILL);
    if (r == 0) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
  }
  hh_report_unmap(stacks, 2 * STACK); /* nobody runs on them any more */
  errno = saved;
  if (out != NULL && killed) { /* its output may stop mid-line: use none of it */
    hh_report_unmap(out, c);
    return NULL;
  }
  if (out == NULL) return NULL;
  *len = n;
  *cap = c;
  return out;
}
