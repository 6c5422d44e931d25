/*
 * Return addresses to function, file:line and object+offset.
 *
 * Function names come from the object's own symbol table (elf.c), and only
 * from a symbol whose bytes cover the address: a stripped program's static
 * function is "???", as valgrind says, never the exported function that
 * happens to come before it. Files and lines come from binutils' addr2line,
 * run as a child process once per object with a batch of addresses: it
 * understands every DWARF version gcc and clang emit, split debug files
 * under /usr/lib/debug and inlined frames (-i), and the report needs no
 * library of its own for it. It runs only for the frames the report lists
 * (or matches against suppressions), and not for the runtime (libc,
 * libstdc++, ld.so), whose frames only wrap malloc and whose debug
 * information is large. Names are kept mangled (suppressions are written
 * with them, as valgrind's are) and demangled for display by one run of
 * c++filt from the same directory.
 *
 * The helpers run so that the program cannot tell (spawn.c): no SIGCHLD, no
 * inherited descriptor, an absolute path found at start-up, our environment
 * without LD_PRELOAD, and a deadline (HAHALLOC_SYMBOLIZE_TIMEOUT_MS for the
 * whole report) after which they are killed and the report goes on without
 * names. In secure-execution processes nothing is spawned and no file is
 * opened: exported names only, from dladdr.
 *
 * No malloc here: the report may run in a thread that a signal interrupted
 * inside the allocator. Memory comes from the OS (hh_report_map).
 *
 * Addresses are return addresses: the call is the instruction before, so
 * pc - 1 is what gets looked up.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "format.h"
#include "options.h"
#include "report.h"

extern char **environ;

/* ------------------------------------------------------------------ memory */

/* Everything lives in the arena, the structure itself included. */
struct hh_symbols {
  hh_arena arena;
  hh_pcinfo *info; /* sorted by pc */
  size_t n;
  int64_t deadline; /* for the helpers, hh_now_ns */
};

void hh_symbols_free(hh_symbols *s) {
  if (s == NULL) return;
  hh_arena a = s->arena;
  hh_arena_free(&a);
}

/* ------------------------------------------------------------------ the helper */

/* The environment for the helper: ours without LD_PRELOAD and HAHALLOC_*. */
static char **child_env(hh_symbols *s) {
  size_t n = 0;
  while (environ && environ[n]) n++;
  char **env = hh_arena_alloc(&s->arena, (n + 1) * sizeof *env);
  if (env == NULL) return NULL;
  size_t j = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "LD_PRELOAD=", 11) && strncmp(environ[i], "HAHALLOC_", 9)) env[j++] = environ[i];
  env[j] = NULL;
  return env;
}

static bool is_hex_line(const char *l, size_t n) {
  if (n < 3 || l[0] != '0' || l[1] != 'x') return false;
  for (size_t i = 2; i < n; i++)
    if (!((l[i] >= '0' && l[i] <= '9') || (l[i] >= 'a' && l[i] <= 'f'))) return false;
  return true;
}

static uintptr_t parse_hex(const char *l, size_t n) {
  uintptr_t v = 0;
  for (size_t i = 2; i < n; i++) v = v * 16 + (uintptr_t)(l[i] <= '9' ? l[i] - '0' : l[i] - 'a' + 10);
  return v;
}

/* Adds one (function, location) pair to `pi`: the function's linkage
 * name, and "file:line" as addr2line prints it. A location without a line
 * ("file:?", "??:0", "??:?": no line table) is no location: a line 0 is
 * never shown. */
