/*
 * Run with LD_PRELOAD=libhahalloc.so by test_dropin: a program never linked
 * with hahalloc checks that all of its memory comes from hahalloc, from
 * before main on. Exits 0 when it does, 1 (naming the failed check) if not.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *early; /* allocated by a constructor, before main */

__attribute__((constructor)) static void allocate_before_main(void) {
  early = malloc(333);
  if (early) memset(early, 0x33, 333);
}

static int failed(const char *what) {
  printf("FAIL: %s\n", what);
  return 1;
}

int main(void) {
  void *(*hh_alloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "hahalloc");
  void (*hh_free)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "frhehe");
  if (!hh_alloc || !hh_free) return failed("hahalloc and frhehe are not in the process");

  Dl_info info;
  void *m = dlsym(RTLD_DEFAULT, "malloc");
  if (!m || !dladdr(m, &info) || !info.dli_fname || !strstr(info.dli_fname, "libhahalloc"))
    return failed("malloc is not hahalloc's");

  FILE *maps = fopen("/proc/self/maps", "r");
  char line[4096];
  int mapped = 0;
  while (maps && fgets(line, sizeof line, maps))
    if (strstr(line, "libhahalloc")) mapped = 1;
  if (maps) fclose(maps);
  if (!mapped) return failed("libhahalloc is not in /proc/self/maps");

  /* frhehe validates its pointer: memory from another allocator would abort */
  if (!early) return failed("malloc before main returned NULL");
  for (int i = 0; i < 333; i++)
    if (((unsigned char *)early)[i] != 0x33) return failed("the block allocated before main changed");
  hh_free(early);
  hh_free(malloc(100));
  hh_free(calloc(10, 10));
  hh_free(strdup("from the libc's strdup"));
  free(hh_alloc(1000));
  char *p = hh_alloc(12345);
  if (!p || malloc_usable_size(p) < 12345) return failed("malloc_usable_size of a hahalloc block");
  p = realloc(p, 100000);
  if (!p) return failed("realloc of a hahalloc block");
  free(p);
  puts("preload_probe: all memory comes from hahalloc");
  return 0;
}
