/*
 * ELF symbol tables, read from the files themselves: which function covers
 * an address, under its linkage (mangled) name.
 *
 * Two users:
 * - the report (symbols.c), to name a frame only with a symbol that covers
 *   it: addr2line and dladdr name an address after the nearest symbol below
 *   it however far away (a stripped binary's static functions then take the
 *   name of the last exported one), where valgrind says "???";
 * - the site capture (unwind.c), to tell the C++ standard library's
 *   templates and inline functions compiled into the program (std::vector,
 *   std::allocator, ...: frames in the program's own object, but not the
 *   program's code) from the user's code, so that a leak through a
 *   container is attributed to the user's call, as one through strdup is.
 *
 * No malloc, no stdio: the capture runs inside malloc, the report may run
 * in a thread interrupted inside the allocator. Headers, notes and the
 * names of frames are read with pread, the symbol table a window at a
 * time, so that a report's peak RSS grows by a window, not by the tables
 * (the C library's debug symbols alone are 370 KiB); the file is also
 * mapped read-only for the standard library's index, and unmapped when
 * done. .symtab is used when the file has one (static functions too), else
 * the one of its separate debug file (/usr/lib/debug/.build-id/, where
 * Debian's -dbg packages put it), else .dynsym (exported functions only).
 * Secure-execution processes open no file: nothing here runs for them.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "lock.h"
#include "options.h"
#include "os.h"
#include "report.h"

/* ------------------------------------------------------------------ reading */

/* Reads len bytes at off into buf: the headers are read, not touched in
 * the mapping, where each first touch would make the kernel map 16 pages
 * around it (fault-around: 64 KiB of RSS for a 64-byte header). */
static bool read_at(int fd, void *buf, size_t len, size_t off) {
  size_t done = 0;
  while (done < len) {
    ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
    if (r <= 0) return false;
    done += (size_t)r;
  }
  return true;
}

static bool map_file(const char *path, hh_elf *e) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  ElfW(Ehdr) eh;
  void *p = MAP_FAILED;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= (off_t)sizeof eh && read_at(fd, &eh, sizeof eh, 0) &&
      memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64 &&
      eh.e_shentsize == sizeof(ElfW(Shdr)) && eh.e_shoff != 0 &&
      eh.e_shoff + (size_t)eh.e_shnum * sizeof(ElfW(Shdr)) <= (size_t)st.st_size) {
    e->shdrs_size = ((size_t)eh.e_shnum * sizeof(ElfW(Shdr)) + 4095) & ~(size_t)4095;
    e->shdrs = mmap(NULL, e->shdrs_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (e->shdrs == MAP_FAILED) e->shdrs = NULL;
    if (e->shdrs != NULL && read_at(fd, e->shdrs, (size_t)eh.e_shnum * sizeof(ElfW(Shdr)), eh.e_shoff)) {
      e->nshdrs = eh.e_shnum;
      e->shstrndx = eh.e_shstrndx;
      p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    }
  }
  if (p == MAP_FAILED) {
    close(fd);
    hh_elf_close(e);
    return false;
  }
  e->fd = fd;
  e->map = p;
  e->size = (size_t)st.st_size;
  return true;
}

static const ElfW(Shdr) * sections(const hh_elf *e, size_t *n) {
  *n = e->nshdrs;
  return e->shdrs;
}

/* The symbol table of type `type` (SHT_SYMTAB, SHT_DYNSYM) and its strings. */
static bool find_table(hh_elf *e, uint32_t type) {
  size_t n;
  const ElfW(Shdr) *sh = sections(e, &n);
  if (sh == NULL) return false;
  for (size_t i = 0; i < n; i++) {
    if (sh[i].sh_type != type || sh[i].sh_link >= n) continue;
    const ElfW(Shdr) *str = &sh[sh[i].sh_link];
    if (sh[i].sh_offset + sh[i].sh_size > e->size || str->sh_offset + str->sh_size > e->size ||
        str->sh_type != SHT_STRTAB || sh[i].sh_entsize != sizeof(ElfW(Sym)))
      return false;
    e->syms = (const ElfW(Sym) *)(e->map + sh[i].sh_offset);
    e->nsyms = sh[i].sh_size / sizeof(ElfW(Sym));
    e->strs = (const char *)(e->map + str->sh_offset);
    e->strsize = str->sh_size;
    return true;
  }
  return false;
}

