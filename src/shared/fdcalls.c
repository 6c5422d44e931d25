/*
 * fcntl, fstat, dup2, dup3, close, close_range and closefrom, interposed by
 * the shared library only, so that the descriptors the report keeps open
 * stay out of the program's way (src/report/kept.c says why and how). Each
 * call goes on to the next definition (glibc's); a number that is not one
 * of ours costs a compare or three. Calls made before our constructor
 * found the next definitions go to the kernel.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../internal.h"
#include "../report/report.h"

typedef int (*fcntl_fn)(int, int, ...);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);
typedef int (*close_fn)(int);
typedef int (*close_range_fn)(unsigned, unsigned, int);
typedef void (*closefrom_fn)(int);
typedef int (*fstat_fn)(int, struct stat *);
typedef int (*fstatat_fn)(int, const char *, struct stat *, int);
typedef int (*fxstat_fn)(int, int, struct stat *);
static fcntl_fn real_fcntl, real_fcntl64;
static dup2_fn real_dup2;
static dup3_fn real_dup3;
static close_fn real_close;
static close_range_fn real_close_range;
static closefrom_fn real_closefrom;
static fstat_fn real_fstat, real_fstat64;
static fstatat_fn real_fstatat, real_fstatat64;
static fxstat_fn real_fxstat, real_fxstat64; /* glibc before 2.33: what older programs call */

/* Found before main, outside any malloc: dlsym takes the loader's lock
 * (and our own code calls close and fstat while the first malloc starts
 * us up). glibc 2.33 made __fxstat and __fxstat64 compatibility symbols,
 * which only a versioned lookup finds. */
__attribute__((constructor)) static void find_fd_calls(void) {
  static const struct {
    void **slot;
    const char *name;
  } next[] = {
      {(void **)&real_fcntl, "fcntl"},         {(void **)&real_fcntl64, "fcntl64"},
      {(void **)&real_dup2, "dup2"},           {(void **)&real_dup3, "dup3"},
      {(void **)&real_close, "close"},         {(void **)&real_close_range, "close_range"},
      {(void **)&real_closefrom, "closefrom"}, {(void **)&real_fstat, "fstat"},
      {(void **)&real_fstat64, "fstat64"},     {(void **)&real_fstatat, "fstatat"},
      {(void **)&real_fstatat64, "fstatat64"}, {(void **)&real_fxstat, "__fxstat"},
      {(void **)&real_fxstat64, "__fxstat64"},
  };
  for (size_t i = 0; i < sizeof next / sizeof next[0]; i++) {
    *next[i].slot = dlsym(RTLD_NEXT, next[i].name);
    if (*next[i].slot == NULL) *next[i].slot = dlvsym(RTLD_NEXT, next[i].name, "GLIBC_2.2.5");
  }
}

static int refuse(void) {
  errno = EBADF;
  return -1;
}

/* Before our constructor (another library's constructor that ran first),
 * the kernel's, as glibc would answer: F_GETOWN of a process group, read
 * with F_GETOWN_EX, since the kernel's -pgid can look like an error. */
static int fcntl_next(fcntl_fn next, int fd, int cmd, void *arg) {
  if (next != NULL) return next(fd, cmd, arg);
  if (cmd == F_GETOWN) {
    struct f_owner_ex ex;
    if (syscall(SYS_fcntl, fd, F_GETOWN_EX, &ex) == 0) return ex.type == F_OWNER_PGRP ? -ex.pid : ex.pid;
  }
  return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

static int fcntl_common(bool is64, int fd, int cmd, void *arg) {
  if (HH_UNLIKELY(hh_fd_kept(fd))) return refuse();
  fcntl_fn next = is64 && real_fcntl64 != NULL ? real_fcntl64 : real_fcntl;
  int r = fcntl_next(next, fd, cmd, arg);
  /* F_DUPFD gives the lowest free number from arg up: one of ours below
   * the answer was the program's to have (a dup2 made of a close and an
   * F_DUPFD). Ours moves, and the copy is made again. */
  if (HH_UNLIKELY(r > 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))) {
    int k = hh_fd_kept_between((int)(intptr_t)arg, r);
    if (k >= 0 && hh_fd_make_room(k)) {
      int saved = errno;
      syscall(SYS_close, k); /* our old copy there */
      syscall(SYS_close, r);
      errno = saved;
      r = fcntl_next(next, fd, cmd, arg);
    }
  }
  return r;
}

/* The third argument is taken as glibc's fcntl takes it: one word, whatever
 * the command (an int, a pointer, or nothing). */
HH_EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  return fcntl_common(false, fd, cmd, arg);
}

HH_EXPORT int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  return fcntl_common(true, fd, cmd, arg);
}

