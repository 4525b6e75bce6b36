/* merge.h — joins the results CSVs of a sweep's shards (`apfsim merge`)
 * into the CSV one unsharded run writes: the same header, every row once,
 * in point order, byte for byte as the shards wrote it.
 *
 * Checks: every file has the same header and every row the same sweep
 * fingerprint and point count (files of different sweeps are refused); no
 * point appears twice; no point is missing (unless allowed). Problems name
 * the files and lines, and list the points concerned (the first ten).
 *
 * Not for: files being written (merge reads a snapshot; an incomplete last
 * line is skipped and reported in the note). */
#ifndef APFSIM_SWEEP_MERGE_H
#define APFSIM_SWEEP_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/diag.h"

/* Writes `output` atomically. allow_missing turns missing points into a
 * note (for a look at partial results). `note` gets sentences for the user
 * ("" when there is nothing to say). */
bool sweep_merge(const char *const *inputs, size_t n_inputs, const char *output,
                 bool allow_missing, char *note, size_t note_len, struct diag *err);

#endif
