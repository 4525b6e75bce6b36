/* usyscall.h — system-call stubs for user code (ABI: apfsim_uapi.h). */
#ifndef GUEST_USYSCALL_H
#define GUEST_USYSCALL_H

#include "apfsim_uapi.h"

static inline long usys0(long nr) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr) : "memory");
  return r;
}

static inline long usys1(long nr, long a) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "D"(a) : "memory");
  return r;
}

static inline long usys3(long nr, long a, long b, long c) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "memory");
  return r;
}

#endif
