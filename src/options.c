/*
 * HAHALLOC_* settings, read once from the environment at start-up (before
 * any allocation is served, so getenv is safe and nothing here allocates).
 * README.md documents each one.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

hh_options hh_opt = {
    .summary = 1,
    .on_error = 0,
    .output = "stderr",
    .json = 0,
    .stack_depth = 1, /* the call site; more frames cost more per malloc */
    .show_reachable = 0,
    .min_size = 0,
    .leak_exitcode = 0,
    .verbose = 0,
};
bool hh_sites = true;

static long parse_long(const char *name, const char *v, long lo, long hi, long fallback) {
  char *end;
  long x = strtol(v, &end, 10);
  if (end == v || *end != '\0' || x < lo || x > hi) {
    hh_dprintf(2, "hahalloc: warning: ignoring %s=%s (expected a number from %ld to %ld)\n", name, v,
               lo, hi);
    return fallback;
  }
  return x;
}

static int parse_bool(const char *name, const char *v, int fallback) {
  if (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on")) return 1;
  if (!strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off")) return 0;
  hh_dprintf(2, "hahalloc: warning: ignoring %s=%s (expected 0 or 1)\n", name, v);
  return fallback;
}

void hh_options_init(void) {
  const char *v;
  if ((v = getenv("HAHALLOC_SUMMARY")) != NULL) hh_opt.summary = parse_bool("HAHALLOC_SUMMARY", v, 1);
  if ((v = getenv("HAHALLOC_ON_ERROR")) != NULL) {
    if (!strcmp(v, "continue")) hh_opt.on_error = 1;
    else if (!strcmp(v, "abort")) hh_opt.on_error = 0;
    else hh_dprintf(2, "hahalloc: warning: ignoring HAHALLOC_ON_ERROR=%s (abort or continue)\n", v);
  }
  if ((v = getenv("HAHALLOC_OUTPUT")) != NULL && *v) {
    hh_opt.output = v;
    hh_opt.output_set = 1;
  }
  /* the program the hahalloc command runs asks for its report */
  if ((v = getenv("HAHALLOC_CLI_PID")) != NULL && strtol(v, NULL, 10) == (long)getpid())
    hh_opt.output_set = 1;
  if ((v = getenv("HAHALLOC_FORMAT")) != NULL) {
    if (!strcmp(v, "json")) hh_opt.json = 1;
    else if (!strcmp(v, "text")) hh_opt.json = 0;
    else hh_dprintf(2, "hahalloc: warning: ignoring HAHALLOC_FORMAT=%s (text or json)\n", v);
  }
  if ((v = getenv("HAHALLOC_STACK_DEPTH")) != NULL)
    hh_opt.stack_depth = (int)parse_long("HAHALLOC_STACK_DEPTH", v, 0, 64, hh_opt.stack_depth);
  if ((v = getenv("HAHALLOC_SHOW_REACHABLE")) != NULL)
    hh_opt.show_reachable = parse_bool("HAHALLOC_SHOW_REACHABLE", v, 0);
  if ((v = getenv("HAHALLOC_MIN_SIZE")) != NULL)
    hh_opt.min_size = (size_t)parse_long("HAHALLOC_MIN_SIZE", v, 0, 1L << 46, 0);
  if ((v = getenv("HAHALLOC_LEAK_EXITCODE")) != NULL)
    hh_opt.leak_exitcode = (int)parse_long("HAHALLOC_LEAK_EXITCODE", v, 0, 255, 0);
  if ((v = getenv("HAHALLOC_VERBOSE")) != NULL) hh_opt.verbose = parse_bool("HAHALLOC_VERBOSE", v, 0);
  hh_sites = hh_opt.summary != 0 && hh_opt.stack_depth > 0;
  if (hh_opt.verbose)
    hh_dprintf(2,
               "hahalloc: pid %d: summary %s, output %s, format %s, stack depth %d, "
               "show reachable %s, min size %zu, leak exit code %d, on error %s\n",
               (int)getpid(), hh_opt.summary ? "on" : "off", hh_opt.output ? hh_opt.output : "stderr",
               hh_opt.json ? "json" : "text", hh_opt.stack_depth, hh_opt.show_reachable ? "yes" : "no",
               hh_opt.min_size, hh_opt.leak_exitcode, hh_opt.on_error ? "continue" : "abort");
}
