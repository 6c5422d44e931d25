/*
 * What bad input gets: a pointer hahalloc never returned (a stack address,
 * an interior pointer, memory from another allocator) or one already freed,
 * passed to free/frhehe/realloc/rehehalloc.
 *
 * By default the process aborts with a message on stderr naming the call and
 * the pointer (death tests: the bad call runs in a child process). With
 * HAHALLOC_ON_ERROR=continue, read once at start-up, the call is reported and
 * ignored, and the heap stays usable: the child is this binary run again with
 * that environment, and after the bad call it checks that earlier blocks kept
 * their contents and that new blocks of the same size never overlap.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "hahalloc.h"

/* ------------------------------------------------------------ the child */

/* Blocks allocated before the bad call, checked after it. */
static const size_t witness_sizes[] = {16, 24, 64, 64, 100, 1000, 5000, 40000, 200000, 2 * MiB, 9 * MiB};
#define NWITNESS (sizeof witness_sizes / sizeof *witness_sizes)
static unsigned char *witness[NWITNESS * 8];

static int child_fail(const char *what) {
  dprintf(2, "CHILD FAIL: %s\n", what);
  return 3;
}

static void make_witnesses(void) {
  for (size_t i = 0; i < NWITNESS * 8; i++) {
    size_t n = witness_sizes[i % NWITNESS];
    witness[i] = malloc(n);
    if (witness[i]) hh_fill(witness[i], n, hh_block_hash(witness[i], n, 7));
  }
}

static int check_witnesses(void) {
  for (size_t i = 0; i < NWITNESS * 8; i++) {
    size_t n = witness_sizes[i % NWITNESS];
    if (!witness[i]) return child_fail("a witness block could not be allocated");
    if (hh_check(witness[i], n, n, hh_block_hash(witness[i], n, 7)) != SIZE_MAX)
      return child_fail("a block allocated before the bad call was corrupted");
    free(witness[i]);
  }
  return 0;
}

/* Many live blocks of `size` bytes after the bad call: a free list corrupted
 * by an accepted double free would hand out one range twice, and the two
 * patterns would collide. */
