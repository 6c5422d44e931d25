/* Programs for the behaviours of the report at exit and on demand; the
 * first argument picks one (tests/leak/run.py). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libintl.h>
#include <pwd.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "hahalloc.h"

static void *volatile sink;

/* mem_lhihiks: the summary lands on stdout between the program's lines. */
static int summary(void) {
  void *big = malloc(5000), *small = malloc(24);
  sink = big;
  sink = small;
  printf("before\n");
  mem_lhihiks(0);
  printf("middle\n");
  mem_lhihiks(1000);
  printf("after\n");
  free(big);
  free(small);
  return 0;
}

static volatile int spin = 1;
static void *spinner(void *arg) {
  char *mine = malloc(777); /* lives in this running thread's stack */
  memset(mine, 1, 777);
  while (spin) __asm__ volatile("" : : "r"(mine) : "memory");
  free(mine);
  return arg;
}

/* Threads still running (one with signals blocked) when main returns. */
static int running_threads(void) {
  pthread_t t[3];
  sigset_t all, old;
  sigfillset(&all);
  for (int i = 0; i < 3; i++) {
    if (i == 2) pthread_sigmask(SIG_BLOCK, &all, &old); /* this one cannot be stopped */
    pthread_create(&t[i], NULL, spinner, NULL);
    if (i == 2) pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  usleep(100000);
  sink = malloc(11); /* reachable from a global */
  return 0;
}

static void *exiter(void *arg) {
  (void)arg;
  sink = malloc(33);
  sink = NULL; /* leaked */
  exit(0);
}

/* exit() called by a thread while main waits. */
static int exit_from_thread(void) {
  pthread_t t;
  pthread_create(&t, NULL, exiter, NULL);
  pthread_join(t, NULL);
  return 1; /* never reached */
}

/* thread_wrapper: threads whose leaked block comes from strdup, a wrapper
 * the site's walk goes past to the caller. The walk reads the thread's
 * stack only within the stack's mapping, which it asks the kernel for:
 * the caller named means the answer was right. */
static __attribute__((noinline)) void *wrapper_thread(void *arg) {
  char *copy = strdup(arg); /* SITE(thread_wrapper) */
  __asm__ volatile("" : : "r"(copy) : "memory");
  return NULL;
}

static int thread_wrapper(void) {
  for (int i = 0; i < 3; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, wrapper_thread, "twenty-one bytes long") != 0) return 1;
    pthread_join(t, NULL);
  }
  return 0;
}

