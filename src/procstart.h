/*
 * Who the hahalloc command is, beyond its pid number: the start time the
 * kernel gives each process (field 22 of /proc/PID/stat, clock ticks after
 * boot) and its pid namespace. The command passes both to its program in
 * HAHALLOC_CLI_PID; the library checks them at start-up before it takes
 * itself for the program and its parent for the command (options.c), whose
 * stderr it may write to (report/dest.c): a process in a nested pid
 * namespace, or one given a reused number, has the program's or the
 * command's number and is neither.
 * Shared by the command and the library; no allocation, no stdio.
 */
#ifndef HH_PROCSTART_H
#define HH_PROCSTART_H

#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A small text file (/proc) read whole into buf, NUL-terminated: its
 * length, or -1. */
static inline ssize_t hh_read_text(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t got = read(fd, buf, size - 1);
  close(fd);
  if (got <= 0) return -1;
  buf[got] = '\0';
  return got;
}

/* The start time of process `pid` as /proc shows it, 0 when unknown. */
static inline unsigned long long hh_proc_start(int pid) {
  char path[32] = "/proc/", digits[12];
  int n = 0;
  unsigned v = (unsigned)pid;
  do digits[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  size_t at = strlen(path);
  while (n > 0) path[at++] = digits[--n];
  memcpy(path + at, "/stat", 6);
  char buf[1024];
  if (hh_read_text(path, buf, sizeof buf) < 0) return 0;
  const char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
  if (p == NULL) return 0;
  for (int field = 2; field < 22; field++) { /* p sits before field `field + 1` */
    p = strchr(p + 1, ' ');
    if (p == NULL) return 0;
  }
  unsigned long long t = 0;
  for (p++; *p >= '0' && *p <= '9'; p++) t = t * 10 + (unsigned long long)(*p - '0');
  return t;
}

/* Whether /proc is this process's: in a pid namespace without a /proc of
 * its own, /proc/PID names another process there. */
static inline bool hh_proc_is_own(void) {
  char self[32];
  ssize_t n = readlink("/proc/self", self, sizeof self - 1);
  if (n <= 0) return false;
  long pid = 0;
  for (ssize_t i = 0; i < n && self[i] >= '0' && self[i] <= '9'; i++) pid = pid * 10 + (self[i] - '0');
  return pid == (long)getpid();
}

/* The inode of this process's pid namespace, 0 when unknown. */
static inline unsigned long long hh_pid_namespace(void) {
  struct stat st;
  return stat("/proc/self/ns/pid", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

#endif
