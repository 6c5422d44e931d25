/*
 * Where the exit report goes, and writing it there without the program
 * noticing.
 *
 * The default destination is the program's stderr as it was at start-up:
 * a private duplicate taken then (close-on-exec, at a high descriptor), so
 * that a program that closes fd 2 in an exit handler (coreutils, bison, m4,
 * xz) still gets its report, and a program that closed fd 2 and opened a
 * file that became fd 2 never gets the report appended to its own data.
 * Before writing, the descriptor is checked to still name the file it named
 * then; if the program closed or reused it, fd 2 is used when it still names
 * that file, then the same file through the hahalloc command, and otherwise
 * the report is dropped rather than written into someone else's file. The
 * command's program reports to the command's stream first when its own
 * start-up stream is another (a wrapper changed it: note_command_stream).
 *
 * Writes never raise SIGPIPE or SIGXFSZ in the program (they are blocked in
 * this thread while writing, and one a write raised is taken back), never
 * change errno, and never block for ever on a pipe nobody reads: without
 * progress for OUTPUT_STALL_MS the rest of a write is dropped, and the
 * waits without progress on one stream add up to at most
 * OUTPUT_STALL_TOTAL_MS.
 *
 * Report files (--log-file, --xml-file, HAHALLOC_OUTPUT: made absolute at
 * start-up; %p the pid, %q{VAR} a variable's value) are opened
 * O_NOFOLLOW, created with mode 0600 and never truncated: an existing file
 * is appended to. The whole report is written under flock (hh_out holds it
 * from open to close), so processes that share one file or stream (traced
 * children) never interleave theirs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "clock.h"
#include "format.h"
#include "hooks.h"
#include "options.h"
#include "procstart.h"
#include "report.h"

#define OUTPUT_STALL_MS 10000
#define OUTPUT_STALL_TOTAL_MS 20000
#define LOCK_WAIT_MS 10000

static int private_fd = -1; /* duplicate of the stream the report goes to */
static int reopened = -1;   /* the command's stream, taken when first written to (command_stream_fd) */
static int private_of = -1; /* which: 1 or 2 (also when only the command's stream is known) */
static dev_t private_dev;
static ino_t private_ino;
static bool private_known; /* private_dev and private_ino name the start-up stream: fd `which` was open */
/* The stream reached through the command (command_stream_fd): its own, which
 * is the start-up stream unless the image the command started exec'd this
 * one after changing it (note_command_stream) */
static dev_t command_dev;
static ino_t command_ino;
static bool command_first;     /* that stream is not the start-up one, and comes first */
static int stall_fd = -1;      /* the stream the last write went to */
static int64_t stall_spent_ms; /* and how long it has taken nothing since it last moved */
/* The messages' stream (hh_message_write), with the report on: stderr as at
 * start-up, through private_fd when that is a copy of it, else fd 2 while it
 * still names that file; err_known false: none (fd 2 was closed). */
static bool messages_checked, err_known;
static _Atomic(bool) told_unwritable; /* the report's file cannot be opened: said */
static dev_t err_dev;
static ino_t err_ino;

