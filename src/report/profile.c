/*
 * Where memory goes (--profile): for every allocation site, how many
 * allocations and bytes it made in all, and how much it held at the peak.
 *
 * The peak is found the way valgrind's massif finds it: the bytes in use
 * (requested bytes, exact) are followed allocation by allocation, and each
 * site's share is copied whenever the total passes the last copy by 1%
 * (massif's --peak-inaccuracy=1.0), so the copy reports a moment within 1%
 * of the true peak, at a cost of O(sites) only about 70 times per doubling
 * of the heap.
 *
 * Every allocation and free must be seen, so the profile turns off both
 * fast paths' shortcuts: the call-site table is never filled (every malloc
 * reaches hh_track_new_site) and heaps carry no tag (every free reaches
 * hh_release). One lock orders the counts. It is a diagnostic mode, as
 * heaptrack and massif are; the default build pays nothing for it.
 */
#include <string.h>

#include "format.h"
#include "hooks.h"
#include "lock.h"
#include "os.h"
#include "report.h"

typedef struct site_count {
  uint64_t allocs, bytes;    /* in all */
  int64_t live, live_blocks; /* now */
  int64_t peak, peak_blocks; /* at the last copy */
} site_count;

#define CHUNK_BITS 12
#define CHUNK (1u << CHUNK_BITS)
#define MAX_CHUNKS 4096

static site_count *chunks[MAX_CHUNKS];
static hh_lock lock = HH_LOCK_INIT;
static int64_t live, copied, peak_live; /* requested bytes in use; at the last copy; the most */
static uint32_t max_site;

static site_count *count_of(uint32_t site) {
  site &= ~HH_SITE_IGNORED;
  if (site >> CHUNK_BITS >= MAX_CHUNKS) return NULL;
  site_count **c = &chunks[site >> CHUNK_BITS];
  if (*c == NULL) {
    *c = hh_meta_alloc(CHUNK * sizeof **c);
    if (*c == NULL) return NULL;
    memset(*c, 0, CHUNK * sizeof **c);
  }
  if (site > max_site) max_site = site;
  return &(*c)[site & (CHUNK - 1)];
}

/* Copies every site's share: the total passed the last copy by 1%. */
static void copy_peak(void) {
  for (uint32_t i = 0; i <= max_site >> CHUNK_BITS; i++) {
    site_count *c = chunks[i];
    if (c == NULL) continue;
    for (uint32_t k = 0; k < CHUNK; k++) {
      c[k].peak = c[k].live;
      c[k].peak_blocks = c[k].live_blocks;
    }
  }
  copied = live;
}

void hh_profile_alloc(uint32_t site, size_t size) {
  hh_lock_acquire(&lock);
  site_count *c = count_of(site);
  if (c != NULL) {
    c->allocs++;
    c->bytes += size;
    c->live += (int64_t)size;
    c->live_blocks++;
  }
  live += (int64_t)size;
  if (live > peak_live) {
    peak_live = live;
    if (live > copied + copied / 100) copy_peak();
  }
  hh_lock_release(&lock);
}

/* A live block's size grew by `bytes` (malloc_usable_size). */
void hh_profile_grow(uint32_t site, size_t bytes) {
  hh_lock_acquire(&lock);
  site_count *c = count_of(site);
  if (c != NULL) c->live += (int64_t)bytes;
  live += (int64_t)bytes;
  if (live > peak_live) {
    peak_live = live;
    if (live > copied + copied / 100) copy_peak();
  }
  hh_lock_release(&lock);
}

void hh_profile_free(uint32_t site, size_t size) {
  hh_lock_acquire(&lock);
  site_count *c = count_of(site);
  if (c != NULL) {
    c->live -= (int64_t)size;
    c->live_blocks--;
  }
  live -= (int64_t)size;
  hh_lock_release(&lock);
}

void hh_profile_atfork_prepare(void) { hh_lock_acquire(&lock); }
void hh_profile_atfork_parent(void) { hh_lock_release(&lock); }
void hh_profile_atfork_child(void) { hh_lock_init(&lock); }

/* ------------------------------------------------------------------ the report's view */

static const site_count *get(uint32_t site) {
  return site >> CHUNK_BITS < MAX_CHUNKS && chunks[site >> CHUNK_BITS] ? &chunks[site >> CHUNK_BITS][site & (CHUNK - 1)]
                                                                       : NULL;
}

/* The `top` sites with the most of what `key` gives, most first. */
static size_t pick(hh_profile_entry *out, size_t top, int64_t (*key)(const site_count *)) {
  size_t n = 0;
  for (uint32_t site = 1; site <= max_site; site++) {
    const site_count *c = get(site);
    int64_t k = c ? key(c) : 0;
    if (k <= 0 || (n == top && k <= out[n - 1].value)) continue;
    size_t at = n < top ? n++ : top - 1; /* the last place: a full list drops its last */
    while (at > 0 && out[at - 1].value < k) {
      out[at] = out[at - 1];
      at--;
    }
    out[at] = (hh_profile_entry){site, k, c->peak_blocks, c->allocs, c->bytes};
  }
  return n;
}

static int64_t by_peak(const site_count *c) { return c->peak; }
static int64_t by_bytes(const site_count *c) { return (int64_t)c->bytes; }