/* /usr/lib/debug/.build-id/xx/yyyy.debug for the file's build id. */
static bool debug_path(const hh_elf *e, char *buf, size_t size) {
  size_t n;
  const ElfW(Shdr) *sh = sections(e, &n);
  if (sh == NULL) return false;
  for (size_t i = 0; i < n; i++) {
    uint8_t note[512]; /* the build id comes first in its section: a longer one is read in part */
    size_t got = sh[i].sh_size < sizeof note ? sh[i].sh_size : sizeof note;
    if (sh[i].sh_type != SHT_NOTE || sh[i].sh_offset + sh[i].sh_size > e->size ||
        !read_at(e->fd, note, got, sh[i].sh_offset))
      continue;
    const uint8_t *p = note, *end = p + got;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
      const uint8_t *name = p + sizeof *nh, *desc = name + ((nh->n_namesz + 3) & ~3u);
      if (desc + nh->n_descsz > end) break;
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4) && nh->n_descsz >= 2 &&
          nh->n_descsz <= 64) {
        size_t len = hh_snformat(buf, size, "/usr/lib/debug/.build-id/%02x/", desc[0]);
        for (uint32_t k = 1; k < nh->n_descsz; k++) len += hh_snformat(buf + len, size - len, "%02x", desc[k]);
        return len + hh_snformat(buf + len, size - len, ".debug") == 2 * nh->n_descsz + 32;
      }
      p = desc + ((nh->n_descsz + 3) & ~3u);
    }
  }
  return false;
}

/* The debug file `name` where binutils looks for it from directory `dir`
 * ("" for /): in it, in its .debug directory, or under /usr/lib/debug and
 * /usr/lib/debug/usr. */
static bool debuglink_in(const char *dir, const char *name) {
  char cand[1536];
  const char *forms[] = {"%s/%s", "%s/.debug/%s", "/usr/lib/debug%s/%s", "/usr/lib/debug/usr%s/%s"};
  for (int i = 0; i < (dir[0] == '/' || dir[0] == '\0' ? 4 : 2); i++) {
    hh_snformat(cand, sizeof cand, forms[i], dir, name);
    if (access(cand, R_OK) == 0) return true;
  }
  return false;
}

/* Cuts `path` (n bytes in buf) to its directory. */
static void dir_of(char *buf, size_t n) {
  while (n > 0 && buf[n - 1] != '/') n--;
  buf[n > 0 ? n - 1 : 0] = '\0';
}

/* A separate debug file named by the .gnu_debuglink section (of `len`
 * bytes at `off`), found from the directory of the file as loaded (as
 * addr2line looks) or of its real path (links resolved). */
static bool debuglink_found(const hh_elf *e, const char *path, size_t off, size_t len) {
  char name[256], dir[1024], link[48];
  if (len > sizeof name) return true; /* cannot tell: let addr2line look */
  if (len == 0 || !read_at(e->fd, name, len, off) || memchr(name, '\0', len) == NULL) return false;
  size_t n = strlen(path);
  if (n >= sizeof dir) return true;
  memcpy(dir, path, n + 1);
  dir_of(dir, n);
  if (debuglink_in(dir, name)) return true;
  hh_snformat(link, sizeof link, "/proc/thread-self/fd/%d", e->fd); /* see maps.c */
  ssize_t r = readlink(link, dir, sizeof dir);
  if (r < 0) {
    hh_snformat(link, sizeof link, "/proc/self/fd/%d", e->fd);
    r = readlink(link, dir, sizeof dir);
  }
  if (r <= 0 || (size_t)r >= sizeof dir) return true;
  dir_of(dir, (size_t)r);
  return debuglink_in(dir, name);
}

/* Section i's name, if it fits in 16 bytes with its NUL ("" if not). */
static void section_name(const hh_elf *e, size_t i, char n[16]) {
  const ElfW(Shdr) *strs = &e->shdrs[e->shstrndx];
  size_t off = e->shdrs[i].sh_name, len = off < strs->sh_size ? strs->sh_size - off : 0;
  if (len > 16) len = 16;
  if (strs->sh_offset + strs->sh_size > e->size || len == 0 || !read_at(e->fd, n, len, strs->sh_offset + off) ||
      memchr(n, '\0', len) == NULL)
    n[0] = '\0';
}

bool hh_elf_has_lines(const char *path) {
  if (hh_opt.secure) return false;
  hh_elf e;
  memset(&e, 0, sizeof e);
  if (!map_file(path, &e) || e.shstrndx >= e.nshdrs) {
    hh_elf_close(&e);
    return true; /* cannot tell: let addr2line look */
  }
  bool found = false;
  for (size_t i = 0; !found && i < e.nshdrs; i++) {
    char n[16];
    section_name(&e, i, n);
    if (!strcmp(n, ".debug_line") || !strcmp(n, ".zdebug_line"))
      found = true;
    else if (!strcmp(n, ".gnu_debuglink"))
      found = debuglink_found(&e, path, e.shdrs[i].sh_offset, e.shdrs[i].sh_size);
  }
  char dbg[128];
  if (!found && debug_path(&e, dbg, sizeof dbg)) found = access(dbg, R_OK) == 0;
  hh_elf_close(&e);
  return found;
}

