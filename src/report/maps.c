/*
 * The process's mappings, read with raw system calls into a mapped buffer:
 * the site capture runs inside malloc and the scan runs with the world
 * stopped, so neither may allocate (fopen would). The calls go through
 * syscall(), not open, read and close, which are cancellation points:
 * malloc is none (POSIX), and a thread with a cancel pending was cancelled
 * in its first malloc under the report, its range taken and never
 * recorded. errno is kept. They are read through
 * /proc/thread-self: once the main thread has ended (pthread_exit in main,
 * the others running on), /proc/self names it, a zombie whose maps read
 * empty, and a scan without its anchors would call every block lost.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hooks.h"
#include "options.h"
#include "os.h"
#include "report.h"

static uintptr_t hex(const char **s) {
  uintptr_t v = 0;
  for (;;) {
    char c = **s;
    unsigned d;
    if (c >= '0' && c <= '9')
      d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      d = (unsigned)(c - 'A' + 10);
    else
      return v;
    v = v * 16 + d;
    (*s)++;
  }
}

/* Past the next `n` fields separated by blanks. */
static const char *skip_fields(const char *s, int n) {
  for (int i = 0; i < n; i++) {
    while (*s == ' ' || *s == '\t') s++;
    while (*s != '\0' && *s != ' ' && *s != '\t') s++;
  }
  while (*s == ' ' || *s == '\t') s++;
  return s;
}

/* "start-end perms offset major:minor inode   path": the range, whether it
 * may be read, written and executed, and the path. */
static bool parse_line(const char *s, hh_map_line *m) {
  m->start = hex(&s);
  if (*s++ != '-') return false;
  m->end = hex(&s);
  while (*s == ' ') s++;
  if (strlen(s) < 4) return false;
  m->r = s[0] == 'r';
  m->w = s[1] == 'w';
  m->x = s[2] == 'x';
  m->shared = s[3] == 's';
  m->path = skip_fields(s, 4);
  return true;
}

/* The maps opened at start-up, for an exit where they cannot be opened:
 * every descriptor taken (RLIMIT_NOFILE, a leak), or a chroot without
 * /proc, as daemons do. Without them the scan would have no anchors but
 * stacks, and would call every block a global holds lost. Kept at a high
 * descriptor; used only while it still names the file it was (a program
 * that closes every descriptor may have reused the number). */
static int kept_fd = -1;
static pid_t kept_pid; /* a fork child's copy names its parent's maps */
static dev_t kept_dev;
static ino_t kept_ino;

void hh_maps_init(void) {
  if (!hh_opt.report || hh_opt.secure) return;
  int saved = errno; /* start-up runs in the program's first malloc */
  /* O_NONBLOCK (which a read of procfs ignores) marks the open file as
   * ours: a program's own open of the maps, put at this number, has the
   * same device and inode, and is not read. */
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat st;
  int high = fd >= 0 && fstat(fd, &st) == 0 ? hh_high_dup(fd) : -1;
  if (fd >= 0) close(fd);
  errno = saved;
  if (high < 0) return;
  kept_fd = high;
  kept_pid = getpid();
  kept_dev = st.st_dev;
  kept_ino = st.st_ino;
  hh_fd_keep(&kept_fd, &kept_dev, &kept_ino);
}

/* Whether kept_fd is still the maps opened at start-up, with our flags. */
static bool kept_is_ours(void) {
  struct stat st;
  return kept_fd >= 0 && hh_fcntl_raw(kept_fd, F_GETFD, 0) == FD_CLOEXEC &&
         (hh_fcntl_raw(kept_fd, F_GETFL, 0) & O_NONBLOCK) && hh_fstat_raw(kept_fd, &st) == 0 && st.st_dev == kept_dev &&
         st.st_ino == kept_ino;
}

/* A fork child that makes no report drops the maps kept open (its parent's,
 * besides), as hh_dest_atfork_child the stderr copy. */
void hh_maps_atfork_child(void) {
  if (hh_opt.report || kept_fd < 0) return;
  int saved = errno;
  if (kept_is_ours()) close(kept_fd);
  kept_fd = -1;
  errno = saved;
}

static int sys_open(const char *path) { return (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC); }

