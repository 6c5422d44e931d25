/*
 * A library the safety programs dlopen, built stripped: the first block it
 * allocates makes the report look at its ELF file (and for a debug file
 * that is not there), inside malloc.
 */
#include <stdlib.h>

void *alloc_lib_alloc(size_t n);
void *alloc_lib_alloc(size_t n) { return malloc(n); }
