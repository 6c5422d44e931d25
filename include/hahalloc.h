/*
 * hahalloc: a fast, thread-safe memory allocator that reports leaks at exit.
 *
 * The five functions of the seed are the library's own API. The same library
 * also replaces the whole malloc family (malloc, free, calloc, realloc, ...),
 * so memory from either API may be released through the other:
 * frhehe(strdup(s)) and free(hahalloc(n)) are both correct.
 */
#ifndef HAHALLOC_H
#define HAHALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* As malloc: a block of at least `size` bytes, 16-byte aligned; NULL and
 * errno = ENOMEM when the size is impossible or memory is exhausted. */
void *hahalloc(size_t size);

/* As free: releases a block from hahalloc, chahalloc, rehehalloc or any of the
 * malloc family. frhehe(NULL) does nothing. A pointer that was never returned,
 * or one already freed, is reported on stderr and the process aborts (or the
 * call is ignored when HAHALLOC_ON_ERROR=continue). errno is preserved. */
void frhehe(void *ptr);

/* As calloc, with a single argument: `size` bytes, all zero. */
void *chahalloc(size_t size);

/* As realloc: the first min(old, size) bytes are kept. rehehalloc(NULL, n) is
 * hahalloc(n); shrinking never moves a block whose size class still fits.
 * On failure NULL is returned, errno is ENOMEM and `ptr` stays valid. */
void *rehehalloc(void *ptr, size_t size);

/* Prints a heap summary to stdout: totals, peak, use per root, and every live
 * block of at least `size` bytes grouped by allocation site (0 lists all). */
void mem_lhihiks(size_t size);

/* ------------------------------------------------------------------ leak checks */

/* Bytes and blocks of one kind of leak. */
struct hahalloc_leak_count {
  size_t bytes, blocks;
};

/* What hahalloc_leak_check found: the blocks in use now by kind, as the
 * exit report classifies them (valgrind's kinds), those suppressed (by
 * suppression files, the built-in set, or hahalloc_ignore), and how much
 * each kind grew since hahalloc_leak_baseline() (since the start of the
 * program without one), counted per allocation stack: a leak added at one
 * place is new even if another was freed elsewhere. */
struct hahalloc_leaks {
  struct hahalloc_leak_count definite, indirect, possible, reachable, suppressed;
  struct hahalloc_leak_count new_definite, new_indirect, new_possible, new_reachable;
};

/* Runs the leak scan now, as at exit but printing nothing (valgrind's
 * VALGRIND_COUNT_LEAKS, LeakSanitizer's __lsan_do_recoverable_leak_check).
 * Fills *out (if not NULL) and returns the number of new blocks of the kinds
 * that are errors (--errors-for-leak-kinds: definitely and possibly lost by
 * default), so a test can assert hahalloc_leak_check(NULL) == 0; -1 when no
 * scan could be made. Pointers still held in the caller's registers or
 * stack count as reachable: leak from a function that has returned. Works
 * in every mode; stacks (and so suppressions and "new" per stack) need the
 * report's call sites, on unless HAHALLOC_SUMMARY=0 or num-callers=0. */
int hahalloc_leak_check(struct hahalloc_leaks *out);

/* Marks the present as the baseline of later checks' new_* counts
 * ("no new leaks since the start of this test"). 0, or -1 when no scan
 * could be made. */
int hahalloc_leak_baseline(void);

/* Leaves the block `ptr` (as returned by an allocation) out of every leak
 * report and check, and whatever is reachable from it (LeakSanitizer's
 * __lsan_ignore_object): it is counted as suppressed. Until it is freed or
 * reallocated. */
void hahalloc_ignore(const void *ptr);

#ifdef __cplusplus
}
#endif

#endif /* HAHALLOC_H */
