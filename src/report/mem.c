/*
 * Memory for the report's own tables while the world is stopped. It comes
 * straight from the OS (hh_os_map), not from meta memory: a stopped thread
 * may hold the meta allocator's lock.
 * Every region is remembered so the scan never takes it for an anchor (it holds
 * pointers to every live block, which would make them all reachable).
 */
#include <stdatomic.h>
#include <string.h>

#include "os.h"
#include "report.h"

#define MAX_REGIONS 256

static struct {
  _Atomic(uintptr_t) start;
  _Atomic(size_t) size;
} regions[MAX_REGIONS];

void *hh_report_map(size_t size) {
  size = (size + 4095) & ~(size_t)4095;
  void *p = hh_os_map(size);
  if (p == NULL) return NULL;
  for (int i = 0; i < MAX_REGIONS; i++) {
    uintptr_t expect = 0;
    if (atomic_compare_exchange_strong(&regions[i].start, &expect, (uintptr_t)p)) {
      atomic_store(&regions[i].size, size);
      return p;
    }
  }
  hh_os_unmap(p, size); /* cannot remember it: do not hand out memory we would scan */
  return NULL;
}

void hh_report_unmap(void *p, size_t size) {
  if (p == NULL) return;
  size = (size + 4095) & ~(size_t)4095;
  /* Forget the region before unmapping it: once unmapped, its address may
   * be handed to someone else's mapping. */
  for (int i = 0; i < MAX_REGIONS; i++)
    if (atomic_load(&regions[i].start) == (uintptr_t)p) {
      atomic_store(&regions[i].size, 0);
      atomic_store(&regions[i].start, 0);
      break;
    }
  hh_os_unmap(p, size);
}

int hh_report_regions(uintptr_t (*out)[2], int max) {
  int n = 0;
  for (int i = 0; i < MAX_REGIONS && n < max; i++) {
    uintptr_t s = atomic_load_explicit(&regions[i].start, memory_order_relaxed);
    size_t z = atomic_load_explicit(&regions[i].size, memory_order_relaxed);
    if (s && z) {
      out[n][0] = s;
      out[n][1] = s + z;
      n++;
    }
  }
  return n;
}

/* ------------------------------------------------------------------ arenas */

typedef struct arena_chunk {
  struct arena_chunk *next;
  size_t size, used;
} arena_chunk;

void *hh_arena_alloc(hh_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  arena_chunk *c = a->chunks;
  if (c == NULL || c->used + size > c->size) {
    size_t csize = size + 64 > ((size_t)1 << 20) ? size + 64 : (size_t)1 << 20;
    c = hh_report_map(csize);
    if (c == NULL) return NULL;
    c->size = csize;
    c->used = (sizeof *c + 15) & ~(size_t)15;
    c->next = a->chunks;
    a->chunks = c;
  }
  void *p = (char *)c + c->used;
  c->used += size;
  return p;
}

char *hh_arena_strndup(hh_arena *a, const char *s, size_t n) {
  char *p = hh_arena_alloc(a, n + 1);
  if (p != NULL) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

void hh_arena_free(hh_arena *a) {
  arena_chunk *c = a->chunks;
  while (c) {
    arena_chunk *next = c->next;
    hh_report_unmap(c, c->size);
    c = next;
  }
  a->chunks = NULL;
}
