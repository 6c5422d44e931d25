/*
 * The report of a misuse (a double free, a pointer hahalloc never returned)
 * or of heap corruption, from inside the allocator: written with the
 * non-allocating printf of format.h, with the stacks of the call and of
 * the block's allocation (report/misuse.c), then abort unless
 * HAHALLOC_ON_ERROR=continue.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>

#include "format.h"
#include "hooks.h"
#include "internal.h"
#include "options.h"

_Atomic(uint64_t) hh_misuse_errors;
_Atomic(uint64_t) hh_heap_damage;

/* A message is put together in memory, then written at once (a message
 * written piece by piece could interleave with another thread's); at most
 * SAY_MAX bytes, cut short beyond (still ending a line). */
#define SAY_MAX 1024

static void say_write(char *b, size_t len) {
  if (len == SAY_MAX - 1) b[len - 1] = '\n';
  hh_message_write(b, len);
}

void hh_say(const char *fmt, ...) {
  char b[SAY_MAX];
  va_list ap;
  va_start(ap, fmt);
  size_t len = hh_vsnformat(b, sizeof b, fmt, ap);
  va_end(ap);
  say_write(b, len);
}

/* "hahalloc: error: <head><the caller's format>\n" */
static void say_error(const char *head, const char *fmt, va_list ap) {
  char b[SAY_MAX];
  size_t len = hh_snformat(b, sizeof b, "hahalloc: error: %s", head);
  len += hh_vsnformat(b + len, sizeof b - len, fmt, ap);
  len += hh_snformat(b + len, sizeof b - len, "\n");
  say_write(b, len);
}

/* Under HAHALLOC_ON_ERROR=continue a mistake made in a loop is met again
 * at every turn: past the first HH_ERRORS_SHOWN errors (valgrind stops
 * listing new errors after 1,000 too) they are counted and not written, so
 * that a program's stderr (and the disk behind it) is not flooded. The
 * exit report says how many were not shown. A fork child starts counting
 * again: its report is its own. */
static _Atomic(uint64_t) errors_met;
_Atomic(uint64_t) hh_errors_unshown;

bool hh_error_shown(void) {
  uint64_t nth = atomic_fetch_add_explicit(&errors_met, 1, memory_order_relaxed);
  if (nth < HH_ERRORS_SHOWN || !hh_opt.error_limit) return true;
  atomic_fetch_add_explicit(&hh_errors_unshown, 1, memory_order_relaxed);
  if (nth == HH_ERRORS_SHOWN)
    hh_say("hahalloc: more than %d errors: the next ones are not shown%s\n", HH_ERRORS_SHOWN,
           hh_opt.report && hh_opt.format != HH_FORMAT_XML && hh_opt.format != HH_FORMAT_COLLAPSED
               ? " (the exit report, if the program reaches it, counts them)"
               : "");
  return false;
}

void hh_errors_atfork_child(void) {
  atomic_store_explicit(&errors_met, 0, memory_order_relaxed);
  atomic_store_explicit(&hh_errors_unshown, 0, memory_order_relaxed);
  hh_misuse_atfork_child();
}

static void error_end(const char *recovery, bool shown) {
  atomic_fetch_add_explicit(&hh_misuse_errors, 1, memory_order_relaxed);
  if (hh_opt.on_error) {
    if (shown) hh_say("hahalloc: %s (HAHALLOC_ON_ERROR=continue)\n", recovery);
    return;
  }
  if (hh_opt.secure) /* the variable has no effect there */
    hh_say("hahalloc: aborting\n");
  else
    hh_say("hahalloc: aborting; set HAHALLOC_ON_ERROR=continue to report and ignore such calls\n");
  abort();
}

/* An error's first line and stacks (unless past the limit, or met before
 * from the same call stack), then its end. */
static void error_told(const char *head, const void *block, const char *recovery, const char *fmt, va_list ap) {
  bool fresh = hh_misuse_context_new(fmt);
  bool shown = !hh_opt.on_error || (fresh && hh_error_shown()); /* an error that aborts is always told */
  if (shown) {
    say_error(head, fmt, ap);
    hh_misuse_stacks(block);
  }
  error_end(recovery, shown);
}

/* A message's writes and the misuse report's file calls are cancellation
 * points; the malloc or free that reports is not one. Both may come before
 * the allocator has been set up (a bad free from a constructor that runs
 * before ours): hh_init first, so that the options (secure execution's
 * hidden addresses, HAHALLOC_ON_ERROR) hold for the message. */
void hh_error(const char *call, const void *ptr, const char *fmt, ...) {
  hh_init();
  int cancel;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
  char head[160];
  hh_snformat(head, sizeof head, "%s(%p): ", call, ptr);
  va_list ap;
  va_start(ap, fmt);
  error_told(head, ptr, "the call is ignored", fmt, ap);
  va_end(ap);
  pthread_setcancelstate(cancel, NULL);
}

void hh_corruption(const char *recovery, const void *block, const char *fmt, ...) {
  hh_init();
  int cancel;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
  atomic_fetch_add_explicit(&hh_heap_damage, 1, memory_order_relaxed);
  va_list ap;
  va_start(ap, fmt);
  error_told("heap corruption: ", block, recovery, fmt, ap);
  va_end(ap);
  pthread_setcancelstate(cancel, NULL);
}
