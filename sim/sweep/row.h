/* row.h — one CSV row of sweep results: which metric columns exist by
 * default, and how a run's JSON summary (or its failure) becomes a row.
 *
 * Row layout (docs/sweeps.md): point, the parameters, seed, rep, outcome,
 * the metrics, then provenance: apfsim_version, guest_image_sha256,
 * trace_sha256, sweep (fingerprint), sweep_points (points in the sweep).
 *
 * A metric is a path into the summary ("storage/mean_latency_ns"); a step
 * through an array is an index ("vcpus/1/halted_ns") or, when left out, the
 * entries combined: summed ("vcpus/halted_ns" = all vCPUs), or by a "max:",
 * "min:" or "mean:" prefix ("max:vcpu_time/sync_fault_p99_ns" = the worst
 * vCPU). A metric the summary does not have is an empty cell, so a sweep can
 * name keys a later summary will gain. Integers are written exactly (a mean
 * is a real); reals in the shortest form that reads back to the same double.
 *
 * Outcomes besides the summary's own: `crashed` (the run died of a signal,
 * exited with an internal error, or printed no usable summary) and
 * `host_timeout` (killed after --run-timeout seconds of host time). Both
 * leave the metric cells empty.
 *
 * Not for: reading rows back (results.h, merge.h). */
#ifndef APFSIM_SWEEP_ROW_H
#define APFSIM_SWEEP_ROW_H

#include <stdbool.h>
#include <stddef.h>

#include "sweep/csv.h"
#include "sweep/plan.h"

#define SWEEP_OUTCOME_CRASHED "crashed"
#define SWEEP_OUTCOME_HOST_TIMEOUT "host_timeout"

/* Number of provenance columns at the end of a row. */
#define SWEEP_PROVENANCE_COLUMNS 5

/* The metric columns of a sweep without <metrics>. */
const char *const *sweep_default_metrics(size_t *n);

/* The row of a run that printed a summary. `version` is the apfsim version
 * that ran it; `outcome` (may be NULL) receives the run's outcome. False
 * (with why) when the text is not a summary: no JSON object, or no
 * "outcome" string — the caller records the run as crashed. */
bool sweep_row_from_summary(const struct sweep_plan *p, const struct sweep_point *pt,
                            const char *version, const char *json, size_t json_len,
                            struct csv_line *out, char *outcome, size_t outcome_len, char *why,
                            size_t why_len);

/* The row of a run without a summary (outcome crashed or host_timeout). */
bool sweep_row_failed(const struct sweep_plan *p, const struct sweep_point *pt,
                      const char *version, const char *outcome, struct csv_line *out);

/* The CSV header line of the plan ('\n'-terminated). */
bool sweep_row_header(const struct sweep_plan *p, struct csv_line *out);

#endif
