/* diag.h — an error message returned up the call chain instead of printed deep
 * inside a module. Every bad-input message has the form
 *   FILE:LINE: field: problem
 * so a researcher can jump to it. Not for: logging or progress output. */
#ifndef APFSIM_DIAG_H
#define APFSIM_DIAG_H

#include <stdbool.h>

#define DIAG_MAX 1024

struct diag {
  char msg[DIAG_MAX];
};

/* "file:line: field: problem". line <= 0 omits the line; field NULL omits it.
 * Always returns false so callers can `return diag_at(...)`. */
bool diag_at(struct diag *d, const char *file, long line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Free-form message (internal errors, I/O). Returns false. */
bool diag_set(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
