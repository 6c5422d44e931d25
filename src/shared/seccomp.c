/*
 * prctl() and syscall(), interposed by the shared library only, to learn
 * when the program installs a seccomp filter.
 *
 * A filter may refuse any system call, or kill the process for it. The
 * report makes calls a program under a filter seldom needs (getpid, tgkill
 * to stop the other threads, clone and execve for addr2line, kcmp): a
 * program whose filter allowed only what it uses itself was killed by
 * SIGSYS at exit, its buffered output lost and its status changed. So once
 * a filter is installed, no report is made (report.c, hh_sandboxed); the
 * one line that says so is written before the filter takes effect.
 * libseccomp installs its filters with syscall(SYS_seccomp) (prctl on
 * kernels older than 3.17), other programs with prctl(PR_SET_SECCOMP);
 * both come here. A filter installed by raw system call instructions is
 * not seen; one inherited through exec is found at start-up, in
 * /proc/self/status (hh_sandbox_init).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../hooks.h"
#include "../internal.h"

typedef int (*prctl_fn)(int, unsigned long, unsigned long, unsigned long, unsigned long);
static prctl_fn real_prctl;

__attribute__((constructor)) static void find_prctl(void) { real_prctl = (prctl_fn)dlsym(RTLD_NEXT, "prctl"); }

HH_EXPORT int prctl(int option, ...) {
  va_list ap;
  va_start(ap, option);
  unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long), a4 = va_arg(ap, unsigned long),
                a5 = va_arg(ap, unsigned long);
  va_end(ap);
  bool entered = option == PR_SET_SECCOMP && hh_sandbox_entering(a2 == SECCOMP_MODE_STRICT);
  /* a constructor that ran before ours: the system call itself */
  int r = real_prctl != NULL ? real_prctl(option, a2, a3, a4, a5) : (int)syscall(SYS_prctl, option, a2, a3, a4, a5);
  if (entered && r != 0) hh_sandbox_refused();
  return r;
}

#if defined(__x86_64__)
/* syscall() as glibc's: the number and six arguments, -1 and errno for a
 * result in [-4095, -1]. Made here with the instruction itself, so that
 * the library's own calls (which bind to this definition) need nothing
 * found at run time. */
static inline long raw_syscall6(long n, long a1, long a2, long a3, long a4, long a5, long a6) {
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  long r;
  __asm__ volatile("syscall"
                   : "=a"(r)
                   : "0"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return r;
}

HH_EXPORT long syscall(long n, ...) {
  va_list ap;
  va_start(ap, n);
  long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long), a4 = va_arg(ap, long),
       a5 = va_arg(ap, long), a6 = va_arg(ap, long);
  va_end(ap);
  bool entered = false;
  if (HH_UNLIKELY(n == SYS_seccomp || n == SYS_prctl)) {
    if (n == SYS_seccomp && (a1 == SECCOMP_SET_MODE_FILTER || a1 == SECCOMP_SET_MODE_STRICT))
      entered = hh_sandbox_entering(a1 == SECCOMP_SET_MODE_STRICT);
    else if (n == SYS_prctl && a1 == PR_SET_SECCOMP)
      entered = hh_sandbox_entering(a2 == SECCOMP_MODE_STRICT);
  }
  long r = raw_syscall6(n, a1, a2, a3, a4, a5, a6);
  if ((unsigned long)r > -4096UL) {
    if (entered) hh_sandbox_refused();
    errno = (int)-r;
    return -1;
  }
  return r;
}
#endif
