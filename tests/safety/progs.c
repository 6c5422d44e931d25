/*
 * Programs for tests/safety/run.py: each scenario is a correct program (or
 * a hostile one, where said) that a leak report must never change, crash,
 * hang or endanger. Built plain (for LD_PRELOAD and the hahalloc command)
 * and linked with -lhahalloc (the setuid cases).
 *
 *   progs SCENARIO [ARGS]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <dlfcn.h>
#include <link.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

void *volatile sink;          /* keeps a block reachable */
void *volatile keep[4];

static void leak_one(size_t n) {
  char *p = malloc(n);
  memset(p, 7, n);
  sink = p;
  sink = NULL;
}

/* The calling thread blocks every signal: the report's stop cannot reach it. */
static void block_every_signal(void) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
}

/* `fn` runs in a thread of its own while the main thread leaks 100 bytes
 * and calls exit: the exit's scan meets the thread at work. */
static int exit_beside(void *(*fn)(void *), useconds_t head_start) {
  pthread_t t;
  pthread_create(&t, NULL, fn, NULL);
  usleep(head_start);
  leak_one(100);
  exit(0);
}

/* --------------------------------------------------------------- where the report goes */

static void close_stderr(void) { close(2); } /* as coreutils' close_stdout does */

static int close_stderr_at_exit(void) {
  leak_one(100);
  atexit(close_stderr);
  return 0;
}

/* fd 2 closed, then a data file opened: it becomes fd 2 */
static int reuse_fd2(const char *path) {
  leak_one(100);
  close(2);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd != 2) return 3;
  if (write(2, "data\n", 5) != 5) return 4;
  return 0;
}

/* A daemon's start: every descriptor above 2 closed (our copy of stderr
 * with them), then its log file put at fd 2 with dup2. */
static int closefrom_then_log(const char *path) {
  leak_one(100);
  for (int fd = 3; fd < 1024; fd++) close(fd);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || dup2(fd, 2) != 2) return 3;
  close(fd);
  if (write(2, "log\n", 4) != 4) return 4;
  return 0;
}

/* The descriptors the report keeps (the copy of stderr, the maps: near
 * the top of the table) are not the program's: fcntl and fstat find none
 * open from 64 up, also after a vfork child closed every descriptor (in
 * its own table) and after a close_range that failed; a file put at
 * 960-963 with dup2 and dup3 gets the lines written there, and F_DUPFD
 * from 964 gives 964. */
static int high_fds_seen(void) {
  int seen = 0;
  struct stat st;
  for (int fd = 64; fd < 1024; fd++) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) seen++;
    if (fstat(fd, &st) == 0 || errno != EBADF) seen++;
    if (fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 || errno != EBADF) seen++;
  }
  return seen;
}

static int high_fds_are_free(const char *path) {
  leak_one(100);
  if (high_fds_seen()) return 3;
  pid_t child = vfork();
  if (child == 0) {
    for (int fd = 3; fd < 1024; fd++) close(fd);
    _exit(0);
  }
  if (child < 0 || waitpid(child, NULL, 0) != child || high_fds_seen()) return 7;
  /* a close_range that fails (an unknown flag) closes nothing: ours stay hidden */
  if (close_range(900, 1023, 0x80) != -1 || errno != EINVAL || high_fds_seen()) return 8;
  int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  if (f < 0) return 4;
  for (int fd = 960; fd < 964; fd++) {
    if ((fd & 1 ? dup3(f, fd, O_CLOEXEC) : dup2(f, fd)) != fd) return 5;
    char line[8];
    int n = snprintf(line, sizeof line, "%d\n", fd);
    if (write(fd, line, (size_t)n) != n) return 6;
  }
  /* F_DUPFD gives the lowest free number: 964, wherever ours went */
  if (fcntl(f, F_DUPFD, 964) != 964 || write(964, "964\n", 4) != 4) return 9;
  return 0;
}

/* fd 2 closed and reused for a data file, then a double free (run with
 * HAHALLOC_ON_ERROR=continue): the error must not land in the file. */
static int reuse_fd2_double_free(const char *path) {
  close(2);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd != 2) return 3;
  if (write(2, "data\n", 5) != 5) return 4;
  char *volatile p = malloc(48);
  free(p);
  free(p);
  return 0;
}

/* A double free with stderr a pipe nobody reads (HAHALLOC_ON_ERROR=continue):
 * the error message must not raise SIGPIPE in the program. */
static int double_free(void) {
  char *volatile p = malloc(48);
  free(p);
  free(p);
  return 0;
}

/* double_free_threads N: N threads double-free a block each at the same
 * moment (HAHALLOC_ON_ERROR=continue), then the number of descriptors
 * /proc/self/fd lists is printed: the errors' stream is opened once,
 * whatever the number of threads that write to it first. */
static pthread_barrier_t dft_barrier;

static void *double_free_thread(void *arg) {
  char *volatile p = malloc(48);
  pthread_barrier_wait(&dft_barrier);
  free(p);
  free(p);
  return arg;
}

static int double_free_threads(int n) {
  pthread_t t[16];
  if (n < 1 || n > 16) return 2;
  pthread_barrier_init(&dft_barrier, NULL, (unsigned)n);
  for (int i = 0; i < n; i++)
    if (pthread_create(&t[i], NULL, double_free_thread, NULL) != 0) return 3;
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return 4;
  int count = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) count += e->d_name[0] != '.';
  closedir(d);
  printf("%d\n", count - 1); /* not the directory's own */
  return 0;
}

/* Every descriptor above 2 closed (as before an exec), then a double free
 * (HAHALLOC_ON_ERROR=continue): errno is what the program left in it. */
static int errno_after_error(void) {
  for (int fd = 3; fd < 1024; fd++) close(fd);
  char *volatile p = malloc(48);
  free(p);
  errno = 0;
  free(p);
  return errno == 0 ? 0 : 5;
}

/* cpu: makes 2,000,000 blocks in lost chains of three, spins until it
 * has spent 0.8 s of CPU time (under `ulimit -t 1` in the test), then
 * prints "cpu ok". */
static int cpu(void) {
  void **list = NULL;
  for (int i = 0; i < 2000000; i++) {
    void **b = malloc(48);
    if (b == NULL) return 1;
    b[0] = list;
    list = i % 3 ? (void *)b : NULL;
  }
  for (;;) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if ((ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec >= 800000)
      break;
  }
  printf("cpu ok\n");
  return 0;
}

static int leak(void) {
  leak_one(100);
  puts("ok");
  return 0;
}

/* drop_uid_leak: leaks 100 bytes, then (when root) takes user and group
 * 65534 for good, as a server does once it is set up: /proc of its parent
 * (the command, root's) is then closed to it. */
static int drop_uid_leak(void) {
  leak_one(100);
  if (getuid() == 0 && (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
                        setresuid(65534, 65534, 65534) != 0)) {
    perror("drop_uid_leak");
    return 1;
  }
  puts("ok");
  return 0;
}

/* fork_reporters N: N fork children (no exec) leak 60 blocks each, with
 * stacks of up to 60 frames, all at the same moment, their stderr the one
 * they inherited. Under --trace-children=yes each writes a long report. */
__attribute__((noinline)) static void leak_deep(int depth, int size) {
  if (depth == 0) {
    leak_one((size_t)size + 1);
    return;
  }
  leak_deep(depth - 1, size);
  __asm__ volatile("");
}

static int fork_reporters(int n) {
  int go[2];
  if (pipe(go) != 0) return 3;
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) return 3;
    if (pid == 0) {
      char c;
      close(go[1]);
      if (read(go[0], &c, 1) < 0) _exit(3);
      for (int j = 0; j < 60; j++) leak_deep(j, j);
      exit(0);
    }
  }
  close(go[0]);
  usleep(200000);
  close(go[1]); /* all at once */
  while (wait(NULL) > 0) {
  }
  return 0;
}

/* daemonize: detaches as glibc's daemon(3) does (fork, setsid, 0/1/2 onto
 * /dev/null, no exec); the daemon works 3 s while the parent returns. */
/* A daemon that closes every descriptor it finds open with fcntl (Redis's
 * way), after setsid or glibc's daemon (whose setsid is not ours to see),
 * then sleeps: whoever reads the program's stderr gets its end at once. */
static int probe_close_daemon(bool glibc_daemon) {
  leak_one(10);
  if (glibc_daemon) {
    if (daemon(0, 1) != 0) return 1;
  } else {
    if (fork() != 0) return 0;
    setsid();
  }
  for (int fd = 3; fd < 1024; fd++)
    if (fcntl(fd, F_GETFD) != -1) close(fd);
  int n = open("/dev/null", O_RDWR);
  dup2(n, 0), dup2(n, 1), dup2(n, 2);
  sleep(3);
  return 0;
}

static int daemonize(void) {
  leak_one(10);
  if (daemon(0, 0) != 0) return 1;
  sleep(3);
  return 0;
}

/* busy_threads N: N threads replace blocks of their own as fast as they
 * can (each keeps 64, in a local array), and main exits under them. Nothing
 * is lost; on a loaded machine a runnable thread may wait long for a CPU
 * before it takes the exit scan's stop signal. */
static volatile int busy_stop;

static void *busy_thread(void *arg) {
  void *kept[64] = {0};
  unsigned s = (unsigned)(uintptr_t)arg;
  while (!busy_stop)
    for (int i = 0; i < 64; i++) {
      s = s * 1103515245u + 12345u;
      free(kept[i]);
      kept[i] = malloc((s >> 8) % 5000 + 1);
    }
  return NULL;
}

static int busy_threads(int n) {
  pthread_t t;
  for (int i = 0; i < n; i++)
    if (pthread_create(&t, NULL, busy_thread, (void *)(uintptr_t)(i + 1)) != 0) return 3;
  usleep(300000);
  exit(0);
}

