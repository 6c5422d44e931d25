/* Reads file offsets of `syscall` instructions (hex, one per line) of the
 * ELF file argv[1] and prints, for each, the call number that
 * src/report/syscall_number.h reads from the code before it (-1: none).
 * tests/safety/run.py compares them with objdump's reading of every such
 * site of the machine's glibc. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/report/syscall_number.h"

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return 2;
  const uint8_t *file = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (file == MAP_FAILED) return 2;
  unsigned long off;
  while (scanf("%lx", &off) == 1) {
    if (off < CODE_BEFORE || off + 2 > (unsigned long)st.st_size)
      printf("%lx -1\n", off);
    else
      printf("%lx %ld\n", off, call_number_before(file + off));
  }
  return 0;
}
