/*
 * Stack walking for allocation sites, fast and exact without frame pointers.
 *
 * Debian builds libc, libstdc++ and most programs without frame pointers, so
 * following saved rbp values gives wrong callers (or none). The exact answer
 * is in the DWARF call frame information, but interpreting it on every
 * malloc is far too slow. Yet at one return address the rule that finds the
 * caller never changes: "the caller's frame starts N bytes above the stack
 * pointer" for most code, "the frame pointer + 16" for code that keeps one,
 * and the place where the caller's rbp is saved. So we let libgcc's unwinder
 * (_Unwind_Backtrace, which reads the CFI) walk the stack once, learn the
 * rule of every return address it meets from the CFAs and register values it
 * reports, and keep them in a hash table. Later walks only read the stack
 * through the learned rules: a few loads per frame, bounds-checked against
 * the thread's stack so that a wrong guess can never fault.
 *
 * Learning a rule (frame i has return address ip_i, canonical frame address
 * cfa_i, rbp value rbp_i; its stack pointer sp_i is cfa_(i-1)):
 * - rbp_i + 16 == cfa_i: the function keeps a frame pointer (push rbp; mov
 *   rsp, rbp), so CFA = rbp + 16 even with alloca, and the caller's rbp is
 *   saved at CFA - 16;
 * - otherwise CFA = sp + (cfa_i - sp_i), a constant for that return address;
 *   the caller's rbp is either untouched (rbp_(i+1) == rbp_i) or saved in
 *   the frame: we find the slot holding rbp_(i+1).
 * Frames in the runtime (libc, libstdc++, ld.so...) and in the C++ standard
 * library's templates compiled into the program (elf.c) are flagged: the
 * site of a malloc reached through strdup, or of an operator new reached
 * through a std::vector, is their caller's.
 * A return address that libgcc cannot unwind past (no CFI, end of stack,
 * a signal frame) gets an "end" rule: walks stop there, as libgcc would.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <unistd.h>
#include <unwind.h>

#include "hooks.h"
#include "lock.h"
#include "report.h"

enum { BASE_SP = 1, BASE_FP = 2, BASE_END = 3 };
enum { RBP_SAME = 0, RBP_AT = 1, RBP_FP = 2, RBP_LOST = 3 };

typedef struct rule {
  int32_t cfa_off; /* BASE_SP: CFA = sp + cfa_off */
  int16_t rbp_off; /* RBP_AT: caller's rbp saved at CFA + rbp_off */
  uint8_t base;
  uint8_t rbp;
  uint8_t wrapper; /* in a runtime library: attribute to the caller */
} rule;

/* Return address -> rule. Walks read it without a lock. */
typedef struct rule_entry {
  uint64_t pc;
  rule r;
} rule_entry;
static hh_table rules = {.entry = sizeof(rule_entry), .first_slots = 256};
static hh_lock rules_lock = HH_LOCK_INIT;
static __thread int busy;

bool hh_unwind_busy(void) { return busy != 0; }
int *hh_unwind_busy_flag(void) { return &busy; }

static const rule *rule_find(uintptr_t pc) {
  const rule_entry *e = hh_table_find(&rules, pc, NULL, NULL);
  return e != NULL ? &e->r : NULL;
}

/* Learned once: another thread may have learned it meanwhile. Out of
 * memory, the rule is not kept, and learned again next time. */
static void rule_add(uintptr_t pc, const rule *r) {
  hh_lock_acquire(&rules_lock);
  rule_entry e = {pc, *r};
  if (rule_find(pc) == NULL) hh_table_add(&rules, &e);
  hh_lock_release(&rules_lock);
}

void hh_unwind_atfork_prepare(void) { hh_lock_acquire(&rules_lock); }
void hh_unwind_atfork_parent(void) { hh_lock_release(&rules_lock); }
void hh_unwind_atfork_child(void) { hh_lock_init(&rules_lock); }

/* ------------------------------------------------------------------ runtime objects */

/* Libraries whose frames are not the program's own call sites. */
bool hh_runtime_object(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  static const char *const names[] = {"libc.so",      "libstdc++.so",   "libgcc_s.so", "ld-linux",
                                      "libm.so",      "libpthread.so",  "libdl.so",    "libc++.so",
                                      "libc++abi.so", "libhahalloc.so", "ld.so"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strncmp(base, names[i], strlen(names[i])) == 0) return true;
  return false;
}

static char program_path[4096]; /* "" when /proc/self/exe could not be read */
static _Atomic(int) path_state; /* 0: not read, 1: being read, 2: read */

