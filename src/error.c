/*
 * Diagnostics that must work inside the allocator: a printf that never
 * allocates (stdio may call malloc), and the report of a misuse such as a
 * double free or a pointer hahalloc never returned.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

typedef struct out {
  int fd;
  size_t n;
  char buf[512];
} out;

static void out_flush(out *o) {
  size_t done = 0;
  while (done < o->n) {
    ssize_t w = write(o->fd, o->buf + done, o->n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += (size_t)w;
  }
  o->n = 0;
}

static void out_char(out *o, char c) {
  if (o->n == sizeof o->buf) out_flush(o);
  o->buf[o->n++] = c;
}

static void out_padded(out *o, const char *s, size_t len, int width, bool left, char pad) {
  int fill = width > (int)len ? width - (int)len : 0;
  if (!left)
    while (fill-- > 0) out_char(o, pad);
  for (size_t i = 0; i < len; i++) out_char(o, s[i]);
  if (left)
    while (fill-- > 0) out_char(o, ' ');
}

static void out_number(out *o, unsigned long long v, bool neg, unsigned base, int width, bool left,
                       char pad) {
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  if (neg) {
    if (pad == '0' && width > 0) {
      out_char(o, '-');
      width--;
    } else {
      tmp[--i] = '-';
    }
  }
  out_padded(o, tmp + i, sizeof tmp - i, width, left, pad);
}

static void hh_vdprintf(int fd, const char *fmt, va_list ap) {
  int saved = errno;
  out o = {.fd = fd, .n = 0};
  for (const char *f = fmt; *f; f++) {
    if (*f != '%') {
      out_char(&o, *f);
      continue;
    }
    f++;
    bool left = false;
    char pad = ' ';
    for (; *f == '-' || *f == '0'; f++) {
      if (*f == '-') left = true;
      else pad = '0';
    }
    int width = 0;
    for (; *f >= '0' && *f <= '9'; f++) width = width * 10 + (*f - '0');
    int prec = -1; /* %.*s, %.Ns */
    if (*f == '.') {
      f++;
      prec = 0;
      if (*f == '*') {
        prec = va_arg(ap, int);
        f++;
      }
      for (; *f >= '0' && *f <= '9'; f++) prec = prec * 10 + (*f - '0');
    }
    int lng = 0;
    for (; *f == 'l' || *f == 'z'; f++) lng = *f == 'z' ? 2 : lng + 1;
    switch (*f) {
    case 'd':
    case 'i': {
      long long v = lng >= 2 ? va_arg(ap, long long) : lng == 1 ? va_arg(ap, long) : va_arg(ap, int);
      bool neg = v < 0;
      out_number(&o, neg ? 0ull - (unsigned long long)v : (unsigned long long)v, neg, 10, width,
                 left, pad);
      break;
    }
    case 'u':
    case 'x': {
      unsigned long long v = lng >= 2   ? va_arg(ap, unsigned long long)
                             : lng == 1 ? va_arg(ap, unsigned long)
                                        : va_arg(ap, unsigned);
      out_number(&o, v, false, *f == 'x' ? 16 : 10, width, left, pad);
      break;
    }
    case 'p':
      out_char(&o, '0');
      out_char(&o, 'x');
      out_number(&o, (uintptr_t)va_arg(ap, void *), false, 16, width, left, pad);
      break;
    case 's': {
      const char *s = va_arg(ap, const char *);
      if (s == NULL) s = "(null)";
      size_t len = 0;
      while (s[len] && (prec < 0 || len < (size_t)prec)) len++;
      out_padded(&o, s, len, width, left, ' ');
      break;
    }
    case 'c':
      out_char(&o, (char)va_arg(ap, int));
      break;
    case '%':
      out_char(&o, '%');
      break;
    default:
      if (*f == '\0') f--;
      break;
    }
  }
  out_flush(&o);
  errno = saved;
}

void hh_dprintf(int fd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hh_vdprintf(fd, fmt, ap);
  va_end(ap);
}

static void error_end(const char *recovery) {
  hh_dprintf(2, "\n");
  if (hh_opt.on_error) {
    hh_dprintf(2, "hahalloc: %s (HAHALLOC_ON_ERROR=continue)\n", recovery);
    return;
  }
  hh_dprintf(2, "hahalloc: aborting; set HAHALLOC_ON_ERROR=continue to report and ignore such calls\n");
  abort();
}

void hh_error(const char *call, const void *ptr, const char *fmt, ...) {
  hh_dprintf(2, "hahalloc: error: %s(%p): ", call, ptr);
  va_list ap;
  va_start(ap, fmt);
  hh_vdprintf(2, fmt, ap);
  va_end(ap);
  error_end("the call is ignored");
}

void hh_corruption(const char *recovery, const char *fmt, ...) {
  hh_dprintf(2, "hahalloc: error: heap corruption: ");
  va_list ap;
  va_start(ap, fmt);
  hh_vdprintf(2, fmt, ap);
  va_end(ap);
  error_end(recovery);
}
