/*
 * The options of the report, by name: one table for the library (which
 * reads them from HAHALLOC_OPTIONS, src/options.c) and the hahalloc command
 * (which checks them and passes them on in HAHALLOC_OPTIONS,
 * tools/hahalloc.c), so the two never disagree on a name or a value.
 *
 * Names are valgrind's (--leak-check, --show-leak-kinds, --log-file,
 * --num-callers...) and, as aliases in HAHALLOC_OPTIONS, LeakSanitizer's
 * (detect_leaks, exitcode, log_path, malloc_context_size). In
 * HAHALLOC_OPTIONS a name has no dashes and may use '_' for '-':
 * "leak-check=full:show_leak_kinds=all". Header only, no allocation: the
 * library parses before malloc works.
 */
#ifndef HH_OPTABLE_H
#define HH_OPTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef enum {
  HH_OT_FLAG,       /* no value needed ("yes" when none is given) */
  HH_OT_BOOL,       /* yes|no (also 1|0, true|false) */
  HH_OT_NUM,        /* a number from lo to hi */
  HH_OT_PATH,       /* a file name (the command makes it absolute) */
  HH_OT_OUTPUT,     /* stderr, stdout, or a file name */
  HH_OT_KINDS,      /* valgrind's leak kinds: definite,indirect,possible,reachable | all | none */
  HH_OT_HEURISTICS, /* valgrind's: stdstring,length64,newarray,multipleinheritance | all | none */
  HH_OT_CHOICE,     /* one of `choices`, '|' separated */
} hh_opt_type;

enum {
  HH_O_LEAK_CHECK,
  HH_O_SHOW_LEAK_KINDS,
  HH_O_ERRORS_FOR_LEAK_KINDS,
  HH_O_LEAK_CHECK_HEURISTICS,
  HH_O_SHOW_REACHABLE,
  HH_O_SHOW_POSSIBLY_LOST,
  HH_O_LOG_FILE,
  HH_O_LOG_PATH, /* LeakSanitizer's: PATH.<pid> */
  HH_O_XML,
  HH_O_XML_FILE,
  HH_O_NUM_CALLERS,
  HH_O_TRACE_CHILDREN,
  HH_O_SUPPRESSIONS,
  HH_O_DEFAULT_SUPPRESSIONS,
  HH_O_GEN_SUPPRESSIONS,
  HH_O_QUIET,
  HH_O_VERBOSE,
  HH_O_ERROR_EXITCODE,
  HH_O_FORMAT,
  HH_O_JSON,
  HH_O_MIN_SIZE,
  HH_O_SUMMARY,
  HH_O_ON_ERROR,
  HH_O_ERROR_LIMIT,
  HH_O_SYMBOLIZE_TIMEOUT,
  HH_O_PROFILE,
  HH_O_GUARD,
  HH_O_VERSION, /* the command's own */
  HH_O_HELP,    /* the command's own */
  HH_O_LIB,     /* the command's own */
};

typedef struct hh_optdef {
  const char *name;
  int id;
  hh_opt_type type;
  const char *choices; /* HH_OT_CHOICE */
  long lo, hi;         /* HH_OT_NUM */
  bool command_only;   /* not passed to the library */
} hh_optdef;

/* Each row names the fields its type uses; the others are zero. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const hh_optdef hh_optdefs[] = {
    {"leak-check", HH_O_LEAK_CHECK, HH_OT_CHOICE, .choices = "no|summary|full|yes"},
    {"show-leak-kinds", HH_O_SHOW_LEAK_KINDS, HH_OT_KINDS},
    {"errors-for-leak-kinds", HH_O_ERRORS_FOR_LEAK_KINDS, HH_OT_KINDS},
    {"leak-check-heuristics", HH_O_LEAK_CHECK_HEURISTICS, HH_OT_HEURISTICS},
    {"show-reachable", HH_O_SHOW_REACHABLE, HH_OT_BOOL},
    {"show-possibly-lost", HH_O_SHOW_POSSIBLY_LOST, HH_OT_BOOL},
    {"log-file", HH_O_LOG_FILE, HH_OT_OUTPUT},
    {"log-path", HH_O_LOG_PATH, HH_OT_PATH},
    {"xml", HH_O_XML, HH_OT_BOOL},
    {"xml-file", HH_O_XML_FILE, HH_OT_PATH},
    {"num-callers", HH_O_NUM_CALLERS, HH_OT_NUM, .hi = 64},
    {"trace-children", HH_O_TRACE_CHILDREN, HH_OT_BOOL},
    {"suppressions", HH_O_SUPPRESSIONS, HH_OT_PATH},
    {"default-suppressions", HH_O_DEFAULT_SUPPRESSIONS, HH_OT_BOOL},
    {"gen-suppressions", HH_O_GEN_SUPPRESSIONS, HH_OT_CHOICE, .choices = "no|all|yes"},
    {"quiet", HH_O_QUIET, HH_OT_FLAG},
    {"verbose", HH_O_VERBOSE, HH_OT_FLAG},
    {"verbosity", HH_O_VERBOSE, HH_OT_NUM, .hi = 9},
    {"error-exitcode", HH_O_ERROR_EXITCODE, HH_OT_NUM, .hi = 255},
    {"format", HH_O_FORMAT, HH_OT_CHOICE, .choices = "text|json|xml|collapsed"},
    {"json", HH_O_JSON, HH_OT_FLAG},
    {"min-size", HH_O_MIN_SIZE, HH_OT_NUM, .hi = 1L << 46},
    {"summary", HH_O_SUMMARY, HH_OT_BOOL},
    {"on-error", HH_O_ON_ERROR, HH_OT_CHOICE, .choices = "abort|continue"},
    {"error-limit", HH_O_ERROR_LIMIT, HH_OT_BOOL},
    {"symbolize-timeout", HH_O_SYMBOLIZE_TIMEOUT, HH_OT_NUM, .hi = 3600000},
    {"profile", HH_O_PROFILE, HH_OT_BOOL},
    {"guard", HH_O_GUARD, HH_OT_BOOL},
    {"version", HH_O_VERSION, HH_OT_FLAG, .command_only = true},
    {"help", HH_O_HELP, HH_OT_FLAG, .command_only = true},
    {"lib", HH_O_LIB, HH_OT_PATH, .command_only = true},
};
#pragma GCC diagnostic pop

/* Other names of options: LeakSanitizer's (detect-leaks, exitcode,
 * malloc-context-size), short ones (-q, -v, -h) and synonyms. */