/* The program's path, read once: at start-up when the report is on, else
 * when first needed (a misuse's stack, mem_lhihiks). A drop-in made a
 * readlink no malloc of glibc's makes at every start: a seccomp filter
 * inherited at exec (a service's allowlist) may kill for it. "" while
 * another thread is reading it, or under the program's filter. */
void hh_objects_init(void) {
  int expect = 0;
  if (!atomic_compare_exchange_strong(&path_state, &expect, 1)) return;
  if (!hh_sandboxed()) {
    ssize_t n = readlink("/proc/self/exe", program_path, sizeof program_path - 1);
    program_path[n > 0 ? n : 0] = '\0';
  }
  atomic_store_explicit(&path_state, 2, memory_order_release);
}

bool hh_object_is_program(const char *name) { return name == program_path; }

static const char *program_name(void) {
  if (atomic_load_explicit(&path_state, memory_order_acquire) == 0) hh_objects_init();
  return atomic_load_explicit(&path_state, memory_order_acquire) == 2 ? program_path : "";
}

struct objects_find {
  const uintptr_t *pcs;
  size_t n, left; /* left: not found yet; the walk stops at 0 */
  const char **names;
  uintptr_t *bases;
};

static int objects_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct objects_find *f = arg;
  const char *name = info->dlpi_name != NULL && info->dlpi_name[0] != '\0' ? info->dlpi_name : program_name();
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
    for (size_t k = 0; k < f->n; k++)
      if (f->names[k] == NULL && f->pcs[k] >= lo && f->pcs[k] < hi) {
        f->names[k] = name;
        f->bases[k] = info->dlpi_addr;
        f->left--;
      }
  }
  return f->left == 0;
}

void hh_objects_of(const uintptr_t *pcs, size_t n, const char **names, uintptr_t *bases) {
  for (size_t k = 0; k < n; k++) names[k] = NULL, bases[k] = 0;
  struct objects_find f = {pcs, n, n, names, bases};
  if (n > 0) dl_iterate_phdr(objects_cb, &f);
}

bool hh_object_of(uintptr_t pc, const char **name, uintptr_t *base) {
  hh_objects_of(&pc, 1, name, base);
  return *name != NULL;
}

/* `pc` is a return address: the call is the byte before it. */
static bool pc_is_runtime(uintptr_t pc) {
  const char *name;
  uintptr_t base;
  return hh_object_of(pc - 1, &name, &base) && hh_runtime_object(name);
}

/* A frame whose allocation is attributed to its caller: the runtime's
 * (strdup, operator new in libstdc++, the loader), and the standard
 * library's templates compiled into the program (a std::vector's
 * allocator), so that a leak through a container names the user's call. */
static bool pc_is_wrapper(uintptr_t pc) { return pc_is_runtime(pc) || hh_pc_in_std(pc - 1); }

/* ------------------------------------------------------------------ learning */

#define LEARN_MAX (HH_MAX_FRAMES + 2)

/* libgcc reports, for each frame F: ip = where F executes (a return address),
 * cfa = the CFA of the frame F called, that is F's stack pointer at ip, and
 * the registers of F at ip. F's own CFA is the next record's cfa. */
struct learn {
  uintptr_t ret, frame; /* the entry point's return and frame addresses */
  int started, n, limit;
  bool ended; /* the stack ends after the last record */
  uintptr_t ip[LEARN_MAX], cfa[LEARN_MAX], rbp[LEARN_MAX];
};

static _Unwind_Reason_Code learn_cb(struct _Unwind_Context *ctx, void *arg) {
  struct learn *l = arg;
  int before = 0;
  uintptr_t ip = (uintptr_t)hh_uw.get_ip_info(ctx, &before);
  uintptr_t cfa = (uintptr_t)hh_uw.get_cfa(ctx);
  if (!l->started) {
    /* Skip the report's and the allocator's frames up to the caller of the
     * entry point: it runs at `ret`, with the entry point's CFA as its sp. */
    if (cfa == l->frame + 16 && ip == l->ret)
      l->started = 1;
    else if (cfa > l->frame + 16)
      return _URC_END_OF_STACK; /* passed it: give up */
    else
      return _URC_NO_REASON;
  }
  if (ip == 0 || before) { /* outermost frame, or a signal frame: stop there */
    l->ended = true;
    return _URC_END_OF_STACK;
  }
  l->ip[l->n] = ip;
  l->cfa[l->n] = cfa;
  l->rbp[l->n] = (uintptr_t)hh_uw.get_gr(ctx, 6);
  if (++l->n >= l->limit) return _URC_END_OF_STACK;
  return _URC_NO_REASON;
}

/* libgcc aborts the process when it cannot find the call frame information
 * of the frame it starts from: a static binary linked without an
 * .eh_frame_hdr (gcc -static) has none it can find once its destructors
 * have run. Asked without aborting. */
