/*
 * exit(), interposed by the shared library only (a static link keeps
 * glibc's own: libc.a's exit.o may be linked in for its other symbols, and
 * two definitions would not link).
 *
 * A vfork child whose exec failed and that calls exit() instead of _exit()
 * runs its parent's exit handlers in its parent's memory: every handler it
 * runs is gone from the list, and the loader marks the destructors as run.
 * The parent then ends with no exit hook left, so without its report, and
 * with its status unchanged by --error-exitcode (valgrind runs such a child
 * as a fork, and reports the parent). With the report on, such a child ends
 * here, as _exit would once stdio is flushed (hh_report_vfork_exit). Every
 * other call goes on to glibc's exit. quick_exit is interposed for the
 * same gate (below).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../hooks.h"
#include "../internal.h"

typedef void (*exit_fn)(int) __attribute__((noreturn));
static exit_fn real_exit;

/* Found before main, outside any malloc: dlsym takes the loader's lock. */
__attribute__((constructor)) static void find_exit(void) { real_exit = (exit_fn)dlsym(RTLD_NEXT, "exit"); }

/* quick_exit too: two threads calling it at once each took handlers off
 * glibc's list, and the one that found ours gone ended the process through
 * glibc's internal _exit in the middle of the report the other was making
 * (no report, and --error-exitcode lost, in 6 of 6 runs: helper-41). The
 * gate makes the second wait, as for exit. glibc has two versions of it:
 * GLIBC_2.24's runs no thread_local destructors, GLIBC_2.10's does, and a
 * program built against the older one must keep getting it (helper-43):
 * each version here goes on to glibc's of the same version (hahalloc.map
 * makes ours those two versions). */
static exit_fn real_quick_exit, real_quick_exit_2_10;
__attribute__((constructor)) static void find_quick_exit(void) {
  real_quick_exit = (exit_fn)dlvsym(RTLD_NEXT, "quick_exit", "GLIBC_2.24");
  if (real_quick_exit == NULL) real_quick_exit = (exit_fn)dlsym(RTLD_NEXT, "quick_exit");
  real_quick_exit_2_10 = (exit_fn)dlvsym(RTLD_NEXT, "quick_exit", "GLIBC_2.10");
  if (real_quick_exit_2_10 == NULL) real_quick_exit_2_10 = real_quick_exit;
}

static __attribute__((noreturn)) void quick_exit_through(exit_fn *fn, int status) {
  hh_report_exit_gate();
  if (*fn == NULL) find_quick_exit(); /* a constructor ran before ours */
  if (*fn != NULL) (*fn)(status);
  for (;;) syscall(SYS_exit_group, status);
}

HH_EXPORT __attribute__((noreturn)) void quick_exit(int status) { quick_exit_through(&real_quick_exit, status); }

__asm__(".symver hh_quick_exit_2_10, quick_exit@GLIBC_2.10");
HH_EXPORT __attribute__((noreturn)) void hh_quick_exit_2_10(int status);
void hh_quick_exit_2_10(int status) { quick_exit_through(&real_quick_exit_2_10, status); }

HH_EXPORT __attribute__((noreturn)) void exit(int status) {
  hh_report_vfork_exit(status);
  hh_report_exit_gate();
  if (real_exit == NULL) real_exit = (exit_fn)dlsym(RTLD_NEXT, "exit"); /* a constructor ran before ours */
  if (real_exit != NULL) real_exit(status);
  for (;;) syscall(SYS_exit_group, status); /* no glibc exit to reach: cannot happen with glibc */
}
