/* plan.h — a sweep ready to run: the spec, its base config, the point grid,
 * the CSV columns and the sweep's fingerprint.
 *
 * Points are numbered 0..n_points-1 in a fixed order: the dimensions in file
 * order with the first one varying slowest, then the seed, then the
 * repetition (fastest). The number is the point's id in the CSV ("point"),
 * stable for a given sweep file and base config.
 *
 * The fingerprint is the first 16 hex digits of the SHA-256 of a canonical
 * text of the sweep — every expanded value, seeds, repetitions, window,
 * metrics — and of the base config's canonical form (config_to_xml), so it
 * changes when the sweep or the scenario it starts from changes, not when
 * comments, spacing or file locations do. Every CSV row carries it.
 *
 * Not for: running points (runner.h) or the results file (results.h). */
#ifndef APFSIM_SWEEP_PLAN_H
#define APFSIM_SWEEP_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "sweep/spec.h"

struct sweep_plan {
  struct sweep_spec *spec; /* owned */
  uint64_t n_points;
  uint64_t n_combos;   /* parameter combinations (points / seeds / repetitions) */
  uint64_t base_seed;  /* the base config's seed: the only seed without <seeds> */
  char fingerprint[17];
  char **columns; /* the CSV header, in order */
  size_t n_columns;
  size_t n_param_columns; /* columns 1..n_param_columns are the parameters */
  size_t first_metric;    /* index of "outcome"; the metrics follow it */
  char window_override[96]; /* "limits/max-sim-time=..." or "" */
  char measure_override[96]; /* "limits/measure-from=<warm-up>", or "" (no warm-up) */
};

/* A point of the grid. */
struct sweep_point {
  uint64_t index;
  uint64_t combo; /* which parameter combination */
  uint64_t seed;
  uint32_t rep; /* 1-based repetition */
};

/* Loads the sweep file and its base config (which must be valid on its
 * own), and computes columns and fingerprint. A missing or invalid base is
 * reported at the <base> line. */
bool sweep_plan_open(const char *sweep_path, struct sweep_plan **out, struct diag *err);

/* Builds a plan from an already loaded spec (taking ownership of it, even
 * on failure), e.g. for tests. */
bool sweep_plan_from_spec(struct sweep_spec *spec, struct sweep_plan **out, struct diag *err);

void sweep_plan_free(struct sweep_plan *p);

/* Loads the base config with every parameter combination's overrides and
 * checks it, before anything runs. The first failing combination is
 * reported as "SWEEP:LINE: FIELD: point N (path=value, ...): <config's
 * message>", at the parameter or <set> the config message names. */
bool sweep_plan_check_points(const struct sweep_plan *p, struct diag *err);

void sweep_plan_point(const struct sweep_plan *p, uint64_t index, struct sweep_point *pt);

/* The value of parameter `param` of dimension `dim` at combination `combo`. */
const char *sweep_plan_value(const struct sweep_plan *p, uint64_t combo, size_t dim, size_t param);

/* The --set overrides of a combination ("path=value": the <set>s, the
 * parameters, then the window), malloc'd; free with sweep_strings_free. */
bool sweep_plan_overrides(const struct sweep_plan *p, uint64_t combo, char ***out, size_t *n);
void sweep_strings_free(char **v, size_t n);

/* "--shard K/N": the K-th (0-based) of N slices, round robin by point
 * index: point i belongs to shard i mod N. */
struct sweep_shard {
  uint64_t k, n;
};

bool sweep_shard_parse(const char *text, struct sweep_shard *out, char *why, size_t why_len);
/* Points of the shard, and the i-th of them (in point order). */
uint64_t sweep_shard_size(const struct sweep_shard *s, uint64_t n_points);
uint64_t sweep_shard_point(const struct sweep_shard *s, uint64_t i);

#endif
