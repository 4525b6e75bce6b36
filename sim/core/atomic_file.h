/* atomic_file.h — an output file that appears whole or not at all.
 *
 * Bytes go to a temporary file beside the target (same directory, so the
 * final rename is atomic and never a cross-device copy); commit fsyncs and
 * renames it into place; abort, or any failure, removes it. A run that dies
 * half-way leaves nothing under the requested name (DESIGN.md §4). The
 * temporary file is created exclusively with mode 0666 & ~umask, as any file
 * the user creates (mkstemp would force 0600 onto the result).
 *
 * Not for: files read back while being written, or appending to a file that
 * must survive a crash line by line (a sweep CSV resumes differently). */
#ifndef APFSIM_ATOMIC_FILE_H
#define APFSIM_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/diag.h"

struct atomic_file {
  FILE *f;        /* write here */
  char *path;     /* the target */
  char *tmp_path; /* NULL once committed or aborted */
};

/* `what` names the content in messages ("trace", "summary"). */
bool atomic_file_open(struct atomic_file *af, const char *path, const char *what, struct diag *d);

/* Flushes, fsyncs, closes and renames onto the target. On failure the
 * temporary file is removed. Either way the struct is released. */
bool atomic_file_commit(struct atomic_file *af, const char *what, struct diag *d);

/* Removes the temporary file and releases the struct. Safe on a zeroed or
 * already released struct. */
void atomic_file_abort(struct atomic_file *af);

/* open + write `len` bytes + commit. */
bool atomic_file_write_all(const char *path, const void *data, size_t len, const char *what,
                           struct diag *d);

#endif