/* fork without exec: each process reports on its own. */
static int fork_child(void) {
  sink = malloc(64);
  sink = NULL; /* leaked in both */
  pid_t pid = fork();
  if (pid == 0) {
    sink = malloc(128);
    sink = NULL; /* leaked in the child only */
    return 0;
  }
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static int quick_exit_(void) {
  sink = malloc(10);
  _exit(0);
}

static int die_by_signal(void) {
  sink = malloc(10);
  signal(SIGTERM, SIG_DFL);
  raise(SIGTERM);
  return 0;
}

/* A million live blocks, all reachable through an array, and 1000 leaked. */
static int million(void) {
  enum { N = 1000000 };
  void **a = malloc(N * sizeof *a);
  for (int i = 0; i < N; i++) a[i] = malloc(16);
  for (int i = 0; i < 1000; i++) {
    char *p = malloc(32);
    memset(p, 'x', 32);
    sink = p;
  }
  sink = a; /* the last of the 1000 is lost too */
  return 0;
}

/* Deep recursion: the stack walk must stay within bounds. */
static __attribute__((noinline)) void *deep(int n) {
  if (n == 0) return malloc(48);
  void *p = deep(n - 1);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

static int deep_stack(void) {
  for (int i = 0; i < 10; i++) free(deep(20000 + i));
  sink = deep(50000);
  return 0;
}

/* No leak at all: the exit code option must not fire. */
static int clean(void) {
  free(malloc(10));
  return 0;
}

/* A write past the end of a live 16-byte block runs over the two free
 * blocks after it, link and all (a common bug): the scan finds the damage
 * and says so, and the report says that its figures may count such blocks.
 * 100 bytes are lost for certain. Prints "adjacent" when three neighbours
 * were found (always, on a fresh page of 16-byte blocks). */
static void *volatile kept;

static __attribute__((noinline)) void lose_100(void) {
  sink = malloc(100);
  sink = NULL;
}

static int overflow_into_free(void) {
  enum { N = 64 };
  char *b[N];
  for (int i = 0; i < N; i++) b[i] = malloc(16);
  int at = -1;
  for (int i = 0; i + 2 < N && at < 0; i++)
    if (b[i + 1] == b[i] + 16 && b[i + 2] == b[i] + 32) at = i;
  if (at < 0) return 2;
  for (int i = 0; i < N; i++)
    if (i != at && i != at + 1 && i != at + 2) free(b[i]);
  free(b[at + 2]);
  free(b[at + 1]); /* the first of the free list: the list runs through b[at + 2] */
  memset(b[at], 'x', 40); /* past its end: all of b[at + 1], the link of b[at + 2] */
  kept = b[at];
  lose_100();
  printf("adjacent\n");
  return 0;
}

/* Blocks of each size class freed by a thread other than the one that
 * allocated them: one thread that has exited, one still running (blocked)
 * at exit. Their owners never collect these frees before the report, which
 * must count them free: no leak, nothing in use but the threads' own. */
static void *others[2][3];
static const size_t other_sizes[3] = {64, 5000, 300000};
static int ready[2], hold[2];

static void *allocate_three(void *arg) {
  void **mine = arg;
  for (int i = 0; i < 3; i++) {
    mine[i] = malloc(other_sizes[i]);
    memset(mine[i], 7, other_sizes[i]);
  }
  return NULL;
}

static void *allocate_three_and_wait(void *arg) {
  allocate_three(arg);
  char c;
  if (write(ready[1], "x", 1) != 1) abort(); /* tell main, then block until exit */
  while (read(hold[0], &c, 1) != 1) {
  }
  return NULL;
}

static int freed_by_another_thread(void) {
  pthread_t t;
  pthread_create(&t, NULL, allocate_three, others[0]);
  pthread_join(t, NULL);
  if (pipe(ready) != 0 || pipe(hold) != 0) return 1;
  pthread_create(&t, NULL, allocate_three_and_wait, others[1]);
  char c;
  if (read(ready[0], &c, 1) != 1) return 1;
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < 3; i++) free(others[k][i]);
  return 0;
}

/* A consumer thread frees 40 of main's 64-byte blocks (fewer than a remote
 * free's pending chain holds: none is pushed to the page yet), then blocks
 * until exit, still running. Freed is freed: none is a leak, and the
 * totals count 40 frees. */
static void *consumed[40];
static void *consume_and_wait(void *arg) {
  for (int i = 0; i < 40; i++) free(consumed[i]);
  char c;
  if (write(ready[1], "x", 1) != 1) abort();
  while (read(hold[0], &c, 1) != 1) {
  }
  return arg;
}
static int pending_remote_frees(void) {
  for (int i = 0; i < 40; i++) {
    consumed[i] = malloc(64);
    memset(consumed[i], 3, 64);
  }
  if (pipe(ready) != 0 || pipe(hold) != 0) return 1;
  pthread_t t;
  pthread_create(&t, NULL, consume_and_wait, NULL);
  char c;
  if (read(ready[0], &c, 1) != 1) return 1;
  return 0;
}

/* A table of 8 strings (64 bytes) freed without its strings, its memory
 * then reused by a block of the same size that the program writes one word
 * of (a line buffer): the old pointers in the words never written since
 * must not keep the strings reachable. valgrind: 8 blocks definitely lost.
 * (See hh_scrub.) */
void *volatile line_buffer;
static int stale_pointers(void) {
  char **volatile table = malloc(8 * sizeof(char *));
  for (int i = 0; i < 8; i++) {
    table[i] = malloc(24);
    snprintf(table[i], 24, "string %d", i);
  }
  free(table);
  char **buf = malloc(8 * sizeof(char *));
  buf[0] = NULL;
  line_buffer = buf;
  return 0;
}

/* The same past a block's first 64 bytes (gdb's and troff's pointer
 * arrays, reused by blocks their new owners write a few words of, hid
 * their strings: helper-40), and in the bytes a block gains in place: a
 * request 12 bytes below its block's size, then realloc to the whole
 * block, or malloc_usable_size (`grown`, `usable`). Each string is
 * definitely lost, as valgrind says. Exits 2 when the new block is not the
 * old table's memory (the test would prove nothing). */
static int stale_wide(const char *how) {
  size_t size = 256, strings = 32;
  char **volatile table = malloc(size);
  for (size_t i = 0; i < strings; i++) {
    table[i] = malloc(24);
    snprintf(table[i], 24, "string %zu", i);
  }
  uintptr_t was = (uintptr_t)table;
  free(table);
  bool grows = !strcmp(how, "grown") || !strcmp(how, "usable");
  char **buf = malloc(grows ? size - 12 : size);
  if ((uintptr_t)buf != was) return 2;
  buf[0] = NULL;
  if (!strcmp(how, "grown") && realloc(buf, size) != (void *)buf) return 2;
  if (!strcmp(how, "usable") && malloc_usable_size(buf) != size) return 2;
  line_buffer = buf;
  return 0;
}

/* The same for ranges of more than 128 KiB, which come back from a cache of
 * spans (large: 60 pages) or of mappings (oversize: 8 MiB) with the old
 * owner's words: handed out again (`large`, `oversize`), grown in place by
 * realloc from a smaller request at the same address (`large-grown`,
 * `oversize-grown`), or by malloc_usable_size (`large-usable`); a 40 MiB
 * mapping (`huge`) has its pages given back rather than written. Every word of
 * the freed table names one of 32 strings. Exits 2 when the new block is not
 * the old table's memory. The `zeros-` forms write the whole table zero and
 * then the 32 pointers in one page's last piece (`zeros-tail`), in a piece
 * in the middle of a page (`zeros-mid`), or one at the end of every third
 * page of an 8 MiB mapping (`zeros-scatter`): a clearing that skips the
 * pages that read zero (972c353, since reverted) must still clear these. */
static int stale_big(const char *how) {
  bool oversize = !strncmp(how, "oversize", 8), huge = !strcmp(how, "huge"), sparse = !strcmp(how, "sparse");
  bool medium = !strcmp(how, "medium"), zeros = !strncmp(how, "zeros-", 6);
  size_t size = huge                               ? (size_t)40 << 20
                : oversize || !strcmp(how, "zeros-scatter") ? (size_t)8 << 20
                : sparse   ? (size_t)1 << 20
                : medium   ? (size_t)100 << 10 /* a block of a page, not a range of its own */
                           : 60 * 4096;
  size_t strings = 32;
  char **volatile table = malloc(size);
  char *str[32];
  for (size_t i = 0; i < strings; i++) {
    str[i] = malloc(24);
    snprintf(str[i], 24, "string %zu", i);
  }
  size_t per_page = 4096 / sizeof(char *);
  if (zeros) /* every page written: zero but for the pointers */
    memset(table, 0, size);
  if (sparse) /* the pointers on one page in the middle; the pages around it never touched */
    for (size_t i = 0; i < strings; i++) table[100 * per_page + i] = str[i];
  else if (!strcmp(how, "zeros-tail")) /* the last 256 bytes of page 30 */
    for (size_t i = 0; i < strings; i++) table[31 * per_page - strings + i] = str[i];
  else if (!strcmp(how, "zeros-mid")) /* from byte 1,544 of page 7: the fourth 512-byte piece */
    for (size_t i = 0; i < strings; i++) table[7 * per_page + 193 + i] = str[i];
  else if (!strcmp(how, "zeros-scatter")) /* the last word of every third page: runs of one page */
    for (size_t i = 0; i < strings; i++) table[(3 * i + 2) * per_page - 1] = str[i];
  else
    for (size_t i = 0; i < size / sizeof(char *); i++) table[i] = str[i % strings];
  memset(str, 0, sizeof str);
  uintptr_t was = (uintptr_t)table;
  free(table);
  size_t first = strstr(how, "-grown") ? size * 5 / 8 : strstr(how, "-usable") ? size - 3000 : size;
  char **buf = malloc(first);
  if ((uintptr_t)buf != was) return 2;
  buf[0] = NULL;
  if (strstr(how, "-grown") && realloc(buf, size) != (void *)buf) return 2;
  if (strstr(how, "-usable") && malloc_usable_size(buf) < size - 8) return 2;
  line_buffer = buf;
  return 0;
}

/* end_pointer: a live 1 MiB buffer that keeps a pointer one past its end,
 * in itself and in a global (git's buffers do), then a block placed after
 * it whose address is dropped: definitely lost, as valgrind says, not kept
 * reachable by the end pointer. Prints the two blocks' distance. */
static char *volatile end_buf;
static char *volatile end_of_buf;
static int end_pointer(void) {
  size_t size = (size_t)1 << 20;
  end_buf = malloc(size);
  if (end_buf == NULL) return 2;
  memset(end_buf, 0, 4096);
  end_of_buf = end_buf + size;
  ((char *volatile *)end_buf)[2] = end_buf + size;
  char *lost = malloc(200000);
  if (lost == NULL) return 2;
  memset(lost, 1, 64);
  printf("distance %ld\n", (long)(lost - end_buf));
  lost = NULL;
  return 0;
}

/* 64 blocks of `size` bytes (1 MiB: large ranges; 100 KiB: medium blocks
 * of pages), of which the program writes two pages each, freed
 * and allocated again: the report's zeroing of the reused ranges must not
 * make their other pages resident (clearing them in full made seed-fixed
 * 65x the drop-in's peak RSS). Prints how many of the new blocks reuse an
 * old one's address and how many of their pages are resident. */
static int sparse_reuse(size_t size) {
  enum { N = 64 };
  uintptr_t old[N];
  char *b[N];
  for (int i = 0; i < N; i++) {
    b[i] = malloc(size);
    if (b[i] == NULL) return 1;
    b[i][0] = 1;
    b[i][size / 2] = 1;
    old[i] = (uintptr_t)b[i];
  }
  for (int i = 0; i < N; i++) free(b[i]);
  int reused = 0;
  size_t resident = 0;
  static unsigned char vec[257];
  size_t pages = 0;
  for (int i = 0; i < N; i++) {
    b[i] = malloc(size);
    if (b[i] == NULL) return 1;
    b[i][0] = 2;
    for (int j = 0; j < N; j++) reused += (uintptr_t)b[i] == old[j];
    uintptr_t from = (uintptr_t)b[i] & ~(uintptr_t)4095, to = ((uintptr_t)b[i] + size + 4095) & ~(uintptr_t)4095;
    if (mincore((void *)from, to - from, vec) != 0) return 1;
    for (size_t k = 0; k < (to - from) / 4096; k++) resident += vec[k] & 1;
    pages += (to - from) / 4096;
  }
  printf("reused %d resident %zu of %zu pages\n", reused, resident, pages);
  for (int i = 0; i < N; i++) free(b[i]);
  return 0;
}

/* The only pointer to a block lies in a shared file mapping whose page was
 * then paged out (as memory pressure would): the page reads back from its
 * file, and the block is reachable, as valgrind says. */
static int paged_out_file_mapping(void) {
  char path[] = "/tmp/hh-pagedout-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 1;
  unlink(path);
  if (ftruncate(fd, 1 << 16) != 0) return 1;
  void **f = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (f == MAP_FAILED) return 1;
  f[0] = malloc(4321);
  msync(f, 1 << 16, MS_SYNC);
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
  madvise(f, 1 << 16, MADV_PAGEOUT);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  unsigned char v[16];
  printf("resident %d\n", mincore(f, 1 << 16, v) == 0 ? v[0] & 1 : -1);
  return 0;
}

/* A read-write reservation of `gib` GiB made with MAP_NORESERVE, of which
 * the program touches three pages, as ThreadSanitizer's shadow or an arena
 * reserved up front: two hold the only pointers to blocks, the third is
 * only read (the shared zero page). 3,333 bytes are lost. The scan reads
 * the touched pages, not the whole reservation. `share` MAP_SHARED: shared
 * anonymous memory, as a runtime reserves the views of its heap, which the
 * scan asked pagemap and mincore about every 64 MiB of (helper-80: 1 TiB
 * 5-14 s, 16 TiB 148 s). */
static void scrub_below(void);
static __attribute__((noinline)) void lose_3333(void) {
  sink = malloc(3333);
  sink = NULL;
}

static int sparse_reservation(size_t gib, int share) {
  size_t len = gib << 30;
  char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, share | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  *(void *volatile *)(m + len / 2 + 3 * 4096 + 40) = malloc(1111);
  *(void *volatile *)(m + len - 8) = malloc(2222);
  printf("read %d\n", ((volatile char *)m)[len / 4]);
  lose_3333();
  scrub_below();
  printf("reserved %zu GiB\n", gib);
  return 0;
}

/* sparse_file DIR: a 2 GiB file of holes in DIR mapped MAP_PRIVATE
 * read-write, with pointers to blocks of 1,111 and 2,222 bytes written in
 * two pages of it, and a block of 3,333 lost. The exit scan asked mincore
 * which of its pages were resident; each one it read brought its
 * neighbours into the page cache by read-ahead, and the scan read the whole
 * file (helper-77: 4 GiB cost 5.5 s and 4.2 GB of RSS). */
static int sparse_file(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/sparse.bin", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  size_t len = (size_t)2 << 30;
  if (fd < 0 || ftruncate(fd, (off_t)len) != 0) return 1;
  char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  close(fd);
  unlink(path);
  if (m == MAP_FAILED) return 1;
  *(void *volatile *)(m + (len / 3 & ~(size_t)4095) + 40) = malloc(1111);
  *(void *volatile *)(m + len - 8) = malloc(2222);
  lose_3333();
  scrub_below();
  return 0;
}

/* shared_holes [dontneed]: 1 GiB of shared anonymous memory and a 1 GiB
 * memfd mapped shared, each with the only pointer to a block in one page
 * (1,111 and 2,222 bytes), and 3,333 bytes lost. With `dontneed` the
 * program gives both mappings up with MADV_DONTNEED: their pages stay in
 * the shared object, and so do the pointers. The exit scan read their
 * untouched pages (holes, which read as zero) up to 256 MiB: 0.9 s and
 * 264 MB of RSS, pages of zeroes put in the shared object, and with
 * `dontneed` both blocks definitely lost, the pages that held them past
 * the limit. */
static int shared_holes(bool dontneed) {
  size_t len = (size_t)1 << 30;
  char *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  int fd = memfd_create("hh-holes", MFD_CLOEXEC);
  if (a == MAP_FAILED || fd < 0 || ftruncate(fd, (off_t)len) != 0) return 1;
  char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (m == MAP_FAILED) return 1;
  *(void *volatile *)(a + len / 2 + 40) = malloc(1111);
  *(void *volatile *)(m + len - 8) = malloc(2222);
  lose_3333();
  scrub_below();
  if (dontneed && (madvise(a, len, MADV_DONTNEED) != 0 || madvise(m, len, MADV_DONTNEED) != 0)) return 1;
  printf("holes%s\n", dontneed ? " given up" : "");
  return 0;
}

/* Blocks the program made unreadable (mprotect PROT_NONE, a guard page
 * of its own) among others: two of 8,192 and 12,288 bytes a global holds,
 * one of 16,384 bytes lost, then 5,555 and 24 bytes lost after them. The
 * census faulted on the first one's link and dropped the rest of its heap:
 * "5 frees" of blocks never freed, and no leak listed (helper-71). */
static void *volatile protected_held[2];
static int protected_blocks(void) {
  void *lost;
  for (int i = 0; i < 2; i++) {
    void *b;
    if (posix_memalign(&b, 4096, 8192 + 4096 * (size_t)i) != 0) return 3;
    memset(b, 7, 4096);
    mprotect(b, 8192 + 4096 * (size_t)i, PROT_NONE);
    protected_held[i] = b;
  }
  if (posix_memalign(&lost, 4096, 16384) != 0) return 3;
  mprotect(lost, 16384, PROT_NONE);
  lost = NULL;
  sink = malloc(5555);
  sink = malloc(24);
  sink = NULL;
  scrub_below();
  return 0;
}

/* Twelve 4,096-byte blocks of one page made unreadable and held, and 14
 * of their neighbours freed: past 8 unreadable memory pages the census took
 * every range of the page as live, and 3 freed blocks were "definitely
 * lost" (helper-74). Nothing is lost. */
static void *volatile protected_many_held[64];
static int protected_many(void) {
  void *b[40];
  for (int i = 0; i < 40; i++) {
    b[i] = malloc(4096);
    memset(b[i], 1, 4096);
  }
  int held = 0, freed = 0;
  for (int i = 0; i < 40; i++) {
    if (held < 12 && ((uintptr_t)b[i] & 4095) == 0) {
      protected_many_held[held++] = b[i];
      mprotect(b[i], 4096, PROT_NONE);
    } else if (i % 2) {
      free(b[i]);
      freed++;
    } else {
      protected_many_held[32 + i / 2 % 32] = b[i];
    }
  }
  printf("protected %d, freed %d\n", held, freed);
  scrub_below();
  return 0;
}

/* A thread whose stack is shared memory (MAP_SHARED | MAP_ANONYMOUS, or a
 * memfd: `how`), still running at exit, holds the only pointer to a
 * 4,747-byte block in a page of its frame that it then gave up with
 * MADV_DONTNEED: shared memory keeps the data (the page reads back), so the
 * block is reachable, as valgrind says. With a private stack (`private`)
 * the page reads back zero and the block is lost. 4,646 bytes are lost
 * either way. */
static volatile uintptr_t stack_held; /* the block's address, inverted */
static volatile int stack_ready;

static __attribute__((noinline)) void dontneed_and_wait(volatile char *frame) {
  uintptr_t page = ((uintptr_t)(frame + 16384)) & ~(uintptr_t)4095;
  if (madvise((void *)page, 4096, MADV_DONTNEED) != 0) perror("madvise");
  stack_ready = 1;
  for (;;) pause();
}

static void *on_shared_stack(void *arg) {
  (void)arg;
  volatile char frame[32768];
  memset((char *)frame, 0, sizeof frame);
  *(volatile uintptr_t *)(frame + 16384 + 64) = ~stack_held;
  stack_held = 0;
  scrub_below();
  dontneed_and_wait(frame);
  return NULL;
}

static __attribute__((noinline)) void lose_4646(void) {
  sink = malloc(4646);
  sink = NULL;
}

static int shared_stack(const char *how) {
  size_t size = 1 << 20;
  void *stack;
  if (!strcmp(how, "memfd")) {
    int fd = memfd_create("hh-stack", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) return 1;
    stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  } else {
    int flags = !strcmp(how, "private") ? MAP_PRIVATE : MAP_SHARED;
    stack = mmap(NULL, size, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
  }
  if (stack == MAP_FAILED) return 1;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, stack, size);
  char *b = malloc(4747);
  memset(b, 1, 4747);
  stack_held = ~(uintptr_t)b;
  b = NULL;
  pthread_t t;
  if (pthread_create(&t, &attr, on_shared_stack, NULL) != 0) return 1;
  while (!stack_ready) usleep(1000);
  lose_4646();
  scrub_below();
  printf("stack %s\n", how);
  return 0;
}

/* Threads that allocate and free all the time, each block kept in an array
 * on the thread's stack, still running when main returns: every block is
 * reachable, whatever instruction each thread was stopped at (inside
 * malloc, while the call site of a new block is looked up, or in between). */
static void *churning(void *arg) {
  long k = (long)arg;
  static const size_t sizes[] = {24, 1000, 9000, 250000, 1 << 20, 140000, 3 << 20};
  void *ring[64] = {0};
  for (unsigned i = 0;; i++) {
    unsigned s = (i * 7 + (unsigned)k) % 64;
    free(ring[s]);
    size_t n = sizes[(i + (unsigned)k) % 7];
    ring[s] = malloc(n);
    ((char *)ring[s])[0] = 1;
    ((char *)ring[s])[n - 1] = 1;
  }
  return NULL;
}

static int churning_threads(void) {
  pthread_t t;
  for (long i = 0; i < 4; i++) pthread_create(&t, NULL, churning, (void *)i);
  usleep(150000);
  return 0;
}

/* One thread created and joined: glibc keeps its stack and control block
 * (and the block of its TLS vector) for the next thread. No leak of the
 * program's. */
static void *nothing(void *arg) { return arg; }

static int joined_thread(void) {
  pthread_t t;
  pthread_create(&t, NULL, nothing, NULL);
  pthread_join(t, NULL);
  return 0;
}

/* The program's own mapping, whose last line begins like a thread control
 * block ({self, 0, self}: a self-pointing record), holds the only pointers
 * to ten blocks: they are reachable, and the mapping is no cached stack. */
static int self_pointing_record(void) {
  size_t size = 1 << 20;
  char *raw = mmap(NULL, size + 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return 1;
  /* guard pages: a mapping of its own, not merged with a neighbour */
  if (mprotect(raw, 4096, PROT_NONE) != 0 || mprotect(raw + 4096 + size, 4096, PROT_NONE) != 0) return 1;
  void **mem = (void **)(raw + 4096);
  void **rec = (void **)((char *)mem + size - 64);
  rec[0] = rec;
  rec[1] = NULL;
  rec[2] = rec;
  for (int i = 0; i < 10; i++) mem[i] = malloc(1000);
  return 0;
}

/* Reallocs that keep their block (a large range grown into the span after
 * it and shrunk, a small one shrunk within its root): the totals count
 * each as valgrind does, one allocation and one free. */
static int realloc_totals(void) {
  char *p = malloc(200000);
  p = realloc(p, 210000);
  p = realloc(p, 150000);
  char *q = malloc(100);
  q = realloc(q, 90);
  free(p);
  free(q);
  return 0;
}

/* A thread asleep when main returns must sleep on: the report must not
 * wake it to an EINTR it would act on, here by quitting with status 7
 * before the report is out. `how` is the call it sleeps in: usleep, or one
 * that signal(7) says a handler always ends early, SA_RESTART or not:
 * msgrcv and semop (System V IPC), and recv and read on a socket with a
 * receive timeout (SO_RCVTIMEO). The IPC object's id is printed for the
 * test to remove. */
static int sleep_fd = -1, sleep_ipc = -1;
static sem_t sleep_sem;
static const char *sleep_how;

static void *sleeper(void *arg) {
  (void)arg;
  long r;
  char c;
  if (!strcmp(sleep_how, "msgrcv")) {
    struct {
      long type;
      char text[8];
    } m;
    r = msgrcv(sleep_ipc, &m, sizeof m.text, 0, 0);
  } else if (!strcmp(sleep_how, "semop")) {
    struct sembuf op = {.sem_num = 0, .sem_op = -1, .sem_flg = 0};
    r = semop(sleep_ipc, &op, 1);
  } else if (!strcmp(sleep_how, "recv_timeout")) {
    r = recv(sleep_fd, &c, 1, 0);
  } else if (!strcmp(sleep_how, "read_timeout")) {
    r = read(sleep_fd, &c, 1);
  } else if (!strcmp(sleep_how, "sem_timedwait")) { /* a timed futex wait */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    r = sem_timedwait(&sleep_sem, &until) == 0 ? 0 : -1;
  } else if (!strcmp(sleep_how, "short_write")) { /* a full pipe: blocked half done */
    static char big[200000];
    r = write(sleep_fd, big, sizeof big) == (ssize_t)sizeof big ? 0 : -1;
  } else if (!strcmp(sleep_how, "sigwait_all")) { /* every signal blocked, then waited for */
    sigset_t all;
    sigfillset(&all);
    int got = sigwaitinfo(&all, NULL);
    if (got > 0) fprintf(stdout, "signal %d\n", got);
    r = -1;
  } else {
    r = usleep(!strcmp(sleep_how, "stop_cont") ? 20000000 : 5000000);
  }
  if (r != 0) {
    if (write(1, "woken\n", 6) != 6) _exit(8);
    _exit(7);
  }
  return NULL;
}

static int sleeping_thread(const char *how, bool check_now, bool blocked) {
  sleep_how = how;
  if (!strcmp(how, "sem_timedwait")) sem_init(&sleep_sem, 0, 0);
  if (!strcmp(how, "short_write")) {
    int fds[2];
    if (pipe(fds) != 0) return 3;
    sleep_fd = fds[1];
    sink = (void *)(intptr_t)fds[0]; /* the read end stays open, unread */
  }
  sigset_t all, old;
  sigfillset(&all);
  sigemptyset(&old);
  if (blocked || !strcmp(how, "sigwait_all")) pthread_sigmask(SIG_BLOCK, &all, &old); /* the thread inherits it */
  if (!strcmp(how, "sigwait_all")) blocked = false; /* main keeps them blocked too */
  if (!strcmp(how, "msgrcv") || !strcmp(how, "semop")) {
    sleep_ipc = !strcmp(how, "msgrcv") ? msgget(IPC_PRIVATE, 0600) : semget(IPC_PRIVATE, 1, 0600);
    if (sleep_ipc < 0) return 3;
    printf("%s %d\n", !strcmp(how, "msgrcv") ? "queue" : "semaphore", sleep_ipc);
    fflush(stdout);
  } else if (!strcmp(how, "recv_timeout") || !strcmp(how, "read_timeout")) {
    int sv[2];
    struct timeval tv = {.tv_sec = 20};
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 ||
        setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
      return 3;
    sleep_fd = sv[0];
  }
  pthread_t t;
  pthread_create(&t, NULL, sleeper, NULL);
  /* blocked: the thread keeps every signal blocked, and the exit report
   * stops it with ptrace */
  if (blocked) pthread_sigmask(SIG_SETMASK, &old, NULL);
  usleep(100000);
  if (!strcmp(how, "stop_cont")) { /* stopped and continued, as by ^Z and fg: its sleep is a restart_syscall now */
    pid_t child = fork();
    if (child == 0) {
      kill(getppid(), SIGSTOP);
      usleep(50000);
      kill(getppid(), SIGCONT);
      _exit(0);
    }
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
  }
  sink = malloc(10); /* something to report */
  if (check_now) { /* a scan while the program runs, which leaves such a thread asleep */
    if (hahalloc_leak_check(NULL) < 0) return 4;
    usleep(300000); /* time to wake and quit, were it woken */
  }
  return 0;
}

/* A signal handler that calls exit() while the program ends: an alarm set
 * by the last of the program's exit handlers goes off 2 ms later, during
 * the destructors or the report. The report must still come out whole (a
 * handler's nested exit ended the process in the middle of it), and the
 * handler's status with it. */
static void alarm_exit(int sig) {
  (void)sig;
  exit(42);
}

static void arm_alarm(void) {
  signal(SIGALRM, alarm_exit);
  ualarm(2000, 0);
}

static int alarm_at_exit(void) {
  sink = malloc(10);
  sink = NULL; /* lost: its stack is symbolised, which takes a while */
  atexit(arm_alarm);
  return 0;
}

/* The program's own use of the report's stop signal (SIGRTMAX-2) after a
 * leak check: its handler, without SA_RESTART, ends a read it interrupts,
 * and the signal's disposition reads as the program left it. A check used
 * to leave its own handler there (with SA_RESTART: the read blocked on),
 * and a program that never set one found it instead of SIG_DFL. */
static _Atomic int own_handled;
static int own_pipe[2];
static void own_handler(int sig) {
  (void)sig;
  own_handled++;
}

static void *own_reader(void *arg) {
  (void)arg;
  char c;
  if (read(own_pipe[0], &c, 1) < 0 && errno == EINTR) {
    if (write(1, "reader woken\n", 13) != 13) _exit(8);
    _exit(0);
  }
  _exit(5);
}

static int own_stop_signal(bool own) {
  int sig = SIGRTMAX - 2;
  if (own) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = own_handler; /* no SA_RESTART */
    sigaction(sig, &sa, NULL);
  }
  if (pipe(own_pipe) != 0) return 3;
  pthread_t t;
  pthread_create(&t, NULL, own_reader, NULL);
  usleep(100000);
  sink = malloc(10);
  if (hahalloc_leak_check(NULL) < 0) return 4;
  struct sigaction now;
  sigaction(sig, NULL, &now);
  if (!own) {
    printf("%s\n", now.sa_handler == SIG_DFL ? "SIG_DFL" : "not SIG_DFL");
    return 0;
  }
  if (now.sa_handler != own_handler || (now.sa_flags & SA_RESTART)) return 6;
  pthread_kill(t, sig);
  sleep(3);
  printf("reader still blocked, handler ran %d times\n", (int)own_handled);
  return 7;
}

/* exit() called again by an exit handler: glibc goes on with the handlers
 * not run yet, ours among them, so the report comes after them all and
 * sees what the last of them leaked (77 bytes; valgrind says the same). */
static void leak_late(void) {
  sink = malloc(77);
  sink = NULL;
}

static void exit_again(void) { exit(3); }

static int exit_in_handler(void) {
  atexit(leak_late);  /* runs second */
  atexit(exit_again); /* runs first */
  exit(0);
}

/* A signal thread (every signal blocked, taken one by one with
 * sigwaitinfo; it aborts on one it does not know), fed SIGUSR1 every
 * millisecond, beside two threads that spin, through 10 leak checks: a
 * thread a signal has just woken, waiting for a CPU, looks neither asleep
 * in the wait nor blocking the stop signal, and was sent it (9 of 10 such
 * runs aborted on a busy machine). */
static pthread_t signal_thread;
static void *take_signals(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  for (;;) {
    siginfo_t si;
    int got = sigwaitinfo(&all, &si);
    if (got == SIGUSR1 || got < 0) continue;
    printf("unexpected signal %d code %d pid %d me %d\n", got, si.si_code, (int)si.si_pid, (int)getpid());
    fflush(stdout);
    abort();
  }
  return NULL;
}

static void *feed_signals(void *arg) {
  (void)arg;
  for (;;) {
    pthread_kill(signal_thread, SIGUSR1);
    usleep(1000);
  }
  return NULL;
}

static void *spin_on(void *arg) {
  for (;;) __atomic_fetch_add((long *)arg, 1, __ATOMIC_RELAXED);
  return NULL;
}

static int busy_signal_thread(void) {
  static long spins;
  sigset_t all, none;
  sigfillset(&all);
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_create(&signal_thread, NULL, take_signals, NULL);
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  pthread_t t;
  pthread_create(&t, NULL, feed_signals, NULL);
  pthread_create(&t, NULL, spin_on, &spins);
  pthread_create(&t, NULL, spin_on, &spins);
  for (int i = 0; i < 10; i++) {
    if (hahalloc_leak_check(NULL) < 0) return 4;
    usleep(1000);
  }
  printf("done\n");
  fflush(stdout);
  _exit(0); /* the spinners never end */
}

/* Threads that go to sleep an instant after running a little, in a loop:
 * a leak check that looks at one and finds it running signals it, and the
 * signal may land just after it entered its next sleep. That sleep must
 * not end with EINTR (the program handles no signal). One more thread
 * waits for SIGUSR1 with sigsuspend, as a program that is woken by its own
 * signal: each of the main thread's signals, sent during the checks, must
 * still end a wait (the last one ends the thread). */
static _Atomic long race_eintr, race_calls, race_woken, race_handled;
static volatile int race_stop;
static sem_t race_sem;

static void race_usr1(int sig) {
  (void)sig;
  race_handled++;
}

static void *race_sleeper(void *arg) {
  long how = (long)arg;
  int ep = epoll_create1(0);
  while (!race_stop) {
    for (volatile int i = 0; i < 2000; i++) {}
    int r;
    if (how == 0) {
      struct timespec ts = {0, 50000};
      r = nanosleep(&ts, NULL);
    } else if (how == 1) {
      r = poll(NULL, 0, 1);
    } else if (how == 2) {
      struct epoll_event ev;
      r = epoll_wait(ep, &ev, 1, 1);
    } else {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 50000;
      if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
      r = sem_timedwait(&race_sem, &ts);
      if (r < 0 && errno == ETIMEDOUT) r = 0;
    }
    race_calls++;
    if (r < 0 && errno == EINTR) race_eintr++;
  }
  close(ep);
  return NULL;
}

static void *race_waiter(void *arg) {
  sigset_t *wait_mask = arg;
  while (!race_stop) {
    sigsuspend(wait_mask);
    race_woken++;
  }
  return NULL;
}

static int sleep_races(int checks) {
  sem_init(&race_sem, 0, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = race_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t usr1, wait_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, &wait_mask); /* the threads inherit it; sigsuspend lets it through */
  sigdelset(&wait_mask, SIGUSR1);
  pthread_t t[5];
  for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, race_sleeper, (void *)i);
  pthread_create(&t[4], NULL, race_waiter, &wait_mask);
  sink = malloc(10);
  long sent = 0;
  for (int i = 0; i < checks; i++) {
    if (hahalloc_leak_check(NULL) < 0) return 4;
    if (i % 4 == 0) {
      pthread_kill(t[4], SIGUSR1);
      sent++;
    }
    usleep(2000);
  }
  race_stop = 1;
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  /* the waiter ends on the next signal it takes: send until it has */
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += 10;
  for (;;) {
    pthread_kill(t[4], SIGUSR1);
    sent++;
    usleep(1000);
    if (pthread_tryjoin_np(t[4], NULL) == 0) break;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > until.tv_sec) {
      printf("waiter stuck\n");
      return 5;
    }
  }
  printf("%ld EINTR in %ld sleeps; %ld signals sent, %ld handled, %ld waits ended\n", (long)race_eintr,
         (long)race_calls, sent, (long)race_handled, (long)race_woken);
  return race_eintr != 0 ? 7 : 0;
}

