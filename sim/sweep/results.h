/* results.h — the results CSV of a running sweep: created with its header,
 * appended one complete row at a time, resumed from what an interrupted run
 * left.
 *
 * Rows are kept in the point order of the sweep (or shard): the runner
 * writes a finished row only once every earlier row is written. So the file
 * is always a prefix of the final CSV, and resuming needs only to count the
 * complete rows — after checking that they are that prefix (same header,
 * same fingerprint, consecutive point ids). Each row is written with one
 * write(2) and fsync'd before the next, so a crash leaves at most one
 * incomplete last line; resuming drops it (and says so) and runs its point
 * again. The file is locked (flock) while a sweep writes it.
 *
 * Not for: merging shard files (merge.h). */
#ifndef APFSIM_SWEEP_RESULTS_H
#define APFSIM_SWEEP_RESULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "sweep/csv.h"
#include "sweep/plan.h"

struct sweep_results {
  int fd; /* append-only, locked */
  char *path;
  uint64_t n_done; /* rows already in the file when it was opened */
};

/* Opens `path` for the plan and shard. Without `resume` the file must not
 * exist; it is created holding just the header (atomically). With `resume`
 * an existing file is checked (sweep_results_check) and an incomplete last
 * line cut off; a missing one is created. `note` receives a sentence for the
 * user when something was repaired ("" otherwise). */
bool sweep_results_open(const char *path, const struct sweep_plan *p,
                        const struct sweep_shard *shard, bool resume, struct sweep_results *r,
                        char *note, size_t note_len, struct diag *err);

/* Appends one '\n'-terminated row with a single write(2), then fsync. */
bool sweep_results_append(struct sweep_results *r, const char *row, size_t len,
                          struct diag *err);

void sweep_results_close(struct sweep_results *r);

/* Checks that the complete lines of `f` are the header of `p` and then rows
 * for the first points of the shard, in order; *n_rows gets their number.
 * Messages name `path` and the line. */
bool sweep_results_check(const struct csv_file *f, const char *path, const struct sweep_plan *p,
                         const struct sweep_shard *shard, uint64_t *n_rows, struct diag *err);

#endif
