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
 *   - dup2 and dup3 onto one of ours move ours to another number first;
 *   - close, close_range and closefrom of ours close it (a daemon that
 *     closes everything must let go of the pipe its reader waits on), and
 *     ours is forgotten, so a file the program opens later at the same
 *     number is its own.
 * An owner's number is read and written here with atomics; a number no
 * longer naming the file it was taken for (a raw close(2), then the number
 * reused) is never taken for ours. A vfork child shares our memory but
 * not our descriptors: its calls (a close of every descriptor before the
 * exec) change nothing here, where a fork child's change its own copy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
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
static pid_t kept_by; /* the process whose descriptors these are */

void hh_fd_keep(int *fd, const dev_t *dev, const ino_t *ino) {
  kept_by = getpid();
  for (int i = 0; i < kept_count; i++)
    if (kept[i].fd == fd) return;
  if (kept_count < KEPT_MAX) kept[kept_count++] = (kept_fd){fd, dev, ino};
}

void hh_fd_atfork_child(void) { kept_by = getpid(); }

/* Not a vfork child (nor a clone sharing our memory): getpid only once a
 * number is found to be one of ours. */
static bool own_table(void) { return getpid() == kept_by; }

int hh_fcntl_raw(int fd, int cmd, long arg) { return (int)syscall(SYS_fcntl, fd, cmd, arg); }
int hh_fstat_raw(int fd, struct stat *st) { return (int)syscall(SYS_fstat, fd, st); }

static bool names(int fd, const kept_fd *k) {
  struct stat st;
  return hh_fstat_raw(fd, &st) == 0 && st.st_dev == *k->dev && st.st_ino == *k->ino;
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
  bool ours = names(fd, k);
  errno = saved;
  return ours;
}

bool hh_fd_make_room(int fd) {
  kept_fd *k = find(fd);
  if (k == NULL || !own_table()) return false;
  int saved = errno;
  bool ours = names(fd, k);
  /* -1: not ours any more, or no number left for ours (the program's call
   * takes the number, and the report goes by fd 2 while that is the same
   * stderr) */
  __atomic_store_n(k->fd, ours ? hh_high_dup(fd) : -1, __ATOMIC_RELEASE);
  errno = saved;
  return ours;
}

void hh_fd_forget(unsigned first, unsigned last) {
  for (int i = 0; i < kept_count; i++) {
    int fd = __atomic_load_n(kept[i].fd, __ATOMIC_ACQUIRE);
    if (fd >= 0 && (unsigned)fd >= first && (unsigned)fd <= last && own_table())
      __atomic_store_n(kept[i].fd, -1, __ATOMIC_RELEASE);
  }
}
