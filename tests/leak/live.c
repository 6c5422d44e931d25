/* N live blocks of S bytes at exit, all reachable through one array, for
 * the exit scan's cost (bench_tracking.py).
 *
 * usage: live N [S] */
#include <stdlib.h>

void **volatile blocks;

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
  size_t s = argc > 2 ? strtoul(argv[2], NULL, 10) : 16;
  blocks = malloc(n * sizeof *blocks);
  for (size_t i = 0; i < n; i++) blocks[i] = malloc(s);
  return 0;
}
