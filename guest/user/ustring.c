/* ustring.c — memset/memcpy for user code: gcc may emit calls to them, and user code must
 * not call into the kernel's (supervisor-only) copies. The build localizes these symbols in
 * the user object so the two sets never meet. */
#include <stddef.h>

void *memset(void *d, int c, size_t n) {
  unsigned char *p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}

void *memcpy(void *d, const void *s, size_t n) {
  unsigned char *dp = d;
  const unsigned char *sp = s;
  while (n--) *dp++ = *sp++;
  return d;
}