/* tight_address_space: a correct program that allocates, reallocates and
 * frees blocks of many sizes on two threads (each freeing some of the
 * other's), checking every byte, run under an RLIMIT_AS too small for
 * hahalloc's 32 MiB chunk table (run.py sets the limit). */
#define TAS_SLOTS 2000
static unsigned char *tas_slot[2][TAS_SLOTS];
static size_t tas_size[2][TAS_SLOTS];
static pthread_barrier_t tas_barrier;

static int tas_fill_check(int t, int i, bool check) {
  unsigned char *p = tas_slot[t][i];
  for (size_t k = 0; k < tas_size[t][i]; k++) {
    unsigned char want = (unsigned char)(t * 31 + i + k);
    if (!check)
      p[k] = want;
    else if (p[k] != want)
      return 1;
  }
  return 0;
}

static void *tas_run(void *arg) {
  int t = (int)(intptr_t)arg, bad = 0;
  uint64_t rng = 88172645463325252ull + (uint64_t)t;
  for (int i = 0; i < TAS_SLOTS; i++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    tas_size[t][i] = rng % 16 == 0 ? 8192 + rng % 150000 : 1 + rng % 1500;
    tas_slot[t][i] = malloc(tas_size[t][i]);
    if (tas_slot[t][i] == NULL) {
      tas_size[t][i] = 0;
      bad = 2;
    }
    tas_fill_check(t, i, false);
  }
  for (int i = 0; i < TAS_SLOTS; i += 3) { /* grow or shrink a third, keeping the common part */
    size_t old = tas_size[t][i], n = old % 2 ? old * 2 + 5 : old / 2 + 1, keep = old < n ? old : n;
    for (size_t k = 0; k < keep; k++)
      if (tas_slot[t][i][k] != (unsigned char)(t * 31 + i + k)) bad = 1;
    unsigned char *q = realloc(tas_slot[t][i], n);
    if (q == NULL) {
      bad = 2;
      continue;
    }
    for (size_t k = 0; k < keep; k++)
      if (q[k] != (unsigned char)(t * 31 + i + k)) bad = 1;
    tas_slot[t][i] = q;
    tas_size[t][i] = n;
    tas_fill_check(t, i, false);
  }
  pthread_barrier_wait(&tas_barrier);
  int other = 1 - t; /* each frees the other's odd slots, then its own even ones */
  for (int i = 1; i < TAS_SLOTS; i += 2) {
    bad |= tas_fill_check(other, i, true);
    free(tas_slot[other][i]);
  }
  for (int i = 0; i < TAS_SLOTS; i += 2) {
    bad |= tas_fill_check(t, i, true);
    free(tas_slot[t][i]);
  }
  return (void *)(intptr_t)bad;
}

static int tight_address_space(void) {
  pthread_t th;
  pthread_attr_t a;
  void *r0, *r1;
  pthread_barrier_init(&tas_barrier, NULL, 2);
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 256 << 10); /* a default stack is 8 MiB of address space */
  if (pthread_create(&th, &a, tas_run, (void *)1) != 0) return 3;
  r0 = tas_run((void *)0);
  pthread_join(th, &r1);
  if (r0 != NULL || r1 != NULL) {
    puts((intptr_t)r0 == 2 || (intptr_t)r1 == 2 ? "out of memory" : "bad");
    return 1;
  }
  puts("ok");
  return 0;
}

/* ps: a SIGCHLD handler that ends the program */
static void on_child(int sig) {
  (void)sig;
  _exit(1);
}

static int sigchld_exits(void) {
  signal(SIGCHLD, on_child);
  leak_one(100);
  return 0;
}

/* --------------------------------------------------------------- the scan meets a busy heap */

static void *realloc_loop(void *arg) {
  (void)arg;
  for (;;) { /* oversize blocks that shrink, grow and move by mremap */
    void *p = realloc(keep[0], (size_t)8 << 20);
    if (p) keep[0] = p;
    p = realloc(keep[0], (size_t)40 << 20);
    if (p) {
      keep[0] = p;
      memset((char *)p + ((size_t)39 << 20), 1, 4096);
    }
    void *q = malloc((size_t)20 << 20); /* something in the way, so growing moves */
    p = realloc(keep[0], (size_t)60 << 20);
    if (p) keep[0] = p;
    free(q);
  }
  return NULL;
}

static int oversize_realloc_race(void) {
  keep[0] = malloc((size_t)16 << 20);
  return exit_beside(realloc_loop, 30000);
}

void *volatile big[96];

static void *unstoppable(void *arg) {
  (void)arg;
  block_every_signal();
  for (;;) { /* reachable blocks freed, and their mappings unmapped, while the scan reads them */
    for (int i = 0; i < 96; i++) {
      big[i] = malloc((size_t)3 << 20); /* a large range: one per mapping */
      memset(big[i], 1, 65536);
    }
    for (int i = 0; i < 96; i++) free(big[i]);
  }
  return NULL;
}

/* a thread that blocks every signal and keeps allocating while the scan runs */
static int unstoppable_thread(void) { return exit_beside(unstoppable, 30000); }

/* A thread that blocks every signal and rebuilds a list of small nodes
 * without pause: the scan runs while it allocates, frees and holds the
 * list in its registers. */
struct node {
  struct node *next;
  char pad[40];
};
static struct node *volatile list_head;

static void *rebuild_list(void *arg) {
  (void)arg;
  block_every_signal();
  for (;;) {
    struct node *h = NULL;
    for (int i = 0; i < 20000; i++) {
      struct node *n = malloc(sizeof *n);
      n->next = h;
      h = n;
    }
    struct node *old = list_head;
    list_head = h;
    while (old != NULL) {
      struct node *n = old->next;
      free(old);
      old = n;
    }
  }
  return NULL;
}

static int unstoppable_list(void) { return exit_beside(rebuild_list, 50000); }

/* A pool's idle worker: it blocks every signal, leaks a block, and sleeps
 * on a condition variable that is never signalled. Its leak is a leak (not
 * hidden as a running thread's heap would be). */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static int idle_ready;

static bool idle_open; /* the workers take signals (and are stopped by the stop's) */

static void *idle_leaker(void *arg) {
  (void)arg;
  if (!idle_open) block_every_signal();
  void (*volatile leak)(size_t) = leak_one; /* its frame is written over by the calls that follow */
  leak(200);
  pthread_mutex_lock(&idle_lock);
  idle_ready++;
  pthread_cond_broadcast(&idle_cond);
  for (;;) pthread_cond_wait(&idle_cond, &idle_lock);
  return NULL;
}

static int blocked_idle_leak(int n, bool open) {
  idle_open = open;
  for (int i = 0; i < n; i++) {
    pthread_t t;
    pthread_create(&t, NULL, idle_leaker, NULL);
  }
  pthread_mutex_lock(&idle_lock);
  while (idle_ready < n) pthread_cond_wait(&idle_cond, &idle_lock);
  pthread_mutex_unlock(&idle_lock);
  usleep(20000); /* asleep in its wait */
  leak_one(100);
  exit(0);
}

/* Workers that block every signal, each asleep in a wait that an
 * interrupt ends with EINTR rather than restarting it (epoll_wait,
 * sigtimedwait, semop-like futex-free waits): the exit stop reaches them
 * with ptrace and must put the wait back. A worker whose wait ends says so
 * on stderr, and the program's last destructor, run after the report,
 * gives them 200 ms to. */
static atomic_int waits_ready, waits_ended;

static void *epoll_waiter(void *arg) {
  block_every_signal();
  int ep = epoll_create1(0);
  int fds[2];
  if (ep < 0 || pipe(fds) != 0) return arg;
  struct epoll_event ev = {.events = EPOLLIN};
  epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev);
  void (*volatile leak)(size_t) = leak_one;
  leak(300);
  atomic_fetch_add(&waits_ready, 1);
  int r = epoll_wait(ep, &ev, 1, -1);
  dprintf(2, "epoll_wait ended: %d (%s)\n", r, r < 0 ? strerror(errno) : "ready");
  atomic_fetch_add(&waits_ended, 1);
  return arg;
}

static void *sigwait_waiter(void *arg) {
  block_every_signal();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  void (*volatile leak)(size_t) = leak_one;
  leak(300);
  atomic_fetch_add(&waits_ready, 1);
  siginfo_t si;
  int r = sigwaitinfo(&set, &si);
  dprintf(2, "sigwaitinfo ended: %d (%s)\n", r, r < 0 ? strerror(errno) : "signal");
  atomic_fetch_add(&waits_ended, 1);
  return arg;
}

static bool waits_started;
__attribute__((destructor)) static void waits_after_report(void) {
  if (!waits_started) return;
  usleep(200000);
  dprintf(2, "after the report: %d waits ended\n", atomic_load(&waits_ended));
}

static int blocked_waits(void) {
  pthread_t t;
  waits_started = true;
  for (int i = 0; i < 2; i++) {
    pthread_create(&t, NULL, epoll_waiter, NULL);
    pthread_create(&t, NULL, sigwait_waiter, NULL);
  }
  while (atomic_load(&waits_ready) < 4) usleep(1000);
  usleep(20000); /* asleep in their waits */
  leak_one(100);
  exit(0);
}

/* A leaf function keeps the only pointer to a live block in a volatile
 * local (the red zone, below its stack pointer) while it waits in a raw
 * futex call of its own (helper-50). The block is reachable (valgrind:
 * reachable): only a C library wrapper's red zone is skipped. */
static void *volatile leaf_block;
static int leaf_word;