static bool same_file(int fd, dev_t dev, ino_t ino) {
  struct stat st;
  return fd >= 0 && hh_fstat_raw(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* A descriptor near the top of the table, where programs rarely look, and
 * never below HIGH_FD_MIN: a program under a low RLIMIT_NOFILE, or with
 * most of its table open, would lose numbers it counts on. -1 when there
 * is none. (Not above the soft limit, as valgrind keeps its own: a child
 * that detaches by closing every descriptor below that limit, and does
 * not exec, would then hold a pipe on stderr open, and a shell reading
 * the program's output would wait for it.) */
#define HIGH_FD_MIN 64
int hh_high_dup(int fd) {
  int saved = errno;
  struct rlimit rl;
  long top = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < top)
    top = (long)rl.rlim_cur;
  long from = top - 64 > HIGH_FD_MIN ? top - 64 : HIGH_FD_MIN;
  int d = hh_fcntl_raw(fd, F_DUPFD_CLOEXEC, from);
  if (d < 0) d = hh_fcntl_raw(fd, F_DUPFD_CLOEXEC, HIGH_FD_MIN);
  errno = saved;
  return d;
}

/* Whether the parent is the hahalloc command, checked at start-up
 * (options.c: its pid and start time, from HAHALLOC_CLI_PID, in a /proc of
 * the process's own). After start-up a parent of the same number is the
 * same process: a program that outlived the command (killed; a change of
 * group id clears the parent-death signal) was adopted by a process that
 * was alive beside it, and its stderr is someone else's. A fork child is
 * the program's child (HH_CLI_CHILD). */
static bool command_is_parent(void) {
  return hh_opt.cli == HH_CLI_PROGRAM && hh_opt.cli_command_parent && getppid() == hh_opt.cli_command;
}

/* /proc/COMMAND/DIR/N: the command's descriptor N (fd) or what it says of it (fdinfo) */
static void command_path(char *path, size_t size, const char *dir, int which) {
  hh_snformat(path, size, "/proc/%d/%s/%d", hh_opt.cli_command, dir, which);
}

/* The hahalloc command's program reports to the command's stream. The
 * two differ only when the image the command started changed its stream
 * and exec'd this one: a wrapper's `exec 2>/dev/null; exec prog` or
 * `exec 2>&-`, a test runner's redirection of its helper's stderr. The
 * report is asked for by whoever ran the command, and went to /dev/null,
 * or nowhere. It goes to the command's stream now (command_fd), and to the
 * start-up stream only when that cannot be had (a program that took another
 * user id). A fork child of the program, or a traced child, keeps its own
 * stream. Not in a secure-execution process: nothing from the environment
 * says which its command is. */
static void note_command_stream(int which) {
  if (!command_is_parent()) return;
  char path[64];
  command_path(path, sizeof path, "fd", which);
  struct stat st;
  if (stat(path, &st) != 0 || (private_known && st.st_dev == private_dev && st.st_ino == private_ino)) return;
  private_of = which;
  command_dev = st.st_dev;
  command_ino = st.st_ino;
  command_first = true;
}

void hh_dest_init(void) {
  if (!hh_opt.report) return;
  int saved = errno;
  /* stderr also when the report goes to a file: for messages, and as the
   * place of last resort */
  int which = hh_opt.output != NULL && !strcmp(hh_opt.output, "stdout") ? 1 : 2;
  struct stat st;
  if (fstat(which, &st) == 0) {
    private_fd = hh_high_dup(which); /* -1: no room for a copy; the stream itself while it is that file */
    private_of = which;
    private_dev = command_dev = st.st_dev;
    private_ino = command_ino = st.st_ino;
    private_known = true;
    hh_fd_keep(&private_fd, &private_dev, &private_ino);
  }
  note_command_stream(which);
  if (private_of >= 0) hh_fd_keep(&reopened, &command_dev, &command_ino);
  messages_checked = true;
  if (fstat(2, &st) == 0) {
    err_known = true;
    err_dev = st.st_dev;
    err_ino = st.st_ino;
  }
  errno = saved;
}

/* A fork child that makes no report of its own (hahalloc's program without
 * --trace-children) drops the copy of stderr: a daemon that detaches with
 * fork and no exec would otherwise hold the pipe of whoever reads the
 * program's output, who would wait for it (glibc's daemon(0, 0): 4 s of a
 * shell's wait before). Its misuse messages go to fd 2 while that is the
 * start-up stderr. */
void hh_dest_atfork_child(bool sandboxed) {
  atomic_store(&told_unwritable, false); /* a child's file is its own (%p) */
  if (command_first) {                   /* the command's stream is its program's alone (note_command_stream) */
    command_first = false;
    command_dev = private_dev;
    command_ino = private_ino;
    if (!private_known) private_of = -1;
    int r = reopened;
    reopened = -1;
    if (r >= 0 && !sandboxed) close(r); /* under a filter, no call: it is close-on-exec */
  }
  if (sandboxed || hh_opt.report || private_fd < 0) return;
  int saved = errno;
  if (hh_fcntl_raw(private_fd, F_GETFD, 0) == FD_CLOEXEC && same_file(private_fd, private_dev, private_ino))
    close(private_fd);
  private_fd = -1;
  errno = saved;
}

/* ------------------------------------------------------------------ opening */

/* The output path with valgrind's escapes: %p the pid, %q{VAR} the value
 * of the environment variable VAR (read now: getenv never allocates), %%
 * a '%'. Secure-execution processes open no file, so never get here. */
static bool expand(const char *spec, char *path, size_t size) {
  size_t n = 0;
  for (const char *p = spec; *p; p++) {
    if (n + 24 >= size) return false;
    if (p[0] == '%' && p[1] == 'p') {
      n += hh_snformat(path + n, size - n, "%d", (int)getpid());
      p++;
    } else if (p[0] == '%' && p[1] == '%') {
      path[n++] = '%';
      p++;
    } else if (p[0] == '%' && p[1] == 'q' && p[2] == '{' && strchr(p + 3, '}')) {
      char name[256];
      const char *close = strchr(p + 3, '}');
      size_t len = (size_t)(close - (p + 3));
      if (len >= sizeof name) return false;
      memcpy(name, p + 3, len);
      name[len] = '\0';
      const char *v = getenv(name);
      size_t vlen = v ? strlen(v) : 0;
      if (v == NULL || strchr(v, '/') || n + vlen + 24 >= size) return false;
      memcpy(path + n, v, vlen);
      n += vlen;
      p = close;
    } else {
      path[n++] = *p;
    }
  }
  path[n] = '\0';
  return true;
}

static int open_path(const char *path) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  /* an existing file: O_NONBLOCK so that a FIFO nobody reads cannot hold the
   * exit (ENXIO), cleared again since the writer polls */
  if (fd < 0 && errno == EEXIST) {
    fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0) hh_fcntl_raw(fd, F_SETFL, O_APPEND);
  }
  return fd;
}

