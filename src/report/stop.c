/*
 * Stop-the-world for the scan, in the spirit of conservative collectors
 * (Boehm GC parks threads with a signal as well): every other thread gets a
 * real-time signal whose handler saves its registers (from the ucontext) and
 * its stack pointer, says it arrived, and waits on a futex until released.
 * The registers matter: a pointer may live only in a register of a running
 * thread.
 *
 * Never hang: a thread that does not answer (the signal blocked, or stuck
 * in the kernel) is waited for ~200 ms, one that still could (runnable, on
 * a busy machine) up to WAIT_CAP_NS; the scan then treats the stacks it
 * cannot place conservatively. A late handler finds the stop
 * over and returns at once. After a stop while the program runs, the
 * program's own disposition of the signal is put back once every signal
 * sent has reached the handler; while one may still come (SIG_DFL would
 * turn it into the end of the process), ours stays, and passes signals
 * that are not ours to the program's previous handler.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <termios.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "clock.h"
#include "../internal.h"
#include "format.h"
#include "report.h"
#include "syscall_number.h"

#define STOP_SIGNAL (SIGRTMAX - 2)
#define WAIT_NS (200 * 1000 * 1000L)
/* How long the stop waits for threads that can still answer (their signal
 * not blocked): on a loaded machine a runnable thread may wait that long for
 * a CPU, and a thread not stopped runs during the scan and moves pointers
 * under it (false leaks). */
#define WAIT_CAP_NS (5 * 1000 * 1000 * 1000L)
/* How long, in all, threads that block the signal are looked at again
 * (glibc blocks every signal for a moment in pthread_create and fork). */
#define BLOCKED_WAIT_NS (20 * 1000 * 1000L)
/* How often the stop looks whether the threads that have not answered
 * have all ended. */
#define GONE_LOOK_NS (2 * 1000 * 1000L)
/* The stop's signals carry a value (sigqueue's, SI_QUEUE) that says they
 * are ours: the address of one of these. A program's own SIGRTMAX-2, sent
 * with pthread_kill during a stop, was taken for ours, and the sleep it
 * was meant to end went on (helper-35). The value a thread stopped asleep
 * at exit finds in its signal is sleeper_mark: it stays stopped after the
 * scan, until the process ends, or SLEEPER_GRACE_NS
 * after the report is out (hh_world_exit_done), in case something after
 * the report waits for it: a C++ static object of a library the program
 * links, destroyed after the report, that joins a thread in a timed wait,
 * waited the whole SLEEPER_WAIT_NS, which now only bounds a report that
 * never says it is out. */
static const char stop_mark, sleeper_mark;
/* The value of the signal sent to a thread held in vfork (W_VFORK): the
 * wait takes it only once the child execs or exits, which may be in the
 * middle of the scan. The stop does not wait for it (nor count it as
 * arrived: its stack is read as an unstopped thread's), but when it comes
 * during the stop the thread parks until the release instead of running
 * under the scan. */
static const char vfork_mark;
#define SLEEPER_GRACE_NS (200 * 1000 * 1000L)
#define SLEEPER_WAIT_NS (2 * 1000 * 1000 * 1000L)

static _Atomic(int) stopping;
static _Atomic(int) release_gen;
static _Atomic(int) arrived;
static _Atomic(int) next_slot;
static _Atomic(int) busy;                         /* answers from threads found inside the allocator */
static _Atomic(int64_t) sleepers_until;           /* after the exit scan: when stopped sleepers may go */
static _Atomic(int) stop_at_exit;                 /* the stop is the exit report's */
static _Atomic(long) signals_sent, signals_taken; /* ours, by the stopper and by the handler */
static _Atomic(int) parked_now;                   /* threads in the handler, stopped or leaving */
static uintptr_t text_lo, text_hi;
#if defined(__x86_64__)
static uintptr_t libc_lo, libc_hi; /* glibc's executable segment (text_of_libc) */
#endif
static hh_thread_regs *slots; /* never unmapped: a late handler may still look */
static int slot_cap;

/* A set of thread ids, open addressing in memory from hh_report_map: which
 * threads have answered (park adds each, with its record, from the
 * handler, hence the compare-and-swap), and which ones the stop has
 * listed. Searching the records and the list instead made the stop
 * quadratic in the threads: each look at 2,300 threads went through 2,300
 * records for each. */
typedef struct tidset {
  _Atomic(int) *ids; /* 0: empty */
  unsigned mask;     /* capacity - 1, a power of two at least twice the entries */
} tidset;

static bool tidset_ready(tidset *set, unsigned cap) {
  if (set->ids == NULL) {
    set->ids = hh_report_map((size_t)cap * sizeof *set->ids);
    if (set->ids == NULL) return false;
    set->mask = cap - 1;
  } else {
    memset(set->ids, 0, (size_t)(set->mask + 1) * sizeof *set->ids);
  }
  return true;
}

static unsigned tid_hash(int tid) { return (unsigned)tid * 2654435761u; } /* Knuth's multiplicative hash */

static void tidset_add(tidset *set, int tid) {
  if (set->ids == NULL || tid <= 0) return;
  for (unsigned i = tid_hash(tid) & set->mask, probes = 0; probes <= set->mask; i = (i + 1) & set->mask, probes++) {
    int expect = 0;
    if (atomic_load_explicit(&set->ids[i], memory_order_acquire) == tid) return;
    if (atomic_compare_exchange_strong(&set->ids[i], &expect, tid) || expect == tid) return;
  }
}

static bool tidset_has(const tidset *set, int tid) {
  if (set->ids == NULL || tid <= 0) return false;
  for (unsigned i = tid_hash(tid) & set->mask, probes = 0; probes <= set->mask; i = (i + 1) & set->mask, probes++) {
    int id = atomic_load_explicit(&set->ids[i], memory_order_acquire);
    if (id == tid) return true;
    if (id == 0) return false;
  }
  return false;
}

static tidset answered, listed, was_busy; /* was_busy: found inside the allocator (on_stop) */
static struct sigaction previous;
static bool installed;

static long sys_gettid(void) { return syscall(SYS_gettid); }

static void futex_wait(_Atomic(int) *addr, int val, long ns) {
  struct timespec ts = {0, ns};
  syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static void futex_wake_all(_Atomic(int) *addr) {
  syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static void chain(int sig, siginfo_t *info, void *uc) {
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction) previous.sa_sigaction(sig, info, uc);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN && previous.sa_handler != NULL) {
    previous.sa_handler(sig);
  }
}

/* `n` bytes of the program's code at `at`, read without faulting (code
 * may be execute-only, or gone). */
static bool read_code(uintptr_t at, uint8_t *buf, size_t n) {
  struct iovec local = {buf, n}, remote = {(void *)at, n};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n;
}

/* The signal ended a system call early: the thread returns from it with
 * EINTR (its next instruction follows `syscall`; a call the kernel
 * restarts has the instruction itself next, and its number in rax). A
 * call that had just returned on its own is not taken for one: a thread
 * that loops on getppid or on a pipe, kept stopped, made an exit handler
 * run after the report that joins it wait out the sleepers' grace. */
static bool in_system_call(const ucontext_t *uc) {
#if defined(__x86_64__)
  uint8_t code[2];
  if (uc->uc_mcontext.gregs[REG_RAX] != -EINTR) return false;
  return read_code((uintptr_t)uc->uc_mcontext.gregs[REG_RIP] - 2, code, 2) && code[0] == 0x0f && code[1] == 0x05;
#else
  (void)uc;
  return false;
#endif
}