static int heap_still_works(size_t size) {
  size_t count = size <= 64 * KiB ? 3000 : size <= 4 * MiB ? 100 : 8;
  unsigned char **p = mmap(NULL, count * sizeof *p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return child_fail("mmap");
  for (size_t i = 0; i < count; i++) {
    p[i] = malloc(size);
    if (!p[i]) return child_fail("malloc failed after the ignored call");
    hh_fill(p[i], size, hh_block_hash(p[i], size, 8));
  }
  for (size_t i = 0; i < count; i++) {
    if (hh_check(p[i], size, size, hh_block_hash(p[i], size, 8)) != SIZE_MAX)
      return child_fail("two live blocks overlap after the ignored call");
    free(p[i]);
  }
  munmap(p, count * sizeof *p);
  return check_witnesses();
}

static void announce(const void *bad) { dprintf(1, "ptr=%lx\n", (unsigned long)(uintptr_t)bad); }

static void *free_in_thread(void *p) {
  free(p);
  return NULL;
}

static void free_twice_across_threads(size_t size) {
  void *p = malloc(size);
  pthread_t t;
  /* the owner is this thread; one other thread frees, another frees again */
  pthread_create(&t, NULL, free_in_thread, p);
  pthread_join(t, NULL);
  announce(p);
  pthread_create(&t, NULL, free_in_thread, HH_OPAQUE(p));
  pthread_join(t, NULL);
}

/* A thread with a heap of its own frees `p` (of another thread: its free
 * waits on its pending chain, not yet pushed to the page), frees it again
 * when `twice`, then waits at the gate until told to go. */
typedef struct {
  void *p;
  bool twice;
  sem_t freed, go;
} pending_freer;
static void *free_and_hold(void *arg) {
  pending_freer *f = arg;
  free(malloc(16)); /* a heap of its own */
  free(f->p);
  if (f->twice) {
    announce(f->p);
    free(HH_OPAQUE(f->p));
  }
  sem_post(&f->freed);
  sem_wait(&f->go);
  return NULL;
}

/* pending_double_free_<who>_<size>: a block another thread freed and still
 * holds on its pending chain is freed again by its owner, by that thread,
 * or by a third thread. */
static void free_twice_while_pending(const char *who, size_t size) {
  pending_freer f = {malloc(size), !strcmp(who, "freer"), {{0}}, {{0}}};
  sem_init(&f.freed, 0, 0);
  sem_init(&f.go, 0, 0);
  pthread_t t, u;
  pthread_create(&t, NULL, free_and_hold, &f);
  sem_wait(&f.freed);
  if (!strcmp(who, "owner")) {
    announce(f.p);
    free(HH_OPAQUE(f.p));
  } else if (!strcmp(who, "third")) {
    announce(f.p);
    pthread_create(&u, NULL, free_in_thread, HH_OPAQUE(f.p));
    pthread_join(u, NULL);
  }
  sem_post(&f.go);
  pthread_join(t, NULL);
}

static unsigned char static_block[256] __attribute__((aligned(64)));

/* Runs one bad call; returns the size of the blocks to check afterwards. */
static size_t bad_call(const char *s) {
  char stack_block[128] __attribute__((aligned(16)));
  memset(stack_block, 1, sizeof stack_block);
  char *sp = HH_OPAQUE((char *)stack_block);

  if (!strcmp(s, "free_stack")) {
    announce(sp);
    free(HH_OPAQUE(sp));
    return 64;
  }
  if (!strcmp(s, "frhehe_stack")) {
    announce(sp);
    frhehe(HH_OPAQUE(sp));
    return 64;
  }
  if (!strcmp(s, "realloc_stack")) {
    announce(sp);
    void *r = realloc(HH_OPAQUE(sp), 100);
    if (r && r != sp) free(r);
    return 100;
  }
  if (!strncmp(s, "free_interior_", 14) || !strncmp(s, "frhehe_interior_", 16) ||
      !strncmp(s, "realloc_interior_", 17) || !strncmp(s, "rehehalloc_interior_", 20)) {
    /* <call>_interior_<size>_<offset> */
    const char *tail = strstr(s, "interior_") + 9;
    size_t size = strtoul(tail, (char **)&tail, 10);
    size_t off = strtoul(tail + 1, NULL, 10);
    unsigned char *p = malloc(size);
    uint64_t h = hh_block_hash(p, size, 9);
    hh_fill(p, size, h);
    unsigned char *bad = HH_OPAQUE(p + off);
    announce(bad);
    if (s[0] == 'f' && s[1] == 'r' && s[2] == 'e')
      free(bad);
    else if (s[0] == 'f')
      frhehe(bad);
    else {
      void *r = s[2] == 'a' ? realloc(bad, size * 2) : rehehalloc(bad, size * 2);
      if (r && r != bad) free(r);
    }
    if (hh_check(p, size, size, h) != SIZE_MAX) {
      child_fail("the block whose interior was passed changed");
      exit(3);
    }
    free(p);
    return size;
  }
  if (!strcmp(s, "free_mmap_page")) {
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(page, 0xff, 4096);
    announce(page);
    free(page);
    munmap(page, 4096);
    return 4096;
  }
  if (!strcmp(s, "free_foreign_4MiB_aligned")) {
    /* memory shaped like a hahalloc mapping (4 MiB aligned, header-sized
     * garbage at its start): free must not trust what it finds by masking */
    size_t len = 12 * MiB;
    unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *a = (unsigned char *)(((uintptr_t)m + 4 * MiB - 1) & ~(uintptr_t)(4 * MiB - 1));
    for (size_t i = 0; i < 64 * KiB; i++) a[i] = (unsigned char)(i * 7 + 1);
    memset(a + 64 * KiB, 0, 64 * KiB);
    unsigned char *bad = a + 64 * KiB + 64;
    announce(bad);
    free(bad);
    munmap(m, len);
    return 64;
  }
  if (!strcmp(s, "free_static")) {
    announce(static_block);
    free(HH_OPAQUE((void *)static_block));
    return 256;
  }
  if (!strcmp(s, "free_glibc_block")) {
    /* a block from another allocator: glibc's own malloc */
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void *(*libc_malloc)(size_t) = libc ? (void *(*)(size_t))dlsym(libc, "malloc") : NULL;
    void *p = libc_malloc ? libc_malloc(48) : NULL;
    if (!p) {
      child_fail("glibc's malloc is not reachable");
      exit(3);
    }
    announce(p);
    free(p);
    return 48;
  }
  if (!strncmp(s, "double_free_", 12) || !strncmp(s, "double_frhehe_", 14)) {
    /* double_free_<size>[_after_others] */
    bool seed_api = !strncmp(s, "double_frhehe_", 14);
    size_t size = strtoul(s + (seed_api ? 14 : 12), NULL, 10);
    unsigned char *p = malloc(size);
    unsigned char *q = malloc(size), *r = malloc(size);
    announce(p);
    if (seed_api)
      frhehe(p);
    else
      free(p);
    if (strstr(s, "after_others")) {
      free(q);
      free(r);
      q = r = NULL;
    }
    if (seed_api)
      frhehe(HH_OPAQUE(p));
    else
      free(HH_OPAQUE(p));
    free(q);
    free(r);
    return size;
  }
  if (!strncmp(s, "cross_thread_interior_", 22)) {
    /* cross_thread_interior_<size>_<offset>: freed by a thread that does
     * not own the block, the path of other threads' frees */
    char *tail;
    size_t size = strtoul(s + 22, &tail, 10), off = strtoul(tail + 1, NULL, 10);
    unsigned char *p = malloc(size);
    uint64_t h = hh_block_hash(p, size, 11);
    hh_fill(p, size, h);
    announce(p + off);
    pthread_t t;
    pthread_create(&t, NULL, free_in_thread, HH_OPAQUE(p + off));
    pthread_join(t, NULL);
    if (hh_check(p, size, size, h) != SIZE_MAX) {
      child_fail("the block whose interior another thread passed changed");
      exit(3);
    }
    free(p);
    return size;
  }
  if (!strncmp(s, "pending_double_free_", 20)) {
    char who[8] = {0};
    const char *at = s + 20, *us = strchr(at, '_');
    if (us == NULL || us - at >= (long)sizeof who) exit(4);
    memcpy(who, at, (size_t)(us - at));
    size_t size = strtoul(us + 1, NULL, 10);
    free_twice_while_pending(who, size);
    return size;
  }
  if (!strncmp(s, "cross_thread_double_free_", 25)) {
    size_t size = strtoul(s + 25, NULL, 10);
    free_twice_across_threads(size);
    return size;
  }
  if (!strncmp(s, "realloc_freed_", 14) || !strncmp(s, "rehehalloc_freed_", 17)) {
    bool seed_api = s[2] == 'h';
    size_t size = strtoul(s + (seed_api ? 17 : 14), NULL, 10);
    void *p = malloc(size);
    free(p);
    announce(p);
    void *r = seed_api ? rehehalloc(HH_OPAQUE(p), size * 2) : realloc(HH_OPAQUE(p), size * 2);
    if (r && r != p) free(r);
    return size;
  }
  child_fail("unknown scenario");
  exit(4);
}

static int child_bad_call(const char *scenario) {
  make_witnesses();
  errno = 4242;
  size_t size = bad_call(scenario);
  /* only reached when the call was ignored: a free, reported or not, leaves
   * errno as it was (POSIX.1-2024), though the report looked for files */
  if ((!strncmp(scenario, "free", 4) || !strncmp(scenario, "frhehe", 6)) && errno != 4242) {
    dprintf(2, "errno is %d after the ignored call, not 4242\n", errno);
    return 9;
  }
  int rc = heap_still_works(size);
  if (rc == 0) dprintf(1, "survived\n");
  return rc;
}

/* A program writes into a block after freeing it: the allocation that would
 * take the block next finds the damage and must not follow or hand out what
 * was written. `arg` names the value written into the freed block's first
 * word, which holds its free-list link: "0" (a pointer field cleared after
 * the free, the commonest), "1" and "-1" (a reference count), "double"
 * (a floating-point field). */
static uint64_t written_word(const char *arg) {
  if (!strcmp(arg, "1")) return 1;
  if (!strcmp(arg, "-1")) return UINT64_MAX;
  if (!strcmp(arg, "double")) {
    double d = 3.25;
    uint64_t w;
    memcpy(&w, &d, sizeof w);
    return w;
  }
  return 0;
}

static int child_write_after_free(const char *arg) {
  make_witnesses();
  uint64_t *p = malloc(32);
  void *keep = malloc(32); /* p is not the page's last range: its link is not the list's end */
  free(p);
  announce(p);
  HH_OPAQUE(p)[0] = written_word(arg);
  void *q = malloc(32); /* the block is the head of its page's free list */
  void *r = malloc(32); /* would follow the damaged link */
  if (q == NULL || r == NULL) return child_fail("malloc failed after the damage");
  free(q);
  free(r);
  free(keep);
  int rc = heap_still_works(32);
  if (rc == 0) dprintf(1, "survived\n");
  return rc;
}

/* ------------------------------------------------------------ forged links
 *
 * An attacker who can write into a freed block (a use after free, or an
 * overflow of the block before it) rewrites its free-list link, with or
 * without having read it first. Whatever is written, malloc must never
 * return memory outside the heap, never return a block that is live, never
 * write where the link points, and must name the damaged block. The child
 * frees `victim` (a 32-byte block whose successor on the free list is
 * `succ`, the block right after it), forges its link, then allocates 64
 * blocks of 32 bytes, fills them, and checks that none is the target, none
 * overlaps another live block, and that the target kept its contents. */

#define FORGE_BLOCKS 64
static const char *reported_pointer(const hh_child *c);

static bool inside(const void *p, const void *lo, size_t n) {
  return (const char *)p + 32 > (const char *)lo && (const char *)p < (const char *)lo + n;
}

/* The index of a 32-byte block in its page: pages of 32-byte blocks are one
 * 64 KiB slice, aligned, and start with their first block. */
static uint64_t index_of(const void *p) { return ((uintptr_t)p & 0xffff) / 32; }

static int child_forged_link(const char *how) {
  static unsigned char target_static[256] __attribute__((aligned(64)));
  unsigned char target_stack[256] __attribute__((aligned(64)));
  make_witnesses();
  /* a free block of another page (not the current one) */
  unsigned char *other_page_free = malloc(32), *q = other_page_free;
  for (int i = 0; i < 3000 && ((uintptr_t)q >> 16) == ((uintptr_t)other_page_free >> 16); i++)
    q = malloc(32); /* leaked on purpose: fills the page */
  free(other_page_free);
  /* a run of consecutive blocks from the current page: victim, succ, live */
  unsigned char *run[8];
  for (int i = 0; i < 8; i++) run[i] = malloc(32);
  unsigned char *victim = NULL, *succ = NULL, *live = NULL;
  for (int i = 0; i + 2 < 8 && !victim; i++)
    if (run[i + 1] == run[i] + 32 && run[i + 2] == run[i] + 64 && index_of(run[i]) > 0) {
      victim = run[i];
      succ = run[i + 1];
      live = run[i + 2];
    }
  if (!victim) return child_fail("no three consecutive 32-byte blocks");
  hh_fill(live, 32, hh_block_hash(live, 32, 21));
  memset(target_stack, 0x5a, sizeof target_stack);
  memset(target_static, 0x5b, sizeof target_static);
  free(succ);
  free(victim); /* the list: victim -> succ -> ... */
  announce(victim);
  uint64_t *w = (uint64_t *)HH_OPAQUE(victim);
  unsigned char *target = target_stack;
  if (!strcmp(how, "key_stack") || !strcmp(how, "key_static")) {
    /* the attack of issue 10 on the old layout: the key read back from the
     * second word (key ^ index), a pointer with that canary written */
    uint64_t key = w[1] ^ index_of(victim);
    target = how[4] == 's' && how[5] == 't' && how[6] == 'a' && how[7] == 'c' ? target_stack : target_static;
    ((uint64_t *)target)[1] = key ^ 3;
    ((uint64_t *)target)[0] = (uint64_t)(uintptr_t)target;
    w[0] = (uint64_t)(uintptr_t)target;
  } else if (!strcmp(how, "pointer_other_page")) {
    target = other_page_free;
    w[0] = (uint64_t)(uintptr_t)other_page_free; /* one write, no secret */
  } else if (!strcmp(how, "pointer_interior")) {
    target = live;
    w[0] = (uint64_t)(uintptr_t)(live + 16);
  } else if (!strcmp(how, "xor_live") || !strcmp(how, "xor_far")) {
    /* an attacker who knows how links are coded (a masked index of the next
     * block, here succ): the mask cancels out of a xor of two indexes */
    uint64_t to = how[4] == 'l' ? index_of(live) : 0xfff0;
    target = how[4] == 'l' ? live : target_stack;
    w[0] ^= index_of(succ) ^ to;
    /* a well-formed link: the damage shows where it leads, the live block */
    if (how[4] == 'l') dprintf(1, "alt=%lx\n", (unsigned long)(uintptr_t)live);
  } else {
    return child_fail("unknown attack");
  }
  unsigned char *got[FORGE_BLOCKS];
  for (int i = 0; i < FORGE_BLOCKS; i++) {
    got[i] = malloc(32);
    if (!got[i]) return child_fail("malloc failed after the forged link");
    if (inside(got[i], target_stack, sizeof target_stack) || inside(got[i], target_static, sizeof target_static))
      return child_fail("malloc returned memory outside the heap");
    if (got[i] == live || (target == other_page_free && got[i] == target && i < 2))
      return child_fail("malloc followed the forged link");
    hh_fill(got[i], 32, hh_block_hash(got[i], 32, 22));
  }
  for (int i = 0; i < FORGE_BLOCKS; i++)
    if (hh_check(got[i], 32, 32, hh_block_hash(got[i], 32, 22)) != SIZE_MAX)
      return child_fail("two live blocks overlap after the forged link");
  if (hh_check(live, 32, 32, hh_block_hash(live, 32, 21)) != SIZE_MAX)
    return child_fail("the live block the link pointed to was overwritten");
  for (size_t i = 0; i < sizeof target_stack; i++)
    if (target_stack[i] != 0x5a && !(i < 16 && !strcmp(how, "key_stack")))
      return child_fail("malloc wrote where the forged link pointed (stack)");
  for (size_t i = 16; i < sizeof target_static; i++)
    if (target_static[i] != 0x5b) return child_fail("malloc wrote where the forged link pointed (static)");
  for (int i = 0; i < FORGE_BLOCKS; i++) free(got[i]);
  int rc = heap_still_works(32);
  if (rc == 0) dprintf(1, "survived\n");
  return rc;
}

static void check_corruption_message(const char *what, const hh_child *c) {
  const char *hex = reported_pointer(c);
  if (!hex) fail_msg("%s: the child did not reach the damage\n%s", what, c->err);
  const char *alt = strstr(c->out, "alt=");
  char alt_hex[32] = "";
  if (alt) sscanf(alt + 4, "%31[0-9a-f]", alt_hex);
  if (!hh_contains(c->err, "heap corruption") ||
      !(hh_contains(c->err, hex) || (alt_hex[0] && hh_contains(c->err, alt_hex))) ||
      !hh_contains(c->err, "32-byte block"))
    fail_msg("%s: stderr does not name the damaged 32-byte block at %s:\n%s", what, hex, c->err);
}

static void forged_link_aborts_with_a_message(void **state) {
  const char *how = *state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR", NULL};
  hh_exec_self("forged_link", how, env, 60, &c);
  if (!hh_child_aborted(&c))
    fail_msg("%s: expected SIGABRT, the child %s\n--- stdout:\n%s--- stderr:\n%s", how, hh_child_describe(&c), c.out,
             c.err);
  check_corruption_message(how, &c);
  hh_child_free(&c);
}

static void forged_link_is_reported_and_survived_with_on_error_continue(void **state) {
  const char *how = *state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR=continue", NULL};
  hh_exec_self("forged_link", how, env, 60, &c);
  if (!hh_child_exited_ok(&c) || !strstr(c.out, "survived"))
    fail_msg("%s: expected the damage to be reported and survived, the child %s\n--- stdout:\n%s--- stderr:\n%s", how,
             hh_child_describe(&c), c.out, c.err);
  check_corruption_message(how, &c);
  hh_child_free(&c);
}

/* ------------------------------------------------------------ overflows
 *
 * 40 bytes written into malloc(24) (a 32-byte block) reach the first word
 * of the block after it, which is free: the next malloc or free that meets
 * the damage names it, with its size class; and the exit report, if nothing
 * met it before, tells it and still counts right. */
static int child_overflow(const char *when) {
  make_witnesses();
  unsigned char *p = NULL, *n = NULL;
  for (int i = 0; i < 64 && !(p && n == p + 32); i++) {
    p = malloc(24);
    n = malloc(24);
  }
  if (n != p + 32) return child_fail("no two consecutive 32-byte blocks");
  void *keep = malloc(24);
  free(n);
  announce(n);
  memset(HH_OPAQUE(p), 'A', 40);
  free(p);
  if (!strcmp(when, "at_exit")) {
    free(keep);
    return 0; /* the exit report meets it */
  }
  if (!strcmp(when, "at_checks")) { /* every leak check's scan meets it */
    free(keep);
    for (int i = 0; i < 5; i++) hahalloc_leak_check(NULL);
    return 0;
  }
  void *a = malloc(24), *b = malloc(24), *c = malloc(24);
  if (!a || !b || !c) return child_fail("malloc failed after the overflow");
  if (a == b || b == c || a == c) return child_fail("one block handed out twice");
  free(a);
  free(b);
  free(c);
  free(keep);
  int rc = heap_still_works(24);
  if (rc == 0) dprintf(1, "survived\n");
  return rc;
}

static void overflow_into_a_freed_neighbour_aborts_at_the_next_malloc(void **state) {
  (void)state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR", NULL};
  hh_exec_self("overflow", "next_malloc", env, 60, &c);
  if (!hh_child_aborted(&c))
    fail_msg("expected SIGABRT, the child %s\n--- stdout:\n%s--- stderr:\n%s", hh_child_describe(&c), c.out, c.err);
  check_corruption_message("overflow", &c);
  if (!hh_contains(c.err, "past the end")) fail_msg("the overflow is not named as one:\n%s", c.err);
  hh_child_free(&c);
}

static void overflow_into_a_freed_neighbour_is_survived_with_on_error_continue(void **state) {
  (void)state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR=continue", NULL};
  hh_exec_self("overflow", "next_malloc", env, 60, &c);
  if (!hh_child_exited_ok(&c) || !strstr(c.out, "survived"))
    fail_msg("expected the overflow to be reported and survived, the child %s\n--- stdout:\n%s--- stderr:\n%s",
             hh_child_describe(&c), c.out, c.err);
  check_corruption_message("overflow", &c);
  hh_child_free(&c);
}

static size_t count_of(const char *text, const char *what) {
  size_t n = 0;
  for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what)) n++;
  return n;
}