/* A program that holds every descriptor its limit allows (EMFILE) leaves
 * no number for a file of ours: the copy of the start-up stream gives up
 * its own. Whether it did. */
static bool give_up_copy(void) {
  if (private_fd < 0 || !private_known || !same_file(private_fd, private_dev, private_ino)) return false;
  close(private_fd);
  private_fd = -1;
  return true;
}

/* Whether what was meant for a report file that cannot be opened goes to
 * the program's stream instead. Not in a child the command traces
 * (--trace-children): its stderr is its own, its parent's pipe, which a
 * test may read. One that dropped its user id could not create its file in
 * a directory only the command's user may write in, and wrote the whole
 * report there (helper-78: CPython's test_subprocess children run with
 * user=65534); its report is lost instead. The command's own program still
 * falls back: its stderr is the command's. */
static bool falls_back_to_stream(void) { return hh_opt.cli != HH_CLI_CHILD; }

static int open_file(const char *spec) {
  char path[4096 + 32];
  if (!expand(spec, path, sizeof path)) return -1;
  int fd = open_path(path);
  /* A program that holds every descriptor its limit allows (EMFILE) leaves
   * no number for the file. The copy of stderr is ours: its number makes
   * room, and stderr is then reached through fd 2 while that still names
   * the same file. */
  if (fd < 0 && errno == EMFILE && give_up_copy()) fd = open_path(path);
  if (fd < 0) {
    int e = errno;
    /* once: every message (three an error) would say it again */
    if (!falls_back_to_stream() || atomic_exchange(&told_unwritable, true)) return -1;
    hh_dest_t err = hh_dest_open_stream();
    if (err.fd >= 0) {
      hh_out o;
      hh_out_open(&o, err);
      hh_out_printf(&o, "hahalloc: cannot write the report to %s (%s); writing it here\n", path, strerror(e));
      hh_out_close(&o);
    }
    return -1;
  }
  return fd;
}

/* The command's stream: its own open file description where the kernel
 * gives it (pidfd_getfd: a file the command's shell opened with `2>log` is
 * written at the offset they share, so that what they write next follows
 * the report instead of overwriting it). Else the same file opened again
 * through /proc/PID/fd, which needs less than pidfd_getfd's ptrace access
 * (Yama) and no call a filter that leaves files alone refuses: appended
 * to, where a later write at the shell's own offset may overwrite it,
 * which is still better than no report. Without blocking: a pipe's lost
 * reader fails the open (ENXIO) instead of making it wait for one. */
static int command_flags(int which) { /* the command's own, from fdinfo */
  char path[64], buf[256];
  command_path(path, sizeof path, "fdinfo", which);
  if (hh_read_text(path, buf, sizeof buf) < 0) return -1;
  const char *f = strstr(buf, "flags:");
  return f != NULL ? (int)strtol(f + 6, NULL, 8) : -1;
}