/* A thread woken from its wait by the program's own signal, while another
 * thread runs leak checks without pause (helper-35's findings). Each
 * signal must still end the wait it was sent to end:
 * - "fullmask": poll on a pipe, SIGUSR1's handler (no SA_RESTART) holds
 *   every signal. The stop's signal waited behind it and then found the
 *   poll ended with EINTR, as if by its own, and made it again: 78 wake-ups
 *   lost in 200.
 * - "read": a read of a pipe, SIGUSR1 without SA_RESTART. The kernel had
 *   made the read ready to start again for the stop's SA_RESTART, and the
 *   program's signal, held while the thread was stopped, came after: 28 in
 *   150, since the stop exists.
 * - "own": nanosleep woken by the program's own SIGRTMAX-2 (the stop's
 *   signal, its handler without SA_RESTART): taken for the stop's, the
 *   sleep went on (62 in 200). */
static _Atomic long wake_returns;
static volatile int wake_quit, wake_fd;
static const char *wake_how;
/* A handler that takes a moment (50 us), so that the stop's signal comes
 * while it runs. */
static void wake_handler(int sig) {
  (void)sig;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do clock_gettime(CLOCK_MONOTONIC, &t);
  while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec < 50000);
}

static void *wake_sleeper(void *arg) {
  (void)arg;
  char c;
  while (!wake_quit) {
    if (!strcmp(wake_how, "fullmask")) {
      struct pollfd p = {.fd = wake_fd, .events = POLLIN};
      poll(&p, 1, -1);
    } else if (!strcmp(wake_how, "read")) {
      if (read(wake_fd, &c, 1) < 0 && errno != EINTR) return NULL;
    } else {
      struct timespec ts = {100, 0};
      nanosleep(&ts, NULL);
    }
    wake_returns++;
  }
  return NULL;
}

