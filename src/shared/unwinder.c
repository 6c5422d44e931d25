/*
 * The unwinder the report walks stacks with, chosen by the shared library
 * only (a static link already calls the program's own).
 *
 * libhahalloc.so carries a hidden copy of libgcc's unwinder, so that a C
 * program preloaded with it does not load libgcc_s.so.1 at every start.
 * But a program that has libgcc_s (any C++ program) registers the frame
 * information it makes at run time there (a JIT's code, objects linked
 * without .eh_frame_hdr), where our copy does not look: their frames would
 * end our stacks. So when the program loaded libgcc_s before main, its
 * unwinder is the one used. Found in a constructor, outside any malloc:
 * dlopen and dlsym take the loader's lock.
 */
#include "../report/report.h"

__attribute__((constructor)) static void choose_unwinder(void) { hh_unwind_prefer_loaded(); }
