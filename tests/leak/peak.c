/* A known shape for --profile: 8 MB held at once by make_buffers at the
 * peak, then freed; many small allocations by churn that never hold much;
 * a small leak at exit. Lines marked SITE(name) are what
 * tests/leak/familiar.py looks for. */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static void *make_buffer(size_t n) {
  void *p = malloc(n); /* SITE(peak_buffer) */
  memset(p, 1, n);
  return p;
}

__attribute__((noinline)) static void make_buffers(void) {
  void *b[8];
  for (int i = 0; i < 8; i++) b[i] = make_buffer(1 << 20);
  for (int i = 0; i < 8; i++) free(b[i]);
}

void *volatile sink; /* so that the compiler keeps each malloc and free */

__attribute__((noinline)) static void churn(void) {
  for (int i = 0; i < 20000; i++) {
    char *p = malloc(100); /* SITE(churn) */
    p[0] = (char)i;
    sink = p;
    free(sink);
  }
}

int main(void) {
  churn();
  make_buffers();
  void *leak = malloc(4000); /* SITE(leak) */
  __asm__ volatile("" : : "r"(leak) : "memory");
  return 0;
}
