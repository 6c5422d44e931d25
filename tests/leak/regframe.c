/*
 * Frames the unwinder knows only through __register_frame_info, as a JIT's
 * code: linked with --no-eh-frame-hdr (tests/leak/familiar.py), the program
 * registers its own .eh_frame with the libgcc_s it links, then leaks 4,321
 * bytes through leaf <- mid <- top <- main. The report's stack must show
 * all four: the unwinder it walks with must see what the program
 * registered.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

extern void __register_frame_info(const void *begin, void *object);
static char object_space[128]; /* libgcc's struct object, opaque */

static void register_own_frames(void) {
  FILE *f = fopen("/proc/self/exe", "rb");
  Elf64_Ehdr eh;
  if (f == NULL || fread(&eh, sizeof eh, 1, f) != 1) exit(2);
  Elf64_Shdr *sh = calloc(eh.e_shnum, sizeof *sh);
  if (fseek(f, (long)eh.e_shoff, SEEK_SET) || fread(sh, sizeof *sh, eh.e_shnum, f) != eh.e_shnum) exit(2);
  char *names = malloc(sh[eh.e_shstrndx].sh_size);
  if (fseek(f, (long)sh[eh.e_shstrndx].sh_offset, SEEK_SET) || fread(names, 1, sh[eh.e_shstrndx].sh_size, f) == 0)
    exit(2);
  uintptr_t base = getauxval(AT_PHDR) - eh.e_phoff; /* the load bias of a PIE */
  for (int i = 0; i < eh.e_shnum; i++)
    if (strcmp(names + sh[i].sh_name, ".eh_frame") == 0)
      __register_frame_info((const void *)(base + sh[i].sh_addr), object_space);
  free(names);
  free(sh);
  fclose(f);
}

#define NOINLINE __attribute__((noinline))
void *volatile sink;
NOINLINE void *leaf(void) {
  void *p = malloc(4321);
  __asm__ volatile("" ::: "memory");
  return p;
}
NOINLINE void *mid(void) {
  void *p = leaf();
  __asm__ volatile("" ::: "memory");
  return p;
}
NOINLINE void *top(void) {
  void *p = mid();
  __asm__ volatile("" ::: "memory");
  return p;
}
int main(void) {
  register_own_frames();
  top();
  sink = NULL;
  return 0;
}