bool hh_elf_open(const char *path, hh_elf *e) {
  memset(e, 0, sizeof *e);
  if (hh_opt.secure || path == NULL || !map_file(path, e)) return false;
  if (find_table(e, SHT_SYMTAB)) return true;
  char dbg[128];
  hh_elf d;
  memset(&d, 0, sizeof d);
  if (debug_path(e, dbg, sizeof dbg) && map_file(dbg, &d)) {
    if (find_table(&d, SHT_SYMTAB)) {
      hh_elf_close(e);
      *e = d;
      return true;
    }
    hh_elf_close(&d);
  }
  if (find_table(e, SHT_DYNSYM)) return true;
  hh_elf_close(e);
  return false;
}

void hh_elf_close(hh_elf *e) {
  if (e->map) munmap(e->map, e->size);
  if (e->shdrs) munmap(e->shdrs, e->shdrs_size);
  if (e->map) close(e->fd);
  memset(e, 0, sizeof *e);
}

static bool is_function(const ElfW(Sym) * s) {
  unsigned t = ELF64_ST_TYPE(s->st_info);
  return (t == STT_FUNC || t == STT_GNU_IFUNC) && s->st_shndx != SHN_UNDEF && s->st_size > 0;
}

/* Aliases cover the same bytes: the name a user knows wins (strdup over
 * __strdup and __GI___strdup), then an exported one. */
static int alias_score(const ElfW(Sym) * s, char first) {
  unsigned bind = ELF64_ST_BIND(s->st_info);
  return (first != '_') * 4 + (bind != STB_LOCAL) * 2 + (bind == STB_GLOBAL);
}

/* A symbol table is read once, front to back, a window at a time, so that
 * it costs its window of RSS, not its size (the C library's debug symbols
 * are 240 KiB, those of a large C++ program tens of MiB): copied into a
 * buffer when naming frames, and read in the mapping, whose pages leave
 * memory again once read (the mapping is the file's: a page touched later
 * is read back), when indexing the standard library's functions. */
#define SYM_WINDOW ((size_t)2048) /* symbols: 48 KiB */

