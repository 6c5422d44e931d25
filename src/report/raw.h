/*
 * System calls made without glibc's wrappers, for code that runs in a
 * clone sharing our memory (spawn.c's go-between and helper, trace.c's
 * tracer): a wrapper that fails writes errno, which is the thread's that
 * made the clone, and a child on its own stack must touch nothing else.
 * The answer is the kernel's: -errno on failure. x86-64 only.
 */
#ifndef HH_REPORT_RAW_H
#define HH_REPORT_RAW_H

#if defined(__x86_64__)
static inline long raw6(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define RAW(n, ...) raw_args(n, __VA_ARGS__, 0, 0, 0, 0, 0, 0)
#define raw_args(n, a, b, c, d, e, f, ...) raw6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#endif

#endif