static void add_line(hh_symbols *s, hh_pcinfo *pi, const char *fn, size_t fnlen, const char *loc, size_t loclen) {
  hh_line *nl = hh_arena_alloc(&s->arena, (size_t)(pi->nlines + 1) * sizeof *nl);
  if (nl == NULL) return;
  if (pi->nlines) memcpy(nl, pi->lines, (size_t)pi->nlines * sizeof *nl);
  hh_line *l = &nl[pi->nlines];
  l->mangled = (fnlen && !(fnlen == 2 && !memcmp(fn, "??", 2))) ? hh_arena_strndup(&s->arena, fn, fnlen) : NULL;
  l->function = l->mangled;
  l->file = NULL;
  l->line = 0;
  /* "file:line", "file:line (discriminator 2)" */
  const char *d = memchr(loc, ' ', loclen);
  if (d) loclen = (size_t)(d - loc);
  const char *colon = NULL;
  for (size_t i = loclen; i-- > 0;)
    if (loc[i] == ':') {
      colon = loc + i;
      break;
    }
  int line = 0;
  for (const char *p = colon ? colon + 1 : loc + loclen; p < loc + loclen && line >= 0; p++)
    line = *p >= '0' && *p <= '9' && line < 100000000 ? line * 10 + (*p - '0') : -1;
  if (colon && line > 0 && !(colon - loc == 2 && !memcmp(loc, "??", 2))) {
    l->file = hh_arena_strndup(&s->arena, loc, (size_t)(colon - loc));
    l->line = line;
  }
  pi->lines = nl;
  pi->nlines++;
}

/* Runs addr2line on `obj` for infos[0..n) and fills their lines. */
static void run_addr2line(hh_symbols *s, const char *tool, char **env, const char *obj, hh_pcinfo **infos, size_t n) {
  enum { FIXED = 6 };
  char **argv = hh_arena_alloc(&s->arena, (n + FIXED + 1) * sizeof *argv);
  if (argv == NULL) return;
  argv[0] = (char *)tool;
  argv[1] = (char *)"-a";
  argv[2] = (char *)"-f";
  argv[3] = (char *)"-i";
  argv[4] = (char *)"-e";
  argv[5] = (char *)obj;
  for (size_t i = 0; i < n; i++) {
    char *a = hh_arena_alloc(&s->arena, 24);
    if (a == NULL) return;
    hh_snformat(a, 24, "0x%lx", (unsigned long)(infos[i]->offset - 1));
    argv[FIXED + i] = a;
  }
  argv[FIXED + n] = NULL;

  size_t len, cap;
  char *out = hh_spawn_capture(tool, argv, env, s->deadline, &len, &cap);
  if (out == NULL) return;

  hh_pcinfo *cur = NULL;
  size_t next = 0;
  const char *fn = NULL;
  size_t fnlen = 0;
  for (size_t i = 0; i < len;) {
    const char *l = out + i;
    const char *nlp = memchr(l, '\n', len - i);
    size_t ll = nlp ? (size_t)(nlp - l) : len - i;
    i += ll + 1;
    if (is_hex_line(l, ll)) {
      uintptr_t a = parse_hex(l, ll) + 1;
      cur = NULL;
      /* addresses come back in the order given */
      for (size_t k = next; k < n; k++)
        if (infos[k]->offset == a) {
          cur = infos[k];
          next = k + 1;
          break;
        }
      fn = NULL;
      continue;
    }
    if (cur == NULL) continue;
    if (fn == NULL) {
      fn = l;
      fnlen = ll;
    } else {
      add_line(s, cur, fn, fnlen, l, ll);
      fn = NULL;
    }
  }
  hh_report_unmap(out, cap);
}

/* ------------------------------------------------------------------ resolve */

/* c++filt beside the addr2line in use (binutils ships both). */
static bool cxxfilt_path(char *buf, size_t size) {
  const char *tool = hh_opt.addr2line;
  if (tool == NULL) return false;
  const char *slash = strrchr(tool, '/');
  size_t dir = slash ? (size_t)(slash - tool) + 1 : 0;
  if (dir + sizeof "c++filt" > size) return false;
  memcpy(buf, tool, dir);
  memcpy(buf + dir, "c++filt", sizeof "c++filt");
  return access(buf, X_OK) == 0;
}

/* Demangles the C++ names among lines[i].function in place, with runs of
 * c++filt (no malloc, unlike __cxa_demangle). */
