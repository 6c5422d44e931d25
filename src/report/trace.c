/*
 * The exit stop's second means (stop.c): ptrace, for the threads its signal
 * could not stop, as LeakSanitizer stops the world with a tracer.
 *
 * A thread that blocks every signal (a pool's worker, in a program that
 * takes its signals in one thread) is not sent the stop signal, nor is one
 * that waits for signals in sigwait or a signalfd. Without its registers
 * the scan reads such a thread's stack whole, dead frames included (of 100
 * idle workers' lost blocks, 1 was found), holds its system call's
 * arguments as anchors but not its callee-saved registers (a false leak is
 * possible), and takes a running one's whole heap for reachable. Stopped
 * here, it is a thread like the others: its registers are read, its stack
 * is read from its stack pointer up, its heap is judged block by block.
 *
 * The tracer is a process that shares our memory (clone(CLONE_VM) with no
 * exit signal: only a __WALL wait sees it, as spawn.c's go-between). It
 * runs with every signal blocked, on its own stack, and makes raw system
 * calls only. It seizes each thread (PTRACE_SEIZE: no SIGSTOP is sent),
 * interrupts it (PTRACE_INTERRUPT), waits for its stop until a deadline,
 * reads its registers, and holds it stopped until the scan is over; then
 * it detaches. It dies with the thread that made it (PR_SET_PDEATHSIG), and
 * the kernel detaches a dead tracer's threads. Nothing is tried when ptrace
 * would be refused by Yama (ptrace_scope above 0, or 1 without root); a
 * refusal for another reason (a debugger already traces the thread, the
 * process is not dumpable, a container's policy) leaves the thread to the
 * conservative rules, as before.
 *
 * What the stop changes in a thread is put back before it runs again:
 * - a wait the interrupt ended with EINTR (epoll_wait, sigtimedwait, semop:
 *   the kernel restarts the others by itself) is made again, as stop.c's
 *   handler does (hh_call_restartable), unless a signal the thread takes is
 *   pending: it would have ended the wait;
 * - a signal that reached the thread while it was held is delivered as it
 *   detaches.
 * A thread stopped inside the allocator (its code, or the unwinder learning
 * a call site's rule, whose busy flag is read in the thread's own TLS) may
 * hold a block in no register yet: it runs on for RUN_ON_NS and is
 * interrupted again, until the deadline, then left to the conservative
 * rules.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "format.h"
#include "hooks.h"
#include "raw.h"
#include "report.h"

#if defined(__x86_64__)

#define STOP_WAIT_NS (300 * 1000 * 1000L) /* for all the threads' stops */
/* A thread found inside the allocator runs this long, and is interrupted
 * again until the deadline: one that allocates without pause (a list
 * rebuilt in a loop) is in the allocator at most stops, and 50 tries of
 * 1 ms left it running in 1 of 12 exits. */
#define RUN_ON_NS (150 * 1000L)
#define STACK_SIZE (64 * 1024)

/* T_FOREIGN: the thread id names a task of another process now (our
 * thread ended, and its id was given again): seized, never interrupted,
 * let go at its first stop. */
enum { T_NONE, T_RUNNING, T_STOPPED, T_GONE, T_FOREIGN };

typedef struct traced {
  int tid;
  int state;
  int inject;     /* a signal to deliver as it detaches (it reached the thread while held) */
  bool ours;      /* stopped by our interrupt (not by a signal or a group stop) */
  bool held;      /* stopped when the tracer answered: in the records */
  bool asleep;    /* it slept as the tracer looked, before the interrupt */
  int64_t resume; /* T_RUNNING after a stop inside the allocator: when to interrupt again */
  struct user_regs_struct regs;
} traced;

typedef struct tracer {
  traced *t;
  int n;
  int64_t deadline;
  uintptr_t text_lo, text_hi;
  intptr_t busy_off;           /* the unwinder's busy flag, from a thread's pointer (initial-exec TLS) */
  int pid;                     /* the tracer's */
  int tgid;                    /* ours */
  _Atomic(int) phase;          /* PHASE_*: the tracer's answer, or the caller's resume */
  _Atomic(int64_t) release_at; /* when the threads held in a system call go */
  int held_in_call;            /* how many: the tracer lives until then */
} tracer;