/* The signal found the thread in a system call of the C library's, or
 * about to make one again (SA_RESTART put it back on its `syscall`
 * instruction): glibc's wrappers keep nothing live below the stack pointer
 * across the call. A leaf function may keep data in the 128 bytes below
 * (the red zone), which is read for a thread stopped anywhere else, and in
 * a call made outside the C library (an inline `syscall`: a volatile local
 * of such a leaf was called lost, helper-50); below a thread asleep in a
 * wrapper they are old frames' words, and a pointer there kept a lost
 * block reachable (19 of 20 idle workers' leaks missed, valgrind none).
 * Told from the registers a parked thread saved, by the stopper once the
 * threads have parked, not in the handler: a read of the code there
 * lengthened the instant in which a program's signal is lost. */
static bool at_system_call(const uintptr_t *g) {
#if defined(__x86_64__)
  uint8_t code[2];
  uintptr_t pc = g[REG_RIP];
  if (pc < libc_lo || pc >= libc_hi) return false;
  if ((long)g[REG_RAX] == -EINTR && read_code(pc - 2, code, 2) && code[0] == 0x0f && code[1] == 0x05) return true;
  return read_code(pc, code, 2) && code[0] == 0x0f && code[1] == 0x05;
#else
  (void)g;
  return false;
#endif
}

#if defined(__x86_64__)
/* The calls the handler makes again when its signal ended them with EINTR:
 * waits that EINTR says did nothing, whose arguments still hold (a relative
 * timeout starts over, which adds the instant between the call and the
 * signal, as the thread entered it after the stop looked). Not close
 * (Linux closes the descriptor before it says EINTR), not connect (the
 * connection goes on), nor a call that may have done part of its work.
 * Of futex, the waits only: FUTEX_LOCK_PI must never end with EINTR. */
bool hh_call_restartable(long nr, unsigned long arg1) {
  switch (nr) {
  case SYS_futex: {
    unsigned long cmd = arg1 & FUTEX_CMD_MASK;
    return cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET;
  }
  case SYS_nanosleep:
  case SYS_clock_nanosleep:
  case SYS_pause:
  case SYS_rt_sigsuspend:
  case SYS_rt_sigtimedwait:
  case SYS_poll:
  case SYS_ppoll:
  case SYS_select:
  case SYS_pselect6:
  case SYS_epoll_wait:
  case SYS_epoll_pwait:
#ifdef SYS_epoll_pwait2
  case SYS_epoll_pwait2: /* helper-50: woken to EINTR by the tracer's release */
#endif
  case SYS_read:
  case SYS_readv:
  case SYS_recvfrom:
  case SYS_recvmsg:
  case SYS_write:
  case SYS_writev:
  case SYS_sendto:
  case SYS_sendmsg:
  case SYS_accept:
  case SYS_accept4:
  case SYS_msgrcv:
  case SYS_msgsnd:
  case SYS_semop:
  case SYS_semtimedop:
  case SYS_io_getevents:
  case SYS_mq_timedreceive:
  case SYS_mq_timedsend:
  case SYS_wait4:
  case SYS_waitid: return true;
  default: return false;
  }
}

/* The call made by glibc's `syscall` instruction whose next instruction is
 * at `pc`, or -1 (not in glibc, not readable, not told). */
static long libc_call_before(uintptr_t pc) {
  uint8_t code[CODE_BEFORE + 2];
  if (pc < libc_lo + sizeof code || pc > libc_hi || !read_code(pc - sizeof code, code, sizeof code)) return -1;
  if (code[CODE_BEFORE] != 0x0f || code[CODE_BEFORE + 1] != 0x05) return -1;
  return call_number_before(code + CODE_BEFORE);
}
#endif

/* The program's disposition of signal `s` (of the stop signal, the one
 * our handler replaced). */
static bool disposition(int s, struct sigaction *a) {
  if (s != STOP_SIGNAL) return sigaction(s, NULL, a) == 0;
  *a = previous;
  return true;
}

/* Whether a handler of the program's, for a signal `blocked` lets through,
 * holds the stop signal while it runs: then the program's signal may have
 * ended a call, its handler run, and ours come after it returned, to find
 * the context of the call ended with EINTR as if by ours. Made again, that
 * call would lose the program's wake-up (helper-35: a poll woken by
 * SIGUSR1 under a handler with a full mask blocked on, 78 times in 200). */
static bool handler_holds_ours(const sigset_t *blocked) {
  for (int s = 1; s < NSIG; s++) {
    struct sigaction a;
    if (s == SIGKILL || s == SIGSTOP || sigismember(blocked, s) == 1) continue;
    if (!disposition(s, &a) || a.sa_handler == SIG_DFL || a.sa_handler == SIG_IGN) continue;
    /* the program's own handler of the stop signal holds it while it runs */
    if (s == STOP_SIGNAL || sigismember(&a.sa_mask, STOP_SIGNAL) == 1) return true;
  }
  return false;
}

/* Whether a signal of the program's is pending that the context `uc` (or
 * the call's own `mask`, when not NULL) lets through and that has a handler (our handler's mask holds it: it is
 * delivered as ours returns); `*interrupts`: one of them without
 * SA_RESTART. A stop signal pending may be the program's own. */
static bool program_signal_pending(const ucontext_t *uc, const sigset_t *mask, bool *interrupts) {
  sigset_t pending;
  bool waiting = false;
  *interrupts = false;
  if (mask == NULL) mask = &uc->uc_sigmask;
  if (sigpending(&pending) != 0) return true;
  for (int s = 1; s < NSIG; s++) {
    struct sigaction a;
    if (sigismember(&pending, s) != 1 || sigismember(mask, s) == 1) continue;
    if (!disposition(s, &a) || a.sa_handler == SIG_DFL || a.sa_handler == SIG_IGN) continue;
    waiting = true;
    if (!(a.sa_flags & SA_RESTART)) *interrupts = true;
  }
  return waiting;
}

#if defined(__x86_64__)
/* The signal mask call `nr` waits under, when it gives one (ppoll,
 * pselect6, epoll_pwait, rt_sigsuspend): a signal it holds would not have
 * ended the call. False when it gives none, or it cannot be read. */
static bool call_mask(long nr, const greg_t *r, sigset_t *mask) {
  uintptr_t at = 0;
  if (nr == SYS_ppoll) at = (uintptr_t)r[REG_R10];
  if (nr == SYS_epoll_pwait) at = (uintptr_t)r[REG_R8];
#ifdef SYS_epoll_pwait2
  if (nr == SYS_epoll_pwait2) at = (uintptr_t)r[REG_R8];
#endif
  if (nr == SYS_rt_sigsuspend) at = (uintptr_t)r[REG_RDI];
  if (nr == SYS_pselect6 && r[REG_R9] != 0) { /* {const sigset_t *ss; size_t len} */
    uint8_t pair[sizeof(uintptr_t)];
    if (!read_code((uintptr_t)r[REG_R9], pair, sizeof pair)) return false;
    memcpy(&at, pair, sizeof at);
  }
  if (at == 0) return false;
  sigemptyset(mask);
  return read_code(at, (uint8_t *)mask, 8); /* the kernel's 64 signals */
}

/* Whether call `nr`, made ready to start again, would wait again (and so a
 * signal would end it with EINTR): a descriptor's call whose descriptor is
 * not ready, a futex wait whose word still holds its value. Only those are
 * told: a wait for a child whose exit also sent SIGCHLD would return its
 * status, not EINTR (helper-38: 243 EINTRs in 1,204 children). */
