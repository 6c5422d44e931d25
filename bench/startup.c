/*
 * startup: process start-up with the allocator preloaded.
 *
 * Runs a program we did not write (coreutils' true, by default) `count`
 * times, one after another, each with the environment this program got:
 * under LD_PRELOAD every run loads the allocator, relocates it and runs its
 * initialisation before main. A shell script, a build or a test suite pays
 * this for every process it starts, whatever the program allocates. The
 * program must exit with status 0.
 *
 *   startup count=2000 prog=/bin/true
 */
#include "common.h" /* first: it defines _GNU_SOURCE */

#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
  bench_which(argc, argv);
  long count = arg_long(argc, argv, "count", 2000);
  const char *prog = arg_str(argc, argv, "prog", "/bin/true");
  if (count < 1) fail("bad count", 0);
  char *child_argv[] = {(char *)prog, NULL};
  double t0 = now_sec();
  for (long i = 0; i < count; i++) {
    pid_t pid;
    int err = posix_spawn(&pid, prog, NULL, NULL, child_argv, environ);
    if (err != 0) {
      fprintf(stderr, "startup: %s: %s\n", prog, strerror(err));
      fail("posix_spawn", (size_t)i);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fail("the program failed", (size_t)i);
  }
  double t = now_sec() - t0;
  printf("ok startup count=%ld prog=%s %.1f us per process\n", count, prog, t * 1e6 / (double)count);
  return 0;
}
