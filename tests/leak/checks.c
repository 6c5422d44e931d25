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
  leak(33);    /* sizes of both forms of a range's record without call sites: */
  leak(44);    /* 2 bytes */
  leak(300);   /* (blocks below 32 KiB) */
  leak(40000); /* and 4 */
  show("leaked", hahalloc_leak_check(&l), &l);
  hahalloc_leak_baseline();
  show("rebased", hahalloc_leak_check(&l), &l);
  ignored_pair();
  show("ignored", hahalloc_leak_check(&l), &l);
  printf("null.return %d\n", hahalloc_leak_check(NULL));
  return 0;
}