__attribute__((noinline)) static void leaf_wait(void) {
  void *volatile keep = leaf_block;
  leaf_block = NULL;
#if defined(__x86_64__)
  register long r10 __asm__("r10") = 0;
  long ret;
  __asm__ volatile("xor %%r8d, %%r8d\n\txor %%r9d, %%r9d\n\tsyscall"
                   : "=a"(ret)
                   : "0"((long)SYS_futex), "D"(&leaf_word), "S"((long)FUTEX_WAIT_PRIVATE), "d"(0L), "r"(r10)
                   : "rcx", "r11", "r8", "r9", "memory");
#endif
  leaf_block = keep;
}

static void *leaf_waiter(void *arg) {
  if (arg != NULL) block_every_signal();
  leaf_block = malloc(64);
  memset((void *)leaf_block, 0, 64);
  leaf_wait();
  return NULL;
}

static int leaf_syscall(bool blocked) {
  pthread_t t;
  pthread_create(&t, NULL, leaf_waiter, blocked ? &t : NULL);
  usleep(100000);
  leak_one(100);
  return 0;
}

/* Two signal-blocking threads dlopen and dlclose a library without pause
 * at exit: one stopped in munmap (its call done, the loader's lock held)
 * was held until the process ended, and the report's symboliser waited 2 s
 * for the lock (helper-50: 3-5 exits in 20). */
static void *dl_looper(void *arg) {
  block_every_signal();
  for (;;) {
    void *h = dlopen("libz.so.1", RTLD_NOW);
    if (h != NULL) dlclose(h);
  }
  return arg;
}

/* The loader's lock and the allocator's, at exit. Threads that have never
 * called the allocator take the loader's lock (dl_iterate_phdr, as
 * dlclose does) and make their first allocation with it held, while the
 * exit report starts: one holds the lock from the moment the program's own
 * exit handler runs, so that the report's first look at the loader waits,
 * and the others queue behind the report (the lock's waiters are woken in
 * turn); each of them allocates, the lock held, while the report goes on.
 * The report must take the loader's lock before its own, as they do: the
 * other order hung (1 in about 300 runs of dlclose_loop, below, on a busy
 * machine). */
static atomic_int loader_exiting, loader_holding;

static int hold_then_allocate(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)info;
  (void)size;
  if (*(int *)arg) return 1; /* once a call */
  *(int *)arg = 1;
  if (atomic_exchange(&loader_holding, 1) == 0) {
    usleep(500000); /* thread 0 holds it while the report starts */
    return 1;
  }
  usleep(50000);
  leak_one(24); /* this thread's first allocation, the loader's lock held */
  return 1;
}

static void *loader_lock_user(void *arg) {
  while (!atomic_load(&loader_exiting)) usleep(1000);
  if (arg != NULL) { /* behind the report */
    while (!atomic_load(&loader_holding)) usleep(1000);
    usleep(200000);
  }
  int once = 0;
  dl_iterate_phdr(hold_then_allocate, &once);
  for (;;) pause();
  return NULL;
}

static void start_exit(void) {
  atomic_store(&loader_exiting, 1);
  while (!atomic_load(&loader_holding)) usleep(1000);
}

static int first_alloc_in_loader_lock(void) {
  pthread_t t;
  for (intptr_t i = 0; i < 6; i++) pthread_create(&t, NULL, loader_lock_user, (void *)i);
  atexit(start_exit);
  leak_one(100);
  return 0;
}

static int dlclose_loop(void) {
  pthread_t t;
  for (int i = 0; i < 2; i++) pthread_create(&t, NULL, dl_looper, NULL);
  usleep(100000);
  leak_one(100);
  return 0;
}

/* A worker that blocks every signal and walks a list whose head only its
 * registers hold, in a heap it took over whole from a thread that ended
 * (helper-48): nothing is lost (valgrind: nothing). */
struct walk_node {
  struct walk_node *next;
  long v[6];
};
static atomic_int walk_ready;

static void *alloc_and_end(void *arg) {
  (void)arg;
  keep[0] = malloc(56);
  return NULL;
}

static void *walk_list(void *arg) {
  (void)arg;
  block_every_signal();
  struct walk_node *head = NULL;
  for (int i = 0; i < 1000; i++) {
    struct walk_node *n = malloc(sizeof *n);
    n->next = head;
    n->v[0] = i;
    head = n;
  }
  __asm__ volatile("" : "+r"(head));
  atomic_store(&walk_ready, 1);
  long sum = 0;
  for (;;) {
    for (struct walk_node *p = head; p != NULL; p = p->next) sum += p->v[0];
    __asm__ volatile("" : "+r"(head), "+r"(sum));
  }
  return NULL;
}

static int walker_in_taken_heap(void) {
  pthread_t t;
  pthread_create(&t, NULL, alloc_and_end, NULL);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, walk_list, NULL);
  while (!atomic_load(&walk_ready)) usleep(1000);
  usleep(20000);
  leak_one(100);
  return 0;
}

/* Two threads whose stacks are the two halves of one mapping
 * (pthread_attr_setstack): the upper one sleeps (stopped at exit), the
 * lower one blocks every signal and sleeps in a read, a block only in its
 * stack (helper-48). The block is reachable (valgrind: reachable). */
#define SHARED_HALF (1 << 20)
static atomic_int halves_ready;
static int halves_pipe[2];

static void *upper_half(void *arg) {
  atomic_fetch_add(&halves_ready, 1);
  for (;;) pause();
  return arg;
}

static void *lower_half(void *arg) {
  block_every_signal();
  char *volatile mine = malloc(100);
  strcpy(mine, "held by the lower thread");
  for (int i = 0; i < 8; i++) free(malloc(4000 + (size_t)i));
  atomic_fetch_add(&halves_ready, 1);
  char c;
  if (read(halves_pipe[0], &c, 1) < 0) return arg;
  return mine;
}

static int stacks_in_one_mapping(void) {
  if (pipe(halves_pipe) != 0) return 3;
  char *m = mmap(NULL, 2 * SHARED_HALF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (m == MAP_FAILED) return 3;
  pthread_attr_t at;
  pthread_t a, b;
  pthread_attr_init(&at);
  pthread_attr_setstack(&at, m + SHARED_HALF, SHARED_HALF);
  pthread_create(&a, &at, upper_half, NULL);
  pthread_attr_setstack(&at, m, SHARED_HALF);
  pthread_create(&b, &at, lower_half, NULL);
  while (atomic_load(&halves_ready) < 2) usleep(1000);
  usleep(20000);
  leak_one(100);
  return 0;
}

/* A ticker that blocks every signal and swaps a 48-byte block every 20 us
 * (a malloc and a free that give a page back the state it had), beside
 * 200 leak checks: prints how many found a leak (helper-48: 4-32). */
static _Atomic(char *) ticked;

static void *ticker(void *arg) {
  block_every_signal();
  struct timespec ts = {0, 20000};
  for (;;) {
    char *n = malloc(48);
    memset(n, 1, 48);
    free(atomic_exchange(&ticked, n));
    nanosleep(&ts, NULL);
  }
  return arg;
}

static int ticker_checks(void) {
  int (*check)(void *) = (int (*)(void *))dlsym(RTLD_DEFAULT, "hahalloc_leak_check");
  if (check == NULL) return 3;
  atomic_store(&ticked, malloc(48));
  pthread_t t;
  pthread_create(&t, NULL, ticker, NULL);
  int found = 0;
  for (int i = 0; i < 200; i++) found += check(NULL) != 0;
  printf("%d\n", found);
  fflush(stdout);
  _exit(0);
}

/* A signal thread that blocks every signal and takes them with
 * rt_sigtimedwait made directly (a runtime with its own system-call layer:
 * no C library wrapper for the allocator to see), beside two threads that
 * allocate without pause, and 40 leak checks: prints how many times the
 * signal thread was handed the stop signal (SIGRTMAX-2) as its own. The
 * stop signalled again every thread that had not answered whenever one
 * was found inside the allocator: 232-600 in 60 checks (helper-85). */
static _Atomic(int) raw_handed, raw_done;

/* Nanoseconds since `a` (CLOCK_MONOTONIC). */
static long ns_since(const struct timespec *a) {
  struct timespec b;
  clock_gettime(CLOCK_MONOTONIC, &b);
  return (b.tv_sec - a->tv_sec) * 1000000000L + (b.tv_nsec - a->tv_nsec);
}

static void spin_ns(long ns) {
  struct timespec a;
  clock_gettime(CLOCK_MONOTONIC, &a);
  while (ns_since(&a) < ns) {
  }
}

static void *raw_signal_thread(void *arg) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, NULL);
  while (!atomic_load(&raw_done)) {
    siginfo_t si;
    struct timespec to = {0, 1000000};
    if (syscall(SYS_rt_sigtimedwait, &all, &si, &to, _NSIG / 8) == SIGRTMAX - 2) atomic_fetch_add(&raw_handed, 1);
    spin_ns(50000);
  }
  return arg;
}

static void *allocate_without_pause(void *arg) {
  while (!atomic_load(&raw_done)) {
    void *x = malloc(64);
    __asm__ volatile("" : : "r"(x) : "memory");
    free(x);
  }
  return arg;
}

static int raw_sigwait_checks(void) {
  int (*check)(void *) = (int (*)(void *))dlsym(RTLD_DEFAULT, "hahalloc_leak_check");
  if (check == NULL) return 3;
  pthread_t sig, work[2];
  pthread_create(&sig, NULL, raw_signal_thread, NULL);
  for (int i = 0; i < 2; i++) pthread_create(&work[i], NULL, allocate_without_pause, NULL);
  for (int i = 0; i < 40; i++) {
    check(NULL);
    usleep(2000);
  }
  atomic_store(&raw_done, 1);
  pthread_join(sig, NULL);
  for (int i = 0; i < 2; i++) pthread_join(work[i], NULL);
  printf("%d\n", atomic_load(&raw_handed));
  return 0;
}

