/* hahalloc: runs a program with the allocator preloaded (stub). */
#include <stdio.h>

int main(void) {
  fputs("hahalloc: not built yet\n", stderr);
  return 2;
}
