/*
 * Suppressions: leaks the user (or we, for the runtime) decided not to see.
 *
 * Two formats, in any file, as valgrind and LeakSanitizer write them:
 *
 *   {                                  valgrind's: a name, Memcheck:Leak,
 *      a name for it                   optionally the kinds it matches,
 *      Memcheck:Leak                   then frames from the allocating
 *      match-leak-kinds: definite      function down: fun:NAME, obj:PATH,
 *      fun:malloc                      src:FILE[:LINE], with * and ?
 *      fun:_Z8make_keyv                wildcards, and ... for any number of
 *      ...                             frames. The frames listed must match
 *      fun:main                        the top of the stack; the rest of the
 *   }                                  stack does not matter.
 *
 *   leak:PATTERN                       LeakSanitizer's: PATTERN (with *,
 *                                      and ^ or $ to anchor it) found in
 *                                      the function, file or object of any
 *                                      frame but the allocating function.
 *
 * Function names match mangled (as --gen-suppressions writes them, and as
 * valgrind's are) or demangled. Lines starting with '#' are comments.
 * Files are read at report time into memory from the OS (hh_report_map):
 * no malloc, and nothing in secure-execution processes, where only the
 * built-in set applies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "optable.h"
#include "options.h"
#include "report.h"

/* ------------------------------------------------------------------ the built-in set */

/* Blocks the C and C++ runtimes keep for the life of the process, which
 * valgrind never shows because it frees them at exit (__libc_freeres,
 * __gnu_cxx::__freeres) and which are no leak of the program's. Only as
 * still reachable: when the runtime loses a block, that is reported. */
static const char builtin[] =
    /* libstdc++ sets aside an emergency pool before main (eh_alloc.cc), to
     * throw exceptions when malloc fails: the 72,704-byte block of every C++
     * program. */
    "{\n hahalloc:libstdc++-emergency-exception-pool\n Memcheck:Leak\n match-leak-kinds: reachable\n"
    " fun:malloc\n obj:*/libstdc++.so*\n ...\n obj:*/ld-linux*.so*\n}\n"
    /* The dynamic loader's own tables: loaded objects, their search paths,
     * the thread-local storage of threads and modules. */
    "{\n hahalloc:dynamic-loader\n Memcheck:Leak\n match-leak-kinds: reachable\n"
    " fun:*alloc\n obj:*/ld-linux*.so*\n}\n"
    /* A thread's dynamic TLS vector (DTV). After the thread is joined, glibc
     * keeps its stack and control block for the next thread, which the scan
     * does not read (nothing there is alive): lost, in every program that
     * joined a thread, though it is glibc's (valgrind frees it at exit). */
    "{\n hahalloc:thread-dtv\n Memcheck:Leak\n match-leak-kinds: reachable,possible,definite\n"
    " fun:*alloc\n ...\n fun:_dl_allocate_tls*\n}\n"
    /* A dlopen: the loader keeps the object's tables until dlclose. */
    "{\n hahalloc:dlopen\n Memcheck:Leak\n match-leak-kinds: reachable\n"
    " fun:*alloc\n ...\n fun:*dlopen*\n}\n"
    /* stdio's buffer of a stream, which libc keeps until the stream closes
     * (stdout and stderr: never). */
    "{\n hahalloc:stdio-buffer\n Memcheck:Leak\n match-leak-kinds: reachable\n"
    " fun:malloc\n fun:_IO_file_doallocate\n}\n"
    /* Locale data setlocale loads, kept for the life of the process. */
    "{\n hahalloc:setlocale\n Memcheck:Leak\n match-leak-kinds: reachable\n"
    " fun:*alloc\n ...\n fun:setlocale\n}\n"
    /* The time zone tzset reads, kept in libc's own static state. */
    "{\n hahalloc:tzset\n Memcheck:Leak\n match-leak-kinds: reachable\n"
    " fun:*alloc\n ...\n fun:tzset*\n}\n"
    /* iconv's conversion modules and their tables (gconv), cached by libc. */
    "{\n hahalloc:gconv\n Memcheck:Leak\n match-leak-kinds: reachable\n"
    " fun:*alloc\n ...\n fun:__gconv_open\n}\n"
    /* The name-service switch (getpwnam, getaddrinfo...): its modules and
     * their configuration stay loaded. */
    "{\n hahalloc:nss\n Memcheck:Leak\n match-leak-kinds: reachable\n"
    " fun:*alloc\n ...\n fun:__nss_*\n}\n"
    /* setenv keeps the strings it made in a tsearch tree of libc's, never
     * freed (the environment may still point into them); the tree's links
     * carry a colour in their low bit, so its nodes look pointed into, not
     * at: possibly lost, and --error-exitcode failed a program that set
     * four variables. The strings of values overwritten or unset are held
     * by those nodes alone, and are possibly lost with them (os.environ
     * assignments in Python: test_os). valgrind frees the tree and its
     * strings at exit (__libc_freeres). */
    "{\n hahalloc:setenv-tree\n Memcheck:Leak\n match-leak-kinds: reachable,possible\n"
    " fun:malloc\n fun:*tsearch\n ...\n fun:__add_to_environ\n}\n"
    "{\n hahalloc:setenv-strings\n Memcheck:Leak\n match-leak-kinds: reachable,possible\n"
    " fun:*alloc\n fun:__add_to_environ\n}\n"
    /* The message catalogs' bindings of bindtextdomain and textdomain
     * (every program translated with gettext), and the buffers of the
     * non-reentrant lookups of users and groups (getpwuid, getgrnam...),
     * which libc keeps in static pointers for the next call (helper-79:
     * still reachable in cmake, sqlite3, curl, tar, getent; valgrind frees
     * them at exit). */
    "{\n hahalloc:textdomain\n Memcheck:Leak\n match-leak-kinds: reachable\n"
    " fun:*alloc\n ...\n fun:*textdomain\n}\n"
    "{\n hahalloc:getpw-buffer\n Memcheck:Leak\n match-leak-kinds: reachable\n"
    " fun:*alloc\n fun:getpw*\n}\n"
    "{\n hahalloc:getgr-buffer\n Memcheck:Leak\n match-leak-kinds: reachable\n"
    " fun:*alloc\n fun:getgr*\n}\n";

