/* Never calls malloc itself: only strdup, in the C library. Linked the way
 * README.md and pkg-config say, it must still run on hahalloc. */
#include <string.h>

int main(void) {
  char *leak = strdup("a string of 31 bytes, leaked!!");
  __asm__ volatile("" : : "r"(leak) : "memory");
  return 0;
}
