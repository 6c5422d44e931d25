/*
 * The number of the system call a `syscall` instruction makes, read from
 * the x86-64 code before it (stop.c's settle_call, which makes a call the
 * stop signal ended again). Header-only, so that tests/safety/decode.py
 * can check it against every `syscall` site of the machine's glibc.
 */
#ifndef HH_SYSCALL_NUMBER_H
#define HH_SYSCALL_NUMBER_H

#include <stdbool.h>
#include <stdint.h>

/* The length of the instruction at `p` (ending by `end`) when it is one of
 * those a compiler puts between loading a call's number into eax and
 * `syscall`: a move or xor between registers, a load from or store to
 * memory at a base register and a displacement, a move of an immediate
 * into a register other than eax. 0 for anything else, and for whatever
 * writes rax. */
static inline int benign_length(const uint8_t *p, const uint8_t *end) {
  int n = 0, rex = 0;
  if ((p[0] & 0xf0) == 0x40) rex = p[n++];
  if (p + n >= end) return 0;
  uint8_t op = p[n++];
  if (op >= 0xb8 && op <= 0xbf) { /* mov $imm32, r32 */
    if ((rex & 8) || (op == 0xb8 && !(rex & 1))) return 0;
    n += 4;
    return p + n <= end ? n : 0;
  }
  if ((op != 0x89 && op != 0x8b && op != 0x31 && op != 0x33) || p + n >= end) return 0;
  uint8_t modrm = p[n++];
  int mod = modrm >> 6, reg = ((modrm >> 3) & 7) | ((rex & 4) << 1), rm = (modrm & 7) | ((rex & 1) << 3);
  bool to_reg = op == 0x8b || op == 0x33;
  if (mod == 3) {
    if ((to_reg ? reg : rm) == 0) return 0;
  } else {
    if ((to_reg && reg == 0) || op == 0x31 || op == 0x33) return 0;
    if (mod == 0 && (modrm & 7) == 5) return 0; /* rip-relative */
    if ((modrm & 7) == 4) {                     /* a SIB byte */
      if (p + n >= end || (mod == 0 && (p[n] & 7) == 5)) return 0;
      n++;
    }
    n += mod == 1 ? 1 : mod == 2 ? 4 : 0;
  }
  return p + n <= end ? n : 0;
}

/* The number of the call made by the `syscall` instruction at `sys`, when
 * the code before it says: `mov $nr, %eax` (or `xor %eax, %eax` for 0),
 * then at most three benign instructions (glibc's wrappers: the number,
 * then the arguments, then the call). -1 when it does not say, and when
 * the byte before the candidate is a REX prefix (`41 b8` moves into r8d:
 * libsanitizer's wrappers have it). `sys` has CODE_BEFORE bytes before it.
 * Only glibc's own wrappers are read (libc_text): a `syscall` that other
 * code reaches by a jump, from paths that load other numbers (tail merging
 * at -Os), would be read for the wrong call. */
#define CODE_BEFORE 24
static inline long call_number_before(const uint8_t *sys) {
  for (int back = 2; back < CODE_BEFORE; back++) {
    const uint8_t *s = sys - back, *q;
    long nr;
    if ((s[-1] & 0xf0) == 0x40) continue;
    if (s[0] == 0xb8 && back >= 5) {
      nr = (long)((uint32_t)s[1] | (uint32_t)s[2] << 8 | (uint32_t)s[3] << 16 | (uint32_t)s[4] << 24);
      q = s + 5;
    } else if ((s[0] == 0x31 || s[0] == 0x33) && s[1] == 0xc0) {
      nr = 0;
      q = s + 2;
    } else {
      continue;
    }
    for (int k = 0; q < sys && k < 3; k++) {
      int n = benign_length(q, sys);
      if (n == 0) break;
      q += n;
    }
    if (q == sys) return nr;
  }
  return -1;
}

#endif
