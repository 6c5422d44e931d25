/* A statically linked program: LD_PRELOAD cannot reach it. */
#include <stdio.h>
#include <stdlib.h>

void *volatile sink;

int main(void) {
  sink = malloc(100);
  sink = NULL;
  puts("static");
  return 0;
}