bool hh_profile_view_build(hh_profile_view *p, hh_arena *a, bool every_site) {
  memset(p, 0, sizeof *p);
  /* a thread the exit interrupted inside the profile may hold the lock */
  if (!hh_lock_acquire_until(&lock, hh_now_ns() + 1000000000)) return false;
  size_t cap = every_site ? (size_t)max_site + 1 : HH_PROFILE_TOP;
  p->peak = hh_arena_alloc(a, cap * sizeof *p->peak);
  p->total = hh_arena_alloc(a, HH_PROFILE_TOP * sizeof *p->total);
  if (p->peak && p->total) {
    p->npeak = pick(p->peak, cap, by_peak);
    p->ntotal = pick(p->total, HH_PROFILE_TOP, by_bytes);
  }
  p->peak_bytes = (uint64_t)(copied > 0 ? copied : 0);
  p->peak_max = (uint64_t)(peak_live > 0 ? peak_live : 0);
  for (uint32_t site = 1; site <= max_site; site++) {
    const site_count *c = get(site);
    if (c && c->allocs) p->sites++; /* ids of a chunk that never allocated here are not sites */
  }
  hh_lock_release(&lock);
  return p->peak && p->total;
}

/* ------------------------------------------------------------------ writing */

static void stack_text(hh_out *o, int pid, const hh_frame *fr, int n) {
  char prefix[24];
  hh_snformat(prefix, sizeof prefix, "==%d==", pid);
  hh_write_frames(o, prefix, fr, n);
}

void hh_profile_write_text(hh_out *o, int pid, const hh_view *v) {
  const hh_profile_view *p = v->profile;
  hh_frame fr[HH_MAX_SHOWN];
  uint64_t peak = p->peak_bytes ? p->peak_bytes : 1;
  hh_out_printf(o,
                "==%d== PEAK: %'llu bytes in use at the peak (requested bytes; the sites below are counted "
                "within 1%% of it)\n==%d==\n",
                pid, (unsigned long long)p->peak_max, pid);
  for (size_t i = 0; i < p->npeak && i < HH_PROFILE_TOP; i++) {
    const hh_profile_entry *e = &p->peak[i];
    unsigned long long tenths = (unsigned long long)e->value * 1000 / peak;
    hh_out_printf(o, "==%d== %'llu bytes in %'llu blocks at the peak (%llu.%llu%%)\n", pid,
                  (unsigned long long)e->value, (unsigned long long)e->blocks, tenths / 10, tenths % 10);
    stack_text(o, pid, fr, hh_site_display(p->sym, e->site, fr, HH_MAX_SHOWN));
    hh_out_printf(o, "==%d==\n", pid);
  }
  hh_out_printf(o, "==%d== ALLOCATIONS: the sites that allocated the most bytes, of %'zu sites\n==%d==\n", pid,
                p->sites, pid);
  for (size_t i = 0; i < p->ntotal; i++) {
    const hh_profile_entry *e = &p->total[i];
    hh_out_printf(o, "==%d== %'llu bytes in %'llu allocations\n", pid, (unsigned long long)e->bytes,
                  (unsigned long long)e->allocs);
    stack_text(o, pid, fr, hh_site_display(p->sym, e->site, fr, HH_MAX_SHOWN));
    hh_out_printf(o, "==%d==\n", pid);
  }
}

static void json_list(hh_out *o, const hh_profile_view *p, const hh_profile_entry *v, size_t n) {
  hh_frame fr[HH_MAX_SHOWN];
  for (size_t i = 0; i < n; i++) {
    const hh_profile_entry *e = &v[i];
    hh_out_printf(o,
                  "%s{\"site\":%u,\"peak_bytes\":%lld,\"peak_blocks\":%lld,\"allocs\":%llu,\"bytes\":%llu,"
                  "\"stack\":[",
                  i ? "," : "", e->site, (long long)(v == p->peak ? e->value : 0),
                  (long long)(v == p->peak ? e->blocks : 0), (unsigned long long)e->allocs,
                  (unsigned long long)e->bytes);
    int nf = hh_site_display(p->sym, e->site, fr, HH_MAX_SHOWN);
    for (int f = 0; f < nf; f++) {
      hh_out_printf(o, "%s{\"function\":", f ? "," : "");
      hh_out_json_str(o, fr[f].function);
      hh_out_printf(o, ",\"file\":");
      hh_out_json_str(o, fr[f].file);
      if (fr[f].file)
        hh_out_printf(o, ",\"line\":%d", fr[f].line);
      else
        hh_out_printf(o, ",\"line\":null");
      hh_out_printf(o, ",\"object\":");
      hh_out_json_str(o, fr[f].object);
      hh_out_printf(o, "}");
    }
    hh_out_printf(o, "]}");
  }
}

void hh_profile_write_json(hh_out *o, const hh_view *v) {
  const hh_profile_view *p = v->profile;
  hh_out_printf(o, "\"profile\":{\"peak_bytes\":%llu,\"sites\":%zu,\"peak\":[", (unsigned long long)p->peak_max,
                p->sites);
  json_list(o, p, p->peak, p->npeak < HH_PROFILE_TOP ? p->npeak : HH_PROFILE_TOP);
  hh_out_printf(o, "],\"allocations\":[");
  json_list(o, p, p->total, p->ntotal);
  hh_out_printf(o, "]},");
}

void hh_profile_write_collapsed(hh_out *o, const hh_view *v) {
  const hh_profile_view *p = v->profile;
  uint32_t *site = hh_arena_alloc(v->arena, (p->npeak + 1) * sizeof *site);
  uint64_t *bytes = hh_arena_alloc(v->arena, (p->npeak + 1) * sizeof *bytes);
  if (site == NULL || bytes == NULL) return;
  for (size_t i = 0; i < p->npeak; i++) {
    site[i] = p->peak[i].site;
    bytes[i] = (uint64_t)p->peak[i].value;
  }
  hh_collapsed_write(o, v->arena, p->sym, site, bytes, NULL, NULL, p->npeak);
}
