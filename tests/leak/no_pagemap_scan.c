/* no_pagemap_scan PROGRAM [ARG...]: runs PROGRAM with the PAGEMAP_SCAN
 * ioctl refused (ENOTTY), as a kernel before Linux 6.7 refuses it, so that
 * the leak scan's fallback, which reads by mincore, is tested on a kernel
 * that has it. Built twice: the program, which preloads the library built
 * with -DSHIM from the same directory and runs PROGRAM; and that library,
 * whose ioctl refuses the one request and passes the others on. No
 * seccomp filter: under one inherited at exec the scan reads pagemap
 * instead of asking mincore (a service's filter may kill for it), and the
 * fallback would not be the one tested. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

struct pm_scan_arg_size {
  uint64_t words[12]; /* struct pm_scan_arg: twelve 64-bit fields */
};
#define PM_SCAN_CMD _IOWR('f', 16, struct pm_scan_arg_size)

#ifdef SHIM
int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  if ((uint32_t)request == (uint32_t)PM_SCAN_CMD) {
    errno = ENOTTY;
    return -1;
  }
  return (int)syscall(SYS_ioctl, fd, request, arg);
}
#else
int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: no_pagemap_scan PROGRAM [ARG...]\n");
    return 2;
  }
  char self[4096], preload[8192];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return 2;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash != NULL) *slash = '\0';
  const char *old = getenv("LD_PRELOAD");
  snprintf(preload, sizeof preload, "%s/libno_pagemap_scan.so%s%s", self, old != NULL ? ":" : "", old ? old : "");
  setenv("LD_PRELOAD", preload, 1);
  execvp(argv[1], argv + 1);
  perror("no_pagemap_scan: exec");
  return 127;
}
#endif
