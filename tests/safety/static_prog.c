/* A statically linked program: LD_PRELOAD cannot reach it. Linked with
 * libhahalloc.a it reports by itself; with the argument "seccomp" it first
 * installs a filter that kills the process for calls only the report
 * makes (listing tasks, mincore, kcmp, signalling threads). */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

void *volatile sink;

#define DENY(nr) \
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)

int main(int argc, char **argv) {
  sink = malloc(100);
  sink = NULL;
  if (argc > 1 && !strcmp(argv[1], "seccomp")) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        DENY(SYS_getdents64),
        DENY(SYS_mincore),
        DENY(SYS_kcmp),
        DENY(SYS_tgkill),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
      return 3;
  }
  puts("static");
  return 0;
}