static void *wake_checker(void *arg) {
  (void)arg;
  while (!wake_quit) hahalloc_leak_check(NULL);
  return NULL;
}

/* Up to n rounds, and no more than `budget` seconds of them unless fewer
 * than 400 were made by then (twice that at most): a round's
 * length is the machine's load (each leak check stops three threads, and
 * on two busy cores each must be scheduled to stop), 10 ms on a quiet
 * machine and up to 135 ms beside other work. The caller judges the share
 * lost of the rounds made. */
static int wakeups(const char *how, int n, int budget) {
  wake_how = how;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int fds[2];
  if (pipe(fds) != 0) return 3;
  wake_fd = fds[0];
  int sig = !strcmp(how, "own") ? SIGRTMAX - 2 : SIGUSR1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = wake_handler;
  if (!strcmp(how, "fullmask")) sigfillset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
  pthread_t sleeper, checker;
  pthread_create(&sleeper, NULL, wake_sleeper, NULL);
  pthread_create(&checker, NULL, wake_checker, NULL);
  int lost = 0, i = 0;
  for (; i < n; i++) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    /* 400 rounds at least, the test's bound, within twice the budget */
    if ((now.tv_sec - start.tv_sec >= budget && i >= 400) || now.tv_sec - start.tv_sec >= 2 * budget) break;
    usleep(1000 + (unsigned)(i * 7919 % 2000));
    long before = wake_returns;
    pthread_kill(sleeper, sig);
    hahalloc_leak_check(NULL); /* while the signal is being taken */
    for (int k = 0; k < 2000 && wake_returns == before; k++) usleep(250);
    if (wake_returns == before) {
      lost++;
      while (wake_returns == before) { /* wake it for the next round */
        pthread_kill(sleeper, sig);
        usleep(10000);
      }
    }
  }
  wake_quit = 1;
  pthread_join(checker, NULL);
  while (pthread_tryjoin_np(sleeper, NULL) != 0) {
    pthread_kill(sleeper, sig);
    usleep(1000);
  }
  printf("%s: %d of %d wake-ups lost\n", how, lost, i);
  return 0;
}

