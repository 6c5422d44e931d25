/*
 * The report's output: a buffer of memory from the OS, written to its
 * destination (dest.c) in large pieces, and a small printf that never
 * allocates (glibc's may, and the report must not call malloc while it
 * walks the heap or disturb the heap it describes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

#define OUT_CAP (1u << 20)

static void flush(hh_out *o) {
  hh_dest_write(o->dest, o->buf, o->len);
  o->len = 0;
}

void hh_out_open(hh_out *o, hh_dest_t dest) {
  o->dest = dest;
  o->len = 0;
  o->cap = OUT_CAP;
  o->buf = hh_report_map(OUT_CAP);
  if (o->buf == NULL) o->cap = 0;
  o->locked = hh_dest_lock(dest);
}

void hh_out_close(hh_out *o) {
  if (o->buf) {
    flush(o);
    hh_report_unmap(o->buf, OUT_CAP);
  }
  if (o->locked) hh_dest_unlock(o->dest);
  o->buf = NULL;
  o->locked = false;
}

void hh_out_write(hh_out *o, const char *s, size_t n) {
  if (o->buf == NULL) { /* no memory: unbuffered */
    hh_dest_write(o->dest, s, n);
    return;
  }
  while (n) {
    if (o->len == o->cap) flush(o);
    size_t k = o->cap - o->len < n ? o->cap - o->len : n;
    memcpy(o->buf + o->len, s, k);
    o->len += k;
    s += k;
    n -= k;
  }
}

static void put_padded(hh_out *o, const char *s, size_t n, int width, bool left) {
  static const char spaces[] = "                                ";
  int pad = width > (int)n ? width - (int)n : 0;
  if (!left)
    while (pad > 0) {
      int k = pad > 32 ? 32 : pad;
      hh_out_write(o, spaces, (size_t)k);
      pad -= k;
    }
  hh_out_write(o, s, n);
  if (left)
    while (pad > 0) {
      int k = pad > 32 ? 32 : pad;
      hh_out_write(o, spaces, (size_t)k);
      pad -= k;
    }
}

static size_t fmt_unsigned(char *end, unsigned long long v, unsigned base, bool commas) {
  char *p = end;
  int digits = 0;
  do {
    if (commas && digits && digits % 3 == 0) *--p = ',';
    *--p = "0123456789abcdef"[v % base];
    v /= base;
    digits++;
  } while (v);
  return (size_t)(end - p);
}

void hh_out_printf(hh_out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  for (const char *f = fmt; *f;) {
    if (*f != '%') {
      const char *pct = strchr(f, '%');
      size_t n = pct ? (size_t)(pct - f) : strlen(f);
      hh_out_write(o, f, n);
      f += n;
      continue;
    }
    f++;
    bool commas = false, left = false;
    for (;; f++) {
      if (*f == '\'') commas = true;
      else if (*f == '-') left = true;
      else break;
    }
    int width = 0;
    while (*f >= '0' && *f <= '9') width = width * 10 + (*f++ - '0');
    int prec = -1; /* %.*s */
    if (f[0] == '.' && f[1] == '*') {
      prec = va_arg(ap, int);
      f += 2;
    }
    int lng = 0;
    while (*f == 'l' || *f == 'z') {
      lng++;
      f++;
    }
    char buf[40], *end = buf + sizeof buf;
    switch (*f) {
    case 'd':
    case 'i': {
      long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
      size_t n = fmt_unsigned(end, v < 0 ? (unsigned long long)-v : (unsigned long long)v, 10, commas);
      if (v < 0) {
        *(end - n - 1) = '-';
        n++;
      }
      put_padded(o, end - n, n, width, left);
      break;
    }
    case 'u':
    case 'x': {
      unsigned long long v = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
      size_t n = fmt_unsigned(end, v, *f == 'x' ? 16 : 10, commas);
      put_padded(o, end - n, n, width, left);
      break;
    }
    case 'p': {
      uintptr_t v = (uintptr_t)va_arg(ap, void *);
      size_t n = fmt_unsigned(end, v, 16, false);
      *(end - n - 1) = 'x';
      *(end - n - 2) = '0';
      put_padded(o, end - n - 2, n + 2, width, left);
      break;
    }
    case 's': {
      const char *s = va_arg(ap, const char *);
      if (s == NULL) s = "(null)";
      size_t len = prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s);
      put_padded(o, s, len, width, left);
      break;
    }
    case 'c': {
      char c = (char)va_arg(ap, int);
      put_padded(o, &c, 1, width, left);
      break;
    }
    case '%': hh_out_write(o, "%", 1); break;
    default: va_end(ap); return; /* unknown: stop rather than misread arguments */
    }
    f++;
  }
  va_end(ap);
}

void hh_out_json_str(hh_out *o, const char *s) {
  if (s == NULL) {
    hh_out_write(o, "null", 4);
    return;
  }
  hh_out_write(o, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      char e[2] = {'\\', (char)*p};
      hh_out_write(o, e, 2);
    } else if (*p < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', "0123456789abcdef"[*p >> 4], "0123456789abcdef"[*p & 15]};
      hh_out_write(o, e, 6);
    } else {
      hh_out_write(o, (const char *)p, 1);
    }
  }
  hh_out_write(o, "\"", 1);
}

void hh_out_open_mem(hh_out *o) {
  o->dest = (hh_dest_t){-1, false};
  o->len = 0;
  o->cap = OUT_CAP;
  o->buf = hh_report_map(OUT_CAP);
  if (o->buf == NULL) o->cap = 0;
  o->locked = false;
}

void hh_out_append(hh_out *o, const hh_out *from) {
  if (from->buf && from->len) hh_out_write(o, from->buf, from->len);
}

void hh_out_xml_str(hh_out *o, const char *s) {
  if (s == NULL) return;
  for (const char *p = s; *p;) {
    size_t n = strcspn(p, "&<>\"'");
    hh_out_write(o, p, n);
    p += n;
    if (*p == '\0') break;
    const char *e = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '"' ? "&quot;" : "&apos;";
    hh_out_write(o, e, strlen(e));
    p++;
  }
}