/* signalfd_groups: with 300 supplementary groups (root only), the Groups
 * line of /proc's status pushes SigBlk past 2 KiB. A thread that blocks
 * every signal for good and reads them from a signalfd, and 3 leak checks:
 * prints how many times the thread read the stop signal (it was sent it at
 * every check, and each check waited 5 s for it: helper-85). */
static void *signalfd_reader(void *arg) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, NULL);
  int fd = signalfd(-1, &all, SFD_CLOEXEC);
  for (;;) {
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) == (ssize_t)sizeof si && (int)si.ssi_signo == SIGRTMAX - 2)
      atomic_fetch_add(&raw_handed, 1);
  }
  return arg;
}

/* Joins n supplementary groups (root only): their Groups line comes before
 * the signal lines of status(5), past 2 KiB with 300 and past 16 KiB from
 * about 2,100 on. 0, or the exit status to return: 3 for a bad n, 4 when
 * setgroups refuses. */
static int join_groups(int n) {
  if (n < 0 || n > 65536) return 3;
  gid_t *groups = malloc((size_t)n * sizeof *groups + 1);
  if (groups == NULL) return 3;
  for (int i = 0; i < n; i++) groups[i] = (gid_t)(100000 + i);
  int r = setgroups((size_t)n, groups) == 0 ? 0 : 4;
  free(groups);
  return r;
}

static int signalfd_groups(void) {
  int (*check)(void *) = (int (*)(void *))dlsym(RTLD_DEFAULT, "hahalloc_leak_check");
  if (check == NULL) return 3;
  int r = join_groups(300);
  if (r != 0) return r;
  pthread_t t;
  pthread_create(&t, NULL, signalfd_reader, NULL);
  usleep(10000);
  for (int i = 0; i < 3; i++) {
    check(NULL);
    usleep(5000);
  }
  usleep(50000);
  printf("%d\n", atomic_load(&raw_handed));
  fflush(stdout);
  _exit(0);
}

/* A worker runs two coroutines on stacks carved from one mapping: the
 * first holds a block in a local and yields, the second sleeps. The block
 * is alive (valgrind: still reachable): the first coroutine's stack lies
 * below the sleeping one's stack pointer, in the same mapping. */
#define CO_STACK (64 << 10)
static char *co_arena;
static ucontext_t co_sched, co_ctx[2];
static int co_block;

static void co_holder(void) {
  char *volatile mine = malloc(1234);
  memset(mine, 1, 1234);
  swapcontext(&co_ctx[0], &co_sched);
  sink = mine;
}

static void co_sleeper(void) {
  for (;;) pause();
}

static void *co_worker(void *arg) {
  (void)arg;
  if (co_block) {
    block_every_signal();
  }
  for (int i = 0; i < 2; i++) {
    getcontext(&co_ctx[i]);
    co_ctx[i].uc_stack.ss_sp = co_arena + (size_t)i * CO_STACK;
    co_ctx[i].uc_stack.ss_size = CO_STACK;
    co_ctx[i].uc_link = &co_sched;
    makecontext(&co_ctx[i], i == 0 ? co_holder : co_sleeper, 0);
  }
  swapcontext(&co_sched, &co_ctx[0]);
  swapcontext(&co_sched, &co_ctx[1]);
  return NULL;
}

static int coroutine_arena(bool block) {
  co_block = block;
  co_arena = mmap(NULL, 2 * CO_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (co_arena == MAP_FAILED) return 3;
  pthread_t t;
  pthread_create(&t, NULL, co_worker, NULL);
  usleep(100000);
  leak_one(100);
  return 0;
}

/* a live block with a PROT_NONE page inside (a coroutine stack's guard) */
static int guard_page_block(void) {
  size_t size = (size_t)1 << 20;
  char *p = aligned_alloc(4096, size);
  memset(p, 0, size); /* every page resident: the scan reads them */
  void *after = malloc(50);
  memcpy(p + 65536 + 4096, &after, sizeof after); /* reachable only past the guard */
  after = NULL;
  if (mprotect(p + 65536, 4096, PROT_NONE) != 0) return 3;
  keep[2] = p;
  leak_one(100);
  return 0;
}

/* exit() from a signal handler that interrupts the thread while it holds
 * the allocator's locks (inside mem_lhihiks, whose scan holds them) */
static void exit_now(int sig) {
  (void)sig;
  exit(0);
}

/* churn_at_exit: three threads start detached threads without pause;
 * each of those sets a key whose destructor allocates a new value and sets
 * it again (a lingering heap, and a 64-byte block lost per thread). main
 * returns after 0.3 s, the churn still going. Its starts and ends took the
 * heap list's lock so often that the exit report waited past its deadline
 * and was dropped (helper-72), --error-exitcode's status with it. */
static pthread_key_t churn_key;
static void churn_destructor(void *v) {
  long round = *(long *)v;
  free(v);
  if (round >= 3) return;
  long *next = malloc(64);
  *next = round + 1;
  pthread_setspecific(churn_key, next);
}
static void *churn_leaf(void *arg) {
  (void)arg;
  long *v = malloc(32);
  *v = 0;
  pthread_setspecific(churn_key, v);
  for (int i = 0; i < 100; i++) free(malloc((size_t)i * 31 + 1));
  return NULL;
}
static void *churn_spawner(void *arg) {
  (void)arg;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&at, 65536);
  for (;;) {
    pthread_t t;
    if (pthread_create(&t, &at, churn_leaf, NULL) != 0) sched_yield();
  }
  return NULL;
}
static int churn_at_exit(void) {
  pthread_key_create(&churn_key, churn_destructor);
  pthread_t s[3];
  for (int i = 0; i < 3; i++) pthread_create(&s[i], NULL, churn_spawner, NULL);
  sink = malloc(4444); /* lost: found in every report */
  sink = NULL;
  usleep(300000);
  return 0;
}

static int exit_in_handler(void) {
  enum { N = 2000000 };
  void **a = malloc(N * sizeof *a);
  for (int i = 0; i < N; i++) a[i] = malloc(16);
  sink = a;
  signal(SIGALRM, exit_now);
  struct itimerval it = {{0, 0}, {0, 20000}};
  setitimer(ITIMER_REAL, &it, NULL);
  /* hahalloc's mem_lhihiks, preloaded or linked */
  void (*summary)(size_t) = (void (*)(size_t))dlsym(RTLD_DEFAULT, "mem_lhihiks");
  if (summary == NULL) return 3;
  int null = open("/dev/null", O_WRONLY);
  dup2(null, 1);
  for (;;) summary(SIZE_MAX);
  return 0;
}

/* --------------------------------------------------------------- kinds as valgrind's */

/* The only pointer to the block is in a callee-saved register when exit()
 * is called: __run_exit_handlers saves it in its frame; valgrind: still
 * reachable. */
static __attribute__((noinline)) void nested_exit(void) {
  register void *p asm("rbx") = malloc(100);
  asm volatile("" : "+r"(p));
  exit(0);
}

static int exit_from_nested(void) {
  leak_one(24);
  nested_exit();
  return 0;
}

/* A buffer given to setvbuf inside a block that is then leaked: stdio's
 * exit unbuffers the stream, so valgrind sees the block definitely lost. */
static int setvbuf_in_leak(void) {
  char *buf = malloc(8192);
  setvbuf(stdout, buf + 64, _IOFBF, 4096);
  printf("hello\n");
  buf = NULL;
  return 0;
}

/* term_handler: counts SIGTERMs; each takes the handler 200 ms, so that a
 * second copy sent while the first is handled runs it again (not merged
 * with the first). Waits up to 10 s for one, then 1 s more for copies. */
static volatile sig_atomic_t terms;
static void on_term(int sig) {
  (void)sig;
  terms++;
  struct timespec t = {0, 200 * 1000 * 1000};
  nanosleep(&t, NULL);
}
/* Handles `sig` with `fn` (no flags), then says "ready" to the test. */
static int handle_then_ready(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  if (sigaction(sig, &sa, NULL) != 0) return -1;
  printf("ready\n");
  fflush(stdout);
  return 0;
}
static int term_handler(void) {
  handle_then_ready(SIGTERM, on_term);
  for (int i = 0; i < 1000 && terms == 0; i++) usleep(10 * 1000);
  for (int i = 0; i < 10; i++) usleep(100 * 1000); /* interrupted sleeps: each is a tenth */
  printf("SIGTERM handled %d time(s)\n", (int)terms);
  return 0;
}