struct eh_bases {
  void *tbase, *dbase, *func;
};
extern const void *_Unwind_Find_FDE(void *pc, struct eh_bases *bases);

hh_unwinder hh_uw = {_Unwind_Backtrace, _Unwind_GetIP, _Unwind_GetIPInfo,
                     _Unwind_GetCFA,    _Unwind_GetGR, (const void *(*)(void *, void *))_Unwind_Find_FDE};

/* The program's libgcc_s, when it has one (every C++ program does), found
 * among the loaded objects without a system call or an allocation: a C
 * program without one keeps our copy and makes no dlopen (which opens the
 * file to compare it) and no dlsym that fails (whose error message is a
 * malloc the report would count). */
static int find_libgcc_s(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  const char *name = info->dlpi_name, *slash = name ? strrchr(name, '/') : NULL;
  if (slash == NULL || strcmp(slash + 1, "libgcc_s.so.1") != 0) return 0;
  *(const char **)arg = name;
  return 1;
}

void hh_unwind_prefer_loaded(void) {
  const char *path = NULL;
  dl_iterate_phdr(find_libgcc_s, &path);
  if (path == NULL) return;
  void *lib = dlopen(path, RTLD_LAZY | RTLD_NOLOAD); /* kept: it stays loaded */
  if (lib == NULL) return;
  hh_unwinder u = {(__typeof__(u.backtrace))dlsym(lib, "_Unwind_Backtrace"),
                   (__typeof__(u.get_ip))dlsym(lib, "_Unwind_GetIP"),
                   (__typeof__(u.get_ip_info))dlsym(lib, "_Unwind_GetIPInfo"),
                   (__typeof__(u.get_cfa))dlsym(lib, "_Unwind_GetCFA"),
                   (__typeof__(u.get_gr))dlsym(lib, "_Unwind_GetGR"),
                   (__typeof__(u.find_fde))dlsym(lib, "_Unwind_Find_FDE")};
  if (u.backtrace && u.get_ip && u.get_ip_info && u.get_cfa && u.get_gr && u.find_fde) hh_uw = u; /* all or none */
}

bool hh_unwinder_works(void) {
  /* libgcc starts from its own frame: both need their information. Asked
   * every time: a static binary's destructors deregister it at exit. */
  struct eh_bases b;
  return hh_uw.find_fde((void *)((uintptr_t)&hh_unwinder_works + 1), &b) != NULL &&
         hh_uw.find_fde((void *)((uintptr_t)hh_uw.backtrace + 1), &b) != NULL;
}

static HH_NOINLINE void learn(uintptr_t ret, uintptr_t frame, int limit) {
  if (!hh_unwinder_works()) { /* the call site alone, then */
    rule r = {.base = BASE_END, .wrapper = 0};
    rule_add(ret, &r);
    return;
  }
  struct learn l;
  l.ret = ret;
  l.frame = frame;
  l.started = 0;
  l.n = 0;
  l.limit = limit + 1 < LEARN_MAX ? limit + 1 : LEARN_MAX;
  l.ended = false;
  hh_uw.backtrace(learn_cb, &l);
  if (!l.started || l.n == 0) {
    /* The unwinder does not see our entry point: do not try again here. */
    rule r = {.base = BASE_END, .wrapper = (uint8_t)pc_is_wrapper(ret)};
    rule_add(ret, &r);
    return;
  }
  for (int i = 0; i < l.n; i++) {
    if (rule_find(l.ip[i]) != NULL) continue;
    rule r = {0};
    r.wrapper = (uint8_t)pc_is_wrapper(l.ip[i]);
    if (i + 1 == l.n) {
      if (!l.ended) break; /* the caller was not seen: learn this one next time */
      r.base = BASE_END;
      rule_add(l.ip[i], &r);
      break;
    }
    uintptr_t sp = l.cfa[i], cfa = l.cfa[i + 1], rbp = l.rbp[i], caller_rbp = l.rbp[i + 1];
    if (cfa <= sp || cfa - sp > (1u << 30)) break;
    if (rbp + 16 == cfa) {
      r.base = BASE_FP;
      r.rbp = RBP_FP;
    } else {
      r.base = BASE_SP;
      r.cfa_off = (int32_t)(cfa - sp);
      if (caller_rbp == rbp) {
        r.rbp = RBP_SAME;
      } else {
        r.rbp = RBP_LOST;
        /* callee-saved registers are pushed at the top of the frame */
        for (uintptr_t a = cfa - 16; a >= sp && cfa - a < 32768; a -= 8)
          if (*(const uintptr_t *)a == caller_rbp) {
            r.rbp = RBP_AT;
            r.rbp_off = (int16_t)(intptr_t)(a - cfa);
            break;
          }
      }
    }
    rule_add(l.ip[i], &r);
  }
}