/* Runs the overflow child at `when` (the report on, as this program is
 * linked), which must exit 0, the damage named in its stderr (c->err). */
static void run_overflow_met_by_the_report(const char *when, hh_child *c) {
  const char *env[] = {"HAHALLOC_ON_ERROR", "HAHALLOC_SUMMARY", "HAHALLOC_OUTPUT", NULL};
  hh_exec_self("overflow", when, env, 60, c);
  if (!hh_child_exited_ok(c))
    fail_msg("the child %s\n--- stdout:\n%s--- stderr:\n%s", hh_child_describe(c), c->out, c->err);
  check_corruption_message(when, c);
}

static void overflow_met_only_by_the_exit_report_is_told_and_counted_right(void **state) {
  (void)state;
  hh_child c;
  run_overflow_met_by_the_report("at_exit", &c);
  /* the witnesses stay in use, referenced from a global: nothing is lost
   * unless the free blocks behind the damaged link are counted as live */
  if (strstr(c.err, "510 blocks") || !hh_contains(c.err, "definitely lost: 0 bytes in 0 blocks"))
    fail_msg("the exit report counts free blocks as lost:\n%s", c.err);
  hh_child_free(&c);
}

/* Each scan meets the damage again: it is told, and counted for
 * --error-exitcode, once, not at every leak check. */
static void damage_met_by_leak_checks_is_told_once(void **state) {
  (void)state;
  hh_child c;
  run_overflow_met_by_the_report("at_checks", &c);
  size_t n = count_of(c.err, "heap corruption");
  if (n != 1) fail_msg("the damage was told %zu times by 5 leak checks and the exit report:\n%s", n, c.err);
  hh_child_free(&c);
}

/* ------------------------------------------------------------ the stacks of an error */

/* Functions the error's stacks must name: kept out of line and out of tail
 * position, so that each is a frame of its own. */
