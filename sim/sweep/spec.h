/* spec.h — a sweep file (configs/sweep.xsd; docs/sweeps.md) as loaded: the
 * base config, fixed overrides, the dimensions (a parameter, or a zipped
 * group of parameters varying together) with every value already expanded,
 * seeds, repetitions, the simulated-time window and the metric columns.
 *
 * Loading validates against the embedded schema, then checks what a schema
 * cannot (range arithmetic, zip lengths, duplicate paths, limits); the first
 * problem comes back as "FILE:LINE: field: problem", where field is the path
 * of the element or attribute in the sweep file ("param[2]/log/@per-decade").
 *
 * Not for: the base config (plan.h loads and checks it with each point's
 * overrides) or running anything. */
#ifndef APFSIM_SWEEP_SPEC_H
#define APFSIM_SWEEP_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"

#define SWEEP_MAX_FILE_BYTES (1024u * 1024u)
#define SWEEP_MAX_POINTS 10000000ull
#define SWEEP_MAX_REPETITIONS 1000u
#define SWEEP_MAX_SEEDS 100000u
#define SWEEP_MAX_SEED ((uint64_t)INT64_MAX) /* the config's bound (docs/config.md) */

/* One config value that varies: its --set path and its values, as passed to
 * `apfsim run --set PATH=VALUE`. */
struct sweep_param {
  char *path;
  char **values;
  size_t n_values;
  long line;   /* of the <param> element */
  char *field; /* "param[1]" or "zip[2]/param[1]", for messages */
};

/* A dimension of the point grid: one parameter, or a zip of several with the
 * same number of values (value i of each goes together). */
struct sweep_dim {
  struct sweep_param *params;
  size_t n_params;
  size_t n_values;
};

struct sweep_set {
  char *path, *value;
  long line;
};

struct sweep_spec {
  char *path;       /* the sweep file as given */
  char *base;       /* <base> as written */
  char *base_path;  /* resolved against the sweep file's directory */
  long base_line;
  struct sweep_set *sets;
  size_t n_sets;
  struct sweep_dim *dims;
  size_t n_dims;
  uint64_t *seeds; /* empty when <seeds> is absent: the base config's seed is used */
  size_t n_seeds;
  uint32_t repetitions;
  bool has_window;
  uint64_t warm_up_ns, measure_ns;
  long window_line;
  char **metrics; /* the metric columns; the defaults (row.h) when <metrics> is absent */
  size_t n_metrics;
};

/* Loads and checks `path`. *out is malloc'd; free with sweep_spec_free. */
bool sweep_spec_load(const char *path, struct sweep_spec **out, struct diag *err);

/* Same from a buffer; `name` stands for the file in messages and for
 * resolving <base>. */
bool sweep_spec_load_buffer(const char *name, const char *xml, size_t len,
                            struct sweep_spec **out, struct diag *err);

void sweep_spec_free(struct sweep_spec *s);

/* Points in the grid: product of dimension sizes x seeds x repetitions
 * (seeds counted as 1 when absent). */
uint64_t sweep_spec_points(const struct sweep_spec *s);

/* configs/sweep.xsd, embedded at build time. */
extern const char sweep_schema_xsd[];

#endif
