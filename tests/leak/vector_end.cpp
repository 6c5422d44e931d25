// std::vector keeps a pointer to the end of its storage. When the capacity
// fills the block exactly (4 longs in 32 bytes), that pointer is also the
// start of the block after it, which memcheck's redzone keeps apart: a lost
// block allocated right after a vector's storage must not be called
// reachable. valgrind says definitely lost; the report says possibly lost,
// since the word may as well be a start pointer (scan.c). Next to them,
// blocks held by pointers of the same values in other shapes must stay
// reachable. The same after a global vector destroyed at exit, whose
// storage is freed. run.py checks the kinds.
#include <cstdio>
#include <cstdlib>
#include <vector>

enum { N = 64 };
static std::vector<long> *partial[N], *full[N];
static void *volatile sink;

struct Node {
  Node *next;
  long pad[3]; // 32 bytes, a whole range
};
Node *head; // a list of nodes allocated one after the other
void *table[N][3]; // pointers to 3 blocks in a row: [b0, b1, b2]
// Vectors destroyed at exit, before the scan: their storage is freed, their
// three words stay behind (helper-79: gdb's global vector kept the string
// after its storage reachable).
std::vector<long> gone[16];

int main() {
  for (int i = 0; i < N; i++) {
    partial[i] = new std::vector<long>();
    partial[i]->reserve(4); // 32 bytes: [begin, begin + 16, begin + 32]
    partial[i]->push_back(i);
    partial[i]->push_back(i);
    sink = malloc(32); // right after the storage: lost
    full[i] = new std::vector<long>();
    full[i]->reserve(4);
    for (int j = 0; j < 4; j++) full[i]->push_back(j); // [begin, end, end]
    sink = malloc(32); // lost
  }
  for (int i = 0; i < 16; i++) { // a lost vector: its storage is indirectly lost,
    std::vector<long> *v = new std::vector<long>(); // the block after it
    v->reserve(4);                                  // definitely (its own leader)
    for (int j = 0; j < 4; j++) v->push_back(j);
    sink = malloc(32);
    sink = v;
  }
  for (int i = 0; i < 16; i++) { // [begin, end, end], begin freed at exit
    gone[i].reserve(4);
    for (int j = 0; j < 4; j++) gone[i].push_back(j);
    sink = malloc(32); // lost
  }
  Node *prev = nullptr;
  for (int i = 0; i < N; i++) { // each node follows a whole live node
    Node *n = static_cast<Node *>(calloc(1, sizeof(Node)));
    if (prev) prev->next = n;
    else head = n;
    prev = n;
  }
  for (int i = 0; i < N; i++) // three ascending pointers, not a vector's
    for (int j = 0; j < 3; j++) table[i][j] = calloc(1, 32);
  sink = nullptr;
  std::printf("ok\n");
  return 0;
}