static __attribute__((noinline, noclone)) void *stacks_allocate_here(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}
static __attribute__((noinline, noclone)) void stacks_free_here(void *p) {
  free(HH_OPAQUE(p));
  __asm__ volatile("" : : : "memory");
}
static __attribute__((noinline, noclone)) void *stacks_meet_here(size_t n) {
  void *p = calloc(1, n); /* not malloc: a body of its own, never folded into the one above */
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

static int child_stacks(const char *what) {
  if (!strcmp(what, "double_free") || !strcmp(what, "interior")) {
    char *p = stacks_allocate_here(32);
    announce(p);
    stacks_free_here(p + (!strcmp(what, "interior") ? 8 : 0));
    if (!strcmp(what, "double_free")) stacks_free_here(p);
    return 0;
  }
  /* an overflow into a freed neighbour, met by the next malloc */
  unsigned char *p = NULL, *n = NULL;
  for (int i = 0; i < 64 && !(p && n == p + 32); i++) {
    p = stacks_allocate_here(24);
    n = stacks_allocate_here(24);
  }
  if (n != p + 32) return child_fail("no two consecutive 32-byte blocks");
  free(n);
  announce(n);
  memset(HH_OPAQUE(p), 'A', 40); /* p stays live: the error must name its allocation */
  void *a = stacks_meet_here(24), *b = stacks_meet_here(24);
  free(a);
  free(b);
  free(p);
  return 0;
}

/* The line that holds `what`, at or after `from`; NULL when none does. */
static const char *line_with(const char *from, const char *what) {
  const char *w = from ? strstr(from, what) : NULL;
  if (w == NULL) return NULL;
  while (w > from && w[-1] != '\n') w--;
  return w;
}

/* stderr holds, in this order: the error, the call's stack naming `call_fn`
 * (with its file and line when `lined`), and, when `alloc_fn`, the
 * allocation's stack naming it. */
static void check_stacks(const hh_child *c, const char *error, const char *call_fn, const char *alloc_fn, bool lined) {
  const char *e = line_with(c->err, error);
  if (e == NULL) fail_msg("no \"%s\" on stderr:\n%s", error, c->err);
  const char *f = line_with(e, call_fn);
  if (f == NULL || f - e > 400) fail_msg("the error does not name the call's frame %s:\n%s", call_fn, c->err);
  if (lined && strncmp(strstr(f, call_fn) + strlen(call_fn), " (test_errors.c:", 16) != 0)
    fail_msg("the frame %s has no file and line:\n%s", call_fn, c->err);
  if (alloc_fn == NULL) return;
  const char *a = line_with(f, "was allocated at:");
  if (a == NULL || line_with(a, alloc_fn) == NULL || line_with(a, alloc_fn) - a > 400)
    fail_msg("the error does not say that %s allocated the block:\n%s", alloc_fn, c->err);
}

static void double_free_names_the_freeing_call_and_the_allocation(void **state) {
  (void)state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR", "HAHALLOC_SUMMARY=1", "HAHALLOC_OUTPUT", NULL};
  hh_exec_self("stacks", "double_free", env, 60, &c);
  if (!hh_child_aborted(&c)) fail_msg("expected SIGABRT, the child %s\n%s", hh_child_describe(&c), c.err);
  check_stacks(&c, "double free", "stacks_free_here", "stacks_allocate_here", true);
  hh_child_free(&c);
}

static void interior_free_names_the_block_it_points_into(void **state) {
  (void)state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR", "HAHALLOC_SUMMARY=1", "HAHALLOC_OUTPUT", NULL};
  hh_exec_self("stacks", "interior", env, 60, &c);
  if (!hh_child_aborted(&c)) fail_msg("expected SIGABRT, the child %s\n%s", hh_child_describe(&c), c.err);
  check_stacks(&c, "invalid pointer: inside the 32-byte block", "stacks_free_here", "stacks_allocate_here", true);
  hh_child_free(&c);
}

/* A pointer in a large range's slices but past the block: not "inside". */
static void pointer_past_a_large_block_is_named_so(void **state) {
  (void)state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR=continue", NULL};
  hh_exec_self("bad", "free_interior_200000_204800", env, 60, &c);
  if (!hh_child_exited_ok(&c) || !strstr(c.err, "4800 bytes past the end of the 200000-byte block"))
    fail_msg("expected \"4800 bytes past the end of the 200000-byte block\", the child %s\n--- stderr:\n%s",
             hh_child_describe(&c), c.err);
  hh_child_free(&c);
}

/* A message names a block by the size the program asked for, as the line
 * of its allocation does: "inside the 112-byte block" was followed by "the
 * 100-byte block ... was allocated at" (helper-71), and a double free of a
 * 9 MiB block read "inside a freed block of more than 4128768 bytes". */
static void messages_name_the_size_asked_for(void **state) {
  (void)state;
  static const struct {
    const char *bad, *says;
  } cases[] = {
      {"free_interior_100_16", "invalid pointer: inside the 100-byte block at 0x"},
      {"free_interior_100_104", "invalid pointer: 4 bytes past the end of the 100-byte block at 0x"},
      {"double_free_100", "double free: this 100-byte block is already free"},
      {"double_free_9437184", "double free (a block of more than 4,128,768 bytes, already freed)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hh_child c;
    const char *env[] = {"HAHALLOC_ON_ERROR=continue", NULL};
    hh_exec_self("bad", cases[i].bad, env, 60, &c);
    if (!hh_child_exited_ok(&c) || !strstr(c.err, cases[i].says))
      fail_msg("%s: expected \"%s\", the child %s\n--- stderr:\n%s", cases[i].bad, cases[i].says, hh_child_describe(&c),
               c.err);
    hh_child_free(&c);
  }
}

static void overflow_names_the_call_that_met_it_and_the_block_that_overflowed(void **state) {
  (void)state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR", "HAHALLOC_SUMMARY=1", "HAHALLOC_OUTPUT", NULL};
  hh_exec_self("stacks", "overflow", env, 60, &c);
  if (!hh_child_aborted(&c)) fail_msg("expected SIGABRT, the child %s\n%s", hh_child_describe(&c), c.err);
  check_stacks(&c, "heap corruption", "stacks_meet_here", "stacks_allocate_here", true);
  hh_child_free(&c);
}

static void double_free_without_the_report_still_names_the_call(void **state) {
  (void)state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR", "HAHALLOC_SUMMARY=0", "HAHALLOC_OUTPUT", NULL};
  hh_exec_self("stacks", "double_free", env, 60, &c);
  if (!hh_child_aborted(&c)) fail_msg("expected SIGABRT, the child %s\n%s", hh_child_describe(&c), c.err);
  /* no report, no addr2line: function names from the symbol tables */
  check_stacks(&c, "double free", "stacks_free_here", NULL, false);
  if (!hh_contains(c.err, "under the hahalloc command"))
    fail_msg("the error does not say how to learn where the block was allocated:\n%s", c.err);
  hh_child_free(&c);
}

/* "<n>": n blocks freed twice each, the mistake of a loop under
 * HAHALLOC_ON_ERROR=continue. */
/* N double frees from one call. */
static int child_double_frees_in_a_loop(const char *arg) {
  int n = atoi(arg);
  for (int i = 0; i < n; i++) {
    char *p = malloc(32);
    if (p == NULL) return child_fail("malloc");
    free(HH_OPAQUE(p));
    free(HH_OPAQUE(p));
  }
  printf("survived\n");
  return 0;
}

/* 1,200 double frees, each from a call of its own (the store after each
 * makes every copy's code differ, so that no compiler merges them). */
static volatile int df_site;
#define DF_ONE                                  \
  {                                             \
    char *p = malloc(32);                       \
    if (p == NULL) return child_fail("malloc"); \
    free(HH_OPAQUE(p));                         \
    free(HH_OPAQUE(p));                         \
    df_site = __COUNTER__;                      \
  }
#define DF_4 DF_ONE DF_ONE DF_ONE DF_ONE
#define DF_20 DF_4 DF_4 DF_4 DF_4 DF_4
#define DF_100 DF_20 DF_20 DF_20 DF_20 DF_20
#define DF_400 DF_100 DF_100 DF_100 DF_100
static int child_many_double_frees(const char *arg) {
  int rounds = atoi(arg);
  for (int i = 0; i < rounds; i++) { DF_400 DF_400 DF_400 }
  printf("survived\n");
  return 0;
}

/* valgrind writes an error once for its context (its kind and the call's
 * stack), and stops listing new ones after 1,000: so do we, and the exit
 * report tells how many more there were (text and JSON). Without the
 * report the rest are dropped with a word. 5 rounds of 1,200 double frees
 * from as many calls: 6,000 errors from 1,200 contexts, 1,000 written. */
static void errors_past_the_first_thousand_are_counted_not_written(void **state) {
  (void)state;
  static const char *const modes[] = {"HAHALLOC_SUMMARY=0", "HAHALLOC_SUMMARY=1", "HAHALLOC_FORMAT=json"};
  for (int m = 0; m < 3; m++) {
    hh_child c;
    const char *env[] = {"HAHALLOC_ON_ERROR=continue",
                         modes[m],
                         m == 2 ? "HAHALLOC_SUMMARY=1" : "HAHALLOC_FORMAT",
                         "HAHALLOC_OUTPUT",
                         "HAHALLOC_QUIET",
                         NULL};
    hh_exec_self("many_double_frees", "5", env, 120, &c);
    const char *tail = c.err + (strlen(c.err) > 2000 ? strlen(c.err) - 2000 : 0);
    if (!hh_child_exited_ok(&c) || !strstr(c.out, "survived"))
      fail_msg("%s: the child %s\n--- stderr:\n%s", modes[m], hh_child_describe(&c), tail);
    size_t shown = count_of(c.err, "hahalloc: error: ");
    size_t ignored = count_of(c.err, "hahalloc: the call is ignored");
    if (shown != 1000 || ignored != 1000)
      fail_msg("%s: %zu errors and %zu recoveries written, expected the first 1000 of each", modes[m], shown, ignored);
    if (count_of(c.err, "hahalloc: more than 1000 errors: the next ones are not shown") != 1)
      fail_msg("%s: not one word that the next errors are not shown:\n%s", modes[m], tail);
    bool promised = strstr(c.err, "the next ones are not shown (the exit report") != NULL;
    const char *count = m == 2 ? "\"errors\":6000,\"errors_not_shown\":200,"
                               : "== 200 more errors were met and not shown (past the first 1,000)";
    bool counted = strstr(c.err, count) != NULL;
    if (m == 1 && strstr(c.err, "== ERROR SUMMARY: 6000 errors from 1200 contexts") == NULL)
      fail_msg("%s: not 6000 errors from 1200 contexts:\n%s", modes[m], tail);
    if (promised != (m > 0) || counted != (m > 0))
      fail_msg("%s: the count of errors not shown is %s, and %s:\n%s", modes[m], promised ? "promised" : "not promised",
               counted ? "given" : "not given", tail);
    hh_child_free(&c);
  }
  /* valgrind's --error-limit=no: every context written, once */
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR=continue", "HAHALLOC_OPTIONS=error-limit=no", "HAHALLOC_SUMMARY=1",
                       "HAHALLOC_OUTPUT", NULL};
  hh_exec_self("many_double_frees", "5", env, 120, &c);
  if (!hh_child_exited_ok(&c) || count_of(c.err, "hahalloc: error: ") != 1200 ||
      strstr(c.err, "more than 1000 errors") != NULL || strstr(c.err, "not shown") != NULL ||
      strstr(c.err, "== ERROR SUMMARY: 6000 errors from 1200 contexts") == NULL)
    fail_msg("error-limit=no: the child %s, %zu errors written, expected the 1200 contexts once each",
             hh_child_describe(&c), count_of(c.err, "hahalloc: error: "));
  hh_child_free(&c);
}

/* A report file that cannot be opened is said once, not at every message
 * (three an error: the line, the stacks, the recovery). The five double
 * frees from one call are one context: written once, counted five times,
 * as valgrind does. */
static void a_report_file_that_cannot_be_opened_is_told_once(void **state) {
  (void)state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR=continue", "HAHALLOC_SUMMARY=1", "HAHALLOC_OUTPUT=/nonexistent-dir/r-%p.txt",
                       NULL};
  hh_exec_self("double_frees_in_a_loop", "5", env, 60, &c);
  size_t told = count_of(c.err, "hahalloc: cannot write the report to /nonexistent-dir/r-");
  if (!hh_child_exited_ok(&c) || told != 1 || count_of(c.err, "hahalloc: error: ") != 1 ||
      !strstr(c.err, "LEAK SUMMARY") || !strstr(c.err, "== ERROR SUMMARY: 5 errors from 1 contexts"))
    fail_msg("the child %s, the file told %zu times (expected once, one error written, 5 counted from 1 context, and "
             "the report on stderr):\n%s",
             hh_child_describe(&c), told, c.err);
  hh_child_free(&c);
}