/* count_usr1: counts the SIGUSR1s that come within 2 s of "ready". */
static volatile sig_atomic_t usr1s;
static void on_usr1(int sig) {
  (void)sig;
  usr1s++;
}
static int count_usr1(void) {
  handle_then_ready(SIGUSR1, on_usr1);
  struct timespec until, now;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += 2;
  do {
    usleep(10 * 1000);
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while (now.tv_sec < until.tv_sec || (now.tv_sec == until.tv_sec && now.tv_nsec < until.tv_nsec));
  printf("SIGUSR1 handled %d time(s)\n", (int)usr1s);
  return 0;
}

/* catch_signal N: a handler for signal N, "ready", then up to 5 s for it;
 * says whether it came. */
static volatile sig_atomic_t caught;
static void on_caught(int sig) { caught = sig; }
static int catch_signal(int sig) {
  if (handle_then_ready(sig, on_caught) != 0) return 3;
  for (int i = 0; i < 500 && caught == 0; i++) usleep(10 * 1000);
  printf("caught %d\n", (int)caught);
  return 0;
}

/* signal_parent: sends SIGUSR1 to its parent, as a server tells the one
 * that started it that it is ready (Xorg does, when the parent ignores
 * SIGUSR1), then waits 300 ms and says how many it got itself. */
static int signal_parent(void) {
  if (handle_then_ready(SIGUSR1, on_usr1) != 0) return 3;
  if (kill(getppid(), SIGUSR1) != 0) return 4;
  for (int i = 0; i < 30; i++) usleep(10 * 1000);
  printf("got back %d\n", (int)usr1s);
  return 0;
}

/* exit_joined: a worker calls exit(2) while main's own exit runs an
 * atexit handler that joins the worker (a shutdown path that waits for
 * its workers, one of which dies). */
static pthread_t joined_worker;
static void *exit_two(void *arg) {
  usleep(100 * 1000);
  exit(2);
  return arg;
}
static void join_worker(void) { pthread_join(joined_worker, NULL); }
static int exit_joined(void) {
  leak_one(10);
  atexit(join_worker);
  pthread_create(&joined_worker, NULL, exit_two, NULL);
  exit(0);
}

/* many_leaks: 60 leaks, a report of most of a KiB. */
static int many_leaks(void) {
  for (int j = 0; j < 60; j++) leak_deep(j, 100 + j);
  puts("ok");
  return 0;
}

/* fill_stderr: a leak, "ok" on stdout, then 3,800 bytes on stderr (a pipe
 * of 4 KiB: the report will not fit). */
static int fill_stderr(void) {
  leak_one(10);
  char junk[3800];
  memset(junk, '.', sizeof junk);
  if (write(1, "ok\n", 3) != 3 || write(2, junk, sizeof junk) != (ssize_t)sizeof junk) return 3;
  return 0;
}

/* setsid_call: a server that starts a session of its own without forking
 * first. */
static int setsid_call(void) {
  leak_one(10);
  if (setsid() < 0) {
    printf("setsid: %s\n", strerror(errno));
    return 1;
  }
  printf("ok %d\n", getsid(0) == getpid());
  return 0;
}

/* The end of the scenarios whose other thread still runs at exit: that
 * thread started, a leak, a moment for the thread to settle, "ok". */
static int leak_beside(void *(*thread)(void *), int settle_ms) {
  pthread_t t;
  pthread_create(&t, NULL, thread, NULL);
  leak_one(10);
  usleep((useconds_t)settle_ms * 1000);
  puts("ok");
  return 0;
}

/* signalfd_loop: every signal blocked in every thread, and a thread that
 * takes them from a signalfd (an event loop), aborting on any it does not
 * expect; main leaks and returns. */
static int loop_fd;
static void *signal_loop(void *arg) {
  for (;;) {
    struct signalfd_siginfo si;
    if (read(loop_fd, &si, sizeof si) != (ssize_t)sizeof si) continue;
    if (si.ssi_signo != SIGTERM) {
      printf("unexpected signal %u\n", si.ssi_signo);
      fflush(stdout);
      abort();
    }
    exit(0);
  }
  return arg;
}
static int signalfd_loop(void) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  loop_fd = signalfd(-1, &all, SFD_CLOEXEC);
  if (loop_fd < 0) return 3;
  return leak_beside(signal_loop, 50);
}

/* fork_churn: 4 threads allocate and free all the time while main forks
 * 150 children that allocate, free and _exit(7); prints how many did not. */
static void *churn_forever(void *arg) {
  void *keep[64] = {0};
  unsigned i = (unsigned)(uintptr_t)arg;
  /* nicer than main and its children, which then run at once instead of
   * sharing 2 cores with 4 churners (the forks still land mid-malloc) */
  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
  for (;;) {
    unsigned k = i++ % 64;
    free(keep[k]);
    keep[k] = malloc((i * 31) % 70000 + 1);
  }
  return NULL;
}
static int fork_churn(void) {
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn_forever, (void *)i);
  int bad = 0;
  for (int n = 0; n < 150; n++) {
    pid_t p = fork();
    if (p == 0) {
      for (int j = 0; j < 1000; j++) {
        void *q = malloc((size_t)j * 13 + 1);
        memset(q, 0, (size_t)j * 13 + 1);
        free(q);
      }
      _exit(7);
    }
    int st;
    waitpid(p, &st, 0);
    bad += !WIFEXITED(st) || WEXITSTATUS(st) != 7;
  }
  printf("bad %d\n", bad);
  fflush(stdout);
  _exit(0);
}

/* lock_all: a few blocks, then mlockall(MCL_CURRENT); prints its result
 * and the resident and locked memory after it (from /proc/self/status). */
static long status_kib(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t n = strlen(field);
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, field, n) == 0 && line[n] == ':') v = strtol(line + n + 1, NULL, 10);
  if (f != NULL) fclose(f);
  return v;
}
static int lock_all(void) {
  void *b[16];
  for (int i = 0; i < 16; i++) {
    b[i] = malloc((size_t)(i + 1) * 100);
    if (b[i] == NULL) return 3;
    memset(b[i], 1, (size_t)(i + 1) * 100);
  }
  int r = mlockall(MCL_CURRENT);
  int e = errno;
  printf("mlockall %s rss %ld locked %ld\n", r == 0 ? "ok" : strerror(e), status_kib("VmRSS"), status_kib("VmLck"));
  for (int i = 0; i < 16; i++) free(b[i]);
  return 0;
}

/* exhaustion: RLIMIT_AS at 400 MiB. 16 blocks of 16 MiB freed, then a
 * malloc of 200 MiB that succeeds (after the cache of freed blocks is
 * emptied) must leave errno alone. Then the address space is used up, and
 * 7 shrinking reallocs (moves to a smaller root, out of large and oversize
 * ranges) must succeed with their contents, as glibc's do. */
static int exhaustion(void) {
  struct rlimit rl = {400 << 20, 400 << 20};
  if (setrlimit(RLIMIT_AS, &rl) != 0) return 3;
  void *b16[16];
  for (int i = 0; i < 16; i++) {
    b16[i] = malloc(16 << 20);
    if (b16[i] == NULL) return 3;
    memset(b16[i], 1, 4096);
  }
  for (int i = 0; i < 16; i++) free(b16[i]);
  errno = 0;
  void *big = malloc(200 << 20);
  printf("malloc after retry: %s, errno %d\n", big ? "ok" : "NULL", errno);
  free(big);
  size_t from[] = {1000, 5000, 100000, 1 << 20, 10 << 20, 1000, 300000};
  size_t to[] = {10, 100, 50, 1000, 100, 500, 20000};
  void *b[7];
  for (int i = 0; i < 7; i++) {
    b[i] = malloc(from[i]);
    if (b[i] == NULL) return 3;
    memset(b[i], 0x5a, from[i]);
  }
  void **list = NULL;
  for (size_t sz = 1 << 20; sz >= 16; sz /= 2)
    for (void **q; (q = malloc(sz)) != NULL; list = q) *q = list;
  int fails = 0;
  for (int i = 0; i < 7; i++) {
    unsigned char *q = realloc(b[i], to[i]);
    if (q == NULL || q[0] != 0x5a || q[to[i] - 1] != 0x5a) fails++;
    if (q != NULL) b[i] = q;
  }
  printf("shrinks failed: %d\n", fails);
  return 0;
}

/* oom_shrink_record BLOCK TO [ignore]: a block whose tail holds the only
 * pointer to a 50-byte block (and marked ignored, with "ignore") shrinks
 * by realloc once the address space is used up: it stays in place. With
 * fill "all", every root is full first, so the block's record must say
 * what it can; with "some", only sizes of 1 KiB and up are, so a range
 * of a root between the two is left for it to move to. Prints the scan's
 * figures (hahalloc_leak_check, preloaded or linked). */
struct safety_leak_count {
  size_t bytes, blocks;
};
struct safety_leaks {
  struct safety_leak_count definite, indirect, possible, reachable, suppressed, news[4];
};
/* busy_then_blocking: a worker that lost a 777-byte block allocates for
 * 2 ms, then blocks every signal for 1 ms, in a loop, beside 100 leak
 * checks: prints how many did not find exactly that block. Found inside
 * the allocator and then blocking, it was left running through the scan,
 * its heap all taken for reachable: 56-58 of 100 missed (helper-86). */
static _Atomic(int) bb_ready, bb_done;

static void *busy_then_blocking_worker(void *arg) {
  char *volatile lost = malloc(777);
  memset(lost, 7, 777);
  lost = NULL;
  sigset_t all, old;
  sigfillset(&all);
  atomic_store(&bb_ready, 1);
  while (!atomic_load(&bb_done)) {
    struct timespec a;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
      for (int j = 0; j < 16; j++) {
        void *volatile x = malloc(64 + (size_t)j * 16);
        free(x);
      }
    } while (ns_since(&a) < 2000000);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    spin_ns(1000000);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  return arg;
}

/* Runs `worker` (it loses a 777-byte block, then says it is ready) beside
 * `checks` leak checks a millisecond apart, and prints how many did not
 * find exactly that block. */
static int checks_missing_its_loss(void *(*worker)(void *), int checks) {
  int (*check)(struct safety_leaks *) = (int (*)(struct safety_leaks *))dlsym(RTLD_DEFAULT, "hahalloc_leak_check");
  if (check == NULL) return 3;
  pthread_t w;
  pthread_create(&w, NULL, worker, NULL);
  while (!atomic_load(&bb_ready)) usleep(100);
  usleep(5000);
  int missed = 0;
  for (int i = 0; i < checks; i++) {
    struct safety_leaks o;
    if (check(&o) < 0 || o.definite.blocks != 1 || o.definite.bytes != 777) missed++;
    usleep(1000);
  }
  atomic_store(&bb_done, 1);
  pthread_join(w, NULL);
  printf("%d\n", missed);
  return 0;
}