static bool would_wait(long nr, const greg_t *r) {
  short events;
  switch (nr) {
  case SYS_read:
  case SYS_readv:
  case SYS_recvfrom:
  case SYS_recvmsg:
  case SYS_accept:
  case SYS_accept4: events = POLLIN; break;
  case SYS_write:
  case SYS_writev:
  case SYS_sendto:
  case SYS_sendmsg: events = POLLOUT; break;
  case SYS_futex: {
    uint32_t word;
    return read_code((uintptr_t)r[REG_RDI], (uint8_t *)&word, sizeof word) && word == (uint32_t)r[REG_RDX];
  }
  default: return false;
  }
  struct pollfd p = {.fd = (int)r[REG_RDI], .events = events};
  return poll(&p, 1, 0) == 0;
}
#endif

/* As the handler returns, the call the stop signal ended is put as it
 * would be had the signal never come:
 * - A call it ended with EINTR (the thread entered it an instant after the
 *   stop looked and found it running) is made again: a program that
 *   handles no signal never expects EINTR. Only for glibc's wrappers,
 *   whose number reads from the code; not when a handler of the program's
 *   that the context lets through holds ours (handler_holds_ours); not when
 *   a signal of the program's is pending (program_signal_pending): its
 *   handler must find the call ended, as it would have. That look comes
 *   last, but a signal that comes in the instant between it and the
 *   return still finds the call made again.
 * - A call the kernel made ready to start again, for our SA_RESTART,
 *   ends with EINTR after all when such a pending signal's handler has no
 *   SA_RESTART: delivered as ours returns, it would have ended it (a read
 *   woken by the program's SIGUSR1 read on, 104-120 times in 200). */
static void settle_call(ucontext_t *uc) {
#if defined(__x86_64__)
  greg_t *r = uc->uc_mcontext.gregs;
  bool interrupts;
  if (!in_system_call(uc)) {
    uint8_t code[2];
    if (hh_call_restartable(r[REG_RAX], (unsigned long)r[REG_RSI]) && read_code((uintptr_t)r[REG_RIP], code, 2) &&
        code[0] == 0x0f && code[1] == 0x05 && program_signal_pending(uc, NULL, &interrupts) && interrupts &&
        would_wait(r[REG_RAX], r)) {
      r[REG_RIP] += 2;
      r[REG_RAX] = -EINTR;
    }
    return;
  }
  long nr = libc_call_before((uintptr_t)r[REG_RIP]);
  if (nr < 0 || !hh_call_restartable(nr, (unsigned long)r[REG_RSI])) return;
  sigset_t own;
  if (handler_holds_ours(&uc->uc_sigmask) ||
      program_signal_pending(uc, call_mask(nr, r, &own) ? &own : NULL, &interrupts))
    return;
  r[REG_RIP] -= 2;
  r[REG_RAX] = nr;
#else
  (void)uc;
#endif
}

/* Parks the calling thread for the stop: its registers go to a slot (those
 * of `uc`, the context the signal interrupted; without one, the callers
 * saved theirs on the stack above `sp`), it says it arrived, and it waits
 * for the release. One `asleep` stays stopped past that, until the process
 * ends or the sleepers' grace does. */
static void park(const ucontext_t *uc, uintptr_t sp, bool asleep, bool counted) {
  int gen = atomic_load(&release_gen);
  int i = atomic_fetch_add(&next_slot, 1);
  if (i < slot_cap && atomic_load(&stopping)) {
    hh_thread_regs *t = &slots[i];
    t->self = (uintptr_t)pthread_self();
    t->sp = sp;
#if defined(__x86_64__)
    if (uc != NULL)
      for (int r = 0; r < 23 && r < NGREG; r++) t->gregs[r] = (uintptr_t)uc->uc_mcontext.gregs[r];
#else
    (void)uc;
#endif
    int tid = (int)sys_gettid();
    __atomic_store_n(&t->tid, tid, __ATOMIC_RELEASE); /* the record is complete */
    tidset_add(&answered, tid);
  }
  atomic_fetch_add(&parked_now, 1);
  if (counted) atomic_fetch_add(&arrived, 1);
  while (atomic_load(&stopping) && atomic_load(&release_gen) == gen) futex_wait(&release_gen, gen, 50000000L);
  if (asleep)
    while (hh_now_ns() < atomic_load(&sleepers_until)) futex_wait(&release_gen, atomic_load(&release_gen), 50000000L);
  atomic_fetch_sub(&parked_now, 1);
}

/* A signal the stop sent (stop_mark, sleeper_mark, vfork_mark). */
static bool ours(const siginfo_t *info) {
  return info != NULL && info->si_code == SI_QUEUE && info->si_pid == getpid() &&
         (info->si_value.sival_ptr == &stop_mark || info->si_value.sival_ptr == &sleeper_mark ||
          info->si_value.sival_ptr == &vfork_mark);
}

static void on_stop(int sig, siginfo_t *info, void *uc_) {
  int saved_errno = errno;
  if (!ours(info)) { /* the program's */
    chain(sig, info, uc_);
    errno = saved_errno;
    return;
  }
  bool sleeper = info->si_value.sival_ptr == &sleeper_mark;
  bool after_vfork = info->si_value.sival_ptr == &vfork_mark;
  atomic_fetch_add(&signals_taken, 1);
  if (!atomic_load(&stopping)) { /* late: the stop is over */
    settle_call(uc_);
    errno = saved_errno;
    return;
  }
  const ucontext_t *uc = uc_;
#if defined(__x86_64__)
  /* Stopped inside the allocator, a thread may have left a page half made
   * (a large range's slices marked before its size), or hold a new block
   * in no register yet: while libgcc's unwinder finds the call site of a
   * new large block, only the page's descriptor is in a register, not the
   * block. Let it run on, and be asked again. */
  uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
  if ((pc >= text_lo && pc < text_hi) || hh_unwind_busy()) {
    if (!after_vfork) { /* not asked again: runs on, as it would have */
      tidset_add(&was_busy, (int)sys_gettid());
      atomic_fetch_add(&busy, 1);
    }
    errno = saved_errno;
    return;
  }
  uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#else
  volatile uintptr_t here = 0;
  uintptr_t sp = (uintptr_t)&here;
#endif
  /* Stopped asleep at exit: woken now, its sleep would end early (EINTR)
   * and it would run on while the process ends, as it never would have.
   * So for any thread whose system call the signal ended with EINTR at
   * exit, whatever the call: one that started an instant after the stop
   * looked at the thread (a thread that sleeps in a loop) was not known to
   * sleep. */
  park(uc, sp, sleeper || (atomic_load(&stop_at_exit) && in_system_call(uc)), !after_vfork);
  settle_call(uc_);
  errno = saved_errno;
}

bool hh_stop_waited(int sig, const siginfo_t *info) {
  if (sig != STOP_SIGNAL || !ours(info)) return false;
  atomic_fetch_add(&signals_taken, 1);
  if (!atomic_load(&stopping)) return true; /* late: the stop is over */
  int saved_errno = errno;
  __builtin_unwind_init(); /* the callers' registers, saved on this stack */
  volatile uintptr_t here = 0;
  /* a thread that waits: at exit, as one stopped asleep */
  /* the red zone below, for good measure; a vfork mark is not waited for
   * (a thread that blocked the signal an instant after the stop looked) */
  park(NULL, (uintptr_t)&here - 128, atomic_load(&stop_at_exit), info->si_value.sival_ptr != &vfork_mark);
  errno = saved_errno;
  return true;
}

