// C++ leaks: allocations through operator new (libstdc++, no frame
// pointers) must be attributed to the function calling new.
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

__attribute__((noinline)) void keep_vector() {
  kept = new std::vector<int>(10); /* SITE(new_vector) */
}

int main() {
  Widget *w = make_widget();
  __asm__ volatile("" : : "r"(w) : "memory");
  w = nullptr;
  leak_array();
  keep_vector();
  return 0;
}