/* A terminal read with a timer (raw, VMIN 0, VTIME 3: nothing after
 * 0.3 s) beside leak checks every 2 ms. Each stop made the read again,
 * which started its timer over: it never returned (helper-44). The thread
 * is left asleep now, as in a socket's read with SO_RCVTIMEO. */
static volatile int timer_quit;
static void *timer_checker(void *arg) {
  (void)arg;
  while (!timer_quit) {
    hahalloc_leak_check(NULL);
    usleep(2000);
  }
  return NULL;
}
static int terminal_timer(void) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) return 3;
  int s = open(ptsname(m), O_RDWR | O_NOCTTY);
  struct termios t;
  if (s < 0 || tcgetattr(s, &t) != 0) return 3;
  cfmakeraw(&t);
  t.c_cc[VMIN] = 0;
  t.c_cc[VTIME] = 3;
  if (tcsetattr(s, TCSANOW, &t) != 0) return 3;
  pthread_t checker;
  pthread_create(&checker, NULL, timer_checker, NULL);
  double longest = 0;
  for (int i = 0; i < 3; i++) {
    struct timespec t0, t1;
    char b[8];
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm(10); /* the read that never ends */
    ssize_t n = read(s, b, sizeof b);
    alarm(0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (n != 0) return 4;
    if (took > longest) longest = took;
  }
  timer_quit = 1;
  pthread_join(checker, NULL);
  printf("3 reads of nothing, the longest %.2f s\n", longest);
  return 0;
}

/* Leaks from many stacks, says "exiting" and exits: the test kills it
 * while its report is being made (the scan, the symbols), and its report
 * file must not be left behind empty (helper-45: Pool.terminate's workers
 * under --trace-children). */
static __attribute__((noinline)) void leak_deep(int depth, int tag) {
  if (depth > 0) {
    leak_deep(depth - 1, tag);
    __asm__ volatile("" ::: "memory"); /* not a tail call: a frame each */
    return;
  }
  sink = malloc(24 + (size_t)tag);
  sink = NULL;
}
static void *scanned[96];
static int killed_in_report(void) {
  for (int i = 0; i < 400; i++) leak_deep(i % 40, i);
  for (int i = 0; i < 96; i++) { /* 192 MiB the scan reads: time to kill it */
    scanned[i] = malloc((size_t)2 << 20);
    if (scanned[i] != NULL) memset(scanned[i], 1, (size_t)2 << 20);
  }
  printf("exiting\n");
  fflush(stdout);
  return 0;
}

/* A `syscall` instruction that two paths share, as tail merging makes
 * (helper-35's wrapper built with gcc -Os): the bytes before it load
 * nanosleep's number, but poll reaches it by a jump. The stop read the
 * number from those bytes and made the poll again as a nanosleep of 2^32
 * seconds, every run. Only glibc's own wrappers are read now. */
__asm__(".text\n"
        ".type merged_poll, @function\n"
        "merged_poll:\n"
        "  mov $7, %eax\n"
        "  jmp 1f\n"
        "merged_nanosleep:\n"
        "  mov $35, %eax\n"
        "  xor %edx, %edx\n"
        "1:\n"
        "  syscall\n"
        "  ret\n"
        ".size merged_poll, . - merged_poll\n");
long merged_poll(struct pollfd *fds, unsigned long n, long timeout_ms);
static _Atomic long merged_returns;
static volatile int merged_quit;

static void *merged_poller(void *arg) {
  /* read as a timespec, the pollfd and the zero after it are 2^32 + fd
   * seconds */
  struct {
    struct pollfd p;
    long zero;
  } a = {.p = {.fd = (int)(intptr_t)arg, .events = POLLIN}, .zero = 0};
  while (!merged_quit) { /* runs a moment, sleeps a moment: the stop finds it running, then asleep */
    for (volatile int i = 0; i < 2000; i++) {}
    merged_poll(&a.p, 1, 1);
    merged_returns++;
  }
  return NULL;
}

static int merged_syscall(void) {
  int fds[2];
  if (pipe(fds) != 0) return 3;
  pthread_t t;
  pthread_create(&t, NULL, merged_poller, (void *)(intptr_t)fds[0]);
  for (int i = 0; i < 300; i++) hahalloc_leak_check(NULL);
  merged_quit = 1;
  bool ended = false;
  for (int k = 0; k < 100 && !ended; k++)
    if (!(ended = pthread_tryjoin_np(t, NULL) == 0)) usleep(10000);
  printf("%s after %ld polls\n", ended ? "ended" : "stuck", (long)merged_returns);
  fflush(stdout);
  if (!ended) _exit(0); /* the poller sleeps on */
  return 0;
}

/* A thread forks in a loop while another runs leak checks back to back:
 * the report's lock, which fork takes, went back to the checker each time
 * (1 fork in 5 s against 487 in 5 s plain, helper-37). */
static volatile int forks_quit;

static void *check_loop(void *arg) {
  long *checks = arg;
  while (!forks_quit) {
    hahalloc_leak_check(NULL);
    (*checks)++;
  }
  return NULL;
}

static int fork_beside_checks(void) {
  static long checks;
  pthread_t t, busy;
  pthread_create(&t, NULL, check_loop, &checks);
  static long spins;
  pthread_create(&busy, NULL, spin_on, &spins); /* a third thread, for the CPUs */
  int forks = 0;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    pid_t child = fork();
    if (child == 0) _exit(7);
    int status;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 7) return 3;
    forks++;
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while (now.tv_sec - start.tv_sec < 2);
  forks_quit = 1;
  pthread_join(t, NULL);
  printf("%d forks and %ld checks in 2 s\n", forks, checks);
  fflush(stdout);
  _exit(0); /* the spinner never ends */
}

/* A parent reads a child's output to its end while leak checks run: the
 * child's exit both ends the read (EOF) and sends SIGCHLD, whose handler
 * has no SA_RESTART. A read the stop had interrupted, and the kernel made
 * ready to start again, was ended with EINTR for the pending SIGCHLD,
 * though run again it returns the data (5d6eb03: 167-201 reads in 1,000,
 * helper-38). */
static volatile int eof_quit;

static void eof_chld(int sig) { (void)sig; }

static void *eof_checker(void *arg) {
  (void)arg;
  while (!eof_quit) hahalloc_leak_check(NULL);
  return NULL;
}

static int child_eof(int children) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = eof_chld;
  sigaction(SIGCHLD, &sa, NULL);
  pthread_t t;
  pthread_create(&t, NULL, eof_checker, NULL);
  int eintr = 0, bad = 0;
  for (int i = 0; i < children; i++) {
    int fds[2];
    if (pipe(fds) != 0) return 3;
    pid_t child = fork();
    if (child == 0) {
      char out[100];
      memset(out, 'c', sizeof out);
      usleep(100); /* the parent waits in its read meanwhile */
      if (write(fds[1], out, sizeof out) != (ssize_t)sizeof out) _exit(1);
      usleep(100);
      _exit(0);
    }
    close(fds[1]);
    char in[256];
    size_t total = 0;
    for (;;) {
      ssize_t n = read(fds[0], in, sizeof in);
      if (n > 0) total += (size_t)n;
      if (n == 0) break;
      if (n < 0 && errno == EINTR) eintr++;
      else if (n < 0) return 3;
    }
    close(fds[0]);
    int status;
    while (waitpid(child, &status, 0) < 0)
      if (errno != EINTR) return 3;
    if (total != 100 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) bad++;
  }
  eof_quit = 1;
  pthread_join(t, NULL);
  printf("%d children: %d reads ended by EINTR, %d wrong\n", children, eintr, bad);
  return 0;
}

