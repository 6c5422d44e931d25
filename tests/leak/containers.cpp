// Leaks through the C++ standard library: with the default options the
// report must name the user's line, not the container's internals (issue
// 11). Built -O0 (every template a frame of its own) and -O2 (inlined, but
// _M_realloc_insert and the map's node code stay out of line). Lines
// marked SITE(name) are those tests/leak/familiar.py looks for.
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <vector>

struct Bag {
  std::vector<int> items;
  std::map<int, long> index;
  std::string name;
};

__attribute__((noinline)) void fill(Bag *b) {
  for (int i = 0; i < 100; i++) b->items.push_back(i); /* SITE(push_back) */
  for (int i = 0; i < 10; i++) b->index[i] = i;        /* SITE(map_insert) */
  b->name.assign(200, 'x');                            /* SITE(string_assign) */
}

// A Bag freed with free(), not delete: its members' memory is lost.
__attribute__((noinline)) void leak_members() {
  Bag *b = static_cast<Bag *>(std::malloc(sizeof(Bag)));
  new (b) Bag();
  fill(b);
  std::free(b);
}

__attribute__((noinline)) void leak_array() {
  int *a = new int[50]; /* SITE(new_array) */
  a[0] = 1;
  __asm__ volatile("" : : "r"(a) : "memory");
}

__attribute__((noinline)) void leak_object() {
  std::vector<int> *v = new std::vector<int>(); /* SITE(new_object) */
  __asm__ volatile("" : : "r"(v) : "memory");
}

int main() {
  leak_members();
  leak_array();
  leak_object();
  return 0;
}