/* dup2 or dup3 onto `newfd`: one of ours there is moved to another number
 * first. If the call then fails, the number is left as the program saw it
 * (not open): the old copy of ours is closed. */
static int dup_onto(int oldfd, int newfd, int flags, bool three) {
  if (HH_UNLIKELY(hh_fd_kept(oldfd))) return refuse();
  bool moved = HH_UNLIKELY(newfd != oldfd) && hh_fd_make_room(newfd);
  int r;
  if (three)
    r = real_dup3 != NULL ? real_dup3(oldfd, newfd, flags) : (int)syscall(SYS_dup3, oldfd, newfd, flags);
  else
    r = real_dup2 != NULL ? real_dup2(oldfd, newfd) : (int)syscall(SYS_dup2, oldfd, newfd);
  if (HH_UNLIKELY(moved && r < 0)) {
    int saved = errno;
    syscall(SYS_close, newfd);
    errno = saved;
  }
  return r;
}

HH_EXPORT int dup2(int oldfd, int newfd) { return dup_onto(oldfd, newfd, 0, false); }
HH_EXPORT int dup3(int oldfd, int newfd, int flags) { return dup_onto(oldfd, newfd, flags, true); }

/* close always closes (Linux), so ours is forgotten first: a thread that
 * opens a file at the number the moment after finds it its own. */
HH_EXPORT int close(int fd) {
  if (fd >= 0) hh_fd_forget((unsigned)fd, (unsigned)fd);
  if (real_close != NULL) return real_close(fd);
  return (int)syscall(SYS_close, fd);
}

/* close_range may fail and close nothing (EINVAL, or ENOSYS before Linux
 * 5.9): ours are forgotten once it has closed them. CLOSE_RANGE_CLOEXEC
 * closes nothing now (ours have the flag), and CLOSE_RANGE_UNSHARE closes
 * them in a table of the caller's alone. */
HH_EXPORT int close_range(unsigned first, unsigned last, int flags) {
  int r = real_close_range != NULL ? real_close_range(first, last, flags)
                                   : (int)syscall(SYS_close_range, first, last, flags);
  if (r == 0 && !(flags & (CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE))) hh_fd_forget(first, last);
  return r;
}

HH_EXPORT void closefrom(int lowfd) {
  hh_fd_forget(lowfd < 0 ? 0u : (unsigned)lowfd, ~0u); /* closefrom cannot fail: glibc falls back on /proc */
  if (real_closefrom != NULL) {
    real_closefrom(lowfd);
    return;
  }
  syscall(SYS_close_range, lowfd < 0 ? 0 : lowfd, ~0u, 0);
}

/* fstat, and fstatat of the descriptor itself (an empty path), as CPython's
 * test of a child's open descriptors asks: one of ours is not open. (struct
 * stat and struct stat64 are one on x86-64.) */
static int fstat_common(fstat_fn next, int fd, struct stat *st) {
  if (HH_UNLIKELY(hh_fd_kept(fd))) return refuse();
  if (next != NULL) return next(fd, st);
  return (int)syscall(SYS_fstat, fd, st);
}

HH_EXPORT int fstat(int fd, struct stat *st) { return fstat_common(real_fstat, fd, st); }
HH_EXPORT int fstat64(int fd, struct stat64 *st) {
  return fstat_common(real_fstat64 ? real_fstat64 : real_fstat, fd, (struct stat *)st);
}

static int fstatat_common(fstatat_fn next, int fd, const char *path, struct stat *st, int flags) {
  if (HH_UNLIKELY((flags & AT_EMPTY_PATH) && path != NULL && path[0] == '\0' && hh_fd_kept(fd))) return refuse();
  if (next != NULL) return next(fd, path, st, flags);
  return (int)syscall(SYS_newfstatat, fd, path, st, flags);
}

HH_EXPORT int fstatat(int fd, const char *path, struct stat *st, int flags) {
  return fstatat_common(real_fstatat, fd, path, st, flags);
}
HH_EXPORT int fstatat64(int fd, const char *path, struct stat64 *st, int flags) {
  return fstatat_common(real_fstatat64 ? real_fstatat64 : real_fstatat, fd, path, (struct stat *)st, flags);
}

static int fxstat_common(fxstat_fn next, int ver, int fd, struct stat *st) {
  if (HH_UNLIKELY(hh_fd_kept(fd))) return refuse();
  if (next != NULL) return next(ver, fd, st);
  return (int)syscall(SYS_fstat, fd, st);
}

int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat *st);
HH_EXPORT int __fxstat(int ver, int fd, struct stat *st) { return fxstat_common(real_fxstat, ver, fd, st); }
HH_EXPORT int __fxstat64(int ver, int fd, struct stat *st) {
  return fxstat_common(real_fxstat64 ? real_fxstat64 : real_fxstat, ver, fd, st);
}
