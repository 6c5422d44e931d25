/* A program built with ThreadSanitizer (clang -fsanitize=thread: its
 * runtime, linked into the program, intercepts malloc and clone), run under
 * the hahalloc command: its heap is not ours, and the report must leave it
 * as it is. Also built with gcc's AddressSanitizer and ThreadSanitizer,
 * whose runtimes are shared libraries (asan_dyn_prog, tsan_dyn_prog). A thread that blocks every signal is still running at exit, so
 * the report's tracer starts. Prints "ok"; status 0. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *blocked(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, NULL);
  for (;;) pause();
  return NULL;
}

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, blocked, NULL) != 0) return 1;
  char *p = malloc(100);
  snprintf(p, 100, "ok");
  puts(p);
  free(p);
  usleep(10000);
  return 0;
}
