/* A library with thread-local storage, opened with dlopen by the scenario
 * dlopen_tls_joined (scenarios.c): its __thread variables live in dynamic
 * TLS, a block glibc allocates per thread and hangs on the thread's DTV. */
#include <stdlib.h>
#include <string.h>

__thread char tls_buffer[400];
__thread void *tls_block;

void dyntls_use(void);
void dyntls_use(void) {
  memset(tls_buffer, 1, sizeof tls_buffer);
  tls_block = malloc(100000); /* only this thread's __thread pointer holds it */
}