static int busy_then_blocking(void) { return checks_missing_its_loss(busy_then_blocking_worker, 100); }

/* groups_leak_checks N: with N supplementary groups (root only), a worker
 * that lost a 777-byte block allocates without pause beside 20 leak
 * checks: prints how many did not find exactly that block. With 2,100
 * groups or more the status file passed 16 KiB, and a stop that took a
 * status cut short for a blocking thread's stopped none (helper-86). */
static void *allocating_with_a_loss(void *arg) {
  char *volatile lost = malloc(777);
  memset(lost, 7, 777);
  lost = NULL;
  atomic_store(&bb_ready, 1);
  while (!atomic_load(&bb_done)) {
    void *volatile x = malloc(96);
    free(x);
  }
  return arg;
}

static int groups_leak_checks(int n) {
  int r = join_groups(n);
  if (r != 0) return r;
  return checks_missing_its_loss(allocating_with_a_loss, 20);
}

static char *volatile shrunk;
static int oom_shrink_record(size_t from, size_t to, const char *fill, bool ignore) {
  int (*check)(struct safety_leaks *) = (int (*)(struct safety_leaks *))dlsym(RTLD_DEFAULT, "hahalloc_leak_check");
  void (*ignored)(const void *) = (void (*)(const void *))dlsym(RTLD_DEFAULT, "hahalloc_ignore");
  if (check == NULL || ignored == NULL) return 3;
  struct safety_leaks a, b;
  free(malloc(24)); /* the roots the fill leaves open have a page */
  if (check(&a) < 0) return 4;
  shrunk = malloc(from);
  memset(shrunk, 0x5a, from);
  char *hidden = malloc(50);
  memcpy(shrunk + to + 8, &hidden, sizeof hidden);
  hidden = NULL;
  if (ignore) ignored(shrunk);
  long pages = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL || fscanf(f, "%ld", &pages) != 1) return 5;
  fclose(f);
  struct rlimit rl = {(rlim_t)pages * 4096 + (64 << 20), RLIM_INFINITY};
  if (setrlimit(RLIMIT_AS, &rl) != 0) return 6;
  void **list = NULL;
  size_t least = !strcmp(fill, "all") ? 16 : 1024;
  for (size_t sz = 1 << 20; sz >= least; sz = sz * 7 / 8)
    for (void **q; (q = malloc(sz)) != NULL; list = q) *q = list;
  char *q = realloc(shrunk, to);
  bool kept = q == shrunk, ok = q != NULL && q[0] == 0x5a && q[to - 1] == 0x5a;
  while (list != NULL) {
    void **next = *list;
    free(list);
    list = next;
  }
  rl.rlim_cur = RLIM_INFINITY;
  setrlimit(RLIMIT_AS, &rl);
  if (q != NULL) shrunk = q;
  if (check(&b) < 0) return 7;
  printf("%s %s; definite +%zu, reachable +%zu, suppressed +%zu\n", ok ? "contents kept" : "contents lost",
         kept ? "in place" : "moved", b.definite.bytes - a.definite.bytes, b.reachable.bytes - a.reachable.bytes,
         b.suppressed.bytes - a.suppressed.bytes);
  return 0;
}

/* small_altstack: a thread with a 2 KiB alternate signal stack (for its
 * stack overflow handler) blocked in read at exit. */
static int altstack_pipe[2];
static void *on_small_altstack(void *arg) {
  size_t size = 2048;
  char *mem = mmap(NULL, size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED || mprotect(mem, 4096, PROT_NONE) != 0) exit(3);
  stack_t ss = {.ss_sp = mem + 4096, .ss_size = size, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) exit(3);
  char c;
  if (read(altstack_pipe[0], &c, 1) < 0) exit(3);
  return arg;
}
static int small_altstack(void) {
  if (pipe(altstack_pipe) != 0) return 3;
  return leak_beside(on_small_altstack, 50);
}

/* reserve_reuse: RLIMIT_AS at 200 MiB, a 64 KiB reserve, the rest of the
 * address space used up by 4,000- and 16-byte blocks; once the reserve is
 * freed (a C++ new_handler's way out), 10 mallocs of 100 bytes, another
 * size, must succeed, as glibc's do. */
static int reserve_reuse(void) {
  struct rlimit rl = {200 << 20, 200 << 20};
  if (setrlimit(RLIMIT_AS, &rl) != 0) return 3;
  void *reserve = malloc(64 << 10);
  if (reserve == NULL) return 3;
  void **list = NULL;
  for (void **q; (q = malloc(4000)) != NULL; list = q) *q = list;
  for (void **q; (q = malloc(16)) != NULL; list = q) *q = list;
  free(reserve);
  int ok = 0;
  for (int i = 0; i < 10; i++) ok += malloc(100) != NULL;
  printf("%d of 10\n", ok);
  return 0;
}

/* blocks_briefly: a thread that blocks every signal for 10 ms out of every
 * 13 (as glibc does for moments around pthread_create and fork), running
 * at exit. */
static void *block_briefly(void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  for (;;) {
    pthread_sigmask(SIG_BLOCK, &all, &old);
    usleep(10 * 1000);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    usleep(3 * 1000);
  }
  return arg;
}
static int blocks_briefly(void) { return leak_beside(block_briefly, 20); }

/* fd_table_full: a leak, then every descriptor the limit allows held open
 * at exit (a server at its connection limit). */
static int fd_table_full(void) {
  leak_one(100);
  int n = 0;
  while (open("/dev/null", O_RDONLY) >= 0) n++;
  if (errno != EMFILE) return 3;
  printf("ok %d\n", n);
  fflush(stdout);
  return 0;
}

/* --------------------------------------------------------------- seccomp */

/* seccomp HOW ACTION [mem_lhihiks | double_free | reuse_big | threads | fork | lingering | close_range |
 * PROGRAM ARGS...]:
 * leaks
 * a block, then installs a seccomp filter, with prctl(PR_SET_SECCOMP) or
 * as libseccomp does, with syscall(SYS_seccomp) (HOW: prctl, syscall).
 * The filter allows everything but what a leak report needs and this
 * program does not: listing tasks, mincore, kcmp, signalling threads, and
 * for ACTION kill and errno also starting processes. ACTION: kill (the
 * process, SIGSYS), errno (EPERM), eperm_light (EPERM, processes allowed:
 * a container runtime's kind of filter, under which the hahalloc command
 * may run), kill_files (kill, threads allowed, and opening files, ioctl,
 * getrandom, sched_yield and getpid killed too), kill_service (kill for what systemd's
 * SystemCallFilter=@system-service lacks of the report's calls: mincore,
 * kcmp, ptrace, process_vm_readv), kill_startup (kill for getppid,
 * getpgid, readlink and readlinkat, processes allowed), bad (an empty filter the kernel
 * refuses). Then prints
 * "filtered ok" to a stdout a harness's pipe buffers, and calls
 * mem_lhihiks (which must print nothing), frees a block twice, reuses
 * 1 MiB blocks (reuse_big), starts threads whose first block comes from a
 * runtime wrapper (threads), forks a child that allocates and ends with
 * status 5 (fork), starts threads that leave their heaps lingering
 * (lingering), closes every descriptor from 3 up (close_range), or runs
 * PROGRAM, which inherits the filter. */
#define SC_DENY(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, action)
static int install_filter(const char *how, const char *what, bool tsync) {
  bool light = !strcmp(what, "eperm_light"), files = !strcmp(what, "kill_files");
  bool service = !strcmp(what, "kill_service"), startup = !strcmp(what, "kill_startup");
  uint32_t action = !strcmp(what, "kill") || files || service || startup ? SECCOMP_RET_KILL_PROCESS
                                                                          : SECCOMP_RET_ERRNO | EPERM;
  uint32_t processes = light || files || service || startup ? SECCOMP_RET_ALLOW : action;
  uint32_t groups = startup ? action : SECCOMP_RET_ALLOW;
  uint32_t open_files = files ? action : SECCOMP_RET_ALLOW;
  uint32_t threads = service ? SECCOMP_RET_ALLOW : action; /* listing and signalling them */
  uint32_t tracing = service ? action : SECCOMP_RET_ALLOW;
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getdents64, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, threads),
      SC_DENY(SYS_mincore),
      SC_DENY(SYS_kcmp),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_tgkill, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, threads),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_tgsigqueueinfo, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, threads),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, tracing),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, tracing),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_getfd, 0, 1), /* @debug, outside @system-service */
      BPF_STMT(BPF_RET | BPF_K, tracing),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, processes),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, processes),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_wait4, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, processes),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, open_files),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ioctl, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, open_files),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, groups),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpgid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, groups),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_readlink, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, groups),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_readlinkat, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, groups),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getrandom, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, open_files),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sched_yield, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, open_files),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, open_files),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {!strcmp(what, "bad") ? 0 : (unsigned short)(sizeof f / sizeof f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 3;
  long r = !strcmp(how, "syscall")
               ? syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0, &prog)
               : prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
  if (!strcmp(what, "bad")) return r == -1 && errno == EINVAL ? 0 : 4;
  return r == 0 ? 0 : 4;
}

/* reuse_big: reused 1 MiB ranges, which the report clears (their resident
 * pages, found by mincore when no seccomp filter is in force); prints
 * "reused ok" and flushes it. */
static int reuse_big(void) {
  for (int i = 0; i < 8; i++) {
    char *volatile big = malloc((size_t)1 << 20);
    if (big == NULL) return 1;
    big[0] = 1;
    big[(size_t)1 << 19] = 2;
    free(big);
  }
  printf("reused ok\n");
  fflush(stdout);
  return 0;
}