static void demangle_all(hh_symbols *s, hh_line **lines, size_t n, char **env) {
  char tool[4096];
  if (n == 0 || !cxxfilt_path(tool, sizeof tool)) return;
  enum { BATCH = 512 }; /* keep the command line short */
  char **argv = hh_arena_alloc(&s->arena, (BATCH + 2) * sizeof *argv);
  if (argv == NULL) return;
  argv[0] = tool;
  for (size_t from = 0; from < n; from += BATCH) {
    size_t k = n - from < BATCH ? n - from : BATCH;
    for (size_t i = 0; i < k; i++) argv[i + 1] = (char *)lines[from + i]->mangled;
    argv[k + 1] = NULL;
    size_t len, cap;
    char *out = hh_spawn_capture(tool, argv, env, s->deadline, &len, &cap);
    if (out == NULL) return;
    size_t i = 0;
    for (size_t at = 0; at < len && i < k;) {
      const char *l = out + at;
      const char *nl = memchr(l, '\n', len - at);
      size_t ll = nl ? (size_t)(nl - l) : len - at;
      at += ll + 1;
      if (ll > 0) lines[from + i]->function = hh_arena_strndup(&s->arena, l, ll);
      i++;
    }
    hh_report_unmap(out, cap);
  }
}

static bool query_before(const hh_elf_query *x, const hh_elf_query *y) { return x->vaddr < y->vaddr; }

/* The exported symbol that covers pc, with no file to read (secure execution). */
static const char *exported_function(uintptr_t pc) {
  Dl_info d;
  const ElfW(Sym) *sym = NULL;
  if (dladdr1((void *)(pc - 1), &d, (void **)&sym, RTLD_DL_SYMENT) && d.dli_sname && sym &&
      pc - 1 - (uintptr_t)d.dli_saddr < sym->st_size)
    return d.dli_sname;
  return NULL;
}

/* Names the frames addr2line could not, from the object's symbol table:
 * the function whose bytes cover the address, or none. Frames addr2line
 * placed in a source file keep its names (inlined frames have no symbol of
 * their own); without a line table addr2line names the nearest symbol below
 * the address, which is checked here. One pass over each object's
 * symbols names all its frames. */
/* q's function name from e, in `small` or, longer, in the arena; or NULL. */
static const char *elf_name(hh_symbols *s, const hh_elf *e, const hh_elf_query *q, char small[512]) {
  size_t len = hh_elf_name(e, q, small, 512);
  if (len < 512) return len ? small : NULL;
  char *big = hh_arena_alloc(&s->arena, len + 1);
  return big != NULL && hh_elf_name(e, q, big, len + 1) == len ? big : NULL;
}

static void name_from_symbols(hh_symbols *s, size_t m) {
  bool *done = hh_arena_alloc(&s->arena, m + 1);
  hh_elf_query *q = hh_arena_alloc(&s->arena, (m + 1) * sizeof *q);
  if (done == NULL || q == NULL) return;
  memset(done, 0, m + 1);
  for (size_t i = 0; i < m; i++) {
    if (done[i] || s->info[i].object == NULL) continue;
    const char *obj = s->info[i].object;
    size_t nq = 0; /* the object's frames that addr2line did not place */
    for (size_t j = i; j < m; j++) {
      hh_pcinfo *pi = &s->info[j];
      if (done[j] || pi->object == NULL || strcmp(pi->object, obj) != 0) continue;
      done[j] = true;
      bool located = false;
      for (int k = 0; k < pi->nlines; k++) located |= pi->lines[k].file != NULL;
      if (!located) q[nq++] = (hh_elf_query){.vaddr = pi->offset - 1, .at = j};
    }
    if (nq == 0) continue;
    hh_elf e;
    bool have = s->info[i].file != NULL && hh_elf_open(s->info[i].file, &e);
    if (have) {
      HH_SORT(hh_elf_query, q, nq, query_before);
      hh_elf_functions(&e, q, nq);
    }
    for (size_t k = 0; k < nq; k++) {
      hh_pcinfo *pi = &s->info[q[k].at];
      char small[512];
      const char *name = have ? elf_name(s, &e, &q[k], small) : exported_function(pi->pc);
      /* a versioned definition of the C library: pthread_create@@GLIBC_2.34 */
      if (name) name = hh_arena_strndup(&s->arena, name, strcspn(name, "@"));
      if (pi->nlines == 0) add_line(s, pi, "", 0, "", 0);
      if (pi->nlines == 0) continue;
      pi->nlines = 1; /* without a line table, addr2line's inlined frames are guesses too */
      pi->lines[0].mangled = pi->lines[0].function = name;
    }
    if (have) hh_elf_close(&e);
  }
}