/* ------------------------------------------------------------------ memory */

static hh_arena arena; /* the suppressions of one report */

/* ------------------------------------------------------------------ parsing */

enum { F_FUN, F_OBJ, F_SRC, F_DOTS };

typedef struct sframe {
  uint8_t type;
  const char *pat;
} sframe;

static hh_supp *list;
static size_t nlist, caplist;

static hh_supp *add(void) {
  if (nlist == caplist) {
    size_t cap = caplist ? caplist * 2 : 64;
    hh_supp *bigger = hh_arena_alloc(&arena, cap * sizeof *bigger);
    if (bigger == NULL) return NULL;
    if (nlist) memcpy(bigger, list, nlist * sizeof *bigger);
    list = bigger;
    caplist = cap;
  }
  hh_supp *s = &list[nlist++];
  memset(s, 0, sizeof *s);
  s->kinds = 15;
  return s;
}

/* The next line of [*at, end), trimmed; false at the end. */
static bool next_line(const char **at, const char *end, const char **line, size_t *len, int *lineno) {
  while (*at < end) {
    const char *l = *at;
    const char *nl = memchr(l, '\n', (size_t)(end - l));
    const char *e = nl ? nl : end;
    *at = nl ? nl + 1 : end;
    (*lineno)++;
    while (l < e && (*l == ' ' || *l == '\t' || *l == '\r')) l++;
    while (e > l && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
    if (l == e || *l == '#') continue;
    *line = l;
    *len = (size_t)(e - l);
    return true;
  }
  return false;
}

static bool starts(const char *l, size_t len, const char *prefix) {
  size_t n = strlen(prefix);
  return len >= n && !memcmp(l, prefix, n);
}

static void warn(hh_out *o, const char *origin, int lineno, const char *what) {
  if (o) hh_out_printf(o, "hahalloc: %s:%d: %s\n", origin, lineno, what);
}

/* Parses `text` (valgrind's blocks and LeakSanitizer's leak: lines). */
static void parse(const char *text, size_t size, const char *origin, hh_out *errs) {
  const char *at = text, *end = text + size, *l;
  size_t len;
  int lineno = 0;
  sframe frames[64];
  while (next_line(&at, end, &l, &len, &lineno)) {
    if (starts(l, len, "leak:")) {
      hh_supp *s = add();
      if (s == NULL) return;
      s->lsan = hh_arena_strndup(&arena, l + 5, len - 5);
      s->name = hh_arena_strndup(&arena, l, len);
      s->origin = origin;
      continue;
    }
    if (len != 1 || *l != '{') {
      if (memchr(l, ':', len) == NULL) warn(errs, origin, lineno, "not a suppression (ignored)");
      continue; /* LeakSanitizer's other types (called_from_lib:...) */
    }
    const char *name = NULL, *tool = NULL;
    size_t name_len = 0, tool_len = 0;
    unsigned kinds = 15;
    int n = 0, start = lineno;
    bool closed = false, bad = false;
    while (next_line(&at, end, &l, &len, &lineno)) {
      if (len == 1 && *l == '}') {
        closed = true;
        break;
      }
      if (name == NULL) {
        name = l;
        name_len = len;
      } else if (tool == NULL) {
        tool = l;
        tool_len = len;
      } else if (starts(l, len, "match-leak-kinds:")) {
        const char *v = l + 17;
        while (*v == ' ') v++;
        char buf[128];
        size_t vlen = (size_t)(l + len - v);
        if (vlen >= sizeof buf) vlen = sizeof buf - 1;
        memcpy(buf, v, vlen);
        buf[vlen] = '\0';
        int mask = hh_opt_kinds(buf);
        if (mask < 0)
          bad = true;
        else
          kinds = (unsigned)mask;
      } else if (n < 64) {
        if (len == 3 && !memcmp(l, "...", 3))
          frames[n++] = (sframe){F_DOTS, NULL};
        else if (starts(l, len, "fun:"))
          frames[n++] = (sframe){F_FUN, hh_arena_strndup(&arena, l + 4, len - 4)};
        else if (starts(l, len, "obj:"))
          frames[n++] = (sframe){F_OBJ, hh_arena_strndup(&arena, l + 4, len - 4)};
        else if (starts(l, len, "src:"))
          frames[n++] = (sframe){F_SRC, hh_arena_strndup(&arena, l + 4, len - 4)};
        else
          bad = true;
      }
    }
    if (!closed) {
      warn(errs, origin, start, "suppression not closed by '}' (ignored)");
      return;
    }
    /* only memcheck's leak suppressions: "Memcheck:Leak", "*:Leak" */
    const char *colon = tool ? memchr(tool, ':', tool_len) : NULL;
    if (colon == NULL || (size_t)(tool + tool_len - colon) != 5 || memcmp(colon, ":Leak", 5) != 0) continue;
    if (bad || n == 0) {
      warn(errs, origin, start, "suppression with a line that is no frame (ignored)");
      continue;
    }
    hh_supp *s = add();
    if (s == NULL) return;
    s->name = hh_arena_strndup(&arena, name, name_len);
    s->origin = origin;
    s->kinds = kinds;
    s->nframes = n;
    s->frames = hh_arena_alloc(&arena, (size_t)n * sizeof(sframe));
    if (s->frames == NULL) {
      nlist--;
      return;
    }
    memcpy(s->frames, frames, (size_t)n * sizeof(sframe));
  }
}

/* Reads `path` into memory from the OS. */
static char *read_file(const char *path, size_t *size, int *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    *err = errno;
    return NULL;
  }
  struct stat st;
  char *buf = NULL;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (64 << 20)) {
    buf = hh_arena_alloc(&arena, (size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
      ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += (size_t)r;
    }
    *size = got;
  } else {
    *err = EINVAL;
  }
  close(fd);
  return buf;
}