/* The allocator's code: the executable segment of the library that holds
 * this file. Linked statically, the program's own code shares that segment:
 * then from the lowest to the highest of the allocator's entry points and
 * slow paths, which the linker lays out together (the archive's members). */
static int text_of_library(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size, (void)arg;
  uintptr_t me = (uintptr_t)&hh_world_stop;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
    if (me < lo || me >= hi) continue;
    if (info->dlpi_name != NULL && info->dlpi_name[0] != '\0') text_lo = lo, text_hi = hi;
    return 1;
  }
  return 0;
}

/* glibc's executable segment (libc_lo, libc_hi): the shared library's
 * only; linked statically, glibc's code and the program's are one. */
static int text_of_libc(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size, (void)arg;
  if (info->dlpi_name == NULL || strstr(info->dlpi_name, "/libc.so.") == NULL) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
#if defined(__x86_64__)
    libc_lo = info->dlpi_addr + ph->p_vaddr;
    libc_hi = libc_lo + ph->p_memsz;
#endif
    return 1;
  }
  return 0;
}

static void text_range(void) {
  dl_iterate_phdr(text_of_libc, NULL);
  dl_iterate_phdr(text_of_library, NULL);
  if (text_hi != 0) return;
  const uintptr_t f[] = {(uintptr_t)malloc,
                         (uintptr_t)free,
                         (uintptr_t)calloc,
                         (uintptr_t)realloc,
                         (uintptr_t)hh_alloc_generic,
                         (uintptr_t)hh_free_generic,
                         (uintptr_t)hh_large_alloc,
                         (uintptr_t)hh_span_alloc,
                         (uintptr_t)hh_page_refill,
                         (uintptr_t)hh_page_collect,
                         (uintptr_t)hh_heap_sweep,
                         (uintptr_t)hh_heap_get_slow,
                         (uintptr_t)hh_oversize_alloc,
                         (uintptr_t)hh_aligned,
                         (uintptr_t)hh_stats_flush,
                         (uintptr_t)hh_world_stop};
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (size_t k = 0; k < sizeof f / sizeof *f; k++) {
    if (f[k] < lo) lo = f[k];
    if (f[k] > hi) hi = f[k];
  }
  text_lo = lo;
  text_hi = hi + 4096; /* the last one's body */
}

void hh_world_prepare(void) {
  if (text_hi == 0) text_range();
}

static void install(void) {
  hh_world_prepare(); /* done already by the scan, before its locks */
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_stop;
  /* Not SA_ONSTACK: a program's alternate stack is sized for its own
   * handlers (often MINSIGSTKSZ, for a stack overflow's SIGSEGV), and the
   * kernel's frame for ours, with the vector registers, overflows it. */
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  if (sigaction(STOP_SIGNAL, &sa, &old) != 0) return;
  if (old.sa_sigaction != on_stop) previous = old; /* the program's own */
  installed = true;
}

/* The decimal number at the start of s (at most n characters), 0 if none. */
static long leading_number(const char *s, size_t n) {
  long v = 0;
  for (size_t k = 0; k < n && s[k] >= '0' && s[k] <= '9'; k++) v = v * 10 + (s[k] - '0');
  return v;
}

/* Thread ids from /proc/self/task, read with getdents64 (opendir allocates). */
static int list_tasks(int *tids, int cap) {
  int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  int n = 0;
  for (;;) {
    long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (got <= 0) break;
    for (long off = 0; off < got;) {
      unsigned short reclen = *(unsigned short *)(buf + off + 16);
      const char *name = buf + off + 19;
      int tid = (int)leading_number(name, 16);
      if (tid > 0 && n < cap) tids[n++] = tid;
      off += reclen;
    }
  }
  close(fd);
  return n;
}

#define MAX_TASKS 16384

static _Atomic int world_stopped; /* from hh_world_stop to hh_world_resume */

bool hh_world_is_stopped(void) { return atomic_load_explicit(&world_stopped, memory_order_relaxed) != 0; }

/* Socket `fd`'s timeout `opt` (SO_RCVTIMEO, SO_SNDTIMEO) is set: its
 * calls that wait for it end early on a signal (signal(7)). Not a socket,
 * or no such descriptor: false. The descriptor table is the program's own,
 * shared by its threads; the call changes nothing. */
static bool socket_times_out(unsigned long fd, int opt) {
  struct timeval tv = {0, 0};
  socklen_t len = sizeof tv;
  if (fd > INT32_MAX || getsockopt((int)fd, SOL_SOCKET, opt, &tv, &len) != 0) return false;
  return tv.tv_sec != 0 || tv.tv_usec != 0;
}

/* Terminal `fd` reads with a timer: non-canonical, VTIME set (a read of
 * VMIN bytes at most VTIME tenths of a second apart, or of nothing after
 * VTIME). Made again after each stop, the read starts its timer over:
 * beside leak checks every 100 ms a read with VTIME 5 never returned
 * (helper-44). Not a terminal: false. */
static bool terminal_times_out(unsigned long fd) {
  struct stat st;
  struct termios t;
  /* TCGETS only on a character device: no other file's driver sees it */
  if (fd > INT32_MAX || fstat((int)fd, &st) != 0 || !S_ISCHR(st.st_mode) || ioctl((int)fd, TCGETS, &t) != 0)
    return false;
  return !(t.c_lflag & ICANON) && t.c_cc[VTIME] != 0;
}

/* `fd` is a pipe, a FIFO or a socket: a write that blocks on it may have
 * moved part of its data, and a signal then ends it short. */
static bool streams(unsigned long fd) {
  struct stat st;
  return fd <= INT32_MAX && fstat((int)fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

/* The arguments of /proc/self/task/TID/syscall's line ("NR 0xA0 ... 0xA5
 * 0xSP 0xPC"), after the number, then the stack pointer and the pc. */
static void syscall_arguments(const char *s, size_t n, unsigned long a[8]) {
  size_t k = 0;
  for (int i = 0; i < 8; i++) {
    a[i] = 0;
    while (k < n && s[k] != ' ') k++;
    if (k + 3 > n || s[k + 1] != '0' || s[k + 2] != 'x') continue;
    for (k += 3; k < n; k++) {
      char c = s[k];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) break;
      a[i] = a[i] << 4 | (unsigned long)d;
    }
  }
}

/* The signal set a sigtimedwait waits for (its first argument, in the
 * program's memory) holds the stop signal, or cannot be read. */
static bool waits_for_stop_signal(unsigned long set, unsigned long size) {
  uint64_t mask = 0;
  struct iovec local = {&mask, sizeof mask}, remote = {(void *)set, size < sizeof mask ? size : sizeof mask};
  if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)remote.iov_len) return true;
  return mask >> (STOP_SIGNAL - 1) & 1;
}

