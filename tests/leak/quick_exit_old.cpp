// A program built against glibc's first quick_exit (GLIBC_2.10), which runs
// thread_local destructors (GLIBC_2.24's does not). hahalloc interposes
// quick_exit for its exit gate and must keep the version the program asked
// for (helper-43: under LD_PRELOAD the destructor no longer ran).
#include <cstdlib>
#include <unistd.h>

__asm__(".symver quick_exit_2_10, quick_exit@GLIBC_2.10");
extern "C" void quick_exit_2_10(int) __attribute__((noreturn));

struct Noisy {
  ~Noisy() { (void)!write(1, "thread_local destructor\n", 24); }
};
thread_local Noisy noisy;

int main() {
  (void)&noisy;
  quick_exit_2_10(0);
}