/* The tracer works, then holds the threads it stopped (its answer), until
 * the scan is over (resumed): then those in their own code go, and those
 * in a system call stay stopped until `release_at`, as stop.c's sleepers
 * do: let go, a write a full pipe blocked half done would return its short
 * count, a socket call under SO_RCVTIMEO its timeout, as the process ends.
 * If something after the report waits for one of them (a library's static
 * destructor that joins a thread), it goes SLEEPER_GRACE_NS after the
 * report is out. */
enum { PHASE_WORKING, PHASE_HELD, PHASE_RESUMED };

static int64_t raw_now(void) {
  struct timespec ts;
  RAW(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void raw_nap(long ns) {
  struct timespec ts = {0, ns};
  RAW(SYS_nanosleep, &ts, NULL);
}

/* `n` bytes at `at` of our memory, read without faulting. */
static bool raw_read(const tracer *tr, uintptr_t at, void *buf, size_t n) {
  struct iovec local = {buf, n}, remote = {(void *)at, n};
  return RAW(SYS_process_vm_readv, tr->pid, &local, 1, &remote, 1, 0) == (long)n;
}

/* /proc/TGID/task/TID/`name` into `buf` (`size` bytes, a NUL after what
 * was read): the bytes read, or -1. Not /proc/self: that is the tracer. */
static long task_file(int tgid, int tid, const char *name, char *buf, size_t size) {
  char path[64];
  hh_snformat(path, sizeof path, "/proc/%d/task/%d/%s", tgid, tid, name);
  long fd = RAW(SYS_open, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  long got = RAW(SYS_read, fd, buf, size - 1);
  RAW(SYS_close, fd);
  if (got < 0) return -1;
  buf[got] = '\0';
  return got;
}

/* Whether task `tid` is a thread of process `tgid`: procfs finds it under
 * the process only then. Asked once it is seized, when its id can no
 * longer be given again. */
static bool thread_of(int tgid, int tid) {
  char path[64];
  hh_snformat(path, sizeof path, "/proc/%d/task/%d", tgid, tid);
  return RAW(SYS_access, path, F_OK) == 0;
}

/* Whether task `tid` of process `tgid` sleeps (stat(5): state S), as a
 * thread waiting in a call does; not one running, or in the kernel's work
 * (a munmap). Read before it is interrupted. */
static bool sleeping(int tgid, int tid) {
  char buf[512];
  if (task_file(tgid, tid, "stat", buf, sizeof buf) <= 0) return false;
  const char *paren = strrchr(buf, ')');
  return paren != NULL && paren[1] == ' ' && paren[2] == 'S';
}

static ssize_t raw_read_fd(int fd, void *buf, size_t n) { return RAW(SYS_read, fd, buf, n); }

/* Whether thread `tid` of process `tgid` has a signal pending that it does
 * not block: it takes it as it runs again (status(5), read whole to its
 * signal lines: hh_status_read). Unknown: as if one were. Only the tracer
 * calls it: the buffer is static. */
static bool signal_waiting(int tgid, int tid) {
  static char buf[HH_STATUS_BUF];
  char path[64];
  hh_snformat(path, sizeof path, "/proc/%d/task/%d/status", tgid, tid);
  long fd = RAW(SYS_open, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  bool whole = hh_status_read((int)fd, raw_read_fd, buf, "SigBlk", NULL);
  RAW(SYS_close, fd);
  bool pnd, shd, blk;
  uint64_t pending = hh_status_mask(buf, "SigPnd", &pnd) | hh_status_mask(buf, "ShdPnd", &shd);
  uint64_t blocked = hh_status_mask(buf, "SigBlk", &blk);
  return !whole || !(pnd && shd && blk) || (pending & ~blocked) != 0;
}

/* Inside the allocator: its code, or the unwinder's learning (in libgcc or
 * the loader, for us). */
static bool busy(const tracer *tr, const struct user_regs_struct *r) {
  if (r->rip >= tr->text_lo && r->rip < tr->text_hi) return true;
  int flag = 0;
  return raw_read(tr, (uintptr_t)((intptr_t)r->fs_base + tr->busy_off), &flag, sizeof flag) && flag != 0;
}

static traced *find(tracer *tr, long tid) {
  for (int i = 0; i < tr->n; i++)
    if (tr->t[i].tid == tid) return &tr->t[i];
  return NULL;
}

/* A stop (or the end) of a thread we trace. */
static void stopped(tracer *tr, traced *t, int status) {
  if (!WIFSTOPPED(status)) {
    t->state = T_GONE;
    return;
  }
  int sig = WSTOPSIG(status), event = status >> 16;
  if (t->state == T_FOREIGN) { /* a signal's delivery, or a group stop: its own, delivered */
    RAW(SYS_ptrace, PTRACE_DETACH, t->tid, 0, event == 0 ? sig : 0);
    t->state = T_GONE;
    return;
  }
  t->ours = event == PTRACE_EVENT_STOP && sig == SIGTRAP;
  if (event == 0) t->inject = sig; /* a signal's delivery: it goes on as we detach */
  t->state = T_STOPPED;
  if (RAW(SYS_ptrace, PTRACE_GETREGS, t->tid, 0, &t->regs) != 0) {
    t->state = T_GONE; /* ended meanwhile */
    return;
  }
  if (!busy(tr, &t->regs)) return;
  /* inside the allocator: let it run on, and interrupt it again */
  if (raw_now() + RUN_ON_NS < tr->deadline && RAW(SYS_ptrace, PTRACE_CONT, t->tid, 0, t->inject) == 0) {
    t->inject = 0;
    t->state = T_RUNNING;
    t->resume = raw_now() + RUN_ON_NS;
  } else {
    RAW(SYS_ptrace, PTRACE_DETACH, t->tid, 0, t->inject); /* left to the conservative rules */
    t->state = T_NONE;
  }
}

/* Stopped asleep in a system call that the stop ended: it slept as the
 * tracer looked (a write a full pipe blocked half done answers with its
 * count, not EINTR), or its answer is one the kernel gives an interrupted
 * call (EINTR, or one of the ERESTART* it turns into a restart). Held
 * until the process ends. A call that returned on its own is not (a munmap
 * done in dlclose, its thread holding the loader's lock that the report's
 * symboliser waits for: exits took 2 s, helper-50). */
static bool interrupted(const traced *t) {
  const struct user_regs_struct *r = &t->regs;
  long rax = (long)r->rax;
  return (long)r->orig_rax >= 0 &&
         (t->asleep || rax == -EINTR || rax == -512 || rax == -513 || rax == -514 || rax == -516);
}

/* Puts back what the stop changed (a wait it ended) and lets the thread go. */
static void let_go(const tracer *tr, traced *t) {
  struct user_regs_struct *r = &t->regs;
  long nr = (long)r->orig_rax;
  if (t->ours && t->inject == 0 && (long)r->rax == -EINTR && nr >= 0 && hh_call_restartable(nr, r->rsi) &&
      !signal_waiting(tr->tgid, t->tid)) {
    r->rax = r->orig_rax;
    r->rip -= 2;
    RAW(SYS_ptrace, PTRACE_SETREGS, t->tid, 0, r);
  }
  RAW(SYS_ptrace, PTRACE_DETACH, t->tid, 0, t->inject);
}

static int tracer_main(void *arg) {
  tracer *tr = arg;
  RAW(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  tr->pid = (int)RAW(SYS_getpid, 0); /* raw_read's: our memory, through the tracer's own pid */
  /* Its descriptors are a copy of the program's: kept, they would hold the
   * program's pipes and sockets open (a peer waiting for EOF) for as long
   * as it holds threads. */
  if (RAW(SYS_close_range, 0, ~0u, 0) != 0)
    for (int fd = 0; fd < 65536; fd++) RAW(SYS_close, fd);
  for (int i = 0; i < tr->n; i++) {
    traced *t = &tr->t[i];
    if (RAW(SYS_ptrace, PTRACE_SEIZE, t->tid, 0, 0) != 0) continue;
    if (!thread_of(tr->tgid, t->tid)) {
      t->state = T_FOREIGN;
      continue;
    }
    t->asleep = sleeping(tr->tgid, t->tid);
    if (RAW(SYS_ptrace, PTRACE_INTERRUPT, t->tid, 0, 0) == 0) t->state = T_RUNNING;
  }
  for (;;) {
    bool waiting = false;
    int64_t now = raw_now();
    for (int i = 0; i < tr->n; i++) {
      traced *t = &tr->t[i];
      if (t->state != T_RUNNING) continue;
      waiting = true;
      if (t->resume != 0 && now >= t->resume) {
        t->resume = 0;
        RAW(SYS_ptrace, PTRACE_INTERRUPT, t->tid, 0, 0);
      }
    }
    if (!waiting || now >= tr->deadline || atomic_load(&tr->phase) != PHASE_WORKING) break;
    int status;
    long tid = RAW(SYS_wait4, -1, &status, __WALL | WNOHANG, 0);
    traced *t = tid > 0 ? find(tr, tid) : NULL;
    if (t != NULL)
      stopped(tr, t, status);
    else if (tid == 0 || tid == -EINTR)
      raw_nap(100 * 1000);
    else if (tid < 0)
      break; /* ECHILD: none left */
  }
  int held = 0;
  for (int i = 0; i < tr->n; i++) {
    traced *t = &tr->t[i];
    t->held = t->state == T_STOPPED;
    held += t->held;
    tr->held_in_call += t->held && interrupted(t);
  }
  int expected = PHASE_WORKING;
  if (atomic_compare_exchange_strong(&tr->phase, &expected, PHASE_HELD)) RAW(SYS_futex, &tr->phase, FUTEX_WAKE, 1, 0);
  /* Nothing to hold: it ends at once, and is reaped, not left for the
   * program's own waitpid(-1, __WALL) to find (helper-50). The threads it
   * seized and never saw stop are detached by the kernel. */
  for (bool resumed = held == 0;;) {
    /* a thread whose stop came late (it was in the kernel, unable to
     * stop) is not in the records: it goes at once */
    int status;
    long tid = RAW(SYS_wait4, -1, &status, __WALL | WNOHANG, 0);
    traced *t = tid > 0 ? find(tr, tid) : NULL;
    if (t != NULL && !t->held && (t->state == T_RUNNING || t->state == T_FOREIGN)) {
      stopped(tr, t, status);
      if (t->state == T_STOPPED) {
        let_go(tr, t);
        t->state = T_NONE;
      }
      continue;
    }
    if (!resumed && atomic_load(&tr->phase) == PHASE_RESUMED) {
      resumed = true;
      for (int i = 0; i < tr->n; i++)
        if (tr->t[i].held && !interrupted(&tr->t[i])) { /* in its own code */
          let_go(tr, &tr->t[i]);
          tr->t[i].held = false;
          held--;
        }
    }
    if (resumed && (held == 0 || raw_now() >= atomic_load(&tr->release_at))) break;
    raw_nap(10 * 1000 * 1000L);
  }
  for (int i = 0; i < tr->n; i++)
    if (tr->t[i].held) let_go(tr, &tr->t[i]);
  RAW(SYS_exit, 0); /* the threads still running are detached by the kernel */
  return 0;
}

/* Waits for the tracer's end and reaps it (killed after 2 s). */
static void reap(int pid) {
  for (int tries = 0;; tries++) {
    int r = waitpid(pid, NULL, __WALL | WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    if (tries == 2000) kill(pid, SIGKILL);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
}

static tracer tr;
static char *stack;
static int tracer_pid, tracer_of; /* the tracer, and the process it traces (not a fork's child) */

/* The tracer has ended or is about to: reaped, its memory given back. */
static void finish(void) {
  reap(tracer_pid);
  tracer_pid = 0;
  hh_report_unmap(stack, STACK_SIZE + (size_t)tr.n * sizeof(traced));
  stack = NULL;
}

/* Whether Yama lets a child of ours trace us: not at scope 0, root at 1. */
static bool yama_allows(void) {
  char c = '0';
  int fd = open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true; /* no Yama */
  ssize_t got = read(fd, &c, 1);
  close(fd);
  return got == 1 && (c == '0' || (c == '1' && geteuid() == 0));
}

static void release_by(int64_t at) {
  int64_t cur = atomic_load(&tr.release_at);
  while (at < cur && !atomic_compare_exchange_weak(&tr.release_at, &cur, at)) {}
}

int hh_trace_stop(const int *tids, int n, hh_thread_regs *out, uintptr_t text_lo, uintptr_t text_hi, intptr_t busy_off,
                  uintptr_t libc_lo, uintptr_t libc_hi) {
  if (tracer_pid > 0 && tracer_of == getpid()) { /* a second stop: the first one's threads go first */
    release_by(0);
    atomic_store(&tr.phase, PHASE_RESUMED);
    finish();
  }
  tracer_pid = 0;
  /* A filter inherited at exec (systemd's @system-service has no ptrace)
   * would kill the tracer, which may leave a core dump: not tried. */
  if (n <= 0 || hh_sandboxed() || hh_seccomp_inherited() || !yama_allows()) return 0;
  size_t need = STACK_SIZE + (size_t)n * sizeof(traced);
  stack = hh_report_map(need);
  if (stack == NULL) return 0;
  int saved = errno;
  traced *t = (traced *)(stack + STACK_SIZE);
  for (int i = 0; i < n; i++) t[i].tid = tids[i];
  tr = (tracer){.t = t,
                .n = n,
                .deadline = hh_now_ns() + STOP_WAIT_NS,
                .text_lo = text_lo,
                .text_hi = text_hi,
                .busy_off = busy_off,
                .tgid = getpid()};
  atomic_store(&tr.phase, PHASE_WORKING);
  atomic_store(&tr.release_at, INT64_MAX);
  tracer_of = getpid();
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = raw_clone(tracer_main, stack + STACK_SIZE, CLONE_VM, &tr); /* exit signal: none */
  tracer_pid = pid < 0 ? 0 : (int)pid;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (tracer_pid <= 0) {
    tracer_pid = 0;
    hh_report_unmap(stack, need);
    errno = saved;
    return 0;
  }
  /* its answer, or a little past its deadline: then it lets them go */
  int64_t give_up = tr.deadline + STOP_WAIT_NS;
  while (atomic_load(&tr.phase) == PHASE_WORKING && hh_now_ns() < give_up) {
    struct timespec ts = {0, 10 * 1000 * 1000L};
    syscall(SYS_futex, &tr.phase, FUTEX_WAIT, PHASE_WORKING, &ts, NULL, 0);
  }
  int expected = PHASE_WORKING;
  int held = 0;
  if (atomic_compare_exchange_strong(&tr.phase, &expected, PHASE_RESUMED)) {
    release_by(0); /* too late: it lets them go */
    finish();
    errno = saved;
    return 0;
  }
  for (int i = 0; i < n; i++) {
    const traced *th = &t[i];
    if (!th->held) continue;
    hh_thread_regs *o = &out[held++];
    const struct user_regs_struct *r = &th->regs;
    const unsigned long long g[] = {r->r15, r->r14, r->r13, r->r12, r->rbp, r->rbx, r->r11, r->r10, r->r9,
                                    r->r8,  r->rax, r->rcx, r->rdx, r->rsi, r->rdi, r->rip, r->rsp, r->fs_base};
    _Static_assert(sizeof g / sizeof g[0] <= sizeof o->gregs / sizeof o->gregs[0], "the registers fit");
    for (size_t k = 0; k < sizeof g / sizeof g[0]; k++) o->gregs[k] = (uintptr_t)g[k];
    o->sp = (uintptr_t)r->rsp;
    o->self = (uintptr_t)r->fs_base; /* pthread_self(), as park() records it */
    /* at a system call of the C library's (a wait): the 128 bytes below
     * are not read (live_sp, at_system_call in stop.c) */
    o->in_call = (long)r->orig_rax >= 0 && r->rip >= libc_lo && r->rip < libc_hi;
    o->tid = th->tid;
  }
  if (held == 0) finish(); /* it has ended, or is about to */
  errno = saved;
  return held;
}

/* A tracer that holds threads in a system call lives on until it lets
 * them go, and is not reaped (its stack never unmapped): a program's own
 * waitpid(-1, __WALL) after the report may find it then, as it may find
 * the symboliser's go-between (spawn.c). One that holds none ends now. */
void hh_trace_resume(int64_t hold_until) {
  if (tracer_pid <= 0 || tracer_of != getpid()) return;
  release_by(hold_until);
  atomic_store(&tr.phase, PHASE_RESUMED);
  if (tr.held_in_call == 0) finish();
}

void hh_trace_release_by(int64_t at) {
  if (tracer_pid <= 0 || tracer_of != getpid()) return;
  release_by(at);
}

#else
int hh_trace_stop(const int *tids, int n, hh_thread_regs *out, uintptr_t text_lo, uintptr_t text_hi, intptr_t busy_off,
                  uintptr_t libc_lo, uintptr_t libc_hi) {
  (void)tids, (void)n, (void)out, (void)text_lo, (void)text_hi, (void)busy_off, (void)libc_lo, (void)libc_hi;
  return 0;
}
void hh_trace_resume(int64_t hold_until) { (void)hold_until; }
void hh_trace_release_by(int64_t at) { (void)at; }
#endif