/* What a thread waits in. W_SLEEPS: a call that any signal handler ends
 * early (with EINTR, or short, or pause's return), SA_RESTART or not
 * (signal(7)): a thread in usleep, poll, msgrcv, a timed futex wait
 * (sem_timedwait), a recv with a timeout or a write that a full pipe
 * blocked half done would wake to a stop it never asked for and run on
 * differently (a program that takes EINTR for its cue to quit). Such a
 * thread is left alone by a report while the program runs (mem_lhihiks,
 * the leak-check API): the scan treats it as one that could not be
 * stopped, and reads its whole stack. (Stopping those whose call the
 * handler could make again, to read their registers, cost lost wake-ups:
 * a program's signal that comes between the handler's last look and its
 * return finds the call made again, 3-5 in 200 for pause, poll, select,
 * sigsuspend and msgrcv beside leak checks every 200 us; and a relative
 * sleep given room for what is left ran past its time by every stop's
 * length, helper-37.) At exit it is stopped with the
 * others and never woken (signal_sleeper). W_TAKES: a sigwaitinfo or
 * sigtimedwait for a set that holds the stop signal, whose blocked mask
 * lets it through while it waits: it would be handed the signal as its own
 * (a signal thread that aborts on one it does not know), so it is never
 * sent it. W_VFORK: held until its vfork child execs or exits
 * (vfork_call): never waited for; at exit, sent the signal with
 * vfork_mark, which it takes when the child lets it go (parked, if the stop
 * is still on). */
enum { W_NONE, W_SLEEPS, W_TAKES, W_VFORK };

/* What call `nr` with arguments `a` waits for. */
static int waits_how(long nr, const unsigned long a[8]) {
  switch (nr) {
  case SYS_rt_sigtimedwait: return waits_for_stop_signal(a[0], a[3]) ? W_TAKES : W_SLEEPS;
  case SYS_nanosleep:
  case SYS_clock_nanosleep:
  case SYS_rt_sigsuspend:
  case SYS_ppoll:
  case SYS_pselect6:
  case SYS_epoll_pwait:
#ifdef SYS_epoll_pwait2
  case SYS_epoll_pwait2:
#endif
#ifdef SYS_pause
  case SYS_pause:
#endif
#ifdef SYS_poll
  case SYS_poll:
#endif
#ifdef SYS_select
  case SYS_select:
#endif
#ifdef SYS_epoll_wait
  case SYS_epoll_wait:
#endif
  case SYS_msgrcv:
  case SYS_msgsnd:
  case SYS_semop:
  case SYS_semtimedop:
  case SYS_io_getevents:
#ifdef SYS_io_pgetevents
  case SYS_io_pgetevents:
#endif
#ifdef SYS_io_uring_enter
  case SYS_io_uring_enter:
#endif
  /* a sleep resumed after SIGSTOP and SIGCONT (nanosleep, poll, a timed
   * futex wait) */
  case SYS_restart_syscall: return W_SLEEPS;
  /* a timed wait: glibc's sem_timedwait and aio_suspend pass EINTR on */
  case SYS_futex: {
    unsigned long cmd = a[1] & FUTEX_CMD_MASK;
    return (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET) && a[3] != 0 ? W_SLEEPS : W_NONE;
  }
  /* on a socket with a timeout (a read or write of one too: the kernel
   * takes them for a recv or send), or a terminal's read with its timer; a
   * recv that waits for all its bytes */
  case SYS_read:
  case SYS_readv: return socket_times_out(a[0], SO_RCVTIMEO) || terminal_times_out(a[0]) ? W_SLEEPS : W_NONE;
  case SYS_accept:
  case SYS_accept4: return socket_times_out(a[0], SO_RCVTIMEO) ? W_SLEEPS : W_NONE;
  case SYS_recvfrom: return (a[3] & MSG_WAITALL) || socket_times_out(a[0], SO_RCVTIMEO) ? W_SLEEPS : W_NONE;
  case SYS_recvmsg: return (a[2] & MSG_WAITALL) || socket_times_out(a[0], SO_RCVTIMEO) ? W_SLEEPS : W_NONE;
  case SYS_recvmmsg: return a[4] != 0 || socket_times_out(a[0], SO_RCVTIMEO) ? W_SLEEPS : W_NONE;
  case SYS_write:
  case SYS_writev:
  case SYS_sendto:
  case SYS_sendmsg:
  case SYS_sendmmsg: return streams(a[0]) ? W_SLEEPS : W_NONE;
  case SYS_connect: return socket_times_out(a[0], SO_SNDTIMEO) ? W_SLEEPS : W_NONE;
  case SYS_sendfile: return streams(a[0]) ? W_SLEEPS : W_NONE;
  case SYS_splice: return socket_times_out(a[0], SO_RCVTIMEO) || streams(a[2]) ? W_SLEEPS : W_NONE;
  default: return W_NONE;
  }
}

/* /proc/self/task/TID/`name` into `buf` (`size` bytes, a NUL after what
 * was read): the bytes read, 0 when the read gave none, -1 when the file
 * could not be opened (the thread is gone). */
static ssize_t task_file(int tid, const char *name, char *buf, size_t size) {
  char path[64];
  hh_snformat(path, sizeof path, "/proc/self/task/%d/%s", tid, name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t got = read(fd, buf, size - 1);
  close(fd);
  if (got < 0) got = 0;
  buf[got] = '\0';
  return got;
}

/* Thread `tid`'s state letter (stat(5): it follows the last ')'), 0 when
 * unknown. Readable in a process that is not dumpable, as syscall is not. */
static char task_state(int tid) {
  char buf[512];
  if (task_file(tid, "stat", buf, sizeof buf) <= 0) return 0;
  const char *paren = strrchr(buf, ')');
  return paren != NULL && paren[1] == ' ' ? paren[2] : 0;
}

/* Whether thread `tid`, in system call `nr` with arguments `a`, waits in
 * vfork (or a clone with CLONE_VFORK, as glibc's posix_spawn makes) for its
 * child to exec or exit. That wait takes no signal but a fatal one, and
 * ptrace cannot stop it either: the stop waited for it up to WAIT_CAP_NS,
 * so a program whose thread had spawned a child that took its time exited
 * 5 s late (helper-59). clone3 carries its flags in memory (read as
 * waits_for_stop_signal reads a set); where they cannot be read, one in
 * state D (the vfork wait is killable, which stat shows as D) is taken for
 * one. glibc's posix_spawn blocks every signal around its clone, so its
 * thread was already left alone as one that blocks the stop signal. */
static bool vfork_call(int tid, long nr, const unsigned long a[8]) {
#ifdef SYS_vfork
  if (nr == SYS_vfork) return true;
#endif
  if (nr == SYS_clone) return (a[0] & CLONE_VFORK) != 0;
#ifdef SYS_clone3
  if (nr == SYS_clone3) { /* struct clone_args begins with the flags */
    uint64_t flags = 0;
    struct iovec local = {&flags, sizeof flags}, remote = {(void *)a[0], sizeof flags};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)sizeof flags)
      return (flags & CLONE_VFORK) != 0 && task_state(tid) == 'D';
    return task_state(tid) == 'D';
  }
#endif
  return false;
}

/* For a process that is not dumpable, whose syscall files only root may
 * open: the vfork wait from the kernel function it sleeps in (wchan, which
 * the process may read of its own threads: the 5 s wait was back for a
 * setuid program), in state D. The wait is inlined in kernel_clone (Linux
 * 5.10 on; _do_fork before), or a function of its own in some builds. A
 * thread asleep there for another reason (memory, a lock) is taken for a
 * vfork waiter too: not waited for, its stack read as an unstopped one's. */
static bool vfork_by_wchan(int tid) {
  char buf[64];
  if (task_file(tid, "wchan", buf, sizeof buf) <= 0) return false;
  if (strcmp(buf, "kernel_clone") != 0 && strcmp(buf, "wait_for_vfork_done") != 0 && strcmp(buf, "_do_fork") != 0)
    return false;
  return task_state(tid) == 'D';
}