/* threads: after the filter, threads whose first block comes from strdup,
 * a runtime wrapper, so that the report walks past it to find the call
 * site (and asks where the thread's stack is); a thread that left its
 * heap lingering (its key's destructor allocates in every round), which
 * the next thread's start looks into; four threads that start 150 short
 * ones each, which take the heap list's lock together. Each new heap draws
 * its secrets. Prints "threads ok". */
static void *strdup_thread(void *arg) {
  char *volatile copy = strdup(arg);
  free(copy);
  return NULL;
}

static pthread_key_t linger_key;
static void linger_again(void *p) {
  free(p);
  pthread_setspecific(linger_key, malloc(32));
}
static void *lingerer(void *arg) {
  pthread_setspecific(linger_key, malloc(32));
  return arg;
}

static void *short_thread(void *arg) {
  for (int i = 0; i < 20; i++) free(malloc(16 + (size_t)i * 150));
  return arg;
}
static void *starter(void *arg) {
  for (int i = 0; i < 150; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, short_thread, NULL) == 0) pthread_join(t, NULL);
  }
  return arg;
}

static int seccomp_threads(void) {
  for (int i = 0; i < 3; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, strdup_thread, "a copy") != 0) return 8;
    pthread_join(t, NULL);
  }
  pthread_t t, s[4];
  if (pthread_key_create(&linger_key, linger_again) != 0 || pthread_create(&t, NULL, lingerer, NULL) != 0) return 8;
  pthread_join(t, NULL);
  for (int i = 0; i < 4; i++)
    if (pthread_create(&s[i], NULL, starter, NULL) != 0) return 8;
  for (int i = 0; i < 4; i++) pthread_join(s[i], NULL);
  printf("threads ok\n");
  fflush(stdout);
  return 0;
}

/* lingering: 2,000 threads one after another whose key destructor
 * allocates in every round (lingerer, above), so that each leaves its heap
 * lingering for the next start to take back; prints "lingering ok" when
 * the peak RSS grew by less than 24 MiB (each heap kept would hold 32 KiB
 * or more). */

static long peak_rss_kib(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int seccomp_lingering(void) {
  if (pthread_key_create(&linger_key, linger_again) != 0) return 8;
  long before = peak_rss_kib();
  for (int i = 0; i < 2000; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, lingerer, NULL) != 0) return 8;
    pthread_join(t, NULL);
  }
  long grew = peak_rss_kib() - before;
  printf(grew < 24 * 1024 ? "lingering ok\n" : "peak RSS grew by %ld KiB\n", grew);
  fflush(stdout);
  return 0;
}

static int seccomp_run(const char *how, const char *what, int argc, char **argv) {
  leak_one(40);
  void (*summary)(size_t) = (void (*)(size_t))dlsym(RTLD_DEFAULT, "mem_lhihiks");
  char *volatile twice = malloc(24);
  int r = install_filter(how, what, false);
  if (r != 0) return r;
  printf("filtered ok\n");
  if (argc > 0 && !strcmp(argv[0], "mem_lhihiks")) {
    if (summary == NULL) return 5;
    fflush(stdout);
    summary(0);
    printf("after summary\n");
  } else if (argc > 0 && !strcmp(argv[0], "double_free")) {
    free(twice);
    free(twice);
  } else if (argc > 0 && !strcmp(argv[0], "reuse_big")) {
    if (reuse_big() != 0) return 7;
  } else if (argc > 0 && !strcmp(argv[0], "fork")) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      free(malloc(1000));
      _exit(5);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return 9;
    printf("child %s %d\n", WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
  } else if (argc > 0 && !strcmp(argv[0], "close_range")) {
    fflush(stdout);
    if (close_range(3, ~0u, 0) != 0) return 10;
    printf("closed\n");
  } else if (argc > 0 && !strcmp(argv[0], "lingering")) {
    fflush(stdout);
    if (seccomp_lingering() != 0) return 8;
  } else if (argc > 0 && !strcmp(argv[0], "threads")) {
    fflush(stdout);
    if (seccomp_threads() != 0) return 8;
  } else if (argc > 0) {
    fflush(stdout);
    execv(argv[0], argv);
    return 6;
  } else {
    free(twice);
  }
  return 0;
}

/* seccomp_probe: what libseccomp asks the kernel before it installs
 * anything (strict mode with flags, a filter with no program): refused,
 * nothing installed. Then leaks a block. */
static int seccomp_probe(void) {
  errno = 0;
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 1, NULL) != -1 || errno != EINVAL) return 3;
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, NULL) != -1 || errno != EFAULT)
    return 4;
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL, 0, 0) != -1) return 5;
  leak_one(40);
  puts("ok");
  return 0;
}

/* seccomp_vfork: a vfork child installs a filter and runs /bin/true, a
 * sandboxing launcher's way; the parent, never filtered, leaks a block. */
static int seccomp_vfork(void) {
  leak_one(40);
  pid_t pid = vfork();
  if (pid == 0) {
    if (install_filter("prctl", "eperm_light", false) == 0) execl("/bin/true", "true", (char *)NULL);
    _exit(127);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 3;
  puts("ok");
  return 0;
}

/* seccomp_race DELAY_US: a thread runs hahalloc_leak_check in a loop; after
 * DELAY_US the main thread installs a killing filter on every thread
 * (TSYNC). A check under way must end before the filter is in force. */
static atomic_int race_stop, race_started;
static void *race_checker(void *arg) {
  int (*check)(void *) = (int (*)(void *))arg;
  char counts[4096];
  while (!atomic_load(&race_stop)) {
    if (check != NULL) check(counts);
    atomic_store(&race_started, 1);
  }
  return NULL;
}
static int seccomp_race(long delay_us) {
  for (int i = 0; i < 4; i++) keep[i] = malloc(64);
  leak_one(40);
  pthread_t t;
  pthread_create(&t, NULL, race_checker, dlsym(RTLD_DEFAULT, "hahalloc_leak_check"));
  while (!atomic_load(&race_started)) {
  }
  usleep((useconds_t)delay_us);
  int r = install_filter("syscall", "kill", true);
  atomic_store(&race_stop, 1);
  pthread_join(t, NULL);
  if (r != 0) return r;
  puts("ok");
  return 0;
}

/* syscall_getrandom: four bytes through syscall(SYS_getrandom), in hex (a
 * preloaded hook of syscall() may fake them). */
static int syscall_getrandom(void) {
  unsigned char b[4] = {0};
  if (syscall(SYS_getrandom, b, sizeof b, 0) != (long)sizeof b) return 3;
  printf("%02x%02x%02x%02x\n", b[0], b[1], b[2], b[3]);
  return 0;
}

/* syscall_abi: syscall() keeps glibc's convention under the library, which
 * defines it (src/shared/seccomp.c): the result, -1 and errno, and six
 * arguments. */
static int syscall_abi(void) {
  if (syscall(SYS_getpid) != getpid()) return 3;
  errno = 0;
  if (syscall(SYS_close, -1) != -1 || errno != EBADF) return 4;
  void *m = (void *)syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return 5;
  memset(m, 1, 4096);
  if (syscall(SYS_munmap, m, 4096) != 0) return 6;
  int word = 0;
  struct timespec ts = {0, 1000000};
  errno = 0;
  if (syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0) != -1 || errno != ETIMEDOUT) return 7;
  errno = 0;
  if (prctl(PR_SET_NAME, "abi-check", 0, 0, 0) != 0) return 8;
  char name[16] = {0};
  if (prctl(PR_GET_NAME, name, 0, 0, 0) != 0 || strcmp(name, "abi-check") != 0) return 9;
  if (prctl(-1, 0, 0, 0, 0) != -1 || errno != EINVAL) return 10;
  puts("ok");
  return 0;
}

#ifdef LINKED
/* With PROGS_EARLY_FREE=1, an invalid free before anything has set the
 * allocator up: a preinit function runs before every constructor. */
static int early_static;
static void early_free(int argc, char **argv, char **envp) { /* environ is not set yet */
  (void)argc, (void)argv;
  for (char **e = envp; *e != NULL; e++) {
    if (strcmp(*e, "PROGS_EARLY_FREE=1") != 0) continue;
    void *volatile bad = &early_static;
    free(bad);
  }
}
__attribute__((section(".preinit_array"), used)) static void (*const early_free_at)(int, char **, char **) = early_free;
#endif

/* A block allocated by a stripped library loaded with dlopen, errno set
 * to 0 before: a malloc that succeeds leaves errno as it was, the first
 * time too (the report then reads the library's ELF file). Prints the
 * errno after each of three calls. */
static int errno_dlopen(const char *lib) {
  void *h = dlopen(lib, RTLD_NOW);
  if (h == NULL) return 3;
  void *(*alloc)(size_t) = (void *(*)(size_t))dlsym(h, "alloc_lib_alloc");
  if (alloc == NULL) return 3;
  for (int i = 0; i < 3; i++) {
    errno = 0;
    void *p = alloc(16);
    int e = errno;
    printf("%s%d", i ? " " : "", p == NULL ? -1 : e);
    free(p);
  }
  printf("\n");
  return 0;
}

/* The dispositions and the mask the program started with: "HUP:ign
 * USR1:ign PIPE:dfl TERM:dfl CHLD:ign mask:0". */
static int dispositions(void) {
  static const int sigs[] = {SIGHUP, SIGUSR1, SIGPIPE, SIGTERM, SIGCHLD};
  static const char *const names[] = {"HUP", "USR1", "PIPE", "TERM", "CHLD"};
  for (int i = 0; i < 5; i++) {
    struct sigaction sa;
    sigaction(sigs[i], NULL, &sa);
    printf("%s:%s ", names[i], sa.sa_handler == SIG_IGN ? "ign" : sa.sa_handler == SIG_DFL ? "dfl" : "handler");
  }
  sigset_t mask;
  sigprocmask(SIG_SETMASK, NULL, &mask);
  int blocked = 0;
  for (int sig = 1; sig < SIGRTMIN; sig++) blocked += sigismember(&mask, sig) == 1;
  printf("mask:%d\n", blocked);
  return 0;
}

