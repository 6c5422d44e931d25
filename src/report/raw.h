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

/* clone(flags) onto the stack ending at `top`: the child calls fn(arg)
 * there and exits with its result; the caller gets the child's pid, or
 * -errno. Not glibc's clone(): a program's own clone() comes first in
 * symbol lookup, and ThreadSanitizer's, run for our go-between and tracer,
 * took them for its own threads' forks (its check failed in the child,
 * and the program, whose heap was never ours, exited with status 66
 * instead of 0). */
static inline long raw_clone(int (*fn)(void *), void *top, unsigned long flags, void *arg) {
  long ret;
  register long r10 __asm__("r10") = 0; /* tls */
  register long r8 __asm__("r8") = 0;
  __asm__ volatile("syscall\n\t"
                   "testq %%rax, %%rax\n\t"
                   "jnz 1f\n\t"
                   "xorl %%ebp, %%ebp\n\t" /* the child, on its own stack */
                   "movq %[arg], %%rdi\n\t"
                   "call *%[fn]\n\t"
                   "movl %%eax, %%edi\n\t"
                   "movl %[exit_nr], %%eax\n\t"
                   "syscall\n\t"
                   "hlt\n"
                   "1:"
                   : "=a"(ret)
                   : "a"(SYS_clone), "D"(flags), "S"((uintptr_t)top & ~(uintptr_t)15), "d"(0), "r"(r10),
                     "r"(r8), [fn] "r"(fn), [arg] "r"(arg), [exit_nr] "i"(SYS_exit)
                   : "rcx", "r11", "memory");
  return ret;
}
#endif

#endif
