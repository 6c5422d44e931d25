/*
 * Helpers shared by the test suites: child processes with captured output
 * (death tests, environment options, out-of-memory limits), block patterns
 * that tell a corrupted block from a sound one, and /proc/self/status.
 *
 * A child must never use cmocka's assertions: they would jump back into the
 * copy of the test runner inside the child. Children report through their
 * exit status and stderr instead.
 */
#ifndef HH_TESTS_COMMON_H
#define HH_TESTS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef HH_BUILD_DIR
#define HH_BUILD_DIR "build"
#endif

/* Hides a value from the optimiser, so that a call such as
 * hahalloc(SIZE_MAX) or free(&local) is made as written. */
#define HH_OPAQUE(x)                           \
  ({                                           \
    __auto_type hh_opaque_v_ = (x);            \
    __asm__ volatile("" : "+r"(hh_opaque_v_)); \
    hh_opaque_v_;                              \
  })

/* The suites run with HAHALLOC_SUMMARY=0 (tests.mk): their output is
 * cmocka's, and an error the library reports goes to the stderr a test
 * captures, not to the report's copy of the stderr the process started
 * with. A binary run by hand without it sets it and runs itself again, so
 * that it tests the same thing either way. Call first in main. */
void hh_test_env(char **argv);

/* ------------------------------------------------------------ children */

typedef struct hh_child {
  int status; /* as from waitpid */
  bool timed_out;
  char *out; /* the child's stdout, NUL-terminated */
  char *err; /* the child's stderr, NUL-terminated */
  size_t out_len, err_len;
} hh_child;

/* Runs fn(arg) in a forked child whose stdout and stderr are captured; the
 * child exits with fn's return value. Returns false (and kills the child)
 * when it has not finished within timeout_s seconds. */
bool hh_fork_run(int (*fn)(void *), void *arg, int timeout_s, hh_child *c);

/* Runs this test binary again as `self --child NAME ARG` with the given
 * environment changes ("NAME=VALUE" sets, "NAME" unsets), so that options
 * read once at start-up take effect. env may be NULL. */
bool hh_exec_self(const char *name, const char *arg, const char *const *env, int timeout_s, hh_child *c);

/* Runs any program (argv[0] is a path) the same way. */
bool hh_exec_run(const char *const *argv, const char *const *env, int timeout_s, hh_child *c);

void hh_child_free(hh_child *c);

/* "exited 3", "killed by SIGABRT", "timed out" */
const char *hh_child_describe(const hh_child *c);

bool hh_child_exited_ok(const hh_child *c);
bool hh_child_aborted(const hh_child *c);

/* The entry point for `--child` runs: each test binary lists its children. */
typedef struct hh_child_entry {
  const char *name;
  int (*fn)(const char *arg);
} hh_child_entry;

/* Call first in main: when argv asks for a child, runs it and exits. */
void hh_child_dispatch(int argc, char **argv, const hh_child_entry *table);

/* ------------------------------------------------------------ text */

/* Case-insensitive substring test. */
bool hh_contains(const char *haystack, const char *needle);

/* The significant hex digits of a pointer ("7f12ab340010"), as any
 * reasonable message prints it after its "0x" and leading zeros. */
const char *hh_ptr_hex(const void *p, char buf[32]);

/* ------------------------------------------------------------ patterns */

/* A block's pattern depends on its address, its size and a seed, so a block
 * that is handed out twice, or overwritten by a neighbour, shows it. Blocks
 * up to HH_FULL_FILL bytes are filled whole; bigger ones at their first and
 * last 256 bytes and at 64 bytes of every 16 KiB (fewer page faults). */
#define HH_FULL_FILL ((size_t)16384)

uint64_t hh_mix(uint64_t x);
uint64_t hh_block_hash(const void *p, size_t size, uint64_t seed);
void hh_fill(void *p, size_t size, uint64_t hash);
/* Checks the first `prefix` bytes of a block of `size` bytes that was filled
 * with hh_fill(p, size, hash). Returns the offset of the first bad byte, or
 * SIZE_MAX when all are right. */
size_t hh_check(const void *p, size_t size, size_t prefix, uint64_t hash);
/* Checks the positions hh_fill would have written are zero. */
bool hh_check_zero_sampled(const void *p, size_t size);
/* Checks every byte is zero. */
bool hh_all_zero(const void *p, size_t size);
/* Checks every byte equals c. */
bool hh_all_equal(const void *p, size_t size, unsigned char c);

/* xorshift, one state per thread */
static inline uint64_t hh_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* ------------------------------------------------------------ /proc */

/* A field of /proc/self/status in kB ("VmRSS", "VmSize"), -1 if missing. */
long hh_status_kb(const char *field);
/* The same from another file of that form: /proc/self/smaps_rollup gives
 * the exact RSS (status's VmRSS is kept per CPU and may lag by 100s of KiB). */
long hh_proc_kb(const char *path, const char *field);

#define MiB ((size_t)1 << 20)
#define KiB ((size_t)1 << 10)

#endif