/* ------------------------------------------------------------------ the walk */

int hh_unwind(uintptr_t ret, uintptr_t frame, uintptr_t hi, int depth, uintptr_t *pcs, hh_read *reads, int max_reads,
              int *nreads) {
  int n = 0, nr = 0, counted = 0, wrappers = 0;
  bool learned = false, leading = true;
  uintptr_t sp = frame + 16, ip = ret, rbp_loc = frame;

#define READ(dst, where)                                 \
  do {                                                   \
    uintptr_t a_ = (where);                              \
    if (a_ < frame || a_ + 8 > hi || (a_ & 7)) goto out; \
    (dst) = *(const uintptr_t *)a_;                      \
    if (nr < max_reads) {                                \
      reads[nr].addr = a_;                               \
      reads[nr].value = (dst);                           \
    }                                                    \
    nr++;                                                \
  } while (0)

  for (;;) {
    pcs[n++] = ip;
    const rule *r = rule_find(ip);
    if (r == NULL && n == 1 && depth == 1 && !busy) {
      /* The call site alone, outside the runtime: nothing to walk, so no
       * call frame information to read (libgcc's walk reads that of every
       * frame up to main, and the pages it touches in libc stay resident).
       * The rule says only that: at depth 1 the walk stops at this frame.
       * Busy meanwhile, as learning is: a signal handler's malloc on this
       * thread must not wait for the locks taken here. */
      busy = 1;
      bool wrapper = pc_is_wrapper(ip);
      if (!wrapper) {
        rule end = {.base = BASE_END, .wrapper = 0};
        rule_add(ip, &end);
      }
      busy = 0;
      if (!wrapper) break;
    }
    if (r == NULL && !learned && !busy) {
      busy = 1;
      learn(ret, frame, depth + HH_MAX_WRAPPER_FRAMES + 1);
      busy = 0;
      learned = true;
      r = rule_find(ip);
    }
    if (r == NULL) break;
    if (leading && r->wrapper) {
      if (++wrappers > HH_MAX_WRAPPER_FRAMES) break;
    } else {
      leading = false;
      if (++counted >= depth) break;
    }
    if (n >= HH_MAX_FRAMES || r->base == BASE_END) break;
    uintptr_t cfa;
    if (r->base == BASE_SP) {
      cfa = sp + (uintptr_t)r->cfa_off;
    } else {
      uintptr_t rbp;
      if (rbp_loc == 0) break;
      READ(rbp, rbp_loc);
      cfa = rbp + 16;
    }
    if (cfa <= sp) break;
    READ(ip, cfa - 8);
    switch (r->rbp) {
    case RBP_SAME: break;
    case RBP_AT: rbp_loc = cfa + (uintptr_t)(intptr_t)r->rbp_off; break;
    case RBP_FP: rbp_loc = cfa - 16; break;
    default: rbp_loc = 0; break;
    }
    sp = cfa;
    if (ip < 4096) break;
  }
out:
#undef READ
  *nreads = nr <= max_reads ? nr : -1;
  return n;
}

/* ------------------------------------------------------------------ the stack of a misuse */

struct here {
  uintptr_t *pcs;
  int n, max;
  uintptr_t own_base; /* libhahalloc's load base; 0: linked into the program */
  bool started;
};

static _Unwind_Reason_Code here_cb(struct _Unwind_Context *ctx, void *arg) {
  struct here *h = arg;
  int before = 0;
  uintptr_t ip = (uintptr_t)hh_uw.get_ip_info(ctx, &before);
  if (ip == 0) return _URC_END_OF_STACK;
  if (!h->started) {
    const char *name;
    uintptr_t base;
    if (h->own_base != 0 && hh_object_of(ip - 1, &name, &base) && base == h->own_base)
      return _URC_NO_REASON; /* the allocator's own frames */
    h->started = true;
  }
  h->pcs[h->n++] = ip;
  if (before || h->n >= h->max) return _URC_END_OF_STACK;
  return _URC_NO_REASON;
}

int hh_backtrace(uintptr_t *pcs, int max, bool *ours_left) {
  if (busy || !hh_unwinder_works()) return 0;
  const char *name;
  uintptr_t own = 0;
  if (!hh_object_of((uintptr_t)&hh_backtrace, &name, &own)) return 0;
  /* linked into the program: its frames cannot be told from ours by their
   * object; the caller drops ours by name (hh_misuse_stacks) */
  if (name == program_path) own = 0;
  *ours_left = own == 0;
  struct here h = {pcs, 0, max, own, false};
  busy = 1;
  hh_uw.backtrace(here_cb, &h);
  busy = 0;
  return h.n;
}
