/*
 * launch: run one benchmark and measure it, for bench/run.py.
 *
 *   launch RESULT_FILE TIMEOUT_S PROGRAM ARGS...
 *
 * Forks, sets LD_PRELOAD in the child from BENCH_PRELOAD (and removes
 * BENCH_PRELOAD), execs PROGRAM with the launcher's stdout and stderr, and
 * writes "<wall seconds> <peak RSS KiB> <wait status> <timed out 0/1>" to
 * RESULT_FILE. The launcher itself is run with no preload.
 *
 * Why not spawn from Python directly: the kernel carries the RSS high-water
 * mark of the address space that exec replaces into the child's ru_maxrss,
 * and Python spawns with vfork, so every child would report at least the
 * Python interpreter's RSS. Forked from this small program, the floor is
 * about 1 MiB, below any benchmark's own footprint.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile pid_t child;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
  if (child > 0) kill(child, SIGKILL);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: launch RESULT_FILE TIMEOUT_S PROGRAM ARGS...\n");
    return 2;
  }
  FILE *res = fopen(argv[1], "w");
  if (!res) {
    perror(argv[1]);
    return 2;
  }
  unsigned timeout = (unsigned)atoi(argv[2]);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 2;
  }
  if (pid == 0) {
    const char *pre = getenv("BENCH_PRELOAD");
    if (pre && *pre) setenv("LD_PRELOAD", pre, 1);
    unsetenv("BENCH_PRELOAD");
    execv(argv[3], argv + 3);
    perror(argv[3]);
    _exit(127);
  }
  child = pid;
  signal(SIGALRM, on_alarm);
  if (timeout) alarm(timeout);
  int status = 0;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {}
  clock_gettime(CLOCK_MONOTONIC, &t1);
  alarm(0);
  double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  fprintf(res, "%.6f %ld %d %d\n", wall, ru.ru_maxrss, status, (int)timed_out);
  fclose(res);
  return 0;
}
