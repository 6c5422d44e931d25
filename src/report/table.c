/*
 * The report's hash table (report.h): grow-only, open addressing with
 * linear probing, entries of a fixed size stored in the slots themselves.
 *
 * An entry's first word is its key, nonzero; the caller's value follows.
 * A writer (one at a time: the caller's lock, or the stopped world) fills
 * the value, then publishes the key with a release store, so a reader that
 * finds the key with an acquire load sees the whole entry. A table that
 * fills to half grows into a new one twice its size, published whole; the
 * old one stays valid for readers still inside it: in meta memory it is
 * kept for ever (tables read by any thread at any time: sites, unwind
 * rules), in report memory it is unmapped (tables of one report, one
 * thread).
 */
#include <string.h>

#include "os.h"
#include "report.h"

static hh_table_mem *mem_new(const hh_table *t, size_t slots) {
  size_t bytes = sizeof(hh_table_mem) + slots * t->entry;
  hh_table_mem *m = t->report_memory ? hh_report_map(bytes) : hh_meta_alloc(bytes);
  if (m == NULL) return NULL;
  memset(m, 0, sizeof *m); /* the slots are zero: both allocators give zeroed memory */
  m->mask = slots - 1;
  return m;
}

static void mem_free(const hh_table *t, hh_table_mem *m) {
  if (m != NULL && t->report_memory) hh_report_unmap(m, sizeof(hh_table_mem) + (m->mask + 1) * t->entry);
}

/* A copy of `entry` (whose first word is its key) in a free slot of `m`,
 * which has room. */
static void *put(const hh_table *t, hh_table_mem *m, const void *entry) {
  uint64_t key = *(const uint64_t *)entry;
  for (size_t i = hh_table_hash(key) & m->mask;; i = (i + 1) & m->mask) {
    _Atomic(uint64_t) *slot = hh_table_slot_key(t, m, i);
    if (atomic_load_explicit(slot, memory_order_relaxed) != 0) continue;
    memcpy((uint64_t *)slot + 1, (const uint64_t *)entry + 1, t->entry - sizeof(uint64_t));
    atomic_store_explicit(slot, key, memory_order_release);
    m->count++;
    return (uint64_t *)slot;
  }
}

void *hh_table_add(hh_table *t, const void *entry) {
  hh_table_mem *m = atomic_load_explicit(&t->mem, memory_order_relaxed);
  if (m == NULL || (m->count + 1) * 2 > m->mask + 1) {
    hh_table_mem *bigger = mem_new(t, m == NULL ? t->first_slots : (m->mask + 1) * 2);
    if (bigger == NULL) return NULL;
    for (size_t i = 0; m != NULL && i <= m->mask; i++) {
      _Atomic(uint64_t) *slot = hh_table_slot_key(t, m, i);
      uint64_t k = atomic_load_explicit(slot, memory_order_relaxed);
      if (k != 0) put(t, bigger, slot);
    }
    atomic_store_explicit(&t->mem, bigger, memory_order_release);
    mem_free(t, m);
    m = bigger;
  }
  return put(t, m, entry);
}

void *hh_table_at(const hh_table *t, size_t i) {
  hh_table_mem *m = atomic_load_explicit(&t->mem, memory_order_acquire);
  if (m == NULL || i > m->mask) return NULL;
  _Atomic(uint64_t) *slot = hh_table_slot_key(t, m, i);
  return atomic_load_explicit(slot, memory_order_acquire) != 0 ? (uint64_t *)slot : NULL;
}

size_t hh_table_slots(const hh_table *t) {
  hh_table_mem *m = atomic_load_explicit(&t->mem, memory_order_acquire);
  return m == NULL ? 0 : m->mask + 1;
}

size_t hh_table_count(const hh_table *t) {
  hh_table_mem *m = atomic_load_explicit(&t->mem, memory_order_acquire);
  return m == NULL ? 0 : m->count;
}

void hh_table_free(hh_table *t) {
  mem_free(t, atomic_load_explicit(&t->mem, memory_order_relaxed));
  atomic_store_explicit(&t->mem, NULL, memory_order_relaxed);
}
