/* diag.c — formatting of error messages (see diag.h). */
#include "core/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool diag_at(struct diag *d, const char *file, long line, const char *field, const char *fmt, ...) {
  if (!d) return false;
  size_t n = 0;
  if (line > 0)
    n = (size_t)snprintf(d->msg, sizeof d->msg, "%s:%ld: ", file ? file : "<input>", line);
  else
    n = (size_t)snprintf(d->msg, sizeof d->msg, "%s: ", file ? file : "<input>");
  if (n < sizeof d->msg && field)
    n += (size_t)snprintf(d->msg + n, sizeof d->msg - n, "%s: ", field);
  if (n < sizeof d->msg) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg + n, sizeof d->msg - n, fmt, ap);
    va_end(ap);
  }
  return false;
}

bool diag_set(struct diag *d, const char *fmt, ...) {
  if (!d) return false;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->msg, sizeof d->msg, fmt, ap);
  va_end(ap);
  return false;
}
