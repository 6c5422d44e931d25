/*
 * The stacks of a misuse (a double free, an invalid pointer) or of heap
 * corruption, written under error.c's first line as valgrind writes them:
 * the call that met the problem, then where the block in question was
 * allocated. The call's stack is walked by libgcc's unwinder (errors are
 * rare; no cache is worth it). The block's site is the record tracking
 * keeps beside every range, which a free leaves in place: a block freed
 * twice still names the allocation of its last life.
 *
 * File and line come from addr2line, spawned as for the exit report, for
 * the first LINED errors; later ones (HAHALLOC_ON_ERROR=continue) get the
 * function names of the symbol tables only, so that a program that makes
 * the same mistake in a loop is not slowed by a process per call.
 */
#include <stdatomic.h>
#include <string.h>

#include "format.h"
#include "guard.h"
#include "hooks.h"
#include "lookup.h"
#include "options.h"
#include "report.h"

#define LINED 10
/* valgrind shows 12 frames by default; a few more cost nothing here */
#define CALL_FRAMES 24

static _Atomic unsigned errors;
static __thread int inside; /* an error while writing one: first line only */

static void write_frames(hh_out *o, const hh_frame *f, int n) {
  for (int i = 0; i < n; i++) {
    hh_out_printf(o, "hahalloc:    %s %p: %s", i == 0 ? "at" : "by", (void *)f[i].pc,
                  f[i].function ? f[i].function : "???");
    if (f[i].file) hh_out_printf(o, " (%s:%d)\n", hh_basename(f[i].file), f[i].line);
    else if (f[i].object) hh_out_printf(o, " (in %s)\n", f[i].object);
    else hh_out_printf(o, "\n");
  }
}

/* hahalloc linked into the program (hh_backtrace could not tell its frames
 * by their object): they end at the public entry point, the first frame
 * that bears one of its names. */
static int skip_own(const hh_frame *f, int n) {
  static const char *const entries[] = {
      "malloc",  "calloc",      "realloc",  "reallocarray", "free",      "cfree",
      "memalign", "aligned_alloc", "posix_memalign", "valloc", "pvalloc", "malloc_usable_size",
      "hahalloc", "chahalloc", "rehehalloc", "frhehe", "operator new", "operator delete"};
  for (int i = 0; i < n && i < 16; i++)
    for (size_t k = 0; f[i].function && k < sizeof entries / sizeof *entries; k++)
      if (strncmp(f[i].function, entries[k], strlen(entries[k])) == 0 &&
          (f[i].function[strlen(entries[k])] == '\0' || entries[k][0] == 'o'))
        return i + 1;
  return 0;
}

/* The call's stack (when `call`) and the allocation of the block holding
 * `block` (may be NULL). */
static void write_stacks(const void *block, bool call) {
  if (inside || hh_world_is_stopped()) return; /* a stopped thread may hold the loader's lock */
  inside = 1;
  uintptr_t pcs[CALL_FRAMES + HH_MAX_FRAMES];
  bool ours_left = false;
  int ncall = call ? hh_backtrace(pcs, CALL_FRAMES, &ours_left) : 0;
  hh_block_info b = {0};
  bool known = block != NULL && hh_block_of(block, &b);
  uint32_t site = known ? b.site & ~HH_SITE_IGNORED : 0;
  int nsite = 0;
  const uintptr_t *spcs = site ? hh_site_frames(site, &nsite) : NULL;
  if (spcs == NULL) nsite = 0;
  if (nsite > HH_MAX_FRAMES) nsite = HH_MAX_FRAMES;
  memcpy(pcs + ncall, spcs, (size_t)nsite * sizeof *pcs);

  bool lined = atomic_fetch_add_explicit(&errors, 1, memory_order_relaxed) < LINED;
  hh_symbols *sym = ncall + nsite > 0 ? hh_symbols_resolve(pcs, NULL, (size_t)(ncall + nsite), lined) : NULL;
  hh_frame *frames = hh_report_map(HH_MAX_SHOWN * sizeof *frames);
  if (frames == NULL) sym = NULL; /* the first line alone, then */
  hh_out o;
  hh_out_open_mem(&o);
  if (sym != NULL && ncall > 0) {
    int n = hh_pcs_display(sym, pcs, ncall, frames, HH_MAX_SHOWN);
    int skip = ours_left ? skip_own(frames, n) : 0;
    write_frames(&o, frames + skip, n - skip);
  }
  if (known && b.size > 0) {
    if (sym != NULL && nsite > 0) {
      hh_out_printf(&o, "hahalloc:  the %zu-byte block at %p was allocated at:\n", b.size,
                    (const void *)b.start);
      write_frames(&o, frames, hh_pcs_display(sym, pcs + ncall, nsite, frames, HH_MAX_SHOWN));
    } else if (!hh_sites) {
      hh_out_printf(&o, "hahalloc:  (run it under the hahalloc command to learn where the %zu-byte "
                        "block at %p was allocated)\n", b.size, (const void *)b.start);
    }
  }
  hh_dest_write((hh_dest_t){2, false}, o.buf, o.len);
  hh_out_close(&o);
  if (sym != NULL) hh_symbols_free(sym);
  if (frames != NULL) hh_report_unmap(frames, HH_MAX_SHOWN * sizeof *frames);
  inside = 0;
}

void hh_misuse_stacks(const void *block) { write_stacks(block, true); }

void hh_misuse_overrun_at_exit(const void *block) {
  hh_block_info b;
  if (!hh_block_of(block, &b) || b.start != block) return;
  size_t at = hh_guard_damage(block, b.size, b.room);
  if (at == SIZE_MAX) return;
  hh_dprintf(2,
             "hahalloc: error: heap corruption: a write past the end of the %zu-byte block at %p, "
             "still in use at exit: byte %zu past its end reads 0x%02x\n",
             b.size, block, at, ((const uint8_t *)block)[b.size + at]);
  write_stacks(block, false);
}
