/*
 * sigwait(), sigwaitinfo() and sigtimedwait(), interposed by the shared
 * library only.
 *
 * A signal thread blocks every signal and takes them one by one with one
 * of these calls. The report's stop never sends its signal to a thread
 * waiting so (src/report/stop.c reads the set it waits for), but a thread
 * that a signal has just woken, and that waits for a CPU, shows neither
 * the wait nor the signal blocked: it was sent the stop signal, and its
 * next wait returned it to the program (which may abort on a signal it
 * does not know: 9 of 10 runs on a busy machine). A stop signal the stop
 * sent is taken here instead: the thread stops as the handler would have
 * stopped it (hh_stop_waited), and the wait is made again, its timeout in
 * full. Any other signal, the program's own SIGRTMAX-2 included, is
 * returned as ever.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../internal.h"
#include "../report/report.h"

typedef int (*sigtimedwait_fn)(const sigset_t *, siginfo_t *, const struct timespec *);
typedef int (*sigwaitinfo_fn)(const sigset_t *, siginfo_t *);
static sigtimedwait_fn real_sigtimedwait;
static sigwaitinfo_fn real_sigwaitinfo;

__attribute__((constructor)) static void find_sigwait(void) {
  real_sigtimedwait = (sigtimedwait_fn)dlsym(RTLD_NEXT, "sigtimedwait");
  real_sigwaitinfo = (sigwaitinfo_fn)dlsym(RTLD_NEXT, "sigwaitinfo");
}

static int timed_wait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout) {
  if (real_sigtimedwait != NULL) return real_sigtimedwait(set, info, timeout);
  return (int)syscall(SYS_rt_sigtimedwait, set, info, timeout, _NSIG / 8);
}

HH_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout) {
  for (;;) {
    siginfo_t own;
    siginfo_t *si = info != NULL ? info : &own;
    int r = timed_wait(set, si, timeout);
    if (r < 0 || !hh_stop_waited(r, si)) return r;
  }
}

HH_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info) {
  for (;;) {
    siginfo_t own;
    siginfo_t *si = info != NULL ? info : &own;
    int r = real_sigwaitinfo != NULL ? real_sigwaitinfo(set, si) : timed_wait(set, si, NULL);
    if (r < 0 || !hh_stop_waited(r, si)) return r;
  }
}

/* glibc's sigwait does not go through sigwaitinfo's symbol; as glibc's, it
 * never fails with EINTR. */
HH_EXPORT int sigwait(const sigset_t *set, int *sig) {
  int saved = errno;
  for (;;) {
    siginfo_t si;
    int r = sigwaitinfo(set, &si);
    if (r > 0) {
      *sig = r;
      errno = saved;
      return 0;
    }
    if (errno != EINTR) {
      int e = errno;
      errno = saved;
      return e;
    }
  }
}