static long sys_read(int fd, char *buf, size_t n) {
  long r;
  do r = syscall(SYS_read, fd, buf, n);
  while (r < 0 && errno == EINTR);
  return r;
}

static int open_maps(bool *kept) {
  *kept = false;
  int fd = sys_open("/proc/thread-self/maps");
  if (fd < 0) fd = sys_open("/proc/self/maps"); /* Linux before 3.17 */
  if (fd >= 0) return fd;
  if (getpid() != kept_pid || !kept_is_ours() || lseek(kept_fd, 0, SEEK_SET) != 0) return -1;
  *kept = true;
  return kept_fd;
}

#define MAPS_BUF 8192

/* fn for the line, less the buffer of its own reading at [b, b + MAPS_BUF),
 * which the kernel may have merged with a neighbour: the scan would take it
 * for an anchor, and read it once unmapped (helper-43: 3 faults in every
 * report, and a table of the report's could later land there). */
static bool each_but(const hh_map_line *m, uintptr_t b, hh_map_fn fn, void *arg) {
  uintptr_t e = b + MAPS_BUF;
  if (m->end <= b || m->start >= e) return fn(m, arg);
  hh_map_line part = *m;
  if (m->start < b) {
    part.end = b;
    if (!fn(&part, arg)) return false;
  }
  if (m->end > e) {
    part.start = e;
    part.end = m->end;
    return fn(&part, arg);
  }
  return true;
}

/* Calls line(text, buffer, arg) for each line of the file open at fd,
 * until it returns false; false when the file could not be read. */
typedef bool line_fn(char *text, uintptr_t buf, void *arg);
static bool each_line(int fd, bool kept, line_fn *line, void *arg) {
  int saved = errno;
  /* Not on the stack: this runs in malloc (a thread's first site capture)
   * and in the exit report, on stacks of threads that may have 16 KiB in
   * all (PTHREAD_STACK_MIN), or on a coroutine's (helper-41: SIGSEGV in a
   * correct program with 8 KiB here). Its own line is cut out (each_but). */
  char *buf = hh_os_map(MAPS_BUF);
  if (buf == NULL) {
    if (!kept) syscall(SYS_close, fd);
    errno = saved;
    return false;
  }
  size_t have = 0;
  bool eof = false, go = true;
  while (go) {
    if (!eof && have < MAPS_BUF - 1) {
      long n = sys_read(fd, buf + have, MAPS_BUF - 1 - have);
      if (n < 0) break;
      if (n == 0) eof = true;
      have += (size_t)n;
    }
    char *nl = memchr(buf, '\n', have);
    if (nl == NULL) {
      if (eof || have == MAPS_BUF - 1) { /* last line, or one too long for us */
        if (have == 0) break;
        nl = buf + have;
        if (have == MAPS_BUF - 1) nl--;
      } else {
        continue;
      }
    }
    *nl = '\0';
    go = line(buf, (uintptr_t)buf, arg);
    size_t used = (size_t)(nl - buf) + 1;
    if (used > have) used = have;
    memmove(buf, buf + used, have - used);
    have -= used;
    if (eof && have == 0) break;
  }
  hh_os_unmap(buf, MAPS_BUF);
  if (!kept) syscall(SYS_close, fd);
  errno = saved;
  return true;
}

typedef struct {
  hh_map_fn fn;
  void *arg;
  hh_map_line head; /* smaps: the mapping whose fields follow */
  bool have_head;
} line_walk;

static bool maps_line(char *text, uintptr_t buf, void *arg) {
  line_walk *w = arg;
  hh_map_line m;
  return parse_line(text, &m) ? each_but(&m, buf, w->fn, w->arg) : true;
}

bool hh_maps_each(hh_map_fn fn, void *arg) {
  int saved = errno;
  bool kept;
  int fd = open_maps(&kept);
  errno = saved;
  line_walk w = {fn, arg, {0}, false};
  return fd >= 0 && each_line(fd, kept, maps_line, &w);
}

/* smaps(5): a mapping's line, as in maps, then one line a field ("Swap:
 * 12 kB"); no field's name is hex digits followed by '-'. */
