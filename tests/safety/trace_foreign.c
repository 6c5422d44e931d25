/*
 * The exit stop's tracer (src/report/trace.c) given a thread id that is
 * not a thread of this process (a thread ended, and its id went to a task
 * of another process): it must not stop that task, nor keep a signal from
 * it. Linked with the static library, to call hh_trace_stop directly with
 * a child process's id. Prints "held H answered A traced-after T".
 *
 * With the argument "completed": a thread of ours that blocks every signal
 * and makes system calls that return at once (sched_yield) is stopped 20
 * times, each time at a call done or in its own code, never asleep in one;
 * once the scan is over (hh_trace_resume with a far deadline) it must run
 * on at once. Held until the deadline, it had the report's symboliser wait
 * for a lock it held (helper-50). Prints "stopped S ran-on R".
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int hh_trace_stop(const int *tids, int n, void *out, uintptr_t text_lo, uintptr_t text_hi, intptr_t busy_off,
                  uintptr_t libc_lo, uintptr_t libc_hi);
void hh_trace_resume(int64_t hold_until);

static int answer = -1;
static void on_usr1(int sig) {
  (void)sig;
  if (write(answer, "!", 1) != 1) _exit(3);
}

/* The task's tracer, from /proc/PID/status: 0 when none. */
static int tracer_of(pid_t pid) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *t = strstr(buf, "\nTracerPid:");
  return t != NULL ? atoi(t + 11) : -1;
}

static _Atomic long spins;
static void *yielder(void *arg) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  for (;;) {
    syscall(SYS_sched_yield);
    spins++;
  }
  return arg;
}

static int completed(void) {
  pthread_t t;
  static _Atomic int tid;
  pthread_create(&t, NULL, yielder, NULL);
  while (spins == 0) usleep(1000);
  /* the yielder's id, from /proc/self/task: the entry that is not ours */
  char path[64];
  for (int id = getpid() + 1; id < getpid() + 100000 && tid == 0; id++) {
    snprintf(path, sizeof path, "/proc/self/task/%d", id);
    if (access(path, F_OK) == 0) tid = id;
  }
  int stopped = 0, ran = 0;
  static int not_busy;
  for (int i = 0; i < 20; i++) {
    static uint64_t out[4096];
    memset(out, 0, sizeof out);
    int id = tid;
    stopped += hh_trace_stop(&id, 1, out, 0, 0, (intptr_t)&not_busy - (intptr_t)pthread_self(), 0, 0);
    hh_trace_resume(INT64_MAX);
    long before = spins;
    for (int k = 0; k < 200 && spins == before; k++) usleep(1000);
    ran += spins != before;
  }
  printf("stopped %d ran-on %d\n", stopped, ran);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "completed")) return completed();
  int p[2];
  if (pipe(p) != 0) return 3;
  pid_t child = fork();
  if (child == 0) {
    answer = p[1];
    signal(SIGUSR1, on_usr1);
    for (;;) pause();
  }
  close(p[1]);
  usleep(50000);
  static uint64_t out[4096]; /* room for a record, zeroed */
  int tid = (int)child;
  static int not_busy; /* the unwinder's flag, as the tracer reads it: at the same offset from the child's TCB */
  int held = hh_trace_stop(&tid, 1, out, 0, 0, (intptr_t)&not_busy - (intptr_t)pthread_self(), 0, 0);
  kill(child, SIGUSR1); /* delivered, not held by a tracer that never lets it go */
  struct pollfd pf = {.fd = p[0], .events = POLLIN};
  char c;
  int answered = poll(&pf, 1, 2000) == 1 && read(p[0], &c, 1) == 1;
  hh_trace_resume(0);
  int traced = 1;
  for (int i = 0; i < 200 && (traced = tracer_of(child)) > 0; i++) usleep(10000);
  printf("held %d answered %d traced-after %d\n", held, answered, traced > 0);
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  return 0;
}