/* ------------------------------------------------------------ the guard (HAHALLOC_GUARD=1) */

/* "<size>": a write one byte past the end of a block of that size, then
 * its free. "exit": the same into a block still in use at exit. "clean": a
 * program that uses every byte it may (malloc_usable_size included) and
 * never one more: nothing may be reported. */
unsigned char *guard_kept;

static int child_guard(const char *what) {
  if (!strcmp(what, "clean")) {
    /* a big calloc served from a freed mapping zeroes it by purging pages:
     * the canary must survive that */
    for (size_t n = 4128753; n <= 5000000; n += 871247) {
      void *big = malloc(n);
      if (big == NULL) return child_fail("malloc failed");
      memset(big, 1, n);
      free(big);
      big = calloc(1, n);
      if (big == NULL) return child_fail("calloc failed");
      free(big);
    }
    void *live[64] = {0};
    uint64_t rng = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      unsigned k = rng % 64;
      size_t n = (rng >> 8) % (rng & 1 ? 300000 : 2000) + 1;
      switch ((rng >> 40) % 4) {
      case 0:
        free(live[k]);
        live[k] = malloc(n);
        break;
      case 1: live[k] = realloc(live[k], n); break;
      case 2:
        free(live[k]);
        live[k] = calloc(1, n);
        break;
      default:
        free(live[k]);
        live[k] = NULL;
        if (posix_memalign(&live[k], (size_t)16 << (rng >> 50) % 9, n) != 0) live[k] = NULL;
        break;
      }
      if (live[k] == NULL) return child_fail("an allocation failed");
      memset(live[k], (int)i, malloc_usable_size(live[k]));
    }
    for (int k = 0; k < 64; k++) free(live[k]);
    dprintf(1, "survived\n");
    return 0;
  }
  make_witnesses();
  bool at_exit = !strcmp(what, "exit");
  size_t n = at_exit ? 40 : strtoul(what, NULL, 10);
  /* blocks of the largest small root first, two of them freed again, so
   * that the fast path has a page of that root to take from for n too */
  void *warm[4] = {NULL};
  for (int i = 0; i < 4 && n > 65536 && n <= 131072; i++) warm[i] = HH_OPAQUE(malloc(120000));
  free(warm[1]);
  free(warm[2]);
  unsigned char *p = stacks_allocate_here(n);
  if (p == NULL) return child_fail("malloc failed");
  announce(p);
  p[n] = 'A'; /* one byte past the end: ASCII, which no canary byte equals */
  if (at_exit) {
    guard_kept = HH_OPAQUE(p); /* still in use at exit: reachable from here */
    return 0;
  }
  stacks_free_here(p);
  free(warm[0]);
  free(warm[3]);
  int rc = heap_still_works(n);
  if (rc == 0) dprintf(1, "survived\n");
  return rc;
}

static void guard_names_a_write_past_the_end_at_free(void **state) {
  const char *size = *state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR", "HAHALLOC_SUMMARY=1", "HAHALLOC_OUTPUT", "HAHALLOC_GUARD=1", NULL};
  hh_exec_self("guard", size, env, 60, &c);
  if (!hh_child_aborted(&c)) fail_msg("expected SIGABRT, the child %s\n%s", hh_child_describe(&c), c.err);
  char what[96];
  snprintf(what, sizeof what, "a write past the end of the %s-byte block at 0x%s", size, reported_pointer(&c));
  check_stacks(&c, what, "stacks_free_here", "stacks_allocate_here", true);
  hh_child_free(&c);
}

static void guard_reports_and_frees_with_on_error_continue(void **state) {
  const char *size = *state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR=continue", "HAHALLOC_SUMMARY=0", "HAHALLOC_OUTPUT", "HAHALLOC_GUARD=1", NULL};
  hh_exec_self("guard", size, env, 60, &c);
  if (!hh_child_exited_ok(&c) || !strstr(c.out, "survived"))
    fail_msg("expected the write to be reported and survived, the child %s\n--- stdout:\n%s--- stderr:\n%s",
             hh_child_describe(&c), c.out, c.err);
  if (!hh_contains(c.err, "a write past the end") || !hh_contains(c.err, "stacks_free_here"))
    fail_msg("the write past the end is not reported with its call:\n%s", c.err);
  hh_child_free(&c);
}

static void guard_exit_scan_names_a_live_block_written_past_its_end(void **state) {
  (void)state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR", "HAHALLOC_SUMMARY=1", "HAHALLOC_OUTPUT", "HAHALLOC_GUARD=1", NULL};
  hh_exec_self("guard", "exit", env, 60, &c);
  if (!hh_child_exited_ok(&c)) fail_msg("the child %s\n%s", hh_child_describe(&c), c.err);
  char what[96];
  snprintf(what, sizeof what, "the 40-byte block at 0x%s, still in use at exit", reported_pointer(&c));
  const char *e = line_with(c.err, what);
  if (e == NULL || line_with(e, "was allocated at:") == NULL || line_with(e, "stacks_allocate_here") == NULL)
    fail_msg("the exit scan does not name the block written past its end and its allocation:\n%s", c.err);
  hh_child_free(&c);
}

static void guard_reports_nothing_for_a_program_that_stays_in_bounds(void **state) {
  (void)state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR", "HAHALLOC_SUMMARY=1", "HAHALLOC_OUTPUT", "HAHALLOC_GUARD=1", NULL};
  hh_exec_self("guard", "clean", env, 120, &c);
  if (!hh_child_exited_ok(&c) || !strstr(c.out, "survived") || hh_contains(c.err, "hahalloc: error"))
    fail_msg("the child %s\n--- stdout:\n%s--- stderr:\n%s", hh_child_describe(&c), c.out, c.err);
  hh_child_free(&c);
}

/* ------------------------------------------------------------ the tests */

typedef struct scenario {
  const char *name;
  const char *call; /* the name the message must give */
} scenario;

static const char *reported_pointer(const hh_child *c) {
  const char *p = strstr(c->out, "ptr=");
  static char hex[32];
  if (!p) return NULL;
  sscanf(p + 4, "%31[0-9a-f]", hex);
  return hex;
}

/* The message names the call, as "call(" at a word start, and the pointer. */
static void check_message(const scenario *sc, const hh_child *c) {
  const char *hex = reported_pointer(c);
  if (!hex) fail_msg("%s: the child did not reach the bad call\n%s", sc->name, c->err);
  bool named = false;
  size_t len = strlen(sc->call);
  for (const char *e = c->err; (e = strstr(e, sc->call)) != NULL; e += len) {
    bool word_start =
        e == c->err || !(e[-1] == '_' || (e[-1] >= 'a' && e[-1] <= 'z') || (e[-1] >= 'A' && e[-1] <= 'Z'));
    if (word_start && e[len] == '(') named = true;
  }
  if (!named) fail_msg("%s: stderr does not name %s():\n%s", sc->name, sc->call, c->err);
  if (!hh_contains(c->err, hex)) fail_msg("%s: stderr does not show the pointer %s:\n%s", sc->name, hex, c->err);
  /* a freed block passed to realloc is a use after free, not a double free */
  if (strstr(sc->name, "_freed_") && strstr(sc->call, "alloc") &&
      (hh_contains(c->err, "double free") || !hh_contains(c->err, "use after free")))
    fail_msg("%s: a freed block given to %s() is not named a use after free:\n%s", sc->name, sc->call, c->err);
}

static void bad_call_aborts_with_a_message(void **state) {
  const scenario *sc = *state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR", NULL};
  hh_exec_self("bad", sc->name, env, 60, &c);
  if (!hh_child_aborted(&c))
    fail_msg("%s: expected SIGABRT, the child %s\n--- stdout:\n%s--- stderr:\n%s", sc->name, hh_child_describe(&c),
             c.out, c.err);
  check_message(sc, &c);
  hh_child_free(&c);
}