static bool smaps_line(char *text, uintptr_t buf, void *arg) {
  (void)buf;
  line_walk *w = arg;
  if (!strncmp(text, "Swap:", 5)) {
    const char *v = skip_fields(text, 1);
    bool some = *v >= '1' && *v <= '9';
    return !(some && w->have_head) || w->fn(&w->head, w->arg);
  }
  hh_map_line m;
  if (parse_line(text, &m)) {
    w->head = m;
    w->head.path = NULL; /* the buffer moves on */
    w->have_head = true;
  }
  return true;
}

bool hh_maps_each_swapped(hh_map_fn fn, void *arg) {
  int saved = errno;
  int fd = sys_open("/proc/thread-self/smaps");
  if (fd < 0) fd = sys_open("/proc/self/smaps");
  errno = saved;
  line_walk w = {fn, arg, {0}, false};
  return fd >= 0 && each_line(fd, false, smaps_line, &w);
}

struct find {
  uintptr_t addr;
  hh_map_line found;
};

static bool find_cb(const hh_map_line *m, void *arg) {
  struct find *f = arg;
  if (f->addr >= m->start && f->addr < m->end) {
    f->found = *m;
    f->found.path = NULL; /* valid during the callback only */
    return false;
  }
  return m->start <= f->addr; /* the lines are in address order */
}

/* PROCMAP_QUERY (Linux 6.11): the kernel finds the mapping that holds an
 * address in one ioctl on the maps file, where a read of the file has it
 * print every mapping. Under the report each thread's first call site asks
 * for its stack (site.c), and a program with 3,000 threads has some 6,000
 * mappings: 3,000 short std::threads took 1.0 s under the report against
 * the drop-in's 0.24 s, almost all of it in the kernel printing them. The
 * layout is the kernel's (include/uapi/linux/fs.h), declared here for
 * headers older than it. */
struct procmap_query_abi {
  uint64_t size, query_flags, query_addr;
  uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;
  uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
  uint64_t vma_name_addr, build_id_addr;
};
#define PROCMAP_QUERY_IOCTL _IOWR('f', 17, struct procmap_query_abi)
enum { VMA_READABLE = 1, VMA_WRITABLE = 2, VMA_EXECUTABLE = 4, VMA_SHARED = 8 };
static _Atomic(int) query_missing; /* the kernel has no PROCMAP_QUERY */

/* 1: found, 0: no mapping holds addr, -1: not answered (read the file). */
static int query_find(uintptr_t addr, hh_map_line *out) {
  /* a filter the program started under may refuse the ioctl, or kill for
   * it, where it let the reads of the maps through (the report's own) */
  if (atomic_load_explicit(&query_missing, memory_order_relaxed) || hh_seccomp_inherited()) return -1;
  bool kept;
  int fd = open_maps(&kept);
  if (fd < 0) return -1;
  struct procmap_query_abi q;
  memset(&q, 0, sizeof q);
  q.size = sizeof q;
  q.query_addr = addr;
  long r = syscall(SYS_ioctl, fd, PROCMAP_QUERY_IOCTL, &q);
  int e = errno;
  if (!kept) syscall(SYS_close, fd);
  if (r != 0) {
    if (e == ENOENT) return 0;
    if (e == ENOTTY || e == EINVAL) atomic_store_explicit(&query_missing, 1, memory_order_relaxed);
    return -1;
  }
  *out = (hh_map_line){.start = (uintptr_t)q.vma_start,
                       .end = (uintptr_t)q.vma_end,
                       .r = (q.vma_flags & VMA_READABLE) != 0,
                       .w = (q.vma_flags & VMA_WRITABLE) != 0,
                       .x = (q.vma_flags & VMA_EXECUTABLE) != 0,
                       .shared = (q.vma_flags & VMA_SHARED) != 0,
                       .path = NULL};
  return 1;
}

bool hh_maps_find(uintptr_t addr, hh_map_line *out) {
  int saved = errno;
  int got = query_find(addr, out);
  errno = saved;
  if (got >= 0) return got == 1;
  struct find f = {addr, {0, 0, false, false, false, false, NULL}};
  hh_maps_each(find_cb, &f);
  *out = f.found;
  return f.found.end != 0;
}