/* A joined thread's leftovers are no roots: glibc keeps its stack and
 * control block for the next thread, but a block only its __thread
 * variable held, and the value it returned to a join that dropped it, are
 * lost (valgrind: 100 + 77 bytes definitely lost). */
__thread void *thread_own; /* not static: a store the compiler must keep */

static void *leave_leftovers(void *arg) {
  (void)arg;
  thread_own = malloc(100);
  memset(thread_own, 1, 100);
  return malloc(77);
}

static int joined_leftovers(void) {
  pthread_t t;
  pthread_create(&t, NULL, leave_leftovers, NULL);
  pthread_join(t, NULL); /* drops the 77 bytes */
  return 0;
}

/* main ends with pthread_exit while a thread runs on and exits the
 * process. /proc/self then names the ended main thread, whose maps read
 * empty: the scan must find its anchors elsewhere, or a block a global
 * holds is called lost. valgrind: 20 + 33 bytes definitely lost, the 44
 * still reachable. */
static void *volatile global_block;

static bool main_has_ended(void) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)getpid());
  FILE *f = fopen(path, "r");
  if (f == NULL) return false;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *paren = strrchr(buf, ')');
  return paren != NULL && (paren[2] == 'Z' || paren[2] == 'X');
}

static void *outlive_main(void *arg) {
  for (int i = 0; i < 5000 && !main_has_ended(); i++) usleep(1000);
  sink = malloc(33);
  sink = NULL;           /* lost */
  global_block = malloc(44); /* reachable; the 20 bytes it held are lost */
  return arg;
}

static int main_pthread_exit(void) {
  global_block = malloc(20);
  pthread_t t;
  pthread_create(&t, NULL, outlive_main, NULL);
  pthread_exit(NULL);
}

/* A dlopen'd library's __thread pointer holds a block; the thread is
 * joined. glibc frees the thread's dynamic TLS and DTV when its cached
 * stack is reused or freed, valgrind at exit: the block is definitely lost
 * (valgrind: 100,000 bytes in 1 block), not indirectly lost under the
 * runtime's DTV. */
static void (*dyntls_use)(void);

static void *use_dyntls(void *arg) {
  dyntls_use();
  return arg;
}

static void (*dyntls_use_fn(void))(void) {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
  if (n <= 0) return NULL;
  path[n] = '\0';
  strcpy(strrchr(path, '/') + 1, "libdyntls.so");
  void *lib = dlopen(path, RTLD_NOW);
  return lib != NULL ? (void (*)(void))dlsym(lib, "dyntls_use") : NULL;
}

/* Threads still running at exit, each holding a block in a dlopen'd
 * library's __thread variable: one asleep in pause() (not stopped by the
 * scan), one waiting on a lock. Their DTVs are in use: the blocks are
 * reachable, in every run (it was possibly lost or reachable by chance). */
static sem_t tls_ready;
static pthread_mutex_t exit_gate = PTHREAD_MUTEX_INITIALIZER;

static void *use_dyntls_and_pause(void *arg) {
  dyntls_use();
  sem_post(&tls_ready);
  pause();
  return arg;
}

static void *use_dyntls_and_wait(void *arg) {
  dyntls_use();
  sem_post(&tls_ready);
  pthread_mutex_lock(&exit_gate);
  return arg;
}

static int dlopen_tls_running(void) {
  dyntls_use = dyntls_use_fn();
  if (dyntls_use == NULL) return 3;
  sem_init(&tls_ready, 0, 0);
  pthread_mutex_lock(&exit_gate);
  pthread_t a, b;
  pthread_create(&a, NULL, use_dyntls_and_pause, NULL);
  pthread_create(&b, NULL, use_dyntls_and_wait, NULL);
  sem_wait(&tls_ready);
  sem_wait(&tls_ready);
  return 0;
}

static int dlopen_tls_joined(void) {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
  if (n <= 0) return 3;
  path[n] = '\0';
  strcpy(strrchr(path, '/') + 1, "libdyntls.so");
  void *lib = dlopen(path, RTLD_NOW);
  if (lib == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 3;
  }
  dyntls_use = (void (*)(void))dlsym(lib, "dyntls_use");
  pthread_t t;
  pthread_create(&t, NULL, use_dyntls, NULL);
  pthread_join(t, NULL);
  return 0;
}

/* A block only a MAP_SHARED | MAP_ANONYMOUS mapping points to (state
 * shared with forked children): /proc/self/maps names such a mapping
 * "/dev/zero (deleted)", and it is memory like any other (valgrind: 113
 * bytes still reachable). */
static int shared_anonymous(void) {
  void **table = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (table == MAP_FAILED) return 3;
  table[5] = malloc(113);
  return 0;
}

/* A tight limit on the address space: the scan's tables give way to small
 * ones, and the leak is still found (valgrind: 42 bytes definitely lost).
 * It was "All heap blocks were freed -- no leaks are possible". */
static size_t address_space_used(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  size_t pages = 0;
  if (f == NULL || fscanf(f, "%zu", &pages) != 1) pages = 0;
  if (f != NULL) fclose(f);
  return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* An event loop whose state lives only in its thread: a block held only
 * in a callee-saved register (r12) while the thread waits in poll or
 * epoll_wait (made here as a raw system call, so that no wrapper saves the
 * register on the stack), and main returns meanwhile. Nothing is lost: the
 * exit scan must stop the sleeping thread too, and read its registers. */
static int loop_poll;

/* Overwrites the dead frames below the caller's, where malloc and memset
 * left copies of the block's address (a thread that is not stopped has its
 * whole stack read). */
__attribute__((noinline)) static void scrub_below(void) {
  volatile char zeros[16384];
  for (size_t i = 0; i < sizeof zeros; i++) zeros[i] = 0;
}

static void *event_loop_thread(void *arg) {
  sem_t *ready = arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev;
  char *block = malloc(1006);
  memset(block, 1, 1006);
  sem_post(ready);
#if defined(__x86_64__)
  register char *held __asm__("r12") = block;
  block = NULL;
  scrub_below();
  long nr = loop_poll ? SYS_poll : SYS_epoll_wait;
  register long a4 __asm__("r10") = -1;
  for (;;) {
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(nr), "D"(loop_poll ? 0L : (long)ep), "S"(loop_poll ? 0L : (long)&ev),
                       "d"(loop_poll ? -1L : 1L), "r"(a4), "r"(held)
                     : "rcx", "r11", "memory");
    if (ret > 0) __asm__ volatile("" : : "r"(held) : "memory");
  }
#else
  for (;;) (void)(loop_poll ? poll(NULL, 0, -1) : epoll_wait(ep, &ev, 1, -1));
#endif
  return NULL;
}

static int event_loop(const char *how) {
  static sem_t ready;
  pthread_t t;
  loop_poll = how != NULL && strcmp(how, "poll") == 0;
  sem_init(&ready, 0, 0);
  if (pthread_create(&t, NULL, event_loop_thread, &ready) != 0) return 3;
  sem_wait(&ready);
  usleep(50000); /* asleep in its call */
  return 0;
}

/* Three threads and main call exit at the same moment (a program's own
 * shutdown paths racing): the report is made once and whole, and the
 * status is --error-exitcode's, never the end of another thread's exit
 * in the middle of the report. Leaks 77 bytes. */
static pthread_barrier_t exit_race_barrier;

static void *exit_race_thread(void *arg) {
  pthread_barrier_wait(&exit_race_barrier);
  exit((int)(intptr_t)arg);
}

static int concurrent_exit(void) {
  sink = malloc(77);
  sink = NULL;
  pthread_barrier_init(&exit_race_barrier, NULL, 4);
  for (intptr_t i = 1; i <= 3; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, exit_race_thread, (void *)i) != 0) return 3;
  }
  pthread_barrier_wait(&exit_race_barrier);
  exit(0);
}

/* setenv of twenty variables, each set again and some unset: libc keeps
 * every string it made in a tsearch tree whose links carry a colour bit,
 * the replaced ones held by that tree alone. Nothing is lost or possibly
 * lost (valgrind: nothing, its freeres frees them). */
static int setenv_tree(void) {
  char name[32], value[32];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 20; i++) {
      snprintf(name, sizeof name, "HH_SCENARIO_%d", i);
      snprintf(value, sizeof value, "value%d.%d", i, round);
      if (setenv(name, value, 1) != 0) return 3;
    }
  }
  for (int i = 0; i < 20; i += 2) {
    snprintf(name, sizeof name, "HH_SCENARIO_%d", i);
    unsetenv(name);
  }
  return 0;
}

/* replace_self: 3,333 bytes lost, then the program's file is replaced on
 * disk by /bin/true as the program runs, as a package upgrade renames a new
 * file over it (run it from a copy: the copy is gone afterwards). The
 * report read the symbols and lines of the file now at its path, and named
 * /bin/true's functions (helper-80). */
static int replace_self(void) {
  char self[4096], tmp[4200];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return 1;
  self[n] = '\0';
  lose_3333();
  scrub_below();
  snprintf(tmp, sizeof tmp, "%s.new", self);
  int in = open("/bin/true", O_RDONLY), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (in < 0 || out < 0) return 1;
  char buf[65536];
  ssize_t got;
  while ((got = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)got) != got) return 1;
  close(in);
  close(out);
  if (rename(tmp, self) != 0) return 1;
  printf("replaced\n");
  return 0;
}

/* What libc keeps for the next call, and valgrind frees at exit: the
 * environment's array setenv grew, the message catalogs' bindings, the
 * buffers of getpwuid and getgrgid. All suppressed: nothing reachable. */
static int runtime_keeps(void) {
  char name[32];
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof name, "HH_KEEPS_%d", i);
    if (setenv(name, "v", 1) != 0) return 3;
  }
  bindtextdomain("hh-scenarios", "/nonexistent/locale");
  textdomain("hh-scenarios");
  struct passwd *pw = getpwuid(0);
  struct group *gr = getgrgid(0);
  printf("keeps %s %s\n", pw ? "pw" : "-", gr ? "gr" : "-");
  return 0;
}