/* Not a stream the command cannot write (`2<file`: the open through /proc
 * would write into what the user gave it to read), and not a terminal whose
 * TOSTOP would stop the program for the write, in the background: a
 * wrapper's `exec 2>/dev/null` kept the background job running before.
 * Asked again each time the stream is used: a job may have gone to the
 * background since. Under a filter the program inherited, which may kill
 * for the terminal's ioctl, no terminal (told by its major number). */
static bool is_terminal(const struct stat *st) {
  unsigned m = major(st->st_rdev);
  return S_ISCHR(st->st_mode) && (m == 4 || m == 5 || (m >= 136 && m <= 143));
}

static bool writable_here(int fd) {
  int flags = hh_fcntl_raw(fd, F_GETFL, 0);
  if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY) return false;
  struct stat st;
  if (hh_fstat_raw(fd, &st) != 0 || !S_ISCHR(st.st_mode)) return true;
  if (hh_seccomp_inherited()) return !is_terminal(&st);
  struct termios t;
  pid_t fg = tcgetpgrp(fd);
  return fg < 0 || fg == getpgrp() || tcgetattr(fd, &t) != 0 || !(t.c_lflag & TOSTOP);
}

static int command_fd(int which) {
  int fd = -1;
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
  /* not under a seccomp filter the program inherited: systemd's
   * @system-service leaves pidfd_getfd out (@debug), and may kill for it */
  int pidfd = hh_seccomp_inherited() ? -1 : (int)syscall(SYS_pidfd_open, hh_opt.cli_command, 0);
  if (pidfd >= 0) {
    /* still the parent: the pidfd is the command's, not a later owner's of its number */
    if (getppid() == hh_opt.cli_command) fd = (int)syscall(SYS_pidfd_getfd, pidfd, which, 0);
    close(pidfd);
  }
#endif
  if (fd < 0) {
    int flags = command_flags(which);
    if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY) return -1;
    char path[64];
    command_path(path, sizeof path, "fd", which);
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return -1;
    hh_fcntl_raw(fd, F_SETFL, O_APPEND);
  }
  if (!same_file(fd, command_dev, command_ino)) {
    close(fd);
    errno = EBADF;
    return -1;
  }
  return fd;
}

/* The command's stream, for the command's program: first when a wrapper
 * changed the program's (note_command_stream), and when the program's own
 * is gone, its copy too (a daemon's closefrom(3) and close(2), or a log
 * file put at fd 2 with dup2). Taken once, at a high number, by whichever
 * thread gets there first (error messages are not serialised): the others
 * use that one. Where no high number is left (a full table, or a limit of
 * HIGH_FD_MIN or less), a low one is kept only at exit (`once` NULL), where
 * no number of the program's is taken for good; a message gets it for
 * itself (*once: the caller closes it after the write). -1 when none. */