static void drop_read(const hh_elf *e, size_t upto) {
  uintptr_t lo = (uintptr_t)e->syms & ~(uintptr_t)4095, hi = (uintptr_t)(e->syms + upto) & ~(uintptr_t)4095;
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void hh_elf_functions(const hh_elf *e, hh_elf_query *q, size_t n) {
  for (size_t j = 0; j < n; j++) q[j].score = -1;
  if (n == 0) return;
  ElfW(Sym) *win = mmap(NULL, SYM_WINDOW * sizeof *win, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (win == MAP_FAILED) return;
  size_t symoff = (size_t)((const uint8_t *)e->syms - e->map), stroff = (size_t)((const uint8_t *)e->strs - e->map);
  for (size_t i0 = 0; i0 < e->nsyms; i0 += SYM_WINDOW) {
    size_t k = e->nsyms - i0 < SYM_WINDOW ? e->nsyms - i0 : SYM_WINDOW;
    if (!read_at(e->fd, win, k * sizeof *win, symoff + i0 * sizeof *win)) break;
    for (size_t i = 0; i < k; i++) {
      const ElfW(Sym) *s = &win[i];
      if (!is_function(s) || s->st_name >= e->strsize || s->st_value > q[n - 1].vaddr) continue;
      size_t lo = 0, hi = n; /* the first query at or above the symbol */
      while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (q[mid].vaddr < s->st_value)
          lo = mid + 1;
        else
          hi = mid;
      }
      char first = '_'; /* of the name: all the score needs */
      if (lo < n && q[lo].vaddr - s->st_value < s->st_size) read_at(e->fd, &first, 1, stroff + s->st_name);
      for (size_t j = lo; j < n && q[j].vaddr - s->st_value < s->st_size; j++) {
        int score = alias_score(s, first);
        if (score > q[j].score) {
          q[j].name_off = s->st_name;
          q[j].score = score;
        }
      }
    }
  }
  munmap(win, SYM_WINDOW * sizeof *win);
}

size_t hh_elf_name(const hh_elf *e, const hh_elf_query *q, char *buf, size_t size) {
  if (q->score < 0 || size == 0) return 0;
  size_t stroff = (size_t)((const uint8_t *)e->strs - e->map);
  char piece[256];
  for (size_t len = 0;;) { /* a piece at a time, up to its end */
    size_t want = sizeof piece;
    if (q->name_off + len + want > e->strsize) want = e->strsize - q->name_off - len;
    if (want == 0 || !read_at(e->fd, piece, want, stroff + q->name_off + len)) return 0;
    const char *end = memchr(piece, '\0', want);
    size_t got = end ? (size_t)(end - piece) : want;
    if (len < size) memcpy(buf + len, piece, len + got < size ? got : size - len);
    len += got;
    if (end != NULL) {
      buf[len < size ? len : size - 1] = '\0';
      return len;
    }
  }
}

/* ------------------------------------------------------------------ the standard library's code */

/* Mangled names of namespace std (St, and the abbreviations Sa Sb Ss Si So
 * Sd for allocator, basic_string, string and the streams) and __gnu_cxx:
 * _ZSt..., _ZNSt..., _ZNKSt..., _ZN9__gnu_cxx..., _ZNK9__gnu_cxx... */
static bool std_name(const char *n) {
  if (n[0] != '_' || n[1] != 'Z') return false;
  n += 2;
  if (n[0] == 'S' && n[1] == 't') return true;
  if (n[0] != 'N') return false;
  n++;
  while (*n == 'K' || *n == 'V' || *n == 'r') n++; /* cv-qualifiers of a member */
  if (n[0] == 'S' && n[1] && strchr("tabsiod", n[1])) return true;
  return !strncmp(n, "9__gnu_cxx", 10);
}

typedef struct code_range {
  uintptr_t lo, hi; /* relative to the object's base */
} code_range;

typedef struct std_object {
  uintptr_t base;
  const code_range *ranges; /* sorted */
  uint32_t n;
} std_object;

#define STD_OBJECTS 256
static std_object std_objects[STD_OBJECTS];
static _Atomic(uint32_t) std_count;
static hh_lock std_lock = HH_LOCK_INIT;

static bool range_before(const code_range *a, const code_range *b) { return a->lo < b->lo; }

static bool is_std_function(const hh_elf *e, const ElfW(Sym) * s) {
  return is_function(s) && s->st_name < e->strsize && std_name(e->strs + s->st_name);
}

/* The std:: functions of the object at `base` named `path`. */
static void std_index(std_object *o, const char *path) {
  hh_elf e;
  if (!hh_elf_open(path, &e)) return;
  size_t n = 0;
  for (size_t i = 0; i < e.nsyms; i++) {
    if (i > 0 && i % SYM_WINDOW == 0) drop_read(&e, i);
    n += is_std_function(&e, &e.syms[i]);
  }
  code_range *r = n ? hh_meta_alloc(n * sizeof *r) : NULL;
  if (r != NULL) {
    size_t k = 0;
    for (size_t i = 0; i < e.nsyms && k < n; i++) {
      if (i > 0 && i % SYM_WINDOW == 0) drop_read(&e, i);
      if (is_std_function(&e, &e.syms[i]))
        r[k++] = (code_range){e.syms[i].st_value, e.syms[i].st_value + e.syms[i].st_size};
    }
    HH_SORT(code_range, r, k, range_before);
    o->ranges = r;
    o->n = (uint32_t)k;
  }
  hh_elf_close(&e);
}

bool hh_pc_in_std(uintptr_t pc) {
  if (hh_opt.secure) return false;
  const char *name;
  uintptr_t base;
  if (!hh_object_of(pc, &name, &base) || name[0] == '\0') return false;
  const std_object *o = NULL;
  uint32_t count = atomic_load_explicit(&std_count, memory_order_acquire);
  for (uint32_t i = 0; i < count && o == NULL; i++)
    if (std_objects[i].base == base) o = &std_objects[i];
  if (o == NULL) {
    hh_lock_acquire(&std_lock);
    count = atomic_load_explicit(&std_count, memory_order_relaxed);
    for (uint32_t i = 0; i < count && o == NULL; i++)
      if (std_objects[i].base == base) o = &std_objects[i];
    if (o == NULL && count < STD_OBJECTS) {
      std_object *fresh = &std_objects[count];
      fresh->base = base;
      std_index(fresh, name);
      atomic_store_explicit(&std_count, count + 1, memory_order_release);
      o = fresh;
    }
    hh_lock_release(&std_lock);
    if (o == NULL) return false;
  }
  uintptr_t v = pc - o->base;
  size_t lo = 0, hi = o->n;
  while (lo < hi) { /* the last range starting at or below v */
    size_t mid = (lo + hi) / 2;
    if (o->ranges[mid].lo <= v)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo > 0 && v < o->ranges[lo - 1].hi;
}

void hh_elf_atfork_child(void) { hh_lock_init(&std_lock); }
