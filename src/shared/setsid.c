/*
 * setsid(), interposed by the shared library only.
 *
 * With no controlling terminal, the hahalloc command makes its program the
 * leader of a process group of its own (tools/hahalloc.c: a signal sent to
 * the command's group must reach the program once, through the command).
 * A group leader may not call setsid (EPERM), so a program that starts a
 * session of its own without forking first, as a server does, failed
 * under the command and ran under glibc. When that EPERM is our doing
 * (the command's program, found leading its group at start-up), the
 * program goes back to the command's group, which it may leave, and the
 * call is made again. A process that is a group leader by its own doing
 * gets glibc's answer.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <unistd.h>

#include "../internal.h"
#include "../options.h"

typedef pid_t (*setsid_fn)(void);
static setsid_fn real_setsid;
static pid_t command_group; /* the command's group, when we made the program lead its own; else 0 */

__attribute__((constructor)) static void find_setsid(void) {
  real_setsid = (setsid_fn)dlsym(RTLD_NEXT, "setsid");
  hh_init(); /* the options: hh_opt.cli */
  /* Only the command's program: a bare LD_PRELOAD makes none of these
   * calls, which a filter made from a program's own calls under glibc
   * may kill for (helper-75: getppid at start-up, inherited filter). */
  if (hh_opt.cli != HH_CLI_PROGRAM) return;
  pid_t me = getpid(), parent_group = getpgid(getppid());
  if (getpgrp() == me && parent_group > 0 && parent_group != me) command_group = parent_group;
}

HH_EXPORT pid_t setsid(void) {
  if (real_setsid == NULL) real_setsid = (setsid_fn)dlsym(RTLD_NEXT, "setsid");
  if (real_setsid == NULL) {
    errno = ENOSYS;
    return -1;
  }
  pid_t r = real_setsid();
  if (r < 0 && errno == EPERM && command_group > 0 && getpgrp() == getpid()) {
    int saved = errno;
    if (setpgid(0, command_group) == 0) return real_setsid();
    errno = saved;
  }
  return r;
}
