/*
 * The printf of src/format.h: one formatting engine for the allocator's
 * messages (error.c, options.c...) and the report's text (report/out.c).
 */
#include "format.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof(long) == sizeof(long long) && sizeof(size_t) == sizeof(long long),
               "every length modifier reads a 64-bit argument");

int hh_format_hide_addresses;

static void pad(hh_sink sink, void *ctx, char c, int n) {
  char fill[32];
  memset(fill, c, sizeof fill);
  for (; n > 0; n -= (int)sizeof fill) sink(ctx, fill, n < (int)sizeof fill ? (size_t)n : sizeof fill);
}

/* `s` (n bytes) in a field of `width` characters. Zero padding goes after
 * the first `prefix` bytes (a sign, "0x"). */
static void field(hh_sink sink, void *ctx, const char *s, size_t n, int width, bool left, bool zero, size_t prefix) {
  int fill = width > (int)n ? width - (int)n : 0;
  if (left) {
    sink(ctx, s, n);
    pad(sink, ctx, ' ', fill);
  } else if (zero) {
    sink(ctx, s, prefix);
    pad(sink, ctx, '0', fill);
    sink(ctx, s + prefix, n - prefix);
  } else {
    pad(sink, ctx, ' ', fill);
    sink(ctx, s, n);
  }
}

/* The digits of v, written backwards from `end`; returns their count. */
static size_t digits(char *end, unsigned long long v, unsigned base, bool upper, bool commas) {
  const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char *p = end;
  int n = 0;
  do {
    if (commas && n > 0 && n % 3 == 0) *--p = ',';
    *--p = set[v % base];
    v /= base;
    n++;
  } while (v != 0);
  return (size_t)(end - p);
}

void hh_vformat(hh_sink sink, void *ctx, const char *fmt, va_list ap) {
  for (const char *f = fmt; *f != '\0'; f++) {
    if (*f != '%') {
      const char *pct = strchr(f, '%');
      size_t n = pct != NULL ? (size_t)(pct - f) : strlen(f);
      sink(ctx, f, n);
      f += n - 1;
      continue;
    }
    f++;
    bool left = false, zero = false, commas = false;
    for (;; f++) {
      if (*f == '-')
        left = true;
      else if (*f == '0')
        zero = true;
      else if (*f == '\'')
        commas = true;
      else
        break;
    }
    int width = 0;
    for (; *f >= '0' && *f <= '9'; f++) width = width * 10 + (*f - '0');
    int prec = -1;
    if (*f == '.') {
      f++;
      prec = 0;
      if (*f == '*') {
        prec = va_arg(ap, int);
        f++;
      }
      for (; *f >= '0' && *f <= '9'; f++) prec = prec * 10 + (*f - '0');
    }
    bool wide = false;
    for (; *f == 'l' || *f == 'z'; f++) wide = true;
    char buf[40], *end = buf + sizeof buf;
    size_t n;
    switch (*f) {
    case 'd':
    case 'i': {
      long long v = wide ? va_arg(ap, long long) : va_arg(ap, int);
      n = digits(end, v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v, 10, false, commas);
      if (v < 0) end[-(long)++n] = '-';
      field(sink, ctx, end - n, n, width, left, zero, v < 0);
      break;
    }
    case 'u':
    case 'x':
    case 'X': {
      unsigned long long v = wide ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
      n = digits(end, v, *f == 'u' ? 10 : 16, *f == 'X', commas);
      field(sink, ctx, end - n, n, width, left, zero, 0);
      break;
    }
    case 'p':
      if (hh_format_hide_addresses) {
        (void)va_arg(ap, void *);
        field(sink, ctx, "[hidden]", 8, width, left, false, 0);
        break;
      }
      n = digits(end, (uintptr_t)va_arg(ap, void *), 16, false, false);
      end[-(long)++n] = 'x';
      end[-(long)++n] = '0';
      field(sink, ctx, end - n, n, width, left, zero, 2);
      break;
    case 's': {
      const char *s = va_arg(ap, const char *);
      if (s == NULL) s = "(null)";
      field(sink, ctx, s, prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s), width, left, false, 0);
      break;
    }
    case 'c': {
      char c = (char)va_arg(ap, int);
      field(sink, ctx, &c, 1, width, left, false, 0);
      break;
    }
    case '%': sink(ctx, "%", 1); break;
    default: return;
    }
  }
}

/* ------------------------------------------------------------------ into a buffer */

typedef struct str_sink {
  char *buf;
  size_t size, len;
} str_sink;

static void to_str(void *ctx, const char *s, size_t n) {
  str_sink *o = ctx;
  size_t room = o->size - 1 - o->len;
  if (n > room) n = room;
  memcpy(o->buf + o->len, s, n);
  o->len += n;
}

size_t hh_vsnformat(char *buf, size_t size, const char *fmt, va_list ap) {
  if (size == 0) return 0;
  str_sink o = {buf, size, 0};
  hh_vformat(to_str, &o, fmt, ap);
  buf[o.len] = '\0';
  return o.len;
}

size_t hh_snformat(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t n = hh_vsnformat(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

/* ------------------------------------------------------------------ to a descriptor */

typedef struct fd_sink {
  int fd;
  size_t len;
  char buf[512];
} fd_sink;

static void fd_flush(fd_sink *o) {
  for (size_t done = 0; done < o->len;) {
    ssize_t w = write(o->fd, o->buf + done, o->len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += (size_t)w;
  }
  o->len = 0;
}

static void to_fd(void *ctx, const char *s, size_t n) {
  fd_sink *o = ctx;
  while (n > 0) {
    if (o->len == sizeof o->buf) fd_flush(o);
    size_t k = sizeof o->buf - o->len < n ? sizeof o->buf - o->len : n;
    memcpy(o->buf + o->len, s, k);
    o->len += k;
    s += k;
    n -= k;
  }
}

void hh_vdprintf(int fd, const char *fmt, va_list ap) {
  int saved = errno;
  fd_sink o = {.fd = fd, .len = 0};
  hh_vformat(to_fd, &o, fmt, ap);
  fd_flush(&o);
  errno = saved;
}

void hh_dprintf(int fd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hh_vdprintf(fd, fmt, ap);
  va_end(ap);
}