/* What thread `tid` waits in (waits_how). */
static int waits_in(int tid) {
  char buf[256];
  ssize_t got = task_file(tid, "syscall", buf, sizeof buf);
  if (got < 0) return vfork_by_wchan(tid) ? W_VFORK : W_NONE;  /* not dumpable: the file is root's */
  if (got == 0 || buf[0] < '0' || buf[0] > '9') return W_NONE; /* "running", or -1: not in a call */
  unsigned long a[8];
  syscall_arguments(buf, (size_t)got, a);
  long nr = leading_number(buf, (size_t)got);
  return vfork_call(tid, nr, a) ? W_VFORK : waits_how(nr, a);
}

static bool in_vfork_wait(int tid) { return waits_in(tid) == W_VFORK; }

/* A thread that did not answer: running its own code (on a CPU,
 * "running", or preempted outside any system call, "-1"), or asleep in a
 * system call, whose arguments are anchors and whose stack the scan reads
 * whole (live_sp). syscall(5). The arrays hold one entry per thread sent
 * to (cap). A process that is not dumpable cannot read that file (it is
 * root's, mode 0400), but can read the thread's stat: one on a CPU or
 * waiting for one (R), or about to run (D), is a runner. Before, such a
 * thread was judged as a sleeping one, and a list it was building, in its
 * registers while it waited for a CPU, was called lost (21 of 30 runs
 * beside two busy processes). But not one held in vfork that was sent the
 * signal at exit (`parks`): it stops as soon as it is let go. */
static void note_unstopped(hh_world *w, int tid, int cap, bool parks) {
  static int *runners;
  static hh_asleep *asleep;
  static int have; /* entries each array holds (never unmapped: small, and rare) */
  if (have < cap) {
    int *r = hh_report_map((size_t)cap * sizeof *r);
    hh_asleep *a = hh_report_map((size_t)cap * sizeof *a);
    if (r == NULL || a == NULL) return;
    runners = r;
    asleep = a;
    have = cap;
  }
  w->runners = runners;
  w->asleep = asleep;
  char buf[256];
  ssize_t got = task_file(tid, "syscall", buf, sizeof buf);
  if (got < 0 && errno != ENOENT && errno != ESRCH) { /* not dumpable */
    char state = task_state(tid);
    if (parks && state == 'D') return;
    if ((state == 'R' || state == 'D') && w->nrunners < have) runners[w->nrunners++] = tid;
    return;
  }
  if (got <= 0) return;
  if (buf[0] == 'r' || (buf[0] == '-' && buf[1] == '1')) {
    if (w->nrunners < have) runners[w->nrunners++] = tid;
  } else if (buf[0] >= '0' && buf[0] <= '9' && w->nasleep < have) {
    unsigned long a[8];
    syscall_arguments(buf, (size_t)got, a); /* six arguments, then sp and pc */
    if (a[6] == 0) return;
    hh_asleep *e = &asleep[w->nasleep++];
    e->sp = a[6];
    for (int i = 0; i < 6; i++) e->args[i] = a[i];
  }
}

uint64_t hh_status_mask(const char *status, const char *field, bool *found) {
  char key[32];
  hh_snformat(key, sizeof key, "\n%s:\t", field);
  const char *c = strstr(status, key);
  uint64_t mask = 0;
  *found = c != NULL;
  if (c == NULL) return 0;
  for (c += strlen(key); (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'); c++)
    mask = mask << 4 | (uint64_t)(*c <= '9' ? *c - '0' : *c - 'a' + 10);
  return mask;
}

bool hh_status_read(int fd, ssize_t (*rd)(int, void *, size_t), char *buf, const char *field, char *state) {
  char key[40];
  hh_snformat(key, sizeof key, "\n%s:", field);
  size_t kept = 0;
  if (state != NULL) *state = 0;
  for (;;) {
    ssize_t got = rd(fd, buf + kept, HH_STATUS_PIECE);
    if (got <= 0) return false;
    size_t len = kept + (size_t)got;
    buf[len] = '\0';
    const char *st = state != NULL && *state == 0 ? strstr(buf, "\nState:\t") : NULL;
    if (st != NULL && st + 8 < buf + len) *state = st[8];
    const char *line = strstr(buf, key);
    if (line != NULL && strchr(line + 1, '\n') != NULL) return true; /* the line whole */
    kept = len < HH_STATUS_KEEP ? len : HH_STATUS_KEEP;
    memmove(buf, buf + len - kept, kept);
  }
}

/* Thread `tid`'s state letter and blocked signals (hh_status_read). False
 * when the file cannot be opened (the thread ended); *found false when it
 * has no SigBlk line. Only the stopping thread calls it: the buffer is
 * static. */
static bool status_of(int tid, char *state, uint64_t *blocked, bool *found) {
  static char buf[HH_STATUS_BUF];
  char path[64];
  hh_snformat(path, sizeof path, "/proc/self/task/%d/status", tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  *found = hh_status_read(fd, read, buf, "SigBlk", state);
  close(fd);
  *blocked = *found ? hh_status_mask(buf, "SigBlk", found) : 0;
  return true;
}

/* Thread `tid` and the stop signal: gone (or a zombie), blocking it
 * (status(5): SigBlk), or able to take it. Unknown counts as able. */
enum { T_GONE, T_BLOCKS, T_CAN };
static int signal_state(int tid) {
  char state;
  uint64_t mask = 0;
  bool found;
  if (!status_of(tid, &state, &mask, &found) || state == 'Z' || state == 'X') return T_GONE;
  if (!found) return T_CAN;
  return mask >> (STOP_SIGNAL - 1) & 1 ? T_BLOCKS : T_CAN;
}

/* Whether thread `tid` could still take the stop signal: alive, the
 * signal not blocked, and not held in a vfork. */
static bool can_answer(int tid) { return signal_state(tid) == T_CAN && !in_vfork_wait(tid); }

/* Thread `tid` and the stop signal now, or by `until` while it blocks it.
 * The wait is one budget for the whole stop, not 20 ms for each thread:
 * while threads are made and end by the thousand (each blocks every
 * signal for a moment, and an exiting one for good), 20 ms each made an
 * exit take up to a minute. */
static int state_soon(int tid, int64_t until) {
  int state = signal_state(tid);
  while (state == T_BLOCKS && hh_now_ns() < until) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    state = signal_state(tid);
  }
  return state;
}

/* Whether thread `tid` has answered: its registers are in a slot. */
static bool parked(int tid) { return tidset_has(&answered, tid); }

/* Whether every thread of `sent` that has not answered yet has ended. */
static bool all_unanswered_gone(const int *sent, int nsent) {
  for (int k = 0; k < nsent; k++)
    if (sent[k] > 0 && !parked(sent[k]) && signal_state(sent[k]) != T_GONE) return false;
  return true;
}

/* Whether any thread of `sent` that has not answered yet still can. */
static bool any_can_answer(const int *sent, int nsent) {
  for (int k = 0; k < nsent; k++)
    if (sent[k] > 0 && !parked(sent[k]) && can_answer(sent[k])) return true;
  return false;
}

/* Sends the stop signal to thread `tid`, with `mark`: &sleeper_mark for a
 * thread asleep at exit, &stop_mark for the others. Counted before it is
 * sent: a thread that blocks every signal and takes them with
 * sigwaitinfo, looked at while it waited and sent the signal just after it
 * returned, may take it at once, and the count must not run behind
 * (uninstall). */
static bool send_marked(int tid, const char *mark) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  si.si_signo = STOP_SIGNAL;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_ptr = (void *)mark;
  atomic_fetch_add(&signals_sent, 1);
  if (syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, STOP_SIGNAL, &si) == 0) return true;
  atomic_fetch_sub(&signals_sent, 1);
  return false;
}
static bool signal_sleeper(int tid) { return send_marked(tid, &sleeper_mark); }
static bool send_stop(int tid) { return send_marked(tid, &stop_mark); }
static bool signal_vfork_waiter(int tid) { return send_marked(tid, &vfork_mark); }