size_t hh_supp_load(hh_supp **out, hh_out *errs) {
  list = NULL;
  nlist = caplist = 0;
  if (hh_opt.default_suppressions) parse(builtin, sizeof builtin - 1, "built-in", errs);
  for (int i = 0; !hh_opt.secure && i < hh_opt.nsupp_files; i++) {
    size_t size = 0;
    int err = 0;
    char *text = read_file(hh_opt.supp_files[i], &size, &err);
    if (text == NULL) {
      if (errs)
        hh_out_printf(errs, "hahalloc: cannot read the suppressions in %s (%s)\n", hh_opt.supp_files[i], strerror(err));
      continue;
    }
    parse(text, size, hh_opt.supp_files[i], errs);
  }
  *out = list;
  return nlist;
}

void hh_supp_free(void) {
  hh_arena_free(&arena);
  list = NULL;
  nlist = caplist = 0;
}

bool hh_supp_user(void) { return !hh_opt.secure && hh_opt.nsupp_files > 0; }

/* ------------------------------------------------------------------ matching */

/* Shell-style match of `s` against `pat` (* any run, ? any one character). */
static bool glob(const char *pat, const char *s) {
  const char *star = NULL, *resume = NULL;
  while (*s) {
    if (*pat == '*') {
      star = pat++;
      resume = s;
    } else if (*pat == '?' || *pat == *s) {
      pat++;
      s++;
    } else if (star) {
      pat = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (*pat == '*') pat++;
  return *pat == '\0';
}

static bool frame_matches(const sframe *f, const hh_frame *fr) {
  switch (f->type) {
  case F_FUN: return (fr->mangled && glob(f->pat, fr->mangled)) || (fr->function && glob(f->pat, fr->function));
  case F_OBJ: return fr->object && glob(f->pat, fr->object);
  case F_SRC: {
    if (fr->file == NULL) return false;
    const char *base = hh_basename(fr->file);
    if (glob(f->pat, base) || glob(f->pat, fr->file)) return true;
    char with_line[1024];
    if (strlen(base) + 24 > sizeof with_line) return false;
    hh_snformat(with_line, sizeof with_line, "%s:%d", base, fr->line);
    return glob(f->pat, with_line);
  }
  }
  return false;
}

static bool frames_match(const sframe *p, int np, const hh_frame *fr, int nf) {
  if (np == 0) return true; /* the suppression's frames are the top of the stack */
  if (p->type == F_DOTS) {
    for (int skip = 0; skip <= nf; skip++)
      if (frames_match(p + 1, np - 1, fr + skip, nf - skip)) return true;
    return false;
  }
  if (nf == 0 || !frame_matches(p, fr)) return false;
  return frames_match(p + 1, np - 1, fr + 1, nf - 1);
}

/* LeakSanitizer's templates: * is any run, ^ and $ anchor, otherwise the
 * pattern may appear anywhere. */
static bool lsan_match(const char *pat, const char *s) {
  if (s == NULL) return false;
  char g[1024];
  size_t n = strlen(pat), k = 0;
  bool head = n && pat[0] == '^', tail = n && pat[n - 1] == '$' && n > (size_t)head;
  if (n + 3 > sizeof g) return false;
  if (!head) g[k++] = '*';
  memcpy(g + k, pat + head, n - head - tail);
  k += n - head - tail;
  if (!tail) g[k++] = '*';
  g[k] = '\0';
  for (size_t i = 0; i < k; i++)
    if (g[i] == '?') return false; /* no such wildcard in LeakSanitizer's templates: literal */
  return glob(g, s);
}

hh_supp *hh_supp_match(hh_supp *v, size_t n, unsigned kind, const hh_frame *fr, int nf) {
  for (size_t i = 0; i < n; i++) {
    hh_supp *s = &v[i];
    if (!(s->kinds & (1u << kind))) continue;
    if (s->lsan) {
      for (int f = 0; f < nf; f++) {
        if (f == 0 && nf > 1) continue; /* the allocating function is ours */
        if (lsan_match(s->lsan, fr[f].function) || lsan_match(s->lsan, fr[f].mangled) ||
            lsan_match(s->lsan, fr[f].file) || lsan_match(s->lsan, fr[f].object))
          return s;
      }
      continue;
    }
    if (frames_match((const sframe *)s->frames, s->nframes, fr, nf)) return s;
  }
  return NULL;
}

/* ------------------------------------------------------------------ writing */

void hh_supp_write(hh_out *o, unsigned kind, const hh_frame *fr, int nf) {
  hh_out_printf(o, "{\n   <insert_a_suppression_name_here>\n   Memcheck:Leak\n   match-leak-kinds: %s\n",
                hh_kind_names[kind]);
  for (int i = 0; i < nf; i++) {
    if (fr[i].mangled)
      hh_out_printf(o, "   fun:%s\n", fr[i].mangled);
    else if (fr[i].object)
      hh_out_printf(o, "   obj:%s\n", fr[i].object);
    else
      hh_out_printf(o, "   obj:*\n");
  }
  hh_out_printf(o, "}\n");
}