static int address_space_limit(void) {
  size_t used = address_space_used();
  if (used == 0) return 3;
  struct rlimit r = {used + (2u << 20), used + (2u << 20)};
  if (setrlimit(RLIMIT_AS, &r) != 0) return 3;
  sink = malloc(42);
  sink = NULL;
  return 0;
}

/* No descriptor left at exit (a limit of 3, or every one closed): a block a
 * global holds is still reachable, found through the maps kept open since
 * start-up. With those closed too, the scan has no maps: it must say so,
 * not call every block lost. */
static void *volatile held_by_global;

static int no_descriptors(const char *how) {
  held_by_global = malloc(100);
  if (!strcmp(how, "close_all"))
    for (int fd = 3; fd < 4096; fd++) close(fd);
  struct rlimit r = {3, 3};
  return setrlimit(RLIMIT_NOFILE, &r) == 0 ? 0 : 3;
}

/* A thread on a stack the program mapped, its __thread pointer holding a
 * block; joined, the mapping kept. glibc never caches such a stack: it is
 * the program's memory, and valgrind scans it (still reachable). */
__thread void *own_stack_block;

static void *keep_on_own_stack(void *arg) {
  own_stack_block = malloc(88);
  memset(own_stack_block, 1, 88);
  return arg;
}

static int user_stack_joined(void) {
  size_t size = (size_t)1 << 20;
  /* guard pages on both sides keep the kernel from merging the mapping
   * with a neighbour */
  char *area = mmap(NULL, size + 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) return 3;
  mprotect(area, 4096, PROT_NONE);
  mprotect(area + 4096 + size, 4096, PROT_NONE);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, area + 4096, size);
  pthread_t t;
  if (pthread_create(&t, &attr, keep_on_own_stack, NULL) != 0) return 3;
  pthread_join(t, NULL);
  return 0;
}

/* A thread that has ended but was not joined: its TLS is still in use
 * (valgrind: its __thread block still reachable), unlike a joined thread's;
 * its frames are dead (the 24 bytes only a dead frame held are lost). Another
 * thread, waiting on a lock, shows which of glibc's rings is in use; alone,
 * the ring is known by its place in the loader's data. */

static void *wait_at_gate(void *arg) {
  pthread_mutex_lock(&exit_gate);
  pthread_mutex_unlock(&exit_gate);
  return arg;
}

/* Leaves the block's address in its dead frame only. */
static __attribute__((noinline)) void leak_in_frame(void) {
  void *volatile lost = malloc(24);
  (void)lost;
}

static void *end_unjoined(void *arg) {
  thread_own = malloc(123);
  memset(thread_own, 1, 123);
  leak_in_frame();
  return arg;
}

static int ended_not_joined(bool alone) {
  pthread_mutex_lock(&exit_gate);
  pthread_t waiter, ended;
  if (!alone) pthread_create(&waiter, NULL, wait_at_gate, NULL);
  pthread_create(&ended, NULL, end_unjoined, NULL);
  usleep(100000);
  return 0;
}

/* A buffer that asks malloc_usable_size how much it may use and keeps a
 * pointer in the last of those words, past the 20 bytes it asked for: the
 * block it points to is still reachable (valgrind, whose usable size is
 * the request, also finds both reachable). */
static void *volatile growable, *volatile growable_big;

static int usable_slack(void) {
  void **b = malloc(20);
  size_t slots = malloc_usable_size(b) / sizeof *b;
  memset(b, 0, slots * sizeof *b);
  b[slots - 1] = malloc(45);
  growable = b;
  /* the same in an oversize block (past 4 MiB, aligned), whose usable
   * size is its request rounded to a page */
  void **big = NULL;
  if (posix_memalign((void **)&big, 64, 5000000) != 0) return 3;
  slots = malloc_usable_size(big) / sizeof *big;
  big[slots - 1] = malloc(77);
  growable_big = big;
  return 0;
}

/* quick_exit: the at_quick_exit handlers run, then the process ends
 * without exit's; the report is made after the program's handlers
 * (valgrind: 42 bytes definitely lost). */
static void quick_handler(void) { sink = NULL; }

static int quick_exit_call(void) {
  at_quick_exit(quick_handler);
  sink = malloc(42);
  quick_exit(0);
}

/* Two threads call quick_exit at once: the one that found the report's
 * handler taken by the other ended the process in the middle of the
 * report (helper-41: no report and status 0, 6 of 6 runs). */
static pthread_barrier_t quick_barrier;
static void *quick_exit_thread(void *arg) {
  (void)arg;
  pthread_barrier_wait(&quick_barrier);
  quick_exit(0);
}

static int quick_exit_race(void) {
  sink = malloc(42);
  sink = NULL;
  pthread_barrier_init(&quick_barrier, NULL, 2);
  pthread_t t;
  if (pthread_create(&t, NULL, quick_exit_thread, NULL) != 0) return 4;
  pthread_barrier_wait(&quick_barrier);
  quick_exit(0);
}

/* A vfork child whose exec fails calls exit(), not _exit(): it would run
 * its parent's exit handlers in its parent's memory, and the parent's
 * report was lost (valgrind: the parent's 42 bytes definitely lost). */
static int vfork_exit(void) {
  pid_t pid = vfork();
  if (pid == 0) {
    execl("/nonexistent/program", "program", (char *)NULL);
    exit(3);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 3) return 4;
  sink = malloc(42);
  sink = NULL;
  return 0;
}

/* A child made by _Fork() (no atfork handler runs) has memory of its own:
 * its exit() must run its exit handlers, not end as a vfork child's. */
static const char *role = "parent";
static void say_role(void) { printf("handler %s\n", role); }

static int raw_fork_exit(void) {
  atexit(say_role);
  fflush(stdout);
  pid_t pid = _Fork();
  if (pid == 0) {
    role = "child";
    exit(0);
  }
  int status = 0;
  return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) ? 0 : 4;
}

/* Opens /dev/null until the table is full, and says how many it got: the
 * library takes none of a low RLIMIT_NOFILE's numbers. */
static int open_until_full(void) {
  int n = 0;
  while (open("/dev/null", O_RDONLY) >= 0) n++;
  printf("opened %d\n", n);
  return 0;
}

/* main sleeps in pause() (the scan cannot stop it) while another thread
 * calls exit: main's __thread block is still reachable (valgrind). The
 * rings glibc keeps tell main's stack from a dead one. */
__thread void *main_own; /* not static: a store the compiler must keep */

static void *exit_soon(void *arg) {
  usleep(100000);
  exit(0);
  return arg;
}

static int main_asleep(void) {
  main_own = malloc(111);
  pthread_t t;
  pthread_create(&t, NULL, exit_soon, NULL);
  pause();
  return 0;
}

/* The program maps 1 MiB, keeps pointers at its start, and gives its top
 * 256 KiB to a detached thread as its stack; the thread has ended. The
 * mapping is the program's: all of it is scanned (valgrind: 828 bytes
 * still reachable). */
static __attribute__((noinline)) void fill_slots(void **slots) {
  for (int i = 0; i < 8; i++) slots[i] = malloc(100 + i);
}

static void *end_at_once(void *arg) { return arg; }

static int user_stack_detached(void) {
  size_t size = (size_t)1 << 20, stack = (size_t)256 << 10;
  char *area = mmap(NULL, size + 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) return 3;
  mprotect(area, 4096, PROT_NONE); /* guard pages: the mapping is not merged with a neighbour */
  mprotect(area + 4096 + size, 4096, PROT_NONE);
  char *region = area + 4096;
  fill_slots((void **)region);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, region + size - stack, stack);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  if (pthread_create(&t, &attr, end_at_once, NULL) != 0) return 3;
  usleep(100000);
  return 0;
}

/* Small stacks (helper-41). The report needs some 20 KiB of stack and
 * malloc under it read /proc maps into 8 KiB of its caller's: correct
 * programs died of SIGSEGV. Each stack below has a guard page. */
static __attribute__((noinline)) void *leak_a_block(size_t n) {
  void *volatile p = malloc(n);
  return p;
}

/* a thread of PTHREAD_STACK_MIN (16 KiB) that leaks, then ends the process */
static void *small_thread(void *arg) {
  leak_a_block(1000);
  if (!strcmp((const char *)arg, "exit")) exit(3);
  if (!strcmp((const char *)arg, "_exit")) _exit(3);
  struct hahalloc_leaks l;
  if (!strcmp((const char *)arg, "check")) return hahalloc_leak_check(&l) >= 1 ? (void *)1 : NULL;
  mem_lhihiks(0);
  return (void *)1;
}

static int small_stack(const char *how) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN);
  pthread_t t;
  void *r = NULL;
  if (pthread_create(&t, &attr, small_thread, (void *)how) != 0 || pthread_join(t, &r) != 0) return 4;
  return r == (void *)1 ? 0 : 5;
}

/* `size` bytes of stack over a guard page, as threads, coroutines and
 * alternate signal stacks have: NULL when it cannot be mapped */
static char *stack_over_guard(size_t size) {
  char *m = mmap(NULL, size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED || mprotect(m, 4096, PROT_NONE) != 0) return NULL;
  return m + 4096;
}

/* `handler` takes `sig` on an alternate stack of `size` bytes */
static bool handle_on_alt_stack(int sig, void (*handler)(int), size_t size) {
  char *stack = stack_over_guard(size);
  stack_t ss = {.ss_sp = stack, .ss_size = size, .ss_flags = 0};
  if (stack == NULL || sigaltstack(&ss, NULL) != 0) return false;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sa.sa_flags = SA_ONSTACK;
  return sigaction(sig, &sa, NULL) == 0;
}

