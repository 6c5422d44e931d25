// C++ leaks: allocations through operator new (libstdc++, no frame
// pointers) must be attributed to the function calling new.
#include <new>
#include <string>
#include <vector>

struct Widget {
  long a[7]; // 56 bytes
  std::string *name;
};

std::vector<int> *kept; // still reachable

__attribute__((noinline)) Widget *make_widget() {
  Widget *w = new Widget(); /* SITE(new_widget) */
  w->name = nullptr;
  return w;
}

__attribute__((noinline)) void leak_array() {
  int *a = new int[50]; /* SITE(new_array) */
  a[0] = 1;
  __asm__ volatile("" : : "r"(a) : "memory");
}

/* the other ways into operator new: nothrow, a medium block, a large one */
__attribute__((noinline)) void leak_nothrow() {
  Widget *w = new (std::nothrow) Widget(); /* SITE(new_nothrow) */
  __asm__ volatile("" : : "r"(w) : "memory");
}

__attribute__((noinline)) void leak_medium() {
  char *m = new (std::nothrow) char[3000]; /* SITE(new_medium) */
  m[0] = 1;
  __asm__ volatile("" : : "r"(m) : "memory");
}

__attribute__((noinline)) void leak_large() {
  char *l = new char[300000]; /* SITE(new_large) */
  l[0] = 1;
  __asm__ volatile("" : : "r"(l) : "memory");
}

__attribute__((noinline)) void keep_vector() {
  kept = new std::vector<int>(10); /* SITE(new_vector) */
}

int main() {
  Widget *w = make_widget();
  __asm__ volatile("" : : "r"(w) : "memory");
  w = nullptr;
  leak_array();
  leak_nothrow();
  leak_medium();
  leak_large();
  keep_vector();
  return 0;
}
