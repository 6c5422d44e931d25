/*
 * prctl() and syscall(), interposed to learn when the program installs a
 * seccomp filter. Unlike the rest of src/shared, in the static library too
 * (libc.a's prctl is weak, and nothing in libc.a calls syscall()); there
 * dlsym finds no next definition, and the calls go to the kernel.
 *
 * A filter may refuse any system call, or kill the process for it. The
 * report makes calls a program under a filter seldom needs (getpid, tgkill
 * to stop the other threads, clone and execve for addr2line, kcmp): a
 * program whose filter allowed only what it uses itself was killed by
 * SIGSYS at exit, its buffered output lost and its status changed. So once
 * the program installs a filter, no report is made (report.c,
 * hh_sandboxed); the one line that says so is written before the first
 * install. libseccomp installs its filters with syscall(SYS_seccomp)
 * (prctl on kernels older than 3.17), other programs with
 * prctl(PR_SET_SECCOMP); both come here, and both are passed on to the
 * next definition (glibc's, or another preloaded library's hook). Calls
 * that cannot install anything (libseccomp's probes of what the kernel
 * supports pass no program, or flags strict mode refuses) are passed on
 * unseen. A filter installed by a raw system call instruction is not seen.
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
typedef long (*syscall_fn)(long, ...); /* called as declared: a hook of it may take its arguments with va_arg */
static prctl_fn real_prctl;
static syscall_fn real_syscall;

/* Found before main, outside any malloc: dlsym takes the loader's lock. */
__attribute__((constructor)) static void find_next(void) {
  real_prctl = (prctl_fn)dlsym(RTLD_NEXT, "prctl");
  real_syscall = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
}

#if defined(__x86_64__)
/* The system call itself, with glibc's convention for the result (-1 and
 * errno for [-4095, -1]): for calls made before the constructor above. */
static long raw_syscall6(long n, long a1, long a2, long a3, long a4, long a5, long a6) {
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  long r;
  __asm__ volatile("syscall"
                   : "=a"(r)
                   : "0"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  if ((unsigned long)r > -4096UL) {
    errno = (int)-r;
    return -1;
  }
  return r;
}
#endif

/* Whether prctl(PR_SET_SECCOMP, mode, prog) may install something. */
static bool prctl_installs(unsigned long mode, unsigned long prog) {
  return mode == SECCOMP_MODE_STRICT || (mode == SECCOMP_MODE_FILTER && prog != 0);
}

HH_EXPORT int prctl(int option, ...) {
  va_list ap;
  va_start(ap, option);
  unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long), a4 = va_arg(ap, unsigned long),
                a5 = va_arg(ap, unsigned long);
  va_end(ap);
  bool entered = option == PR_SET_SECCOMP && prctl_installs(a2, a3) && hh_sandbox_entering(a2 == SECCOMP_MODE_STRICT);
  int r;
  if (real_prctl != NULL)
    r = real_prctl(option, a2, a3, a4, a5);
  else /* a constructor that ran before ours */
    r = (int)syscall(SYS_prctl, (long)option, a2, a3, a4, a5);
  if (entered) hh_sandbox_done(r == 0);
  return r;
}

#if defined(__x86_64__)
HH_EXPORT long syscall(long n, ...) {
  va_list ap;
  va_start(ap, n);
  long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long), a4 = va_arg(ap, long),
       a5 = va_arg(ap, long), a6 = va_arg(ap, long);
  va_end(ap);
  bool entered = false;
  if (HH_UNLIKELY(n == SYS_seccomp || n == SYS_prctl)) {
    /* seccomp(2): strict mode takes flags 0 and no argument; a filter, a
     * program */
    if (n == SYS_seccomp &&
        ((a1 == SECCOMP_SET_MODE_STRICT && a2 == 0 && a3 == 0) || (a1 == SECCOMP_SET_MODE_FILTER && a3 != 0)))
      entered = hh_sandbox_entering(a1 == SECCOMP_SET_MODE_STRICT);
    else if (n == SYS_prctl && a1 == PR_SET_SECCOMP && prctl_installs((unsigned long)a2, (unsigned long)a3))
      entered = hh_sandbox_entering(a2 == SECCOMP_MODE_STRICT);
  }
  long r = real_syscall != NULL ? real_syscall(n, a1, a2, a3, a4, a5, a6) : raw_syscall6(n, a1, a2, a3, a4, a5, a6);
  /* installed: 0, or a listener's descriptor; a failed SECCOMP_FILTER_FLAG_TSYNC answers a thread's id */
  if (entered)
    hh_sandbox_done(r == 0 || (r > 0 && n == SYS_seccomp && ((unsigned long)a2 & SECCOMP_FILTER_FLAG_NEW_LISTENER)));
  return r;
}
#endif
