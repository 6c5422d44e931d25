/* Leaks for the stack tests of tests/leak/familiar.py: a call through a
 * static function and an exported one (a stripped binary must not name the
 * static one after the exported one), strdup, and realloc in place and
 * moving (the block takes the realloc call's stack, as valgrind says). */
#include <stdlib.h>
#include <string.h>

static char *hidden(size_t n) {
  char *p = malloc(n); /* SITE(hidden) */
  memset(p, 1, n);
  return p;
}

__attribute__((noinline)) char *exported(size_t n) {
  char *p = hidden(n);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

__attribute__((noinline)) static void leak_static(void) {
  char *p = exported(77);
  __asm__ volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline)) static void leak_realloc(void) {
  char *small = malloc(40);
  small = realloc(small, 44); /* SITE(realloc_in_place) */
  char *big = malloc(40);
  big = realloc(big, 100000); /* SITE(realloc_moved) */
  __asm__ volatile("" : : "r"(small), "r"(big) : "memory");
}

__attribute__((noinline)) static void leak_strdup(void) {
  char *s = strdup("seventeen bytes!"); /* SITE(strdup) */
  __asm__ volatile("" : : "r"(s) : "memory");
}

int main(void) {
  leak_static();
  leak_realloc();
  leak_strdup();
  return 0;
}
