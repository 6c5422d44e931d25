/*
 * The library's one printf (src/format.c). It never allocates, keeps errno,
 * and may run anywhere: inside malloc, in a report made from a signal
 * handler, while the other threads are stopped. glibc's printf family may
 * call malloc, so none of it is used.
 *
 * A subset of printf: flags '-' (left-justify), '0' (zero padding) and '\''
 * (thousands separators: 1,234,567); a field width; a precision for %s
 * only (".N" or ".*"); lengths l, ll and z; conversions d i u x X p s c and
 * %%. An unknown conversion ends the output there rather than misread the
 * arguments that follow.
 */
#ifndef HH_FORMAT_H
#define HH_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

/* Set in secure execution (AT_SECURE): %p prints "[hidden]", never an
 * address. What we print there reaches a less privileged user, and one heap
 * or code address would undo the address-space randomization that stands
 * between that user and the privileged process. */
extern int hh_format_hide_addresses;

/* Where formatted text goes, piece by piece. */
typedef void (*hh_sink)(void *ctx, const char *s, size_t n);
void hh_vformat(hh_sink sink, void *ctx, const char *fmt, va_list ap);

/* Into buf (always NUL-terminated, cut short to fit); returns the length
 * written. */
size_t hh_snformat(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
size_t hh_vsnformat(char *buf, size_t size, const char *fmt, va_list ap);
/* To a file descriptor, in writes of up to 512 bytes. */
void hh_dprintf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hh_vdprintf(int fd, const char *fmt, va_list ap);

#endif
