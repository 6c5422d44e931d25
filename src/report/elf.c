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
 * in a thread interrupted inside the allocator. The file is mapped
 * read-only (only the pages of the tables are ever read) and unmapped when
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

static bool map_file(const char *path, hh_elf *e) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  void *p = MAP_FAILED;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= (off_t)sizeof(ElfW(Ehdr)))
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return false;
  e->map = p;
  e->size = (size_t)st.st_size;
  return true;
}

static const ElfW(Shdr) * sections(const hh_elf *e, size_t *n) {
  const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)e->map;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_shentsize != sizeof(ElfW(Shdr)) || eh->e_shoff == 0 ||
      eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > e->size)
    return NULL;
  *n = eh->e_shnum;
  return (const ElfW(Shdr) *)(e->map + eh->e_shoff);
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
    if (sh[i].sh_type != SHT_NOTE || sh[i].sh_offset + sh[i].sh_size > e->size) continue;
    const uint8_t *p = e->map + sh[i].sh_offset, *end = p + sh[i].sh_size;
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
  memset(e, 0, sizeof *e);
}

static bool is_function(const ElfW(Sym) * s) {
  unsigned t = ELF64_ST_TYPE(s->st_info);
  return (t == STT_FUNC || t == STT_GNU_IFUNC) && s->st_shndx != SHN_UNDEF && s->st_size > 0;
}

/* Aliases cover the same bytes: the name a user knows wins (strdup over
 * __strdup and __GI___strdup), then an exported one. */
static int alias_score(const ElfW(Sym) * s, const char *name) {
  unsigned bind = ELF64_ST_BIND(s->st_info);
  return (name[0] != '_') * 4 + (bind != STB_LOCAL) * 2 + (bind == STB_GLOBAL);
}

const char *hh_elf_function(const hh_elf *e, uintptr_t vaddr, uintptr_t *start) {
  const char *best = NULL;
  int best_score = -1;
  for (size_t i = 0; i < e->nsyms; i++) {
    const ElfW(Sym) *s = &e->syms[i];
    if (!is_function(s) || vaddr < s->st_value || vaddr - s->st_value >= s->st_size) continue;
    if (s->st_name >= e->strsize) continue;
    const char *name = e->strs + s->st_name;
    int score = alias_score(s, name);
    if (score > best_score) {
      best = name;
      best_score = score;
      if (start) *start = s->st_value;
    }
  }
  return best;
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
  for (size_t i = 0; i < e.nsyms; i++) n += is_std_function(&e, &e.syms[i]);
  code_range *r = n ? hh_meta_alloc(n * sizeof *r) : NULL;
  if (r != NULL) {
    size_t k = 0;
    for (size_t i = 0; i < e.nsyms && k < n; i++)
      if (is_std_function(&e, &e.syms[i]))
        r[k++] = (code_range){e.syms[i].st_value, e.syms[i].st_value + e.syms[i].st_size};
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
