// Never calls malloc itself: only operator new. Linked with -lhahalloc
// (gcc passes --as-needed on Debian), it must still run on hahalloc.
int main() {
  int *leak = new int[25];
  leak[0] = 1;
  __asm__ volatile("" : : "r"(leak) : "memory");
  return 0;
}
