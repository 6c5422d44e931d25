/*
 * The descriptors the report keeps open through the program's life: the
 * copy of stderr (dest.c) and the maps (maps.c), each at a high number,
 * close-on-exec. They are the program's no more than valgrind's are.
 *
 * A program that names one of those numbers for a file of its own must
 * get the file. bash takes a close-on-exec descriptor of 10 or more for
 * one it saved itself, and puts it back after an `exec N>file` (redir.c,
 * add_undo_redirect): a script's `exec 960>log` wrote its lines to our
 * stderr copy, and the log stayed empty. A test that lists a child's open
 * descriptors by trying fstat on each (CPython's fd_status.py) found two
 * it was never given. So the program's fcntl, fstat, dup2 and dup3 are
 * passed through src/shared/fdcalls.c, which asks here:
 *   - fcntl and fstat on one of ours answer EBADF, as for a number nobody
 *     holds (a listing of /proc/self/fd still shows them);
 *   - dup2 and dup3 onto one of ours move ours to another number first
 *     (not past the limit, where the call fails), and so does an F_DUPFD
 *     whose lowest free number was one of ours;
 *   - close, close_range and closefrom of ours close it (a daemon that
 *     closes everything must let go of the pipe its reader waits on), and
 *     ours is forgotten once it is closed, so a file the program opens
 *     later at the same number is its own.
 * They are hidden only while the process stays in the session it started
 * in. A daemon (fork, setsid, then close each descriptor fcntl finds open:
 * Redis's pattern) must let go of our copy of its reader's pipe, or a shell
 * that reads the program's output in $(...) waits as long as the daemon
 * lives (helper-56: 4 s for a 4 s daemon, against 0.04 s).
 *
 * An owner's number is read and written here with atomics. A number is
 * taken for ours only while it names the file it was taken for and is
 * close-on-exec, as ours always are (a raw close(2) and a reuse of the
 * number by the program are not seen here). A vfork child shares our
 * memory but not our descriptors: its calls (a close of every descriptor
 * before the exec) change nothing here, where a fork child's change its
 * own copy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "report.h"

typedef struct kept_fd {
  int *fd;
  const dev_t *dev;
  const ino_t *ino;
} kept_fd;

#define KEPT_MAX 4
static kept_fd kept[KEPT_MAX];
static int kept_count;
static pid_t kept_sid; /* the session the process started in */

void hh_fd_keep(int *fd, const dev_t *dev, const ino_t *ino) {
  kept_sid = getsid(0);
  for (int i = 0; i < kept_count; i++)
    if (kept[i].fd == fd) return;
  if (kept_count < KEPT_MAX) kept[kept_count++] = (kept_fd){fd, dev, ino};
}

int hh_fcntl_raw(int fd, int cmd, long arg) { return (int)syscall(SYS_fcntl, fd, cmd, arg); }
int hh_fstat_raw(int fd, struct stat *st) { return (int)syscall(SYS_fstat, fd, st); }

static bool names(int fd, const kept_fd *k) {
  struct stat st;
  return hh_fcntl_raw(fd, F_GETFD, 0) == FD_CLOEXEC && hh_fstat_raw(fd, &st) == 0 && st.st_dev == *k->dev &&
         st.st_ino == *k->ino;
}

static kept_fd *find(int fd) {
  if (fd < 0) return NULL;
  for (int i = 0; i < kept_count; i++)
    if (__atomic_load_n(kept[i].fd, __ATOMIC_ACQUIRE) == fd) return &kept[i];
  return NULL;
}

bool hh_fd_kept(int fd) {
  kept_fd *k = find(fd);
  if (k == NULL) return false;
  int saved = errno;
  bool ours = names(fd, k) && getsid(0) == kept_sid;
  errno = saved;
  return ours;
}

int hh_fd_kept_between(int lo, int hi) {
  for (int i = 0; i < kept_count; i++) {
    int fd = __atomic_load_n(kept[i].fd, __ATOMIC_ACQUIRE);
    if (fd >= lo && fd < hi && hh_fd_kept(fd)) return fd;
  }
  return -1;
}

/* Whether fd is under the soft limit: a dup2 onto a number past it fails,
 * and ours is left where it is. */
static bool in_table(int fd) {
  struct rlimit rl;
  return getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || (rlim_t)fd < rl.rlim_cur;
}

bool hh_fd_make_room(int fd) {
  kept_fd *k = find(fd);
  if (k == NULL || !hh_report_process()) return false;
  int saved = errno;
  bool ours = names(fd, k);
  /* Ours stays where it is for a call that fails (a number past the
   * limit) and for a daemon's (out of the session: it takes the number).
   * -1: not ours any more, or no number left for ours (the program's call
   * takes the number, and the report goes by fd 2 while that is the same
   * stderr). */
  bool move = ours && in_table(fd) && getsid(0) == kept_sid;
  if (move || !ours) __atomic_store_n(k->fd, move ? hh_high_dup(fd) : -1, __ATOMIC_RELEASE);
  errno = saved;
  return move;
}

void hh_fd_forget(unsigned first, unsigned last) {
  for (int i = 0; i < kept_count; i++) {
    int fd = __atomic_load_n(kept[i].fd, __ATOMIC_ACQUIRE);
    if (fd >= 0 && (unsigned)fd >= first && (unsigned)fd <= last && hh_report_process())
      __atomic_store_n(kept[i].fd, -1, __ATOMIC_RELEASE);
  }
}