/* Objects whose file was replaced or removed since it was mapped: maps
 * says "(deleted)" (a package upgrade renames a new file over the old).
 * Their path now names another file, whose symbols and lines would name
 * other functions: a program copied over itself as it ran was reported in
 * the new program's functions (helper-80). The program is read through
 * /proc/<pid>/exe, which is still its file; a deleted library's frames get
 * the names its own loaded tables export. */
#define DELETED_MAX 32
struct deleted {
  hh_symbols *s;
  const char *path[DELETED_MAX];
  size_t n;
};

static bool deleted_cb(const hh_map_line *m, void *arg) {
  struct deleted *d = arg;
  static const char mark[] = " (deleted)";
  size_t len = strlen(m->path), ml = sizeof mark - 1;
  if (len <= ml || m->path[0] != '/' || strcmp(m->path + len - ml, mark) != 0) return true;
  for (size_t i = 0; i < d->n; i++)
    if (strlen(d->path[i]) == len - ml && !strncmp(d->path[i], m->path, len - ml)) return true;
  if (d->n == DELETED_MAX) return false;
  const char *p = hh_arena_strndup(&d->s->arena, m->path, len - ml);
  if (p != NULL) d->path[d->n++] = p;
  return true;
}

static void deleted_objects(hh_symbols *s) {
  struct deleted d = {s, {NULL}, 0};
  if (!hh_maps_each(deleted_cb, &d) || d.n == 0) return;
  char exe[64];
  hh_snformat(exe, sizeof exe, "/proc/%d/exe", (int)getpid());
  const char *self = NULL;
  for (size_t i = 0; i < s->n; i++) {
    hh_pcinfo *pi = &s->info[i];
    if (pi->object == NULL) continue;
    bool gone = false;
    for (size_t k = 0; k < d.n && !gone; k++) gone = !strcmp(pi->object, d.path[k]);
    if (!gone) continue;
    bool program = hh_object_is_program(pi->object);
    if (program && self == NULL) self = hh_arena_strndup(&s->arena, exe, strlen(exe));
    pi->file = program ? self : NULL;
  }
}