/* Whether the main thread (`tid` is the process id) has ended while
 * others run on (pthread_exit in main): it stays listed in /proc/self/task
 * as a zombie until the last thread ends, and takes no signal. It is not a
 * thread that could not be stopped; its stack is dead (stat(5): the state
 * follows the last ')'). */
static bool leader_ended(int tid) {
  if (tid != getpid()) return false; /* other threads leave the list when they end */
  char state = task_state(tid);
  return state == 'Z' || state == 'X';
}

/* At exit, the threads of `sent` that the signal did not stop, stopped
 * with ptrace (trace.c) into slots of their own, and counted as answered.
 * One that answered the signal late meanwhile keeps its own record. */
static void trace_the_rest(const int *sent, int nsent) {
  static int rest[MAX_TASKS];
  int m = 0;
  for (int k = 0; k < nsent; k++) {
    int tid = sent[k] < 0 ? -sent[k] : sent[k];
    if (!parked(tid) && signal_state(tid) != T_GONE && !in_vfork_wait(tid)) rest[m++] = tid;
  }
  if (m == 0) return;
  int base = atomic_fetch_add(&next_slot, m);
  if (base + m > slot_cap) return;
  intptr_t busy_off = (intptr_t)hh_unwind_busy_flag() - (intptr_t)pthread_self();
#if defined(__x86_64__)
  int held = hh_trace_stop(rest, m, slots + base, text_lo, text_hi, busy_off, libc_lo, libc_hi);
#else
  int held = hh_trace_stop(rest, m, slots + base, text_lo, text_hi, busy_off, 0, 0);
#endif
  for (int j = base; j < base + held; j++) {
    if (parked(slots[j].tid))
      slots[j].tid = 0; /* it answered the signal too: its own record stays */
    else
      tidset_add(&answered, slots[j].tid);
  }
}

/* What the stop did with a thread it listed (approach). */
enum { A_SENT, A_LEFT, A_BLOCKS };

/* Signals thread `tid`, whose signal state is `state` (not T_GONE), or
 * leaves it alone: A_SENT, or A_BLOCKS when it blocks the signal for now,
 * or A_LEFT (it takes its signals in a wait, or is held in vfork, or
 * could not be signalled). A thread that blocks the signal is not sent it:
 * it would stay pending, and a thread that takes its blocked signals with
 * sigwait or a signalfd (an event loop) would be handed ours (SIGRTMAX-2
 * out of nowhere: some abort on it). */
static int approach(int tid, int state, bool at_exit, int *vforked, int *nvforked) {
  if (state == T_BLOCKS) return A_BLOCKS;
  int waits = waits_in(tid);
  if (waits == W_TAKES || waits == W_VFORK) {
    /* at exit only: while the program runs, a signal taken after the
     * stop would leave our handler in place of the program's */
    if (waits == W_VFORK && at_exit && signal_vfork_waiter(tid)) vforked[(*nvforked)++] = tid;
    return A_LEFT;
  }
  if (waits == W_SLEEPS) {
    /* At exit, stopped all the same, and never woken before the end
     * (on_stop): it might run in the middle of the scan, and a pointer
     * in its registers counts. */
    return at_exit && signal_sleeper(tid) ? A_SENT : A_LEFT;
  }
  return send_stop(tid) ? A_SENT : A_LEFT;
}

/* How long one look at the threads that blocked the signal may take: each
 * is a read of its status, and 2,000 server workers blocking every signal
 * in read() made each look 100 ms, during which the threads found inside
 * the allocator were not signalled again: leak checks on demand took 2-3x
 * as long, some up to the 5 s cap (helper-85). The next look goes on from
 * where this one stopped. */
#define REVISIT_NS (500 * 1000L)

/* Looks again at the threads of `sent` left alone because they blocked
 * the signal (`blocks`), and signals those that no longer do: glibc blocks
 * every signal in pthread_create around its clone, and a thread that
 * starts threads without pause was found blocking at its one look, left
 * running, and went on starting threads through the stop and the scan
 * (thousands of them, parked by the next rounds: exits took 30-140 s,
 * churn_at_exit). How many were signalled. */
static int revisit_blocking(int *sent, bool *blocks, int nsent, bool at_exit, int *vforked, int *nvforked) {
  static unsigned cursor;
  int signalled = 0, looked = 0;
  int64_t until = hh_now_ns() + REVISIT_NS;
  for (int seen = 0; seen < nsent; seen++) {
    int k = (int)(cursor++ % (unsigned)nsent);
    if (!blocks[k]) continue;
    if (++looked % 8 == 0 && hh_now_ns() >= until) break;
    int tid = -sent[k], state = signal_state(tid);
    if (state == T_BLOCKS) continue;
    blocks[k] = false;
    if (state == T_GONE) continue;
    if (approach(tid, state, at_exit, vforked, nvforked) == A_SENT) {
      sent[k] = tid;
      signalled++;
    }
  }
  return signalled;
}

/* Signals again the threads of `sent` that were found inside the allocator
 * and have no record yet. Only those: every thread not yet arrived was
 * signalled again, and a signal thread that blocks every signal and waits
 * with a raw rt_sigtimedwait was handed ours as its own, 183-600 times in
 * 40-60 leak checks beside two allocating threads (helper-85). One that
 * blocks the signal for now is signalled all the same, and waited for: it
 * takes the signal as it unblocks it. Left alone as a thread that blocks
 * it, it ran through the scan, its heap all taken for reachable, and 58
 * of 100 checks missed its leak (helper-86). One that waits in sigwait
 * for a set that holds the signal is left alone, as when it is listed
 * (approach). How many were left alone. */
static int resend_busy(int *sent, int nsent) {
  atomic_store(&busy, 0);
  int left = 0;
  for (int k = 0; k < nsent; k++) {
    int tid = sent[k];
    if (tid <= 0 || parked(tid) || !tidset_has(&was_busy, tid)) continue;
    /* no look at its status here: the kernel builds the whole file at
     * each read, 3.5 ms with 65,536 supplementary groups, and a round
     * each 200 us made checks 6-8x as long (helper-87); a thread that
     * ended is one the signal no longer finds */
    if (waits_in(tid) == W_TAKES) {
      sent[k] = -tid;
      left++;
    } else {
      send_stop(tid);
    }
  }
  return left;
}

/* Records for every thread the stop can list, and for as many again that
 * the tracer stops (a thread may be in both: trace_the_rest): sized once,
 * mapped lazily, so that threads started during the stop find a slot. The
 * slots were sized from the first listing, and the threads a later round
 * stopped parked with no record: their registers were lost, and the
 * tracer, finding no room, stopped none of the threads it was meant to. */
#define SLOT_CAP (2 * MAX_TASKS + 256)

