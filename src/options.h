/*
 * The report's settings, read once at start-up from the HAHALLOC_*
 * variables and HAHALLOC_OPTIONS (options.c; optable.h names them all,
 * README.md documents them).
 */
#ifndef HH_OPTIONS_H
#define HH_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

enum { HH_CLI_NONE = 0, HH_CLI_PROGRAM = 1, HH_CLI_CHILD = 2 };
enum { HH_LEAK_NO = 0, HH_LEAK_SUMMARY = 1, HH_LEAK_FULL = 2 };
enum { HH_FORMAT_TEXT = 0, HH_FORMAT_JSON, HH_FORMAT_XML, HH_FORMAT_COLLAPSED };
#define HH_MAX_SUPP_FILES 16

/* The report's settings: HAHALLOC_* variables, then HAHALLOC_OPTIONS
 * (src/optable.h names them all; README.md documents them). */
typedef struct hh_options {
  int report;               /* make the exit report (see the policy in options.c) */
  int on_error;             /* on-error: 0 = abort, 1 = continue */
  int error_limit;          /* error-limit: past HH_ERRORS_SHOWN errors, count them only (hooks.h) */
  int guard;                /* guard: canary bytes after every block (guard.c) */
  const char *output;       /* log-file: NULL = stderr, "stdout", or an absolute path (%p = pid) */
  const char *xml_output;   /* xml-file: where the XML goes (else `output`) */
  int format;               /* HH_FORMAT_*: text, json, xml (valgrind's memcheck XML), collapsed stacks */
  int leak_check;           /* HH_LEAK_*: none, the summary, or the leaks listed too */
  unsigned show_kinds;      /* kinds listed with their stacks: bits 1 << enum hh_kind (report.h) */
  unsigned error_kinds;     /* kinds that make leak_exitcode the exit status */
  unsigned heuristics;      /* leak-check-heuristics, bits of hh_heuristic_names (scan.c) */
  int stack_depth;          /* num-callers: frames of the program recorded per allocation */
  size_t min_size;          /* list blocks at least this big */
  int leak_exitcode;        /* error-exitcode: exit status on leaks of error_kinds, 0 = keep */
  int verbose;              /* -v: the report's own figures and words (roots, sites, the scan) */
  int quiet;                /* -q: the leaks only */
  int gen_suppressions;     /* a suppression after every leak listed */
  int default_suppressions; /* the built-in suppressions of the C and C++ runtimes */
  const char *supp_files[HH_MAX_SUPP_FILES]; /* suppression files, absolute paths */
  int nsupp_files;
  int profile;        /* where memory goes: totals by site, and the sites at the peak */
  int trace_children; /* trace-children: the command's children report too */
  int secure;         /* AT_SECURE: nothing is taken from the environment */
  int linked;         /* the program was linked with hahalloc (not preloaded) */
  int cli;            /* HH_CLI_*: run by the hahalloc command, as its program or a child */
  int cli_command;    /* the command's pid (HAHALLOC_CLI_PID=PID:COMMAND:START:NS), 0: not known */
  bool
      cli_command_parent; /* the parent is the command: its pid and start time checked at start-up, in a /proc of our own */
  const char *addr2line; /* the symboliser, an absolute path; NULL: none */
  int symbolize_ms;      /* HAHALLOC_SYMBOLIZE_TIMEOUT_MS: the symboliser's deadline */
} hh_options;

extern hh_options hh_opt;
/* Call sites are captured: the exit report is on and HAHALLOC_STACK_DEPTH > 0.
 * Sizes and statistics are kept always: mem_lhihiks promises them. */
extern bool hh_sites;
void hh_options_init(void);
void hh_options_started(void); /* our constructor ran */
void hh_options_atfork_child(void);

#endif /* HH_OPTIONS_H */