static void bad_call_is_reported_and_ignored_with_on_error_continue(void **state) {
  const scenario *sc = *state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR=continue", NULL};
  hh_exec_self("bad", sc->name, env, 60, &c);
  if (!hh_child_exited_ok(&c) || !strstr(c.out, "survived"))
    fail_msg("%s: expected the call to be ignored, the child %s\n--- stdout:\n%s--- stderr:\n%s", sc->name,
             hh_child_describe(&c), c.out, c.err);
  check_message(sc, &c);
  hh_child_free(&c);
}

static void check_write_after_free_message(const hh_child *c) {
  const char *hex = reported_pointer(c);
  if (!hex) fail_msg("the child did not reach the write\n%s", c->err);
  if (!hh_contains(c->err, "written to after it was freed") || !hh_contains(c->err, "use after free") ||
      !hh_contains(c->err, hex))
    fail_msg("stderr does not report the write into the freed block at %s:\n%s", hex, c->err);
}

static void write_after_free_aborts_at_the_next_allocation(void **state) {
  const char *word = *state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR", NULL};
  hh_exec_self("write_after_free", word, env, 60, &c);
  if (!hh_child_aborted(&c))
    fail_msg("expected SIGABRT, the child %s\n--- stdout:\n%s--- stderr:\n%s", hh_child_describe(&c), c.out, c.err);
  check_write_after_free_message(&c);
  hh_child_free(&c);
}

static void write_after_free_is_reported_and_survived_with_on_error_continue(void **state) {
  const char *word = *state;
  hh_child c;
  const char *env[] = {"HAHALLOC_ON_ERROR=continue", NULL};
  hh_exec_self("write_after_free", word, env, 60, &c);
  if (!hh_child_exited_ok(&c) || !strstr(c.out, "survived"))
    fail_msg("expected the damaged free list to be set aside, the child %s\n--- stdout:\n%s--- stderr:\n%s",
             hh_child_describe(&c), c.out, c.err);
  check_write_after_free_message(&c);
  hh_child_free(&c);
}

#define SCENARIO(id, call) static const scenario id = {#id, call};
SCENARIO(free_stack, "free")
SCENARIO(frhehe_stack, "frhehe")
SCENARIO(realloc_stack, "realloc")
SCENARIO(free_interior_64_16, "free")
SCENARIO(free_interior_64_8, "free")
SCENARIO(frhehe_interior_64_16, "frhehe")
SCENARIO(free_interior_1000_512, "free")
SCENARIO(free_interior_1048576_4096, "free")
SCENARIO(free_interior_9437184_16, "free")
SCENARIO(free_interior_9437184_65536, "free")
SCENARIO(realloc_interior_64_16, "realloc")
SCENARIO(rehehalloc_interior_64_8, "rehehalloc")
SCENARIO(free_mmap_page, "free")
SCENARIO(free_foreign_4MiB_aligned, "free")
SCENARIO(free_static, "free")
SCENARIO(free_glibc_block, "free")
SCENARIO(double_free_32, "free")
SCENARIO(double_free_32_after_others, "free")
SCENARIO(double_free_1000, "free")
SCENARIO(double_free_524288, "free")
SCENARIO(double_free_9437184, "free")
SCENARIO(double_frhehe_48, "frhehe")
SCENARIO(cross_thread_double_free_32, "free")
SCENARIO(pending_double_free_owner_64, "free")
SCENARIO(pending_double_free_freer_64, "free")
SCENARIO(pending_double_free_third_1000, "free")
SCENARIO(cross_thread_double_free_524288, "free")
SCENARIO(cross_thread_double_free_9437184, "free")
SCENARIO(cross_thread_interior_64_16, "free")
SCENARIO(cross_thread_interior_1000_8, "free")
SCENARIO(realloc_freed_100, "realloc")
SCENARIO(rehehalloc_freed_100, "rehehalloc")

#define DEATH(id)                                                                                                  \
  {"abort: " #id, bad_call_aborts_with_a_message, NULL, NULL, (void *)&id}, {                                      \
    "ignore with HAHALLOC_ON_ERROR=continue: " #id, bad_call_is_reported_and_ignored_with_on_error_continue, NULL, \
        NULL, (void *)&id                                                                                          \
  }

/* ------------------------------------------------------------ racing double frees */

/* Two threads free the same blocks of a third at the same moment. Each pair
 * of frees is a double free: the second finds the block free and reports
 * it, or both find it live and push it, and the owner finds the block twice
 * in the page's list of remote frees when it collects them. Either way no
 * block may be handed out twice afterwards. `arg` is the number of rounds. */
#define RACE_BLOCKS 512
static void *race_blocks[4096];
static unsigned race_count = RACE_BLOCKS;
static pthread_barrier_t race_barrier;

static _Atomic unsigned race_arrived;

/* Both threads free block i only once both have reached it. */
static void *race_free_all(void *arg) {
  (void)arg;
  pthread_barrier_wait(&race_barrier);
  for (unsigned i = 0; i < race_count; i++) {
    atomic_fetch_add(&race_arrived, 1);
    while (atomic_load(&race_arrived) < 2 * (i + 1)) sched_yield();
    free(HH_OPAQUE(race_blocks[i]));
  }
  return NULL;
}

static void race_two_threads(void) {
  pthread_t t[2];
  atomic_store(&race_arrived, 0);
  pthread_barrier_init(&race_barrier, NULL, 2);
  for (int k = 0; k < 2; k++) pthread_create(&t[k], NULL, race_free_all, NULL);
  for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
  pthread_barrier_destroy(&race_barrier);
}

/* The same race on every block of one full page but KEPT, which its owner
 * then frees one by one, trimming the heap after each free. A block pushed
 * twice counts twice: were the page given back as soon as its count said
 * empty, the kept blocks still live would be purged (read back as zeros)
 * or handed out again. */
#define KEPT 8
static int child_racing_double_free_then_empty(const char *arg) {
  int rounds = atoi(arg);
  const size_t size = 80;
  for (int r = 0; r < rounds; r++) {
    make_witnesses();
    /* one page full of blocks (the middle one of those these fill), the
     * others kept live, so that it is not its size's only page */
    enum { ALL = 3000 };
    static unsigned char *all[ALL], *other[ALL];
    unsigned char *kept[KEPT];
    for (unsigned i = 0; i < ALL; i++)
      if ((all[i] = malloc(size)) == NULL) return child_fail("malloc");
    uintptr_t page = (uintptr_t)all[ALL / 2] >> 16;
    unsigned n = 0, outside = 0;
    for (unsigned i = 0; i < ALL; i++)
      if ((uintptr_t)all[i] >> 16 == page)
        race_blocks[n++] = all[i];
      else
        other[outside++] = all[i];
    if (n < 2 * KEPT) return child_fail("a page of fewer than 16 blocks");
    for (unsigned i = 0; i < KEPT; i++) {
      kept[i] = race_blocks[n - 1 - i];
      hh_fill(kept[i], size, hh_block_hash(kept[i], size, 12));
    }
    race_count = n - KEPT;
    race_two_threads();
    malloc_trim(0);
    for (unsigned i = 0; i < KEPT; i++) {
      free(kept[i]);
      malloc_trim(0); /* a page given back now is purged */
      for (unsigned j = i + 1; j < KEPT; j++)
        if (hh_check(kept[j], size, size, hh_block_hash(kept[j], size, 12)) != SIZE_MAX)
          return child_fail("a live block of a page emptied by racing frees was lost");
    }
    for (unsigned i = 0; i < outside; i++) free(other[i]);
    int rc = heap_still_works(size);
    if (rc != 0) return rc;
  }
  dprintf(1, "survived\n");
  return 0;
}

static int child_racing_double_free(const char *arg) {
  int rounds = atoi(arg);
  for (int r = 0; r < rounds; r++) {
    make_witnesses();
    for (int i = 0; i < RACE_BLOCKS; i++) {
      race_blocks[i] = malloc(64);
      if (!race_blocks[i]) return child_fail("malloc");
      memset(race_blocks[i], 0x5a, 64);
    }
    race_count = RACE_BLOCKS;
    race_two_threads();
    int rc = heap_still_works(64); /* its mallocs collect the remote frees */
    if (rc != 0) return rc;
  }
  dprintf(1, "survived\n");
  return 0;
}

/* Runs child `what` with HAHALLOC_ON_ERROR=continue and fails the test
 * unless it exits 0 having printed "survived"; the caller reads c->err,
 * every error in it (no limit: the last may be the one looked for). */
static void run_surviving_child(const char *what, const char *arg, int timeout_s, hh_child *c) {
  const char *env[] = {"HAHALLOC_ON_ERROR=continue", "HAHALLOC_OPTIONS=error-limit=no", NULL};
  hh_exec_self(what, arg, env, timeout_s, c);
  if (!hh_child_exited_ok(c) || !strstr(c->out, "survived"))
    fail_msg("the child %s\n--- stdout:\n%s--- stderr (%zu bytes, the end):\n%s", hh_child_describe(c), c->out,
             strlen(c->err), c->err + (strlen(c->err) > 4000 ? strlen(c->err) - 4000 : 0));
}

