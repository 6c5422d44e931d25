/*
 * The report's output: a buffer of memory from the OS, written to its
 * destination (dest.c) in large pieces, and formatted with the library's
 * non-allocating printf (format.h): the report must not call malloc while
 * it walks the heap, nor disturb the heap it describes.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <string.h>

#include "format.h"
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

static void write_out(hh_out *o, const char *s, size_t n) {
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

static void out_sink(void *ctx, const char *s, size_t n) { write_out(ctx, s, n); }

void hh_out_printf(hh_out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hh_vformat(out_sink, o, fmt, ap);
  va_end(ap);
}

void hh_out_json_str(hh_out *o, const char *s) {
  if (s == NULL) {
    write_out(o, "null", 4);
    return;
  }
  write_out(o, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      char e[2] = {'\\', (char)*p};
      write_out(o, e, 2);
    } else if (*p < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', "0123456789abcdef"[*p >> 4], "0123456789abcdef"[*p & 15]};
      write_out(o, e, 6);
    } else {
      write_out(o, (const char *)p, 1);
    }
  }
  write_out(o, "\"", 1);
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
  if (from->buf && from->len) write_out(o, from->buf, from->len);
}

void hh_out_xml_str(hh_out *o, const char *s) {
  if (s != NULL) hh_out_xml_strn(o, s, strlen(s));
}

void hh_out_xml_strn(hh_out *o, const char *s, size_t len) {
  for (const char *p = s, *end = s + len; p < end;) {
    size_t n = strcspn(p, "&<>\"'");
    if (n > (size_t)(end - p)) n = (size_t)(end - p);
    write_out(o, p, n);
    p += n;
    if (p == end) break;
    const char *e = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '"' ? "&quot;" : "&apos;";
    write_out(o, e, strlen(e));
    p++;
  }
}