static int command_stream_fd(bool *once) {
  if (once != NULL) *once = false;
  int cur = __atomic_load_n(&reopened, __ATOMIC_ACQUIRE);
  if (cur >= 0 && same_file(cur, command_dev, command_ino)) return writable_here(cur) ? cur : -1;
  if (!command_is_parent()) return -1;
  int fd = command_fd(private_of);
  if (fd < 0 && errno == EMFILE && give_up_copy()) fd = command_fd(private_of);
  if (fd < 0) return -1;
  int high = hh_high_dup(fd);
  if (high < 0 && once != NULL) {
    if (writable_here(fd)) {
      *once = true;
      return fd;
    }
    close(fd);
    return -1;
  }
  if (high >= 0) {
    close(fd);
    fd = high;
  }
  if (!__atomic_compare_exchange_n(&reopened, &cur, fd, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    close(fd); /* another thread's is in place */
    fd = cur;
  }
  /* again: the program may have put a file of its own at the number since */
  return fd >= 0 && same_file(fd, command_dev, command_ino) && writable_here(fd) ? fd : -1;
}

/* The stream the report goes to when no file is named: the command's when
 * it is not the one the program had at start-up, else that one, checked to
 * be the same file, else the same file through the command. */
hh_dest_t hh_dest_open_stream(void) {
  hh_dest_t d = {-1, false};
  if (private_of < 0) return d;
  int saved = errno;
  if (command_first && (d.fd = command_stream_fd(NULL)) >= 0) {
    errno = saved;
    return d;
  }
  if (private_fd >= 0 && private_known && same_file(private_fd, private_dev, private_ino))
    d.fd = private_fd;
  else if (private_known && same_file(private_of, private_dev, private_ino))
    d.fd = private_of;
  else if (!command_first)
    d.fd = command_stream_fd(NULL);
  errno = saved;
  return d;
}

/* The report file the options name (--xml-file for XML, else --log-file),
 * or NULL: none, stdout, or a secure process (AT_SECURE: no path from the
 * environment). */
static const char *report_file(void) {
  const char *path = hh_opt.format == HH_FORMAT_XML && hh_opt.xml_output ? hh_opt.xml_output : hh_opt.output;
  return path != NULL && strcmp(path, "stdout") != 0 && !hh_opt.secure ? path : NULL;
}

/* Whether a report would have somewhere to go (hh_dest_open may still
 * find the file cannot be opened, and fall back to the stream). */
bool hh_dest_available(void) { return report_file() != NULL || private_of >= 0; }

bool hh_dest_to_stream(void) { return report_file() == NULL; }

hh_dest_t hh_dest_open(void) {
  int saved = errno;
  hh_dest_t d = {-1, false};
  const char *path = report_file();
  if (path != NULL) {
    d.fd = open_file(path);
    d.close = d.fd >= 0;
  }
  if (d.fd < 0 && (path == NULL || falls_back_to_stream())) d = hh_dest_open_stream();
  errno = saved;
  return d;
}

void hh_dest_close(hh_dest_t d) {
  if (d.close && d.fd >= 0) {
    int saved = errno;
    close(d.fd);
    errno = saved;
  }
}

/* ------------------------------------------------------------------ writing */

/* The lock keeps the reports of processes that share a stream apart:
 * traced children, or the children of a program the variables made report.
 * The hahalloc command's program without --trace-children is the only one
 * that reports, and takes no lock: a file someone else holds locked (a
 * `flock FILE cmd 2>>FILE` wrapper) would make it wait for nothing.
 *
 * flock belongs to the open file description: traced children that
 * inherited the same stderr share one, and one child's lock never kept
 * another out (their reports interleaved, mid-line on a pipe). The lock is
 * taken on a description of this process's own, the same file opened
 * again through /proc (not as a controlling terminal, without waiting),
 * held while the report is written; where that cannot be opened (a socket,
 * a file the program may not read), on the shared one. A pipe is opened
 * for writing: a reader of our own would keep a write from ever failing
 * with EPIPE once the real reader has gone, and the report would wait
 * OUTPUT_STALL_MS on a pipe nobody reads. */
static int lock_fd = -1;

bool hh_dest_lock(hh_dest_t d) {
  int fd = d.fd;
  if (fd < 0 || (hh_opt.cli == HH_CLI_PROGRAM && !hh_opt.trace_children)) return false;
  char path[64];
  hh_snformat(path, sizeof path, "/proc/self/fd/%d", fd);
  int saved = errno;
  struct stat st;
  bool pipe = hh_fstat_raw(fd, &st) == 0 && S_ISFIFO(st.st_mode);
  int own = open(path, (pipe ? O_WRONLY : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  errno = saved;
  int lk = own >= 0 ? own : fd;
  int64_t deadline = hh_now_ns() + (int64_t)LOCK_WAIT_MS * 1000000;
  while (flock(lk, LOCK_EX | LOCK_NB) != 0) {
    if ((errno != EWOULDBLOCK && errno != EINTR) || hh_now_ns() > deadline) { /* not lockable: write anyway */
      if (own >= 0) close(own);
      errno = saved;
      return false;
    }
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  lock_fd = own;
  errno = saved;
  return true;
}

void hh_dest_unlock(hh_dest_t d) {
  if (lock_fd >= 0) {
    close(lock_fd); /* the lock goes with its description */
    lock_fd = -1;
  } else if (d.fd >= 0) {
    flock(d.fd, LOCK_UN);
  }
}

/* The allocator's error messages. With the report on and a text report
 * file named (--log-file), they go there, each appended as it comes, as
 * valgrind's errors go to its log: the program's own stderr stays its own.
 * Otherwise, with the report on, they go to the program's stderr as it was
 * at start-up (even when the report goes to stdout), so that a program that
 * closed fd 2 still shows them and one that put a file of its own on fd 2
 * never gets them written into it: rather than there, nowhere (an abort
 * still ends the program). When a wrapper changed the stderr of the
 * command's program, they go with the report, to the command's stderr.
 * Without the report, fd 2, as glibc's own malloc messages. */
void hh_message_write(const char *buf, size_t n) {
  int saved = errno;
  const char *path = hh_opt.report && hh_opt.format == HH_FORMAT_TEXT ? report_file() : NULL;
  if (path != NULL) {
    int fd = open_file(path); /* -1: it said so on the stream, where this goes too (or nowhere) */
    if (fd >= 0) hh_dest_write((hh_dest_t){fd, true}, buf, n);
    if (fd >= 0) close(fd);
    if (fd >= 0 || !falls_back_to_stream()) {
      errno = saved;
      return;
    }
  }
  hh_dest_t d = {2, false};
  if (messages_checked && command_first && private_of == 2 && (d.fd = command_stream_fd(&d.close)) >= 0) {
    /* with the report, on the command's stream */
  } else if (messages_checked) {
    d.fd = 2;
    if (!err_known)
      d.fd = -1;
    else if (private_of == 2 && same_file(private_fd, err_dev, err_ino))
      d.fd = private_fd;
    else if (!same_file(2, err_dev, err_ino))
      d.fd = -1;
  }
  hh_dest_write(d, buf, n);
  hh_dest_close(d); /* a descriptor of the message's own (command_stream_fd) */
  errno = saved;
}

void hh_dest_write(hh_dest_t d, const char *buf, size_t n) {
  if (d.fd < 0 || n == 0) return;
  int saved = errno;
  /* SIGPIPE (a reader gone) and SIGXFSZ (a file past RLIMIT_FSIZE) would
   * end the program: blocked while writing, and the one a write raised is
   * taken back */
  sigset_t guarded, old, pending, raised;
  sigemptyset(&guarded);
  sigaddset(&guarded, SIGPIPE);
  sigaddset(&guarded, SIGXFSZ);
  pthread_sigmask(SIG_BLOCK, &guarded, &old);
  sigemptyset(&pending);
  sigpending(&pending);
  sigemptyset(&raised);
  /* The waits without progress on one stream add up to at most
   * OUTPUT_STALL_TOTAL_MS: each flush of a report to a pipe nobody reads
   * waited the whole OUTPUT_STALL_MS again (a parent that reads its
   * child's stderr only after the child ends waited 30-40 s for three
   * flushes, against 0.07 s without us). Not one: a reader that starts
   * late (`| (sleep 12; cat)`) still gets what follows the first stall. */
  if (d.fd != stall_fd) {
    stall_fd = d.fd;
    stall_spent_ms = 0;
  }
  int64_t budget = OUTPUT_STALL_TOTAL_MS - stall_spent_ms;
  if (budget > OUTPUT_STALL_MS) budget = OUTPUT_STALL_MS;
  int64_t since = hh_now_ns(), stall = since + (budget > 0 ? budget : 0) * 1000000;
  size_t off = 0;
  while (off < n) {
    struct pollfd p = {.fd = d.fd, .events = POLLOUT};
    int64_t left = (stall - hh_now_ns()) / 1000000;
    if (left < 0) left = 0;
    int r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
    if (r < 0 && errno != EINTR) break;
    if (r == 0 && left == 0) { /* no progress in the time given: the rest is dropped */
      stall_spent_ms += (hh_now_ns() - since) / 1000000;
      break;
    }
    if (r <= 0) continue;
    if (p.revents & (POLLERR | POLLNVAL)) break; /* no reader: no write, so no signal raised */
    /* a pipe that polls writable takes PIPE_BUF bytes without blocking */
    size_t chunk = n - off > 4096 ? 4096 : n - off;
    ssize_t w = write(d.fd, buf + off, chunk);
    if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (w <= 0) {
      int sig = errno == EPIPE ? SIGPIPE : errno == EFBIG ? SIGXFSZ : 0;
      if (sig != 0 && !sigismember(&pending, sig)) sigaddset(&raised, sig);
      break;
    }
    off += (size_t)w;
    stall_spent_ms = 0; /* it moves again */
    since = hh_now_ns();
    stall = since + (int64_t)OUTPUT_STALL_MS * 1000000;
  }
  struct timespec zero = {0, 0};
  if (!sigisemptyset(&raised)) sigtimedwait(&raised, NULL, &zero); /* the signal our write raised, if any */
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = saved;
}