static void racing_double_frees_are_reported_and_never_hand_a_block_out_twice(void **state) {
  (void)state;
  hh_child c;
  run_surviving_child("racing_double_free", "40", 120, &c);
  size_t told = count_of(c.err, "already free"), both = count_of(c.err, "freed by two threads at the same moment");
  printf("40 rounds of %d blocks freed by two threads at once: %zu told at the second free, %zu found when "
         "collected\n",
         RACE_BLOCKS, told, both);
  if (told + both == 0) fail_msg("no double free was reported:\n%s", c.err);
  hh_child_free(&c);
}

static void racing_double_frees_keep_live_blocks(const char *what, const char *rounds) {
  hh_child c;
  run_surviving_child(what, rounds, 120, &c);
  size_t told = count_of(c.err, "already free"), both = count_of(c.err, "freed by two threads at the same moment");
  size_t emptied = count_of(c.err, "found when its page emptied");
  printf("%s: %zu told at the second free, %zu found later (%zu when the page emptied)\n", what, told, both, emptied);
  if (told + both == 0) fail_msg("no double free was reported:\n%s", c.err);
  if (strstr(c.err, "this memory is not allocated") != NULL)
    fail_msg("a block was freed into a page already given back:\n%s", c.err);
  hh_child_free(&c);
}

static void racing_double_frees_never_give_back_a_page_with_live_blocks(void **state) {
  (void)state;
  racing_double_frees_keep_live_blocks("racing_double_free_then_empty", "20");
}

/* The owner frees a round's 2 KiB blocks, the victim last, while a second
 * thread frees the victim at the same moment and pushes it once the owner
 * is done (helper-28's df_race3). The owner's page then empties with the
 * victim counted twice, the walk drops its lists, and the page must leave
 * its root's direct slot: the fast path read the dropped list's end as a
 * range 65,535 ranges past the page's start, 128 MiB on, and crashed. */
static unsigned char *victim_2k, *flush_2k;
static _Atomic int arrived_2k, owner_done_2k;
static pthread_barrier_t barrier_2k;
static void *second_freer_2k(void *arg) {
  int rounds = *(const int *)arg;
  for (int r = 0; r < rounds; r++) {
    pthread_barrier_wait(&barrier_2k);
    atomic_fetch_add(&arrived_2k, 1);
    while (atomic_load(&arrived_2k) < 2) {}
    free(victim_2k);
    while (!atomic_load(&owner_done_2k)) {}
    free(flush_2k); /* another page: pushes the pending victim */
    pthread_barrier_wait(&barrier_2k);
  }
  return NULL;
}
static int child_racing_double_free_2k(const char *arg) {
  int rounds = atoi(arg);
  enum { N = 40, SIZE = 2048 };
  static unsigned char *b[N];
  pthread_t t;
  pthread_barrier_init(&barrier_2k, NULL, 2);
  if (pthread_create(&t, NULL, second_freer_2k, &rounds) != 0) return child_fail("pthread_create");
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < N; i++) {
      if ((b[i] = malloc(SIZE)) == NULL) return child_fail("malloc");
      hh_fill(b[i], SIZE, hh_block_hash(b[i], SIZE, 14));
    }
    victim_2k = b[N / 2];
    flush_2k = malloc(4096 + SIZE);
    atomic_store(&arrived_2k, 0);
    atomic_store(&owner_done_2k, 0);
    pthread_barrier_wait(&barrier_2k);
    for (int i = 0; i < N; i++) {
      if (b[i] == victim_2k) continue;
      if (hh_check(b[i], SIZE, SIZE, hh_block_hash(b[i], SIZE, 14)) != SIZE_MAX)
        return child_fail("a live block was handed out twice");
      free(b[i]);
    }
    atomic_fetch_add(&arrived_2k, 1);
    while (atomic_load(&arrived_2k) < 2) {}
    free(victim_2k);
    atomic_store(&owner_done_2k, 1);
    pthread_barrier_wait(&barrier_2k);
  }
  pthread_join(t, NULL);
  dprintf(1, "survived\n");
  return 0;
}

static void racing_double_frees_of_2KiB_blocks_as_a_page_empties_are_survived(void **state) {
  (void)state;
  hh_child c;
  run_surviving_child("racing_double_free_2k", "3000", 120, &c);
  size_t told = count_of(c.err, "already free"), later = count_of(c.err, "found when its page emptied");
  printf("3000 rounds: %zu told at the second free, %zu when the page emptied\n", told, later);
  if (told + later == 0) fail_msg("no double free was reported:\n%s", c.err);
  hh_child_free(&c);
}

static void racing_double_frees_never_give_back_an_exited_threads_page_with_live_blocks(void **state) {
  (void)state;
  racing_double_frees_keep_live_blocks("racing_double_free_exited", "100");
}

/* The race on the blocks of a thread that has exited, but every tenth
 * (KEPT_EVERY), which stays live. The racing threads sweep the exited
 * thread's heap themselves (it has no owner): one push of a block can land
 * in one collection and the other in the next, each list sound, the block
 * counted free twice. A new thread then takes the size over, allocates and
 * frees it all and trims; main checks the live blocks, and frees them one
 * by one, trimming after each. */
#define KEPT_EVERY 10
static unsigned char *exited_blocks[3000];
static void *allocate_and_exit(void *arg) {
  size_t size = *(const size_t *)arg;
  for (unsigned i = 0; i < 3000; i++) {
    exited_blocks[i] = malloc(size);
    if (exited_blocks[i] != NULL) hh_fill(exited_blocks[i], size, hh_block_hash(exited_blocks[i], size, 13));
  }
  return NULL;
}
static void *churn_and_trim(void *arg) {
  size_t size = *(const size_t *)arg;
  enum { N = 20000 };
  static void *p[N];
  for (unsigned i = 0; i < N; i++) {
    p[i] = malloc(size);
    if (p[i] != NULL) memset(p[i], 0x5c, size);
  }
  for (unsigned i = 0; i < N; i++) free(p[i]);
  malloc_trim(0);
  return NULL;
}
static bool exited_blocks_kept_intact(size_t size, unsigned from) {
  for (unsigned j = from; j < 3000; j += KEPT_EVERY)
    if (hh_check(exited_blocks[j], size, size, hh_block_hash(exited_blocks[j], size, 13)) != SIZE_MAX) return false;
  return true;
}
static int child_racing_double_free_exited(const char *arg) {
  int rounds = atoi(arg);
  size_t size = 80;
  for (int r = 0; r < rounds; r++) {
    pthread_t t;
    pthread_create(&t, NULL, allocate_and_exit, &size);
    pthread_join(t, NULL);
    race_count = 0;
    for (unsigned i = 0; i < 3000; i++) {
      if (exited_blocks[i] == NULL) return child_fail("malloc");
      if (i % KEPT_EVERY != KEPT_EVERY - 1) race_blocks[race_count++] = exited_blocks[i];
    }
    race_two_threads();
    pthread_create(&t, NULL, churn_and_trim, &size);
    pthread_join(t, NULL);
    if (!exited_blocks_kept_intact(size, KEPT_EVERY - 1))
      return child_fail("a live block of an exited thread's page was lost after racing frees");
    for (unsigned i = KEPT_EVERY - 1; i < 3000; i += KEPT_EVERY) {
      free(exited_blocks[i]);
      malloc_trim(0); /* a page given back now is purged */
      if (!exited_blocks_kept_intact(size, i + KEPT_EVERY))
        return child_fail("a live block of an exited thread's page was lost after racing frees and a trim");
    }
  }
  dprintf(1, "survived\n");
  return 0;
}

/* One thread: a block freed, written into (a stale p->next = NULL, which
 * makes its link look live), freed again, then the rest of its page freed
 * but one block q. The page's count says empty while q is live: the walk
 * before the page goes back must find it, report the damage and keep the
 * page, so that q is never handed out again (helper-28's reproducer of a
 * shortcut that skipped the walk for pages no other thread freed into). */
static int child_write_after_free_then_empty(const char *arg) {
  (void)arg;
  enum { N = 4000, SZ = 64 };
  static unsigned char *b[N];
  for (int i = 0; i < N; i++)
    if ((b[i] = malloc(SZ)) == NULL) return child_fail("malloc");
  unsigned char *p = b[N / 2], *q = NULL;
  uintptr_t page = (uintptr_t)p >> 16;
  for (int i = 0; i < N; i++)
    if (b[i] != p && (uintptr_t)b[i] >> 16 == page) q = b[i];
  if (q == NULL) return child_fail("a page of one block");
  memset(q, 'Q', SZ);
  free(p);
  *(void *volatile *)p = NULL; /* use after free */
  free(p);
  for (int i = 0; i < N; i++)
    if (b[i] != p && b[i] != q && (uintptr_t)b[i] >> 16 == page) free(b[i]);
  for (int i = 0; i < 20000; i++) {
    size_t s = i % 2 ? SZ : 200;
    unsigned char *r = malloc(s);
    if (r == NULL) return child_fail("malloc");
    if (r < q + SZ && r + s > q) return child_fail("the live block's memory was handed out again");
    memset(r, 'R', s);
  }
  for (int i = 0; i < SZ; i++)
    if (q[i] != 'Q') return child_fail("the live block was overwritten");
  dprintf(1, "survived\n");
  return 0;
}

