/*
 * A program built without PIE whose code takes malloc's address, as
 * CPython's allocator table does: malloc's canonical address is then this
 * program's PLT stub. The report's first frame must still name malloc in
 * libhahalloc.so. Leaks 40 bytes.
 */
#include <stdlib.h>

void *(*volatile alloc_fn)(size_t);
void *volatile leak;

int main(void) {
  alloc_fn = malloc;
  leak = alloc_fn(40);
  leak = NULL;
  return 0;
}
