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
 * the first LINED errors of a process that reports (without a report,
 * nothing is spawned: function names only); the next ones, up to NAMED,
 * get the function names of the symbol tables; later ones (a mistake made
 * in a loop under HAHALLOC_ON_ERROR=continue) their first line only, so
 * that the program is not slowed by files read and processes run for
 * every call.
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
#define NAMED 100
/* valgrind shows 12 frames by default; a few more cost nothing here */
#define CALL_FRAMES 24

static _Atomic unsigned errors;
static __thread int inside; /* an error while writing one: first line only */

/* hahalloc linked into the program (hh_backtrace could not tell its frames
 * by their object): the walk starts in the allocator, whose functions are
 * hh_* or named here (the error path's own), up to the public entry point,
 * which the fast paths may have inlined. */
static bool own_function(const char *name) {
  static const char *const own[] = {
      "malloc",      "calloc",          "realloc",        "reallocarray",   "free",         "cfree",
      "memalign",    "aligned_alloc",   "posix_memalign", "valloc",         "pvalloc",      "malloc_usable_size",
      "hahalloc",    "chahalloc",       "rehehalloc",     "frhehe",         "write_stacks", "error_end",
      "remote_free", "alloc_from_root", "alloc_large",    "alloc_oversize", "calloc_at"};
  if (name == NULL) return false;
  if (strncmp(name, "hh_", 3) == 0 || strncmp(name, "operator new", 12) == 0 ||
      strncmp(name, "operator delete", 15) == 0)
    return true;
  for (size_t k = 0; k < sizeof own / sizeof *own; k++)
    if (strcmp(name, own[k]) == 0) return true;
  return false;
}

static int skip_own(const hh_frame *f, int n) {
  int i = 0;
  while (i < n && own_function(f[i].function)) i++;
  return i < n ? i : 0; /* all of them ours: show them rather than nothing */
}

/* The call's stack (when `call`) and the allocation of the block `b` (may
 * be NULL). */
static void write_stacks(const hh_block_info *b, bool call) {
  if (inside || hh_world_is_stopped()) return; /* a stopped thread may hold the loader's lock */
  unsigned nth = atomic_fetch_add_explicit(&errors, 1, memory_order_relaxed);
  if (nth >= NAMED) {
    if (nth == NAMED) hh_say("hahalloc:  (more than %d errors: the next ones are shown without stacks)\n", NAMED);
    return;
  }
  inside = 1;
  uintptr_t pcs[CALL_FRAMES + HH_MAX_FRAMES];
  bool ours_left = false;
  int ncall = call ? hh_backtrace(pcs, CALL_FRAMES, &ours_left) : 0;
  uint32_t site = b != NULL ? b->site & ~HH_SITE_IGNORED : 0;
  int nsite = 0;
  const uintptr_t *spcs = site ? hh_site_frames(site, &nsite) : NULL;
  if (spcs == NULL) nsite = 0;
  if (nsite > HH_MAX_FRAMES) nsite = HH_MAX_FRAMES;
  if (nsite > 0) memcpy(pcs + ncall, spcs, (size_t)nsite * sizeof *pcs);

  /* addr2line only where a report was asked for: a bare LD_PRELOAD starts
   * no process (and valgrind cannot follow the helper's clone) */
  bool lined = nth < LINED && hh_opt.report;
  hh_symbols *sym = ncall + nsite > 0 ? hh_symbols_resolve(pcs, NULL, (size_t)(ncall + nsite), lined) : NULL;
  hh_frame *frames = hh_report_map(HH_MAX_SHOWN * sizeof *frames);
  hh_out o;
  hh_out_open_mem(&o);
  if (sym != NULL && frames != NULL && ncall > 0) {
    int n = hh_pcs_display(sym, pcs, ncall, frames, HH_MAX_SHOWN);
    int skip = ours_left ? skip_own(frames, n) : 0;
    hh_write_frames(&o, "hahalloc:", frames + skip, n - skip);
  }
  if (b != NULL && b->size > 0) {
    if (sym != NULL && frames != NULL && nsite > 0) {
      hh_out_printf(&o, "hahalloc:  the %zu-byte block at %p was allocated at:\n", b->size, (const void *)b->start);
      hh_write_frames(&o, "hahalloc:", frames, hh_pcs_display(sym, pcs + ncall, nsite, frames, HH_MAX_SHOWN));
    } else if (!hh_sites) {
      hh_out_printf(&o,
                    "hahalloc:  (run it under the hahalloc command to learn where the %zu-byte "
                    "block at %p was allocated)\n",
                    b->size, (const void *)b->start);
    }
  }
  hh_message_write(o.buf, o.len);
  hh_out_close(&o);
  if (sym != NULL) hh_symbols_free(sym);
  if (frames != NULL) hh_report_unmap(frames, HH_MAX_SHOWN * sizeof *frames);
  inside = 0;
}

