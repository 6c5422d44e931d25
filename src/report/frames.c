/*
 * The stack of an allocation site as the report shows it, valgrind's way:
 * the allocating function first (malloc, calloc, realloc, operator new[]...:
 * the entry point the site recorded), then every frame, inlined calls
 * expanded innermost first, down to `main` and no further (the C library's
 * start-up code below it says nothing about the program).
 */
#include <string.h>

#include "entry.h"
#include "hooks.h"
#include "report.h"

static const struct {
  const char *name, *mangled;
} entries[HH_ENTRIES] = {
    [HH_ENTRY_MALLOC] = {"malloc", "malloc"},
    [HH_ENTRY_CALLOC] = {"calloc", "calloc"},
    [HH_ENTRY_REALLOC] = {"realloc", "realloc"},
    [HH_ENTRY_REALLOCARRAY] = {"reallocarray", "reallocarray"},
    [HH_ENTRY_MEMALIGN] = {"memalign", "memalign"},
    [HH_ENTRY_POSIX_MEMALIGN] = {"posix_memalign", "posix_memalign"},
    [HH_ENTRY_ALIGNED_ALLOC] = {"aligned_alloc", "aligned_alloc"},
    [HH_ENTRY_VALLOC] = {"valloc", "valloc"},
    [HH_ENTRY_PVALLOC] = {"pvalloc", "pvalloc"},
    [HH_ENTRY_NEW] = {"operator new(unsigned long)", "_Znwm"},
    [HH_ENTRY_NEW_ARRAY] = {"operator new[](unsigned long)", "_Znam"},
    [HH_ENTRY_NEW_NOTHROW] = {"operator new(unsigned long, std::nothrow_t const&)", "_ZnwmRKSt9nothrow_t"},
    [HH_ENTRY_NEW_ARRAY_NOTHROW] = {"operator new[](unsigned long, std::nothrow_t const&)", "_ZnamRKSt9nothrow_t"},
    [HH_ENTRY_NEW_ALIGNED] = {"operator new(unsigned long, std::align_val_t)", "_ZnwmSt11align_val_t"},
    [HH_ENTRY_NEW_ARRAY_ALIGNED] = {"operator new[](unsigned long, std::align_val_t)", "_ZnamSt11align_val_t"},
    [HH_ENTRY_NEW_ALIGNED_NOTHROW] = {"operator new(unsigned long, std::align_val_t, std::nothrow_t const&)",
                                      "_ZnwmSt11align_val_tRKSt9nothrow_t"},
    [HH_ENTRY_NEW_ARRAY_ALIGNED_NOTHROW] = {"operator new[](unsigned long, std::align_val_t, std::nothrow_t const&)",
                                            "_ZnamSt11align_val_tRKSt9nothrow_t"},
    [HH_ENTRY_HAHALLOC] = {"hahalloc", "hahalloc"},
    [HH_ENTRY_CHAHALLOC] = {"chahalloc", "chahalloc"},
    [HH_ENTRY_REHEHALLOC] = {"rehehalloc", "rehehalloc"},
};

/* The path of the object holding our entry points, and its load base. */
static const char *our_object(uintptr_t addr, uintptr_t *base) {
  const char *name;
  *base = 0;
  if (addr == 0 || !hh_object_of(addr, &name, base) || name[0] == '\0') return NULL;
  return name;
}

static bool is_main(const char *mangled) { return mangled != NULL && !strcmp(mangled, "main"); }

/* The C library's start-up code, which calls main (or the function main
 * jumped to: Python's main ends in a tail call to Py_BytesMain): valgrind's
 * "(below main)", not shown. */
static bool below_main(const char *mangled) {
  return mangled != NULL && (!strcmp(mangled, "__libc_start_call_main") || !strcmp(mangled, "__libc_start_main") ||
                             !strcmp(mangled, "_start"));
}

int hh_site_display(const hh_symbols *sym, uint32_t site, hh_frame *out, int max) {
  int n = 0;
  const uintptr_t *pcs = hh_site_frames(site, &n);
  return pcs != NULL ? hh_pcs_display(sym, pcs, n, out, max) : 0;
}

int hh_pcs_display(const hh_symbols *sym, const uintptr_t *pcs, int n, hh_frame *out, int max) {
  int k = 0;
  for (int i = 0; i < n && k < max; i++) {
    if (hh_is_entry_pc(pcs[i])) {
      unsigned kind = (unsigned)pcs[i] - 1;
      uintptr_t addr = hh_entry_address(kind), base;
      const char *object = our_object(addr, &base);
      out[k++] = (hh_frame){.pc = addr,
                            .function = entries[kind].name,
                            .mangled = entries[kind].mangled,
                            .object = object,
                            .offset = addr - base};
      continue;
    }
    /* Shown as valgrind shows it: the return address less one, the call
     * instruction's last byte, for which addr2line gives the call's line
     * (the return address may be the next line's, or the next function's
     * after a call that never returns). */
    const hh_pcinfo *pi = hh_symbols_get(sym, pcs[i]);
    uintptr_t call = pcs[i] - 1, call_offset = pi != NULL && pi->offset != 0 ? pi->offset - 1 : 0;
    if (pi == NULL || pi->nlines == 0) {
      out[k++] = (hh_frame){.pc = call, .object = pi ? pi->object : NULL, .offset = call_offset};
      continue;
    }
    bool after_main = false;
    for (int l = 0; l < pi->nlines && k < max; l++) {
      const hh_line *ln = &pi->lines[l];
      if (below_main(ln->mangled)) return k;
      out[k++] = (hh_frame){.pc = call,
                            .function = ln->function,
                            .mangled = ln->mangled,
                            .file = ln->file,
                            .line = ln->line,
                            .object = pi->object,
                            .offset = call_offset};
      after_main |= is_main(ln->mangled);
    }
    if (after_main) break;
  }
  return k;
}

bool hh_frames_equal(const hh_frame *a, int na, const hh_frame *b, int nb) {
  if (na != nb) return false;
  for (int i = 0; i < na; i++) {
    if (a[i].pc != b[i].pc || a[i].line != b[i].line) return false;
    if ((a[i].function == NULL) != (b[i].function == NULL)) return false;
    if (a[i].function && strcmp(a[i].function, b[i].function) != 0) return false;
  }
  return true;
}

const char *hh_basename(const char *path) {
  const char *slash = path ? strrchr(path, '/') : NULL;
  return slash ? slash + 1 : path;
}
