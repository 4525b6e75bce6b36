/* helpers.h — shared by the loader tests: the real kernel image as bytes, and a guest
 * memory buffer. */
#ifndef TESTS_LOADER_HELPERS_H
#define TESTS_LOADER_HELPERS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The built kernel's bytes (malloc'd; *len set), or NULL. */
static inline uint8_t *read_kernel(size_t *len) {
  FILE *f = fopen(APFSIM_GUEST_KERNEL, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = n > 0 ? malloc((size_t)n) : NULL;
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

#define GUEST_RAM (UINT64_C(64) << 20)

static inline uint8_t *new_guest_ram(uint64_t bytes) { return aligned_alloc(4096, bytes); }

#endif
