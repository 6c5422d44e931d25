/*
 * A small program that leaks in the ways the report knows: run it under
 * hahalloc (`make demo`, or `build/hahalloc -- build/examples/leaky`).
 * It uses the plain malloc family; hahalloc reaches it through LD_PRELOAD.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
  struct node *next;
  char name[24];
};

static struct node *registry; /* a global: what it points to is still reachable */

static struct node *make_list(int n) {
  struct node *head = NULL;
  for (int i = 0; i < n; i++) {
    struct node *x = malloc(sizeof *x);
    snprintf(x->name, sizeof x->name, "node %d", i);
    x->next = head;
    head = x;
  }
  return head;
}

static char *greeting(const char *who) {
  char buf[64];
  snprintf(buf, sizeof buf, "hello, %s", who);
  return strdup(buf); /* the caller forgets to free it */
}

int main(void) {
  registry = make_list(2); /* still reachable at exit */
  struct node *list = make_list(3);
  printf("%s, %s, %s\n", list->name, list->next->name, list->next->next->name);
  list = NULL; /* the head is definitely lost, the two nodes after it indirectly */
  char *g = greeting("world");
  puts(g);
  g = NULL; /* definitely lost, allocated through strdup */
  int *fine = calloc(100, sizeof *fine);
  free(fine); /* freed: not in the report */
  return list == NULL && g == NULL ? 0 : 1;
}
