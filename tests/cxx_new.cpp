/*
 * C++ new and delete reach hahalloc through libstdc++'s operator new (which
 * calls malloc). Built twice by tests.mk: linked with -lhahalloc, and
 * without it (VIA_DLSYM) to be run under LD_PRELOAD. frhehe and
 * malloc_usable_size validate their pointer, so memory that did not come
 * from hahalloc makes them abort. Exits 0 when every check holds.
 */
#include <dlfcn.h>
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#ifdef VIA_DLSYM
static void frhehe(void *p) {
  auto fn = reinterpret_cast<void (*)(void *)>(dlsym(RTLD_DEFAULT, "frhehe"));
  if (!fn) {
    std::puts("FAIL: frhehe is not in the process");
    std::exit(1);
  }
  fn(p);
}
#else
#include "hahalloc.h"
#endif

static int failures;
#define CHECK(cond)                                         \
  do {                                                      \
    if (!(cond)) {                                          \
      std::printf("FAIL: %s (line %d)\n", #cond, __LINE__); \
      failures++;                                           \
    }                                                       \
  } while (0)

int main() {
  /* operator new memory is hahalloc's: frhehe accepts it */
  void *raw = ::operator new(100);
  std::memset(raw, 1, 100);
  CHECK(malloc_usable_size(raw) >= 100);
  frhehe(raw);

  int *arr = new int[1000];
  for (int i = 0; i < 1000; i++) arr[i] = i;
  CHECK(malloc_usable_size(arr) >= 1000 * sizeof(int));
  delete[] arr;

  /* over-aligned new goes through aligned_alloc */
  struct alignas(256) Big {
    char c[300];
  };
  Big *b = new Big[3];
  CHECK((reinterpret_cast<uintptr_t>(b) & 255) == 0);
  CHECK(malloc_usable_size(b) >= sizeof(Big) * 3);
  delete[] b;

  /* containers */
  std::vector<std::string> v;
  for (int i = 0; i < 100000; i++) v.push_back(std::to_string(i * 7919 % 100003) + std::string(i % 50, 'x'));
  std::sort(v.begin(), v.end());
  CHECK(std::is_sorted(v.begin(), v.end()));
  std::map<int, std::unique_ptr<std::vector<double>>> m;
  for (int i = 0; i < 20000; i++) m[i] = std::make_unique<std::vector<double>>(i % 100, 1.5);
  double sum = 0;
  for (auto &kv : m)
    for (double d : *kv.second) sum += d;
  CHECK(sum == 1.5 * 200 * (99 * 100 / 2));
  v.clear();
  v.shrink_to_fit();
  m.clear();

  /* an impossible new throws bad_alloc, it does not crash */
  bool thrown = false;
  try {
    volatile size_t huge = SIZE_MAX / 4;
    char *p = new char[huge];
    delete[] p;
  } catch (const std::bad_alloc &) { thrown = true; }
  CHECK(thrown);

  /* nothrow new returns NULL instead */
  volatile size_t huge = SIZE_MAX / 4;
  CHECK(new (std::nothrow) char[huge] == nullptr);

  /* hahalloc defines operator new itself: out of memory still runs the
   * new-handler before bad_alloc is thrown, plain, array and aligned */
  static int handler_calls;
  struct handler {
    static void once() {
      handler_calls++;
      std::set_new_handler(nullptr); /* the next failure throws */
    }
  };
  for (int form = 0; form < 3; form++) {
    handler_calls = 0;
    std::set_new_handler(handler::once);
    thrown = false;
    try {
      void *p = form == 0   ? ::operator new(huge)
                : form == 1 ? ::operator new[](huge)
                            : ::operator new(huge, std::align_val_t(64));
      (void)p;
    } catch (const std::bad_alloc &) { thrown = true; }
    CHECK(thrown && handler_calls == 1);
  }
  std::set_new_handler(nullptr);
  CHECK(::operator new(huge, std::align_val_t(64), std::nothrow) == nullptr);
  void *aligned = ::operator new(100, std::align_val_t(256));
  CHECK(((uintptr_t)aligned & 255) == 0);
  ::operator delete(aligned, std::align_val_t(256));

  /* Every operator delete is hahalloc's own, not libstdc++'s chain of
   * sized delete[] -> delete[] -> delete -> free. */
  static const char *const deletes[] = {"_ZdlPv",
                                        "_ZdaPv",
                                        "_ZdlPvm",
                                        "_ZdaPvm",
                                        "_ZdlPvRKSt9nothrow_t",
                                        "_ZdaPvRKSt9nothrow_t",
                                        "_ZdlPvSt11align_val_t",
                                        "_ZdaPvSt11align_val_t",
                                        "_ZdlPvmSt11align_val_t",
                                        "_ZdaPvmSt11align_val_t",
                                        "_ZdlPvSt11align_val_tRKSt9nothrow_t",
                                        "_ZdaPvSt11align_val_tRKSt9nothrow_t"};
  for (const char *name : deletes) {
    Dl_info info;
    void *fn = dlsym(RTLD_DEFAULT, name);
    bool ours = fn != nullptr && dladdr(fn, &info) != 0 && info.dli_fname != nullptr &&
                std::strstr(info.dli_fname, "libhahalloc") != nullptr;
    if (!ours) std::printf("%s is not hahalloc's (%s)\n", name, fn && dladdr(fn, &info) ? info.dli_fname : "none");
    CHECK(ours);
  }

  if (failures) return 1;
  std::puts("cxx_new: new and delete use hahalloc");
  return 0;
}
