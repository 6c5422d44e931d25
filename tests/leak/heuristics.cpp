// Live objects C++ holds through a pointer inside their block, which
// valgrind's memcheck takes for reachable by its default heuristics, next to
// blocks that are lost or only possibly lost. run.py compares the kinds.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

struct Elem {
  ~Elem() {} // a destructor: new Elem[n] stores n before the array
  long x;
};
struct A {
  virtual ~A() {}
  long a;
};
struct B {
  virtual ~B() {}
  long b;
};
struct C : A, B {
  long c;
};

Elem *array;       // newarray: the block's start + 8, the count before it
B *second_base;    // multipleinheritance: the B inside a C
long *length_held; // length64: just after a 64-bit length of the rest
char *inside;      // a pointer 16 bytes into a plain block: possibly lost
char *chars;       // stdstring: the characters of a pre-C++11 string's block
char *link24;      // a pointer 24 bytes into a zeroed block: possibly lost
void *volatile sink;

int main() {
  array = new Elem[10]; // 8 + 80 = 88 bytes
  second_base = new C;  // 40 bytes
  long *l = static_cast<long *>(malloc(64));
  l[0] = 56;
  length_held = l + 1; // 64 bytes
  char *p = static_cast<char *>(malloc(100));
  memset(p, 0, 100);
  inside = p + 16;   // 100 bytes, possibly lost
  // a pre-C++11 std::string: length, capacity, reference count, then the
  // characters and their NUL, the block exactly that long
  uint64_t *rep = static_cast<uint64_t *>(malloc(24 + 39 + 1)); // 64 bytes
  rep[0] = 5;
  rep[1] = 39;
  rep[2] = 0;
  std::memcpy(rep + 3, "hello", 6);
  chars = reinterpret_cast<char *>(rep + 3);
  link24 = static_cast<char *>(calloc(1, 96)) + 24; // 96 bytes, possibly lost
  sink = malloc(33); // 33 bytes, definitely lost
  sink = nullptr;
  std::printf("ok\n");
  return 0;
}
