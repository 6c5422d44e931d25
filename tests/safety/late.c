/*
 * A library that frees in its destructor what it allocated in its
 * constructor, as GnuTLS does, but loses part of it on the way: the head of
 * a three-node list is freed, its two successors are not. After the
 * destructor (valgrind's view at _exit) they are one definite and one
 * indirect leak; before it, all three are still reachable.
 */
#include <stdlib.h>

struct node {
  struct node *next;
  char pad[40];
};

static struct node *head;

__attribute__((constructor)) static void late_init(void) {
  for (int i = 0; i < 3; i++) {
    struct node *n = malloc(sizeof *n);
    n->next = head;
    head = n;
  }
}

__attribute__((destructor)) static void late_fini(void) {
  free(head);
  head = NULL;
}

int late_nodes(void) { return head != NULL ? 3 : 0; }
