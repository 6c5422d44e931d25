/*
 * trees: tree building, the classic binary-trees allocation test (as in the
 * Computer Language Benchmarks Game), our own code.
 *
 * A long-lived tree of depth `depth` stays alive for the whole run, while
 * for every depth d = 4, 6, ..., depth, 2^(depth - d + 4) short-lived trees
 * of depth d are built top-down, walked (their nodes counted and their
 * values checked) and freed. Nodes are small (two children, a value: 24 B),
 * and each node also gets a label string of 8-64 B, so two size classes are
 * interleaved. `threads` > 1 splits the short-lived trees of each depth
 * between threads.
 *
 *   trees depth=16 threads=1
 */
#include "common.h"

typedef struct node {
  struct node *left, *right;
  char *label;
} node;

static node *build(int depth, uint64_t *rng) {
  node *n = xmalloc(sizeof(node));
  size_t ll = rng_range(rng, 8, 64);
  n->label = xmalloc(ll);
  memset(n->label, 'a' + depth, ll - 1);
  n->label[ll - 1] = 0;
  if (depth > 0) {
    n->left = build(depth - 1, rng);
    n->right = build(depth - 1, rng);
  } else {
    n->left = n->right = NULL;
  }
  return n;
}

static long check(const node *n, int depth) {
  if (n->label[0] != 'a' + depth) fail("label corrupted", (size_t)depth);
  if (!n->left) return 1;
  return 1 + check(n->left, depth - 1) + check(n->right, depth - 1);
}

static void destroy(node *n) {
  if (n->left) {
    destroy(n->left);
    destroy(n->right);
  }
  free(n->label);
  free(n);
}

typedef struct {
  int maxdepth, threads, index;
  long nodes;
} job;

static void *short_lived(void *arg) {
  job *j = (job *)arg;
  uint64_t rng = 12345 + (uint64_t)j->index;
  for (int d = 4; d <= j->maxdepth; d += 2) {
    long iters = 1L << (j->maxdepth - d + 4);
    for (long i = j->index; i < iters; i += j->threads) {
      node *t = build(d, &rng);
      long c = check(t, d);
      if (c != (2L << d) - 1) fail("wrong node count", (size_t)c);
      j->nodes += c;
      destroy(t);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_which(argc, argv);
  int depth = (int)arg_long(argc, argv, "depth", 16);
  int threads = (int)arg_long(argc, argv, "threads", 1);
  if (depth < 4 || depth > 24 || threads < 1 || threads > 64) fail("bad arguments", 0);
  double t0 = now_sec();
  uint64_t rng = 1;
  node *long_lived = build(depth, &rng);
  job jobs[64];
  for (int t = 0; t < threads; t++) jobs[t] = (job){depth, threads, t, 0};
  run_jobs(short_lived, jobs, sizeof jobs[0], threads);
  long nodes = check(long_lived, depth);
  for (int t = 0; t < threads; t++) nodes += jobs[t].nodes;
  destroy(long_lived);
  printf("ok trees depth=%d threads=%d nodes=%ld time=%.4f\n", depth, threads, nodes, now_sec() - t0);
  return 0;
}