/* valgrind writes an error once for its context, the error's kind and
 * the stack of the call that met it, and counts the later ones: a double
 * free in a loop under HAHALLOC_ON_ERROR=continue is one error written,
 * and "5,000 errors from 1 contexts". The contexts seen are kept by a hash
 * of the two, in a table of CONTEXTS; past it, or where the stack cannot
 * be walked, every error is a context of its own. */
#define CONTEXTS 4096
static _Atomic(uint64_t) contexts[CONTEXTS];
_Atomic(uint64_t) hh_misuse_contexts;

bool hh_misuse_context_new(const void *kind) {
  uintptr_t pcs[CALL_FRAMES];
  bool ours_left = false;
  int n = inside || hh_world_is_stopped() ? 0 : hh_backtrace(pcs, CALL_FRAMES, &ours_left);
  atomic_fetch_add_explicit(&hh_misuse_contexts, 1, memory_order_relaxed);
  if (n <= 0) return true;
  uint64_t h = (uint64_t)(uintptr_t)kind;
  for (int i = 0; i < n; i++) h = (h ^ pcs[i]) * 0x100000001b3ull; /* FNV-1a's prime, a word at a time */
  h ^= h >> 29;
  h |= 1; /* 0 is a free slot */
  for (size_t i = 0, at = (size_t)(h % CONTEXTS); i < 64; i++, at = (at + 1) % CONTEXTS) {
    uint64_t cur = atomic_load_explicit(&contexts[at], memory_order_relaxed);
    if (cur == 0 &&
        atomic_compare_exchange_strong_explicit(&contexts[at], &cur, h, memory_order_relaxed, memory_order_relaxed))
      return true;
    if (cur == h) {
      atomic_fetch_sub_explicit(&hh_misuse_contexts, 1, memory_order_relaxed);
      return false;
    }
  }
  return true;
}

/* A fork child's report is its own: its contexts start again. */
void hh_misuse_atfork_child(void) {
  memset((void *)contexts, 0, sizeof contexts);
  atomic_store_explicit(&hh_misuse_contexts, 0, memory_order_relaxed);
}

void hh_misuse_stacks(const void *block) {
  hh_block_info b;
  bool known = block != NULL && hh_block_of(block, &b);
  write_stacks(known ? &b : NULL, true);
}

void hh_misuse_overrun_at_exit(const hh_overrun *r) {
  atomic_fetch_add_explicit(&hh_misuse_errors, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&hh_misuse_contexts, 1, memory_order_relaxed);
  hh_say("hahalloc: error: heap corruption: a write past the end of the %llu-byte block at %p, "
         "still in use at exit: byte %u past its end reads 0x%02x\n",
         (unsigned long long)r->size, (void *)r->start, r->at, r->value);
  hh_block_info b = {(const uint8_t *)r->start, (size_t)r->size, 0, r->site};
  write_stacks(&b, false);
}