static void a_write_after_free_and_a_second_free_never_give_back_a_page_with_a_live_block(void **state) {
  (void)state;
  hh_child c;
  run_surviving_child("write_after_free_then_empty", "", 60, &c);
  if (!strstr(c.err, "found when its page emptied")) fail_msg("the damage was not reported:\n%s", c.err);
  hh_child_free(&c);
}

/* A program that frees in a signal handler (glibc's malloc mostly lets it
 * through): the main thread frees an exited thread's blocks, onto its
 * chain of remote frees, while a 50 us timer's handler frees more of them.
 * The handler's frees went onto the chain in the middle of a change to
 * it, and the owner's collection took the damage for a block freed by two
 * threads at once: abort, every run. */
#define HANDLER_BLOCKS 100000
static void **handler_a, **handler_b;
static volatile long handler_next;

static void *allocate_both(void *arg) {
  (void)arg;
  for (long i = 0; i < HANDLER_BLOCKS; i++) {
    handler_a[i] = malloc(32);
    handler_b[i] = malloc(32);
  }
  return NULL;
}

static void free_from_handler(int sig) {
  (void)sig;
  for (int k = 0; k < 8 && handler_next < HANDLER_BLOCKS; k++) free(handler_b[handler_next++]);
}

static int child_free_in_handler(const char *arg) {
  (void)arg;
  handler_a = calloc(HANDLER_BLOCKS, sizeof *handler_a);
  handler_b = calloc(HANDLER_BLOCKS, sizeof *handler_b);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = free_from_handler;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  for (int round = 0; round < 5; round++) {
    make_witnesses();
    pthread_t t;
    pthread_create(&t, NULL, allocate_both, NULL);
    pthread_join(t, NULL);
    handler_next = 0;
    struct itimerval every = {{0, 50}, {0, 50}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &every, NULL);
    for (long i = 0; i < HANDLER_BLOCKS; i++) free(handler_a[i]);
    setitimer(ITIMER_REAL, &off, NULL);
    while (handler_next < HANDLER_BLOCKS) free(handler_b[handler_next++]);
    int rc = heap_still_works(32);
    if (rc != 0) return rc;
  }
  dprintf(1, "survived\n");
  return 0;
}

static void frees_in_a_signal_handler_beside_remote_frees_are_no_error(void **state) {
  (void)state;
  hh_child c;
  hh_exec_self("free_in_handler", "", NULL, 120, &c);
  if (!hh_child_exited_ok(&c) || !strstr(c.out, "survived") || strstr(c.err, "hahalloc: error"))
    fail_msg("the child %s\n--- stderr:\n%.3000s", hh_child_describe(&c), c.err);
  hh_child_free(&c);
}

static const hh_child_entry children[] = {{"bad", child_bad_call},
                                          {"write_after_free_then_empty", child_write_after_free_then_empty},
                                          {"write_after_free", child_write_after_free},
                                          {"forged_link", child_forged_link},
                                          {"overflow", child_overflow},
                                          {"stacks", child_stacks},
                                          {"many_double_frees", child_many_double_frees},
                                          {"double_frees_in_a_loop", child_double_frees_in_a_loop},
                                          {"guard", child_guard},
                                          {"racing_double_free", child_racing_double_free},
                                          {"racing_double_free_then_empty", child_racing_double_free_then_empty},
                                          {"racing_double_free_exited", child_racing_double_free_exited},
                                          {"racing_double_free_2k", child_racing_double_free_2k},
                                          {"free_in_handler", child_free_in_handler},
                                          {NULL, NULL}};

int main(int argc, char **argv) {
  hh_child_dispatch(argc, argv, children);
  hh_test_env(argv); /* the runner only: children set their own */
  const struct CMUnitTest tests[] = {
      DEATH(free_stack),
      DEATH(frhehe_stack),
      DEATH(realloc_stack),
      DEATH(free_interior_64_16),
      DEATH(free_interior_64_8),
      DEATH(frhehe_interior_64_16),
      DEATH(free_interior_1000_512),
      DEATH(free_interior_1048576_4096),
      DEATH(free_interior_9437184_16),
      DEATH(free_interior_9437184_65536),
      DEATH(realloc_interior_64_16),
      DEATH(rehehalloc_interior_64_8),
      DEATH(free_mmap_page),
      DEATH(free_foreign_4MiB_aligned),
      DEATH(free_static),
      DEATH(free_glibc_block),
      DEATH(double_free_32),
      DEATH(double_free_32_after_others),
      DEATH(double_free_1000),
      DEATH(double_free_524288),
      DEATH(double_free_9437184),
      DEATH(double_frhehe_48),
      DEATH(cross_thread_double_free_32),
      DEATH(pending_double_free_owner_64),
      DEATH(pending_double_free_freer_64),
      DEATH(pending_double_free_third_1000),
      DEATH(cross_thread_double_free_524288),
      DEATH(cross_thread_double_free_9437184),
      DEATH(cross_thread_interior_64_16),
      DEATH(cross_thread_interior_1000_8),
      DEATH(realloc_freed_100),
      DEATH(rehehalloc_freed_100),
#define WRITE_AFTER_FREE(word, what)                                                                                \
  {"abort: " what " written into a freed block's link", write_after_free_aborts_at_the_next_allocation, NULL, NULL, \
   (void *)word},                                                                                                   \
      {"ignore with HAHALLOC_ON_ERROR=continue: " what " written into a freed block's link",                        \
       write_after_free_is_reported_and_survived_with_on_error_continue, NULL, NULL, (void *)word}
      WRITE_AFTER_FREE("0", "NULL"),
      WRITE_AFTER_FREE("1", "1"),
      WRITE_AFTER_FREE("-1", "-1"),
      WRITE_AFTER_FREE("double", "a double"),
#define FORGED(how)                                                                         \
  {"abort: forged link: " how, forged_link_aborts_with_a_message, NULL, NULL, (void *)how}, \
      {"ignore with HAHALLOC_ON_ERROR=continue: forged link: " how,                         \
       forged_link_is_reported_and_survived_with_on_error_continue, NULL, NULL, (void *)how}
      FORGED("key_stack"),
      FORGED("key_static"),
      FORGED("pointer_other_page"),
      FORGED("pointer_interior"),
      FORGED("xor_live"),
      FORGED("xor_far"),
      cmocka_unit_test(overflow_into_a_freed_neighbour_aborts_at_the_next_malloc),
      cmocka_unit_test(overflow_into_a_freed_neighbour_is_survived_with_on_error_continue),
      cmocka_unit_test(overflow_met_only_by_the_exit_report_is_told_and_counted_right),
      cmocka_unit_test(damage_met_by_leak_checks_is_told_once),
      cmocka_unit_test(double_free_names_the_freeing_call_and_the_allocation),
      cmocka_unit_test(interior_free_names_the_block_it_points_into),
      cmocka_unit_test(pointer_past_a_large_block_is_named_so),
      cmocka_unit_test(messages_name_the_size_asked_for),
      cmocka_unit_test(overflow_names_the_call_that_met_it_and_the_block_that_overflowed),
      cmocka_unit_test(double_free_without_the_report_still_names_the_call),
      cmocka_unit_test(errors_past_the_first_thousand_are_counted_not_written),
      cmocka_unit_test(a_report_file_that_cannot_be_opened_is_told_once),
      cmocka_unit_test(racing_double_frees_are_reported_and_never_hand_a_block_out_twice),
      cmocka_unit_test(frees_in_a_signal_handler_beside_remote_frees_are_no_error),
      cmocka_unit_test(racing_double_frees_never_give_back_a_page_with_live_blocks),
      cmocka_unit_test(racing_double_frees_of_2KiB_blocks_as_a_page_empties_are_survived),
      cmocka_unit_test(a_write_after_free_and_a_second_free_never_give_back_a_page_with_a_live_block),
      cmocka_unit_test(racing_double_frees_never_give_back_an_exited_threads_page_with_live_blocks),
#define GUARD(size)                                                                                                \
  {"guard: a write past the end of a " size "-byte block", guard_names_a_write_past_the_end_at_free, NULL, NULL,   \
   (void *)size},                                                                                                  \
      {"guard, HAHALLOC_ON_ERROR=continue: a " size "-byte block", guard_reports_and_frees_with_on_error_continue, \
       NULL, NULL, (void *)size}
      GUARD("24"),
      GUARD("1000"),
      GUARD("1024"),
      GUARD("131064"), /* within the guard's bytes of the largest small root */
      GUARD("131072"),
      GUARD("200000"),
      GUARD("5000000"),
      cmocka_unit_test(guard_exit_scan_names_a_live_block_written_past_its_end),
      cmocka_unit_test(guard_reports_nothing_for_a_program_that_stays_in_bounds),
  };
  return cmocka_run_group_tests_name("bad pointers and double frees", tests, NULL, NULL);
}
