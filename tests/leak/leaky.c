/* Leaks in known ways; tests/leak/run.py checks the report line by line.
 * Built twice: preloaded into plain malloc calls, and linked with
 * -lhahalloc using the seed's API (-DUSE_API). Lines marked SITE(name) are
 * the allocation sites the report must name. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef USE_API
#include "hahalloc.h"
#define ALLOC(n) hahalloc(n)
#define ZALLOC(n) chahalloc(n)
#define FREE(p) frhehe(p)
#else
#define ALLOC(n) malloc(n)
#define ZALLOC(n) calloc(1, n)
#define FREE(p) free(p)
#endif

struct node {
  struct node *next;
  char payload[40];
};

void *keep_global; /* still reachable at exit */

__attribute__((noinline)) void leak_direct(void) {
  char *p = ALLOC(100); /* SITE(direct) */
  memset(p, 'x', 100);
  __asm__ volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline)) void leak_indirect(void) {
  struct node *head = ZALLOC(sizeof *head); /* SITE(indirect_head) */
  head->next = ZALLOC(sizeof *head);        /* SITE(indirect_child) */
  __asm__ volatile("" : : "r"(head) : "memory");
}

__attribute__((noinline)) void keep_reachable(void) {
  keep_global = ALLOC(200); /* SITE(reachable) */
}

char *interior_global; /* points 8 bytes into its block: possibly lost */

__attribute__((noinline)) void keep_interior(void) {
  char *p = ALLOC(64); /* SITE(possible) */
  memset(p, 'i', 64);
  interior_global = p + 8;
}

__attribute__((noinline)) char *dup_string(void) {
  char *s = strdup("fifteen chars!!"); /* SITE(strdup) */
  __asm__ volatile("" : : "r"(s) : "memory"); /* no tail call: keep this frame */
  return s;
}

__attribute__((noinline)) void freed_ok(void) {
  for (int i = 0; i < 1000; i++) FREE(ALLOC((size_t)i + 1));
}

static void *thread_main(void *arg) {
  (void)arg;
  char *p = ALLOC(300); /* SITE(thread) */
  memset(p, 0, 300);
  __asm__ volatile("" : : "r"(p) : "memory");
  return NULL;
}

int main(void) {
  leak_direct();
  leak_indirect();
  keep_reachable();
  keep_interior();
  char *s = dup_string();
  s[0] = 'F';
  __asm__ volatile("" : : "r"(s) : "memory");
  s = NULL;
  freed_ok();
  pthread_t t;
  pthread_create(&t, NULL, thread_main, NULL);
  pthread_join(t, NULL);
  return 0;
}
