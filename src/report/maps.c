/*
 * /proc/self/maps, read with raw system calls into a stack buffer: the
 * site capture runs inside malloc and the scan runs with the world stopped,
 * so neither may allocate (fopen would).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

static uintptr_t hex(const char **s) {
  uintptr_t v = 0;
  for (;;) {
    char c = **s;
    unsigned d;
    if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
    else return v;
    v = v * 16 + d;
    (*s)++;
  }
}

static void skip_spaces(const char **s) {
  while (**s == ' ' || **s == '\t') (*s)++;
}

/* "start-end perms offset major:minor inode   path" */
static bool parse_line(const char *s, hh_map_line *m) {
  m->start = hex(&s);
  if (*s++ != '-') return false;
  m->end = hex(&s);
  skip_spaces(&s);
  if (strlen(s) < 4) return false;
  m->r = s[0] == 'r';
  m->w = s[1] == 'w';
  m->x = s[2] == 'x';
  m->shared = s[3] == 's';
  s += 4;
  skip_spaces(&s);
  m->offset = hex(&s);
  skip_spaces(&s);
  uintptr_t major = hex(&s);
  m->dev_major_is_zero = major == 0;
  if (*s == ':') s++;
  (void)hex(&s);
  skip_spaces(&s);
  unsigned long inode = 0;
  while (*s >= '0' && *s <= '9') inode = inode * 10 + (unsigned long)(*s++ - '0');
  m->inode = inode;
  skip_spaces(&s);
  m->path = s;
  return true;
}

bool hh_maps_each(hh_map_fn fn, void *arg) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[8192];
  size_t have = 0;
  bool eof = false, go = true;
  while (go) {
    if (!eof && have < sizeof buf - 1) {
      ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
      if (n < 0) break;
      if (n == 0) eof = true;
      have += (size_t)n;
    }
    char *nl = memchr(buf, '\n', have);
    if (nl == NULL) {
      if (eof || have == sizeof buf - 1) { /* last line, or one too long for us */
        if (have == 0) break;
        nl = buf + have;
        if (have == sizeof buf - 1) nl--;
      } else {
        continue;
      }
    }
    *nl = '\0';
    hh_map_line m;
    if (parse_line(buf, &m)) go = fn(&m, arg);
    size_t used = (size_t)(nl - buf) + 1;
    if (used > have) used = have;
    memmove(buf, buf + used, have - used);
    have -= used;
    if (eof && have == 0) break;
  }
  close(fd);
  return true;
}
