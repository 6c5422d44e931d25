/*
 * The report's hooks: what the allocator calls in src/report/ (call sites,
 * the profile, the exit report, fork).
 */
#ifndef HH_HOOKS_H
#define HH_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Fills the heap's call-site table (hh_callsite_cache) for `ret`. */
void hh_callsite_remember(hh_heap *heap, uintptr_t ret, uint32_t id);
/* Allocation site of the caller of the public entry point; `ret` is that
 * entry point's return address. Must not allocate through malloc. */
uint32_t hh_site_capture(void *ret, void *frame);
/* The address of entry point `kind` (enum hh_entry), 0 when not ours. */
uintptr_t hh_entry_address(unsigned kind);
/* --profile (report/profile.c): every allocation and free, by site. */
void hh_profile_alloc(uint32_t site, size_t size);
void hh_profile_free(uint32_t site, size_t size);
void hh_profile_grow(uint32_t site, size_t bytes);
void hh_profile_atfork_prepare(void);
void hh_profile_atfork_parent(void);
void hh_profile_atfork_child(void);
/* Under an error's first line (error.c): the stack of the call that met
 * it, and where the block holding `block` (may be NULL) was allocated. */
void hh_misuse_stacks(const void *block);
/* valgrind's error contexts (report/misuse.c): whether an error of this
 * kind (its message's format) met from this call stack is the first of its
 * context. A later one is counted, not written again. hh_misuse_contexts
 * counts the contexts, for the ERROR SUMMARY line. */
bool hh_misuse_context_new(const void *kind);
extern _Atomic(uint64_t) hh_misuse_contexts;
void hh_misuse_atfork_child(void);
/* Writes an error message where the user sees it (report/dest.c): with the
 * report on, the program's stderr as it was at start-up; else fd 2. Never
 * raises SIGPIPE, never changes errno, never blocks for ever. */
void hh_message_write(const char *buf, size_t n);
/* Misuses and heap corruption reported so far (error.c, and the guard's
 * check at exit): --error-exitcode counts them, as valgrind counts its
 * errors, besides the leaks of the kinds that are errors. */
extern _Atomic(uint64_t) hh_misuse_errors;
/* Heap corruption found so far (error.c, and the scan's look at each
 * page's free lists, page.c): a free block whose free-list link a stray
 * write overwrote may read as in use, so the exit report says that its
 * figures may count such blocks. */
extern _Atomic(uint64_t) hh_heap_damage;
/* Errors written in full before the rest are only counted (error.c):
 * hh_error_shown counts one and answers whether to write it; those not
 * written are counted in hh_errors_unshown, for the exit report. */
#define HH_ERRORS_SHOWN 1000
bool hh_error_shown(void);
extern _Atomic(uint64_t) hh_errors_unshown;
void hh_errors_atfork_child(void);
/* Where glibc's struct pthread keeps the thread's kernel id (report.c,
 * from the descriptors glibc exports for libthread_db), so that a thread's
 * first allocation reads its id rather than asking the kernel: one system
 * call less per thread. 0 until known, or when unknown (a static binary,
 * another C library): the heap then asks the kernel. */
extern size_t hh_pthread_tid_offset;
void hh_report_init(void);                       /* start-up, after the options */
void hh_report_register_exit(void);              /* start-up, once malloc works: the exit report */
void hh_report_exit_gate(void);                  /* exit() while another thread is in it or reports: waits */
void hh_report_vfork_exit(int status);           /* exit(): ends a vfork child (src/shared/exit.c) */
void hh_report_summary(int fd, size_t min_size); /* mem_lhihiks */
/* Seccomp (src/shared/seccomp.c): a filter the program installs may
 * refuse the report's system calls or kill the program for them, so none
 * is made once one is in force or being installed. hh_sandbox_entering:
 * the program is about to install one (strict mode or a filter); waits for
 * a report under way, says so once, and answers whether the install counts
 * (not in a vfork child). hh_sandbox_done: that install's outcome.
 * hh_sandboxed: whether a filter may be in force. */
bool hh_sandbox_entering(bool strict);
void hh_sandbox_done(bool installed);
bool hh_sandboxed(void);
bool hh_seccomp_inherited(void); /* a filter in force when first asked (report.c: /proc/self/status) */
void hh_report_atfork_prepare(void);
void hh_report_atfork_parent(void);
void hh_report_atfork_child(void);

#endif /* HH_HOOKS_H */
