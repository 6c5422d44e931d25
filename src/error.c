/*
 * The report of a misuse (a double free, a pointer hahalloc never returned)
 * or of heap corruption, from inside the allocator: written with the
 * non-allocating printf of format.h, with the stacks of the call and of
 * the block's allocation (report/misuse.c), then abort unless
 * HAHALLOC_ON_ERROR=continue.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "hooks.h"
#include "internal.h"
#include "options.h"

_Atomic(uint64_t) hh_misuse_errors;

/* A message is put together in memory, then written at once (a message
 * written piece by piece could interleave with another thread's). */
#define SAY_MAX 1024

typedef struct say_buf {
  char b[SAY_MAX];
  size_t len;
} say_buf;

static void to_say(void *ctx, const char *s, size_t n) {
  say_buf *o = ctx;
  size_t room = SAY_MAX - o->len;
  if (n > room) n = room;
  memcpy(o->b + o->len, s, n);
  o->len += n;
}

static void say_add(say_buf *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hh_vformat(to_say, o, fmt, ap);
  va_end(ap);
}

static void say_flush(say_buf *o) {
  if (o->len == SAY_MAX) o->b[SAY_MAX - 1] = '\n'; /* cut short: still a line */
  hh_message_write(o->b, o->len);
}

void hh_say(const char *fmt, ...) {
  say_buf o = {.len = 0};
  va_list ap;
  va_start(ap, fmt);
  hh_vformat(to_say, &o, fmt, ap);
  va_end(ap);
  say_flush(&o);
}

static void error_end(const char *recovery) {
  atomic_fetch_add_explicit(&hh_misuse_errors, 1, memory_order_relaxed);
  if (hh_opt.on_error) {
    hh_say("hahalloc: %s (HAHALLOC_ON_ERROR=continue)\n", recovery);
    return;
  }
  hh_say("hahalloc: aborting; set HAHALLOC_ON_ERROR=continue to report and ignore such calls\n");
  abort();
}

void hh_error(const char *call, const void *ptr, const char *fmt, ...) {
  say_buf o = {.len = 0};
  say_add(&o, "hahalloc: error: %s(%p): ", call, ptr);
  va_list ap;
  va_start(ap, fmt);
  hh_vformat(to_say, &o, fmt, ap);
  va_end(ap);
  say_add(&o, "\n");
  say_flush(&o);
  hh_misuse_stacks(ptr);
  error_end("the call is ignored");
}

void hh_corruption(const char *recovery, const void *block, const char *fmt, ...) {
  say_buf o = {.len = 0};
  say_add(&o, "hahalloc: error: heap corruption: ");
  va_list ap;
  va_start(ap, fmt);
  hh_vformat(to_say, &o, fmt, ap);
  va_end(ap);
  say_add(&o, "\n");
  say_flush(&o);
  hh_misuse_stacks(block);
  error_end(recovery);
}
