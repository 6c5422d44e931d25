/*
 * cfrac: a real algorithm made of many small, short-lived objects, in the
 * spirit of the cfrac benchmark (continued-fraction factoring with a big
 * number library that allocates every intermediate result).
 *
 * For every non-square D in [2, dmax] we expand sqrt(D) as a continued
 * fraction for `terms` terms and compute its convergents p/q with immutable
 * heap-allocated big numbers (each operation allocates its result, old
 * values are freed as soon as they are dead). Every convergent is verified
 * with the identity p_n^2 - D q_n^2 = (-1)^(n+1) Q_(n+1), where Q is the
 * small denominator sequence of the expansion, which costs two big products,
 * a small multiple and a difference: so nearly every allocation lives for a
 * few microseconds, and sizes run from 16 B to a few hundred bytes.
 *
 *   cfrac dmax=2000 terms=150 rounds=1
 */
#include "common.h"

typedef struct {
  uint32_t n; /* limbs in use, >= 1, the top one non-zero unless the value is 0 */
  uint32_t pad;
  uint64_t d[];
} bn;

static unsigned long allocs;

static bn *bn_alloc(uint32_t n) {
  bn *r = malloc(sizeof(bn) + sizeof(uint64_t) * n);
  if (!r) fail("malloc returned NULL", n);
  allocs++;
  r->n = n;
  return r;
}

static bn *bn_trim(bn *r) {
  while (r->n > 1 && r->d[r->n - 1] == 0) r->n--;
  return r;
}

static bn *bn_small(uint64_t v) {
  bn *r = bn_alloc(1);
  r->d[0] = v;
  return r;
}

/* a * k + b */
static bn *bn_muladd_small(const bn *a, uint64_t k, const bn *b) {
  uint32_t n = (a->n > b->n ? a->n : b->n) + 1;
  bn *r = bn_alloc(n);
  unsigned __int128 carry = 0;
  for (uint32_t i = 0; i < n; i++) {
    unsigned __int128 t = carry;
    if (i < a->n) t += (unsigned __int128)a->d[i] * k;
    if (i < b->n) t += b->d[i];
    r->d[i] = (uint64_t)t;
    carry = t >> 64;
  }
  return bn_trim(r);
}

static bn *bn_mul(const bn *a, const bn *b) {
  bn *r = bn_alloc(a->n + b->n);
  memset(r->d, 0, sizeof(uint64_t) * r->n);
  for (uint32_t i = 0; i < a->n; i++) {
    unsigned __int128 carry = 0;
    for (uint32_t j = 0; j < b->n; j++) {
      unsigned __int128 t = (unsigned __int128)a->d[i] * b->d[j] + r->d[i + j] + carry;
      r->d[i + j] = (uint64_t)t;
      carry = t >> 64;
    }
    r->d[i + b->n] = (uint64_t)carry;
  }
  return bn_trim(r);
}

static int bn_cmp(const bn *a, const bn *b) {
  if (a->n != b->n) return a->n < b->n ? -1 : 1;
  for (uint32_t i = a->n; i-- > 0;)
    if (a->d[i] != b->d[i]) return a->d[i] < b->d[i] ? -1 : 1;
  return 0;
}

/* a - b, requires a >= b */
static bn *bn_sub(const bn *a, const bn *b) {
  bn *r = bn_alloc(a->n);
  uint64_t borrow = 0;
  for (uint32_t i = 0; i < a->n; i++) {
    uint64_t bi = i < b->n ? b->d[i] : 0;
    uint64_t t = a->d[i] - bi - borrow;
    borrow = (a->d[i] < bi) || (a->d[i] - bi < borrow);
    r->d[i] = t;
  }
  return bn_trim(r);
}

static uint64_t isqrt(uint64_t v) {
  uint64_t r = 0;
  while ((r + 1) * (r + 1) <= v) r++;
  return r;
}

/* Expand sqrt(D), verify each convergent; returns a checksum. */
static uint64_t expand(uint64_t D, int terms) {
  uint64_t a0 = isqrt(D);
  if (a0 * a0 == D) return 0;
  uint64_t m = 0, d = 1, a = a0, sum = 0;
  bn *p2 = bn_small(0), *p1 = bn_small(1); /* p_{n-2}, p_{n-1} */
  bn *q2 = bn_small(1), *q1 = bn_small(0);
  bn *zero = bn_small(0);
  bn *Dn = bn_small(D);
  for (int n = 0; n < terms; n++) {
    bn *p = bn_muladd_small(p1, a, p2);
    bn *q = bn_muladd_small(q1, a, q2);
    free(p2);
    free(q2);
    p2 = p1;
    q2 = q1;
    p1 = p;
    q1 = q;
    /* next term of the expansion */
    m = d * a - m;
    d = (D - m * m) / d;
    a = (a0 + m) / d;
    /* p^2 - D q^2 == (-1)^(n+1) d */
    bn *pp = bn_mul(p, p);
    bn *qq = bn_mul(q, q);
    bn *dqq = bn_mul(qq, Dn);
    free(qq);
    int odd = n & 1;
    if (bn_cmp(pp, dqq) != (odd ? 1 : -1)) fail("convergent identity (sign)", (size_t)D);
    bn *diff = odd ? bn_sub(pp, dqq) : bn_sub(dqq, pp);
    free(pp);
    free(dqq);
    bn *dd = bn_muladd_small(zero, 0, diff); /* a copy, as a library would make */
    if (dd->n != 1 || dd->d[0] != d) fail("convergent identity", (size_t)D);
    sum += p->d[0] ^ q->n;
    free(diff);
    free(dd);
  }
  free(p1);
  free(p2);
  free(q1);
  free(q2);
  free(zero);
  free(Dn);
  return sum;
}

int main(int argc, char **argv) {
  bench_which(argc, argv);
  long dmax = arg_long(argc, argv, "dmax", 2000);
  int terms = (int)arg_long(argc, argv, "terms", 150);
  long rounds = arg_long(argc, argv, "rounds", 1);
  if (dmax < 2 || dmax > 1000000 || terms < 1) fail("bad arguments", 0);
  double t0 = now_sec();
  uint64_t sum = 0;
  for (long r = 0; r < rounds; r++)
    for (uint64_t D = 2; D <= (uint64_t)dmax; D++) sum += expand(D, terms);
  double el = now_sec() - t0;
  printf("ok cfrac dmax=%ld terms=%d allocs=%lu time=%.4f ns_per_alloc=%.1f sum=%llu\n", dmax, terms, allocs, el,
         el * 1e9 / (double)allocs, (unsigned long long)sum);
  return 0;
}