void hh_world_stop(hh_world *w, bool at_exit) {
  atomic_store(&world_stopped, 1);
  memset(w, 0, sizeof *w);
  static int tids[MAX_TASKS], sent[MAX_TASKS], vforked[MAX_TASKS];
  static bool blocks[MAX_TASKS]; /* sent[k] left alone because it blocked the signal */
  int self = (int)sys_gettid(), nsent = 0, nvforked = 0;
  int n = list_tasks(tids, MAX_TASKS);
  if (n <= 1) return; /* only us (or /proc is missing: nothing we can do) */

  if (slots == NULL) {
    hh_thread_regs *s = hh_report_map((size_t)SLOT_CAP * sizeof *s);
    if (s == NULL) return;
    slots = s;
    slot_cap = SLOT_CAP;
  }
  int used = atomic_load(&next_slot); /* claimed since the last stop began, late ones included */
  memset(slots, 0, (size_t)(used < slot_cap ? used : slot_cap) * sizeof *slots);
  if (!tidset_ready(&answered, 4 * MAX_TASKS) || !tidset_ready(&listed, 2 * MAX_TASKS) ||
      !tidset_ready(&was_busy, 2 * MAX_TASKS))
    return;
  install();
  if (!installed) return;
  atomic_store(&arrived, 0);
  atomic_store(&next_slot, 0);
  atomic_store(&busy, 0);
  atomic_store(&sleepers_until, INT64_MAX);
  atomic_store(&stop_at_exit, at_exit);
  atomic_store(&stopping, 1);

  int64_t start = hh_now_ns(), deadline = start + WAIT_NS, blocked_until = start + BLOCKED_WAIT_NS;
  int64_t next_look = start + GONE_LOOK_NS;
  /* Threads may start while we stop the others: list again until no new
   * one shows up (all the ones that could create threads are parked). */
  int asleep = 0; /* left alone (blocking, or waits_in): sent[] holds -tid */
  for (int round = 0; round < 8; round++) {
    int fresh = 0;
    for (int i = 0; i < n; i++) {
      if (tids[i] == self || tidset_has(&listed, tids[i]) || nsent >= MAX_TASKS || leader_ended(tids[i])) continue;
      /* glibc blocks every signal for a moment (pthread_create, fork): a
       * thread that blocks the signal is looked at again for up to 20 ms
       * in all, then while the stop waits (revisit_blocking). One that
       * never answers has its stack scanned as such. */
      int state = state_soon(tids[i], blocked_until);
      if (state == T_GONE) continue;
      int how = approach(tids[i], state, at_exit, vforked, &nvforked);
      if (how == A_LEFT && signal_state(tids[i]) == T_GONE) continue; /* ended as it was looked at */
      tidset_add(&listed, tids[i]);
      blocks[nsent] = how == A_BLOCKS;
      if (how == A_SENT) {
        sent[nsent++] = tids[i];
        fresh++;
      } else {
        sent[nsent++] = -tids[i];
        asleep++;
      }
      /* a listing of thousands takes a second on a busy machine: the
       * ones that blocked are looked at meanwhile too (a spawner left
       * running as long starts a thousand threads more) */
      if (hh_now_ns() >= next_look) {
        int now_sent = revisit_blocking(sent, blocks, nsent, at_exit, vforked, &nvforked);
        asleep -= now_sent;
        fresh += now_sent;
        next_look = hh_now_ns() + GONE_LOOK_NS;
      }
    }
    int late = revisit_blocking(sent, blocks, nsent, at_exit, vforked, &nvforked);
    asleep -= late;
    fresh += late;
    while (atomic_load(&arrived) < nsent - asleep) {
      int64_t now = hh_now_ns();
      if (now >= deadline) {
        /* a thread that can still answer is waiting for a CPU */
        if (now - start >= WAIT_CAP_NS || !any_can_answer(sent, nsent)) break;
        deadline = now + WAIT_NS / 20;
      }
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
      if (atomic_load(&busy) > 0) asleep += resend_busy(sent, nsent);
      /* a thread sent the signal that ended before it took it (it blocks
       * every signal as it exits) is not waited for until the deadline:
       * every thread parked meanwhile was held as long (a mutex's next
       * owner, 200 ms late, helper-37) */
      if (hh_now_ns() >= next_look) {
        int now_sent = revisit_blocking(sent, blocks, nsent, at_exit, vforked, &nvforked);
        asleep -= now_sent;
        fresh += now_sent; /* one may have started threads meanwhile: list again */
        if (now_sent == 0 && all_unanswered_gone(sent, nsent)) break;
        next_look = hh_now_ns() + GONE_LOOK_NS;
      }
    }
    if (fresh == 0 || hh_now_ns() >= deadline) break;
    n = list_tasks(tids, MAX_TASKS);
  }
  int parked_count = atomic_load(&next_slot);
  for (int i = 0; i < parked_count && i < slot_cap; i++)
    if (__atomic_load_n(&slots[i].tid, __ATOMIC_ACQUIRE) != 0) slots[i].in_call = at_system_call(slots[i].gregs);
  if (at_exit) trace_the_rest(sent, nsent);
  int got = atomic_load(&next_slot);
  w->threads = slots;
  w->count = got < slot_cap ? got : slot_cap;
  /* Not stopped: neither answered (signal or tracer) nor ended. A thread
   * that ended during the stop (signalled as it exited) runs no more: it
   * counted as one that could not be stopped, and the report called its
   * figures approximate for it; one the tracer held was also scanned as a
   * running thread, its heap all taken for reachable. */
  for (int k = 0; k < nsent; k++) {
    int tid = sent[k] < 0 ? -sent[k] : sent[k];
    if (parked(tid) || signal_state(tid) == T_GONE) continue;
    bool parks = false;
    for (int j = 0; j < nvforked && !parks; j++) parks = vforked[j] == tid;
    w->missed++;
    note_unstopped(w, tid, nsent, parks);
  }
}

/* The program's own disposition of the stop signal back, after a stop
 * while it runs, when every signal sent has reached the handler: no late
 * one can come then, which the default action would turn into the end of
 * the process. Left to us, the program's sigaction found our handler, and
 * its own use of the signal lost its flags (a handler without SA_RESTART
 * that interrupts a read). Not when the program changed it meanwhile. */
static void uninstall(void) {
  struct sigaction cur;
  if (atomic_load(&signals_taken) != atomic_load(&signals_sent)) return;
  if (sigaction(STOP_SIGNAL, NULL, &cur) != 0 || !(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != on_stop) return;
  if (sigaction(STOP_SIGNAL, &previous, NULL) == 0) installed = false;
}

void hh_world_exit_done(void) {
  int64_t soon = hh_now_ns() + SLEEPER_GRACE_NS;
  hh_trace_release_by(soon);
  if (soon < atomic_load(&sleepers_until)) atomic_store(&sleepers_until, soon);
}

void hh_world_resume(void) {
  atomic_store(&world_stopped, 0);
  atomic_store(&sleepers_until, hh_now_ns() + SLEEPER_WAIT_NS);
  hh_trace_resume(hh_now_ns() + SLEEPER_WAIT_NS);
  if (!atomic_load(&stopping)) return;
  atomic_store(&stopping, 0);
  atomic_fetch_add(&release_gen, 1);
  futex_wake_all(&release_gen);
  if (atomic_load(&stop_at_exit)) return;
  uninstall();
  /* The program goes on once its threads are back where the stop found
   * them (within 100 ms): one that signals a thread to end its blocking
   * call as soon as a leak check returns must find it in that call again,
   * not on its way back (where the signal would be taken before the call
   * restarts, and the call would block on). */
  int64_t until = hh_now_ns() + 100 * 1000 * 1000L;
  while (atomic_load(&parked_now) > 0 && hh_now_ns() < until) {
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
}
