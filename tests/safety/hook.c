/*
 * A preloaded library of a kind a program may run with besides ours (a
 * clock or randomness faker): it hooks syscall() and fakes getrandom's
 * bytes (0x5a each), passing every other call on. The library's own
 * syscall() must pass calls on to it rather than to the kernel.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <string.h>
#include <sys/syscall.h>

long syscall(long n, ...);
long syscall(long n, ...) {
  va_list ap;
  va_start(ap, n);
  long a[6];
  for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
  va_end(ap);
  if (n == SYS_getrandom) {
    memset((void *)a[0], 0x5a, (size_t)a[1]);
    return a[1];
  }
  long (*next)(long, ...) = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  return next(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
