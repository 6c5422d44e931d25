#!/usr/bin/env bash
# Checks that what `make test` needs is installed. As root on Debian it
# installs what is missing (apt-get); otherwise it prints the command and fails.
set -u
need=()
have_header() { echo "#include <$1>" | ${CC:-cc} -E -x c - >/dev/null 2>&1; }
have_header cmocka.h 2>/dev/null || { echo '#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>' | ${CC:-cc} -E -x c - >/dev/null 2>&1 || need+=(libcmocka-dev); }
for pair in valgrind:valgrind addr2line:binutils g++:g++ python3:python3 sqlite3:sqlite3 \
            git:git perl:perl awk:gawk xz:xz-utils setpriv:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair##*:}")
done
# clang with ThreadSanitizer's runtime (tests/safety's tsan_prog)
if ! command -v clang >/dev/null 2>&1; then
  need+=(clang libclang-rt-dev)
elif ! echo 'int main(void) { return 0; }' | clang -fsanitize=thread -x c - -o /dev/null >/dev/null 2>&1; then
  need+=(libclang-rt-dev)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing what the tests need: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null && exit 0
fi
echo "make test needs: ${need[*]}" >&2
echo "install them with: sudo apt-get install -y ${need[*]}" >&2
exit 1
