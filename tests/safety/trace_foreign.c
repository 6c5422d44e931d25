/*
 * The exit stop's tracer (src/report/trace.c) given a thread id that is
 * not a thread of this process (a thread ended, and its id went to a task
 * of another process): it must not stop that task, nor keep a signal from
 * it. Linked with the static library, to call hh_trace_stop directly with
 * a child process's id. Prints "held H answered A traced-after T".
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int hh_trace_stop(const int *tids, int n, void *out, uintptr_t text_lo, uintptr_t text_hi, intptr_t busy_off);
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

int main(void) {
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
  int held = hh_trace_stop(&tid, 1, out, 0, 0, (intptr_t)&not_busy - (intptr_t)pthread_self());
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
