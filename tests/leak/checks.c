/* The leak-check API (hahalloc_leak_check, hahalloc_leak_baseline,
 * hahalloc_ignore) as a test suite would use it; prints what it finds for
 * tests/leak/familiar.py, one "name value" per line. Linked with
 * -lhahalloc. */
#include <stdio.h>
#include <stdlib.h>

#include "hahalloc.h"

void *volatile kept;

__attribute__((noinline)) static void leak(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" : : "r"(p) : "memory");
}

/* A block reachable only from an ignored one, and an ignored block of a
 * size whose record takes 4 bytes without call sites (64 takes 2). */
__attribute__((noinline)) static void ignored_pair(void) {
  void **holder = malloc(64);
  holder[0] = malloc(1000);
  hahalloc_ignore(holder);
  hahalloc_ignore(malloc(40000));
}

/* Requests that leave a block much slack (report on: a packed record, one
 * 32-bit word with 10 bits of it): a small block with a large alignment, and
 * a realloc that shrinks a block by more than 127 bytes (the old width).
 * Their sizes must come back exact: 8 + 24 + 600 bytes. */
__attribute__((noinline)) static void odd_sizes(void) {
  void *p = NULL;
  if (posix_memalign(&p, 512, 8) != 0) abort();
  __asm__ volatile("" : : "r"(p) : "memory");
  p = aligned_alloc(1024, 24);
  __asm__ volatile("" : : "r"(p) : "memory");
  p = malloc(1000);
  __asm__ volatile("" : "+r"(p) : : "memory");
  p = realloc(p, 600);
  __asm__ volatile("" : : "r"(p) : "memory");
}

static void show(const char *when, int r, const struct hahalloc_leaks *l) {
  printf("%s.return %d\n", when, r);
  printf("%s.definite %zu %zu\n", when, l->definite.bytes, l->definite.blocks);
  printf("%s.new_definite %zu %zu\n", when, l->new_definite.bytes, l->new_definite.blocks);
  printf("%s.reachable %zu %zu\n", when, l->reachable.bytes, l->reachable.blocks);
  printf("%s.suppressed %zu %zu\n", when, l->suppressed.bytes, l->suppressed.blocks);
}

int main(void) {
  struct hahalloc_leaks l;
  kept = malloc(5);
  leak(111); /* before the baseline */
  printf("baseline.return %d\n", hahalloc_leak_baseline());
  show("start", hahalloc_leak_check(&l), &l);
  leak(33);    /* sizes of both narrow forms of a range's record (no call sites): */
  leak(44);    /* 2 bytes */
  leak(300);   /* (blocks below 32 KiB; packed with the report on) */
  leak(40000); /* and 4 */
  show("leaked", hahalloc_leak_check(&l), &l);
  hahalloc_leak_baseline();
  show("rebased", hahalloc_leak_check(&l), &l);
  ignored_pair();
  show("ignored", hahalloc_leak_check(&l), &l);
  hahalloc_leak_baseline();
  odd_sizes();
  show("odd", hahalloc_leak_check(&l), &l);
  printf("null.return %d\n", hahalloc_leak_check(NULL));
  return 0;
}
