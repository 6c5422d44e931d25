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

#ifdef __cplusplus
}
#endif

#endif /* HAHALLOC_H */