static const struct {
  const char *alias, *name;
} hh_optaliases[] = {
    {"output", "log-file"},
    {"stack-depth", "num-callers"},
    {"malloc-context-size", "num-callers"},
    {"q", "quiet"},
    {"v", "verbose"},
    {"exitcode", "error-exitcode"},
    {"detect-leaks", "summary"},
    {"h", "help"},
};

/* Whether `key` (klen bytes; '_' is read as '-') is the name `n`. */
static inline bool hh_opt_named(const char *key, size_t klen, const char *n) {
  if (strlen(n) != klen) return false;
  for (size_t k = 0; k < klen; k++)
    if (key[k] != n[k] && !(key[k] == '_' && n[k] == '-')) return false;
  return true;
}

/* The definition of option `key` (klen bytes, no leading dashes; '_' is
 * read as '-'), by its name or an alias, or NULL. */
static inline const hh_optdef *hh_optdef_find(const char *key, size_t klen) {
  for (size_t i = 0; i < sizeof hh_optaliases / sizeof hh_optaliases[0]; i++)
    if (hh_opt_named(key, klen, hh_optaliases[i].alias)) {
      key = hh_optaliases[i].name;
      klen = strlen(key);
      break;
    }
  for (size_t i = 0; i < sizeof hh_optdefs / sizeof hh_optdefs[0]; i++)
    if (hh_opt_named(key, klen, hh_optdefs[i].name)) return &hh_optdefs[i];
  return NULL;
}

/* Booleans: 1 yes, 0 no, -1 neither. */
static inline int hh_opt_bool(const char *v) {
  if (!strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "on")) return 1;
  if (!strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "off")) return 0;
  return -1;
}

/* The index of `v` in a '|' separated list, or -1. */
static inline int hh_opt_choice(const char *choices, const char *v) {
  size_t vlen = strlen(v);
  int i = 0;
  for (const char *c = choices;; i++) {
    const char *bar = strchr(c, '|');
    size_t len = bar ? (size_t)(bar - c) : strlen(c);
    if (len == vlen && !strncmp(c, v, len)) return i;
    if (bar == NULL) return -1;
    c = bar + 1;
  }
}

/* valgrind's names of the leak kinds, in the order of enum hh_kind
 * (src/report/report.h). */
static const char *const hh_kind_names[4] = {"definite", "indirect", "possible", "reachable"};

/* A set of names from `names` (n of them), comma separated, or all or
 * none: a bit mask, or -1. */
static inline int hh_opt_set(const char *v, const char *const *names, int n) {
  if (!strcmp(v, "all")) return (1 << n) - 1;
  if (!strcmp(v, "none")) return 0;
  int mask = 0;
  for (const char *p = v; *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    int k = 0;
    while (k < n && !(strlen(names[k]) == len && !strncmp(names[k], p, len))) k++;
    if (k == n) return -1;
    mask |= 1 << k;
    if (comma == NULL) break;
    p = comma + 1;
  }
  return mask;
}

/* memcheck's leak-check heuristics (src/report/scan.c), in the order of
 * the mask's bits. */
static const char *const hh_heuristic_names[] = {"stdstring", "length64", "newarray", "multipleinheritance"};
static inline int hh_opt_heuristics(const char *v) { return hh_opt_set(v, hh_heuristic_names, 4); }

/* valgrind's kind lists, as a mask of 1 << kind (definite 0, indirect 1,
 * possible 2, reachable 3); -1 when `v` is not one. */
static inline int hh_opt_kinds(const char *v) { return hh_opt_set(v, hh_kind_names, 4); }

/* Whether `v` is a valid value of `d`. */
static inline bool hh_opt_valid(const hh_optdef *d, const char *v) {
  switch (d->type) {
  case HH_OT_FLAG:
  case HH_OT_BOOL: return hh_opt_bool(v) >= 0;
  case HH_OT_NUM: {
    if (*v == '\0') return false;
    long x = 0;
    for (const char *p = v; *p; p++) {
      if (*p < '0' || *p > '9' || x > d->hi) return false;
      x = x * 10 + (*p - '0');
    }
    return x >= d->lo && x <= d->hi;
  }
  case HH_OT_PATH:
  case HH_OT_OUTPUT: return *v != '\0';
  case HH_OT_KINDS: return hh_opt_kinds(v) >= 0;
  case HH_OT_HEURISTICS: return hh_opt_heuristics(v) >= 0;
  case HH_OT_CHOICE: return hh_opt_choice(d->choices, v) >= 0;
  }
  return false;
}

#endif