static hh_symbols *resolve(const uintptr_t *pcs_in, const uint8_t *lines_in, size_t n, bool spawn) {
  hh_arena a = {NULL};
  hh_symbols *s = hh_arena_alloc(&a, sizeof *s);
  if (s == NULL) return NULL;
  memset(s, 0, sizeof *s);
  s->arena = a;
  /* pc << 1 | wants lines: sorted, then merged */
  uintptr_t *pcs = hh_arena_alloc(&s->arena, (n + 1) * sizeof *pcs);
  s->info = hh_arena_alloc(&s->arena, (n + 1) * sizeof *s->info);
  hh_pcinfo **todo = hh_arena_alloc(&s->arena, (n + 1) * sizeof *todo);
  bool *done = hh_arena_alloc(&s->arena, n + 1);
  if (!pcs || !s->info || !todo || !done) return s;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!hh_is_entry_pc(pcs_in[i])) pcs[k++] = pcs_in[i] << 1 | (lines_in == NULL || lines_in[i]);
  n = k;
  HH_SORT(uintptr_t, pcs, n, hh_word_before);
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (m > 0 && pcs[m - 1] >> 1 == pcs[i] >> 1)
      pcs[m - 1] |= pcs[i] & 1;
    else
      pcs[m++] = pcs[i];
  }

  /* the objects of the calls (the byte before each return address), in
   * one pass over the loaded objects */
  uintptr_t *calls = hh_arena_alloc(&s->arena, (m + 1) * sizeof *calls);
  uintptr_t *bases = hh_arena_alloc(&s->arena, (m + 1) * sizeof *bases);
  const char **names = hh_arena_alloc(&s->arena, (m + 1) * sizeof *names);
  if (!calls || !bases || !names) return s;
  for (size_t i = 0; i < m; i++) calls[i] = (pcs[i] >> 1) - 1;
  hh_objects_of(calls, m, names, bases);
  for (size_t i = 0; i < m; i++) {
    hh_pcinfo *pi = &s->info[i];
    memset(pi, 0, sizeof *pi);
    pi->pc = pcs[i] >> 1;
    if (names[i] != NULL) {
      pi->object = names[i][0] != '\0' ? names[i] : NULL;
      pi->file = pi->object;
      pi->offset = pi->pc - bases[i];
    } else {
      pi->offset = pi->pc;
    }
  }
  s->n = m;
  deleted_objects(s);

  const char *tool = hh_opt.secure || !spawn ? NULL : hh_opt.addr2line;
  char **env = hh_opt.secure || !spawn ? NULL : child_env(s);
  s->deadline = hh_now_ns() + (int64_t)hh_opt.symbolize_ms * 1000000;
  /* binutils' addr2line finds line tables where hh_elf_has_lines looks;
   * another tool, or one that may fetch them (debuginfod), is asked always */
  const char *base = tool ? strrchr(tool, '/') : NULL;
  const char *debuginfod = getenv("DEBUGINFOD_URLS");
  bool skip_lineless = base && !strcmp(base + 1, "addr2line") && (debuginfod == NULL || *debuginfod == '\0');
  memset(done, 0, m);
  for (size_t i = 0; tool && env && i < m; i++) {
    /* The runtime's frames only wrap malloc (strdup, operator new): its
     * exported names are enough, and its debug information (libc6-dbg) is
     * large enough to cost more than the whole scan. */
    if (done[i] || !(pcs[i] & 1) || s->info[i].file == NULL || hh_runtime_object(s->info[i].object)) continue;
    const char *obj = s->info[i].file;
    /* without a line table addr2line only names the symbol below the
     * address, as name_from_symbols does without a process */
    bool lines = !skip_lineless || hh_elf_has_lines(obj);
    size_t k2 = 0;
    for (size_t j = i; j < m; j++)
      if (!done[j] && (pcs[j] & 1) && s->info[j].file && !strcmp(s->info[j].file, obj)) {
        done[j] = true;
        if (!lines) continue;
        todo[k2++] = &s->info[j];
        if (k2 == 512) { /* keep the command line short */
          run_addr2line(s, tool, env, obj, todo, k2);
          k2 = 0;
        }
      }
    if (k2) run_addr2line(s, tool, env, obj, todo, k2);
  }
  name_from_symbols(s, m);

  /* every C++ name, demangled in one go */
  hh_line **mangled = hh_arena_alloc(&s->arena, (m * 4 + 1) * sizeof *mangled);
  size_t nmangled = 0, cap = m * 4;
  for (size_t i = 0; mangled && i < m; i++)
    for (int k3 = 0; k3 < s->info[i].nlines; k3++) {
      hh_line *l = &s->info[i].lines[k3];
      if (l->mangled && l->mangled[0] == '_' && l->mangled[1] == 'Z' && nmangled < cap) mangled[nmangled++] = l;
    }
  if (env && mangled) demangle_all(s, mangled, nmangled, env);
  return s;
}

/* errno as it was: the misuse report runs inside the program's free(), and
 * files that do not exist (debug files) are looked for here. */
hh_symbols *hh_symbols_resolve(const uintptr_t *pcs_in, const uint8_t *lines_in, size_t n, bool spawn) {
  int saved = errno;
  hh_symbols *s = resolve(pcs_in, lines_in, n, spawn);
  errno = saved;
  return s;
}

const hh_pcinfo *hh_symbols_get(const hh_symbols *s, uintptr_t pc) {
  if (s == NULL) return NULL;
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (s->info[mid].pc < pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < s->n && s->info[lo].pc == pc ? &s->info[lo] : NULL;
}