/* A thread vforks a child that sleeps 10 s before it exits; main exits
 * meanwhile, with a block lost and the thread's own block on its stack. The
 * vfork wait takes no signal and no ptrace stop: the exit must not wait for
 * it (it took 5 s, the stop's cap). */
static volatile int vfork_started;
static void *vfork_worker(void *arg) {
  (void)arg;
  void *volatile mine = malloc(2468);
  vfork_started = 1;
  pid_t p = vfork();
  if (p == 0) { /* its own descriptors (the report's kept one too): the harness waits for its pipes */
    for (int fd = 0; fd < 1024; fd++) syscall(SYS_close, fd);
    struct timespec ts = {10, 0};
    syscall(SYS_nanosleep, &ts, NULL);
    syscall(SYS_exit, 0);
  }
  (void)mine;
  return NULL;
}
/* Starts `worker`, which sets vfork_started just before its vfork, gives it
 * `us` to be held there, and loses a block of 1,357 bytes. */
static void start_vforker_and_lose(void *(*worker)(void *), useconds_t us) {
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  while (!vfork_started) sched_yield();
  usleep(us);
  void *volatile lost = malloc(1357);
  lost = NULL;
  (void)lost;
}
static int vfork_wait(void) {
  start_vforker_and_lose(vfork_worker, 100000);
  exit(0);
}

/* A thread vforks a child that exits 30 ms after main calls exit(), while
 * the exit scan of 4 M live blocks is still reading (about 200 ms here;
 * timed from the exit, not from the vfork, so that a faster machine's
 * shorter scan still has the child exit in the middle of it; the child
 * shares the parent's memory and sees the flag): the thread, released
 * from its vfork wait, must not run during the scan (its moves would make
 * the scan's verdicts wrong: blocks of a heap that moved during the scan
 * are taken for reachable, and the 2,468 bytes the thread lost before its
 * vfork would be missed). Once it runs it allocates 20,000 blocks. */
static void *volatile vfork_chain;
static volatile int vfork_exiting;
static __attribute__((noinline)) void vfork_leak(void) {
  char *volatile lost = malloc(2468);
  memset(lost, 1, 2468);
  lost = NULL;
}
static void *vfork_resumer(void *arg) {
  (void)arg;
  vfork_leak(); /* in this thread's heap: called reachable if that heap moved during the scan */
  vfork_started = 1;
  pid_t p = vfork();
  if (p == 0) {
    struct timespec tick = {0, 1000 * 1000L}, ts = {0, 30 * 1000 * 1000L};
    while (!vfork_exiting) syscall(SYS_nanosleep, &tick, NULL);
    syscall(SYS_nanosleep, &ts, NULL);
    syscall(SYS_exit, 0);
  }
  for (int i = 0; i < 20000; i++) { /* a chain the scan would find in part */
    void **b = malloc(777);
    if (b == NULL) break;
    *b = vfork_chain;
    vfork_chain = b;
  }
  return NULL;
}
static int vfork_resume(void) {
  enum { N = 4 * 1000 * 1000 };
  void **keep = malloc(N * sizeof *keep);
  for (int i = 0; i < N; i++) keep[i] = malloc(24);
  start_vforker_and_lose(vfork_resumer, 50000);
  vfork_exiting = 1;
  exit(0);
}

int main(int argc, char **argv) {
  const char *w = argc > 1 ? argv[1] : "";
  /* ptrace refused (without CAP_SYS_PTRACE): the exit stop's tracer cannot
   * stop what the signal did not */
  if (getenv("PROGS_UNDUMPABLE") != NULL) prctl(PR_SET_DUMPABLE, 0);
  if (!strcmp(w, "close_stderr_at_exit")) return close_stderr_at_exit();
  if (!strcmp(w, "reuse_fd2") && argc > 2) return reuse_fd2(argv[2]);
  if (!strcmp(w, "closefrom_then_log") && argc > 2) return closefrom_then_log(argv[2]);
  if (!strcmp(w, "high_fds_are_free") && argc > 2) return high_fds_are_free(argv[2]);
  if (!strcmp(w, "probe_close_daemon") && argc > 2) return probe_close_daemon(!strcmp(argv[2], "daemon"));
  if (!strcmp(w, "oom_shrink_record") && argc > 4)
    return oom_shrink_record(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0), argv[4],
                             argc > 5 && !strcmp(argv[5], "ignore"));
  if (!strcmp(w, "reuse_fd2_double_free") && argc > 2) return reuse_fd2_double_free(argv[2]);
  if (!strcmp(w, "double_free")) return double_free();
  if (!strcmp(w, "double_free_threads") && argc > 2) return double_free_threads(atoi(argv[2]));
  if (!strcmp(w, "errno_after_error")) return errno_after_error();
  if (!strcmp(w, "leak")) return leak();
  if (!strcmp(w, "drop_uid_leak")) return drop_uid_leak();
  if (!strcmp(w, "cpu")) return cpu();
  if (!strcmp(w, "seccomp") && argc > 3) return seccomp_run(argv[2], argv[3], argc - 4, argv + 4);
  if (!strcmp(w, "reuse_big")) return reuse_big();
  if (!strcmp(w, "syscall_abi")) return syscall_abi();
  if (!strcmp(w, "seccomp_probe")) return seccomp_probe();
  if (!strcmp(w, "seccomp_vfork")) return seccomp_vfork();
  if (!strcmp(w, "seccomp_race") && argc > 2) return seccomp_race(atol(argv[2]));
  if (!strcmp(w, "syscall_getrandom")) return syscall_getrandom();
  if (!strcmp(w, "tight_address_space")) return tight_address_space();
  if (!strcmp(w, "daemonize")) return daemonize();
  if (!strcmp(w, "fork_reporters") && argc > 2) return fork_reporters(atoi(argv[2]));
  if (!strcmp(w, "busy_threads") && argc > 2) return busy_threads(atoi(argv[2]));
  if (!strcmp(w, "sigchld_exits")) return sigchld_exits();
  if (!strcmp(w, "oversize_realloc_race")) return oversize_realloc_race();
  if (!strcmp(w, "unstoppable_thread")) return unstoppable_thread();
  if (!strcmp(w, "unstoppable_list")) return unstoppable_list();
  if (!strcmp(w, "blocked_idle_leak") && argc > 2)
    return blocked_idle_leak(atoi(argv[2]), argc > 3 && !strcmp(argv[3], "open"));
  if (!strcmp(w, "blocked_waits")) return blocked_waits();
  if (!strcmp(w, "leaf_syscall")) return leaf_syscall(argc > 2 && !strcmp(argv[2], "blocked"));
  if (!strcmp(w, "dlclose_loop")) return dlclose_loop();
  if (!strcmp(w, "first_alloc_in_loader_lock")) return first_alloc_in_loader_lock();
  if (!strcmp(w, "walker_in_taken_heap")) return walker_in_taken_heap();
  if (!strcmp(w, "stacks_in_one_mapping")) return stacks_in_one_mapping();
  if (!strcmp(w, "ticker_checks")) return ticker_checks();
  if (!strcmp(w, "raw_sigwait_checks")) return raw_sigwait_checks();
  if (!strcmp(w, "signalfd_groups")) return signalfd_groups();
  if (!strcmp(w, "busy_then_blocking")) return busy_then_blocking();
  if (!strcmp(w, "groups_leak_checks") && argc > 2) return groups_leak_checks(atoi(argv[2]));
  if (!strcmp(w, "dispositions")) return dispositions();
  if (!strcmp(w, "errno_dlopen") && argc > 2) return errno_dlopen(argv[2]);
  if (!strcmp(w, "coroutine_arena")) return coroutine_arena(argc > 2 && !strcmp(argv[2], "blocked"));
  if (!strcmp(w, "guard_page_block")) return guard_page_block();
  if (!strcmp(w, "exit_in_handler")) return exit_in_handler();
  if (!strcmp(w, "churn_at_exit")) return churn_at_exit();
  if (!strcmp(w, "exit_from_nested")) return exit_from_nested();
  if (!strcmp(w, "setvbuf_in_leak")) return setvbuf_in_leak();
  if (!strcmp(w, "term_handler")) return term_handler();
  if (!strcmp(w, "count_usr1")) return count_usr1();
  if (!strcmp(w, "signal_parent")) return signal_parent();
  if (!strcmp(w, "fd_table_full")) return fd_table_full();
  if (!strcmp(w, "exit_joined")) return exit_joined();
  if (!strcmp(w, "vfork_wait")) return vfork_wait();
  if (!strcmp(w, "vfork_resume")) return vfork_resume();
  if (!strcmp(w, "many_leaks")) return many_leaks();
  if (!strcmp(w, "fill_stderr")) return fill_stderr();
  if (!strcmp(w, "fork_churn")) return fork_churn();
  if (!strcmp(w, "exhaustion")) return exhaustion();
  if (!strcmp(w, "lock_all")) return lock_all();
  if (!strcmp(w, "reserve_reuse")) return reserve_reuse();
  if (!strcmp(w, "small_altstack")) return small_altstack();
  if (!strcmp(w, "blocks_briefly")) return blocks_briefly();
  if (!strcmp(w, "setsid_call")) return setsid_call();
  if (!strcmp(w, "signalfd_loop")) return signalfd_loop();
  if (!strcmp(w, "catch_signal") && argc > 2) return catch_signal(atoi(argv[2]));
  fprintf(stderr, "unknown scenario '%s'\n", w);
  return 2;
}
