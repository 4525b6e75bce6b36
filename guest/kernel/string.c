/* string.c — the freestanding C library functions the kernel (and gcc's code generation)
 * needs. memset/memcpy use the `rep` string forms, as Linux's ERMS variants do: one
 * instruction for the emulator to translate instead of a loop (the vCPU still counts each
 * iteration as a retired instruction). clear_page() is Linux's clear_page_rep. */
#include "kernel.h"

void *memset(void *d, int c, size_t n) {
  void *p = d;
  __asm__ volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(c) : "memory");
  return d;
}

void *memcpy(void *d, const void *s, size_t n) {
  void *p = d;
  __asm__ volatile("rep movsb" : "+D"(p), "+S"(s), "+c"(n)::"memory");
  return d;
}

void clear_page(void *page) {
  size_t n = 4096 / 8;
  __asm__ volatile("rep stosq" : "+D"(page), "+c"(n) : "a"(0) : "memory");
}

void *memmove(void *d, const void *s, size_t n) {
  unsigned char *dp = d;
  const unsigned char *sp = s;
  if (dp < sp) {
    while (n--) *dp++ = *sp++;
  } else {
    while (n--) dp[n] = sp[n];
  }
  return d;
}

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y) return *x - *y;
  return 0;
}

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}