/* a crash handler on an alternate stack of SIGSTKSZ that ends the process */
static void crash_exit(int sig) {
  (void)sig;
  _exit(2);
}

static int altstack_exit(void) {
  leak_a_block(100);
  if (!handle_on_alt_stack(SIGSEGV, crash_exit, SIGSTKSZ)) return 4;
  *(volatile int *)(uintptr_t)8 = 1;
  return 4;
}

/* a handler on an alternate stack that makes a leak check and returns,
 * three times (helper-43: the scan's fault guard, on the program's
 * alternate stack again once the report had left it, wrote over the
 * handler's frames; it returned into the scan's context) */
static volatile int alt_checks;
static void alt_check(int sig) {
  (void)sig;
  struct hahalloc_leaks l;
  if (hahalloc_leak_check(&l) >= 0) alt_checks++;
}

static int altstack_check(void) {
  leak_a_block(100);
  if (!handle_on_alt_stack(SIGUSR1, alt_check, 4 * SIGSTKSZ)) return 4;
  for (int i = 0; i < 3; i++) raise(SIGUSR1);
  printf("%d checks\n", alt_checks);
  return alt_checks == 3 ? 0 : 5;
}

/* a coroutine on a 4 KiB stack of its own: its first malloc (a new stack
 * for the report's site capture), then mem_lhihiks */
static ucontext_t co_main, co_ctx;
static void co_body(void) {
  leak_a_block(64);
  mem_lhihiks(1 << 30);
}

static int coroutine(void) {
  size_t size = 4096;
  char *stack = stack_over_guard(size);
  if (stack == NULL) return 4;
  getcontext(&co_ctx);
  co_ctx.uc_stack.ss_sp = stack;
  co_ctx.uc_stack.ss_size = size;
  co_ctx.uc_link = &co_main;
  makecontext(&co_ctx, co_body, 0);
  if (swapcontext(&co_main, &co_ctx) != 0) return 4;
  return 0;
}

/* Threads that hold every signal but the faults (the stop cannot reach
 * them) take faults the program's handler resolves, while the exit scan
 * runs: the scan's guard must hand those to the program's handler and keep
 * its own faults (helper-41: before, the scan's next fault went to the
 * program's handler, which _exits with 99 on any fault not its own, in 12
 * of 15 runs). */
static char *fault_trap;
static void trap_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  char *a = si->si_addr;
  if (a >= fault_trap && a < fault_trap + 4096) {
    mprotect(fault_trap, 4096, PROT_READ | PROT_WRITE);
    return;
  }
  _exit(99);
}

#define FAULT_REGIONS 64
static void *faulting_thread(void *arg) {
  (void)arg;
  sigset_t s;
  sigfillset(&s);
  sigdelset(&s, SIGSEGV);
  sigdelset(&s, SIGBUS);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  char *region[FAULT_REGIONS] = {0};
  unsigned seed = 9;
  for (;;) {
    mprotect(fault_trap, 4096, PROT_NONE);
    fault_trap[rand_r(&seed) % 4096] = 1;
    int i = rand_r(&seed) % FAULT_REGIONS;
    if (region[i] != NULL) {
      munmap(region[i], 1 << 16);
      region[i] = NULL;
    } else {
      region[i] = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (region[i] == MAP_FAILED) region[i] = NULL;
      for (int k = 0; region[i] != NULL && k < 64; k++) ((void **)region[i])[k * 128] = malloc(32);
    }
  }
  return NULL;
}

static int foreign_faults(void) {
  fault_trap = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = trap_handler;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, NULL);
  pthread_t t;
  for (int i = 0; i < 2; i++) pthread_create(&t, NULL, faulting_thread, NULL);
  usleep(15000);
  exit(0);
}

int main(int argc, char **argv) {
  const char *w = argc > 1 ? argv[1] : "";
  if (!strcmp(w, "small_stack") && argc > 2) return small_stack(argv[2]);
  if (!strcmp(w, "altstack_exit")) return altstack_exit();
  if (!strcmp(w, "coroutine")) return coroutine();
  if (!strcmp(w, "altstack_check")) return altstack_check();
  if (!strcmp(w, "foreign_faults")) return foreign_faults();
  if (!strcmp(w, "summary")) return summary();
  if (!strcmp(w, "running_threads")) return running_threads();
  if (!strcmp(w, "exit_from_thread")) return exit_from_thread();
  if (!strcmp(w, "thread_wrapper")) return thread_wrapper();
  if (!strcmp(w, "fork")) return fork_child();
  if (!strcmp(w, "_exit")) return quick_exit_();
  if (!strcmp(w, "signal")) return die_by_signal();
  if (!strcmp(w, "million")) return million();
  if (!strcmp(w, "deep")) return deep_stack();
  if (!strcmp(w, "clean")) return clean();
  if (!strcmp(w, "overflow_into_free")) return overflow_into_free();
  if (!strcmp(w, "freed_by_another_thread")) return freed_by_another_thread();
  if (!strcmp(w, "pending_remote_frees")) return pending_remote_frees();
  if (!strcmp(w, "stale_pointers")) return stale_pointers();
  if (!strcmp(w, "stale_wide")) return stale_wide(argc > 2 ? argv[2] : "reuse");
  if (!strcmp(w, "stale_big")) return stale_big(argc > 2 ? argv[2] : "large");
  if (!strcmp(w, "end_pointer")) return end_pointer();
  if (!strcmp(w, "sparse_reuse")) return sparse_reuse(argc > 2 ? (size_t)atol(argv[2]) : (size_t)1 << 20);
  if (!strcmp(w, "paged_out_file_mapping")) return paged_out_file_mapping();
  if (!strcmp(w, "shared_stack")) return shared_stack(argc > 2 ? argv[2] : "shared");
  if (!strcmp(w, "protected_blocks")) return protected_blocks();
  if (!strcmp(w, "protected_many")) return protected_many();
  if (!strcmp(w, "sparse_file") && argc > 2) return sparse_file(argv[2]);
  if (!strcmp(w, "shared_holes")) return shared_holes(argc > 2 && !strcmp(argv[2], "dontneed"));
  if (!strcmp(w, "shared_reservation") && argc > 2) return sparse_reservation(strtoul(argv[2], NULL, 10), MAP_SHARED);
  if (!strcmp(w, "sparse_reservation")) return sparse_reservation(argc > 2 ? (size_t)atol(argv[2]) : 16384, MAP_PRIVATE);
  if (!strcmp(w, "churning_threads")) return churning_threads();
  if (!strcmp(w, "joined_thread")) return joined_thread();
  if (!strcmp(w, "self_pointing_record")) return self_pointing_record();
  if (!strcmp(w, "realloc_totals")) return realloc_totals();
  if (!strcmp(w, "sleeping_thread")) {
    bool check = false, blocked = false;
    for (int i = 3; i < argc; i++) {
      check |= !strcmp(argv[i], "check");
      blocked |= !strcmp(argv[i], "blocked");
    }
    return sleeping_thread(argc > 2 ? argv[2] : "usleep", check, blocked);
  }
  if (!strcmp(w, "joined_leftovers")) return joined_leftovers();
  if (!strcmp(w, "alarm_at_exit")) return alarm_at_exit();
  if (!strcmp(w, "exit_in_handler")) return exit_in_handler();
  if (!strcmp(w, "busy_signal_thread")) return busy_signal_thread();
  if (!strcmp(w, "fork_beside_checks")) return fork_beside_checks();
  if (!strcmp(w, "child_eof")) return child_eof(argc > 2 ? atoi(argv[2]) : 300);
  if (!strcmp(w, "merged_syscall")) return merged_syscall();
  if (!strcmp(w, "wakeups")) return wakeups(argc > 2 ? argv[2] : "read", argc > 3 ? atoi(argv[3]) : 100, argc > 4 ? atoi(argv[4]) : 3600);
  if (!strcmp(w, "terminal_timer")) return terminal_timer();
  if (!strcmp(w, "killed_in_report")) return killed_in_report();
  if (!strcmp(w, "sleep_races")) return sleep_races(argc > 2 ? atoi(argv[2]) : 100);
  if (!strcmp(w, "own_stop_signal")) return own_stop_signal(argc > 2 && !strcmp(argv[2], "own"));
  if (!strcmp(w, "main_pthread_exit")) return main_pthread_exit();
  if (!strcmp(w, "dlopen_tls_joined")) return dlopen_tls_joined();
  if (!strcmp(w, "dlopen_tls_running")) return dlopen_tls_running();
  if (!strcmp(w, "shared_anonymous")) return shared_anonymous();
  if (!strcmp(w, "main_asleep")) return main_asleep();
  if (!strcmp(w, "user_stack_detached")) return user_stack_detached();
  if (!strcmp(w, "raw_fork_exit")) return raw_fork_exit();
  if (!strcmp(w, "open_until_full")) return open_until_full();
  if (!strcmp(w, "vfork_exit")) return vfork_exit();
  if (!strcmp(w, "quick_exit")) return quick_exit_call();
  if (!strcmp(w, "quick_exit_race")) return quick_exit_race();
  if (!strcmp(w, "usable_slack")) return usable_slack();
  if (!strcmp(w, "user_stack_joined")) return user_stack_joined();
  if (!strcmp(w, "ended_not_joined")) return ended_not_joined(argc > 2 && !strcmp(argv[2], "alone"));
  if (!strcmp(w, "address_space_limit")) return address_space_limit();
  if (!strcmp(w, "concurrent_exit")) return concurrent_exit();
  if (!strcmp(w, "setenv_tree")) return setenv_tree();
  if (!strcmp(w, "runtime_keeps")) return runtime_keeps();
  if (!strcmp(w, "replace_self")) return replace_self();
  if (!strcmp(w, "event_loop")) return event_loop(argc > 2 ? argv[2] : "epoll");
  if (!strcmp(w, "no_descriptors")) return no_descriptors(argc > 2 ? argv[2] : "");
  fprintf(stderr, "unknown scenario %s\n", w);
  return 2;
}
