/* Uses tests/safety/late.c's library, whose destructor runs at exit. */
#include <stdio.h>

int late_nodes(void);

int main(void) {
  printf("%d nodes\n", late_nodes());
  return 0;
}
