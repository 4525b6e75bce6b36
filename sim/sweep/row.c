/* row.c — summary JSON -> CSV row (see row.h). */
#include "sweep/row.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* What a researcher comparing runs wants without asking (docs/sweeps.md):
 * simulated time and work, throughput (over the whole run, and over the
 * measurement window: after the sweep's warm-up), every APF and race counter, vCPU
 * halted and blocked time (all vCPUs), the worst vCPU's synchronous-fault
 * latency percentiles, the swap device's request latencies and percentiles,
 * and host time last (the one column that differs between identical runs).
 * Keys a summary lacks give empty cells (the smoke scenario has no vCPUs). */
static const char *const default_metrics[] = {
    "sim_time_ns",
    "guest_instructions",
    "workload/ops",
    "workload/ops_per_sec",
    "window/ops",
    "window/ops_per_sec",
    "apf/not_present",
    "apf/page_ready",
    "apf/sync_faults",
    "apf/synthetic_halts",
    "apf/wake_all",
    "apf/dummy_nodes",
    "apf/outstanding",
    "race/nmi_injected",
    "race/cr2_clobbered",
    "race/lost_tokens",
    "vcpus/halted_ns",
    "vcpu_time/blocked_ns",
    "max:vcpu_time/sync_fault_p50_ns",
    "max:vcpu_time/sync_fault_p99_ns",
    "storage/requests",
    "storage/completed",
    "storage/mean_latency_ns",
    "storage/max_latency_ns",
    "swap_device/p50_latency_ns",
    "swap_device/p99_latency_ns",
    "host_seconds",
};

const char *const *sweep_default_metrics(size_t *n) {
  *n = sizeof default_metrics / sizeof default_metrics[0];
  return default_metrics;
}

/* ------------------------------------------------------------ metric values */

enum num_kind { NUM_NONE, NUM_INT, NUM_REAL };

struct num {
  enum num_kind kind;
  json_int_t i;
  double r;
};

enum agg { AGG_SUM, AGG_MAX, AGG_MIN, AGG_MEAN };

static double as_real(struct num x) { return x.kind == NUM_REAL ? x.r : (double)x.i; }

/* Combines an array's entries: integers stay integers except for a mean. */
static struct num combine(struct num acc, struct num x, enum agg how, bool first) {
  if (first) return x;
  if (acc.kind == NUM_INT && x.kind == NUM_INT) {
    switch (how) {
      case AGG_MAX: return x.i > acc.i ? x : acc;
      case AGG_MIN: return x.i < acc.i ? x : acc;
      default:
        if (__builtin_add_overflow(acc.i, x.i, &acc.i)) return (struct num){NUM_NONE, 0, 0};
        return acc;
    }
  }
  double a = as_real(acc), b = as_real(x);
  double r = how == AGG_MAX ? (b > a ? b : a) : how == AGG_MIN ? (b < a ? b : a) : a + b;
  return (struct num){NUM_REAL, 0, r};
}

/* Resolves `path` (slash-separated) below `v` as a number; a step through
 * an array that is not an index combines the entries' values `how`. */
static struct num resolve_number(const json_t *v, const char *path, enum agg how) {
  struct num none = {NUM_NONE, 0, 0};
  while (*path) {
    size_t len = strcspn(path, "/");
    char step[128];
    if (len >= sizeof step) return none;
    memcpy(step, path, len);
    step[len] = '\0';
    const char *rest = path[len] ? path + len + 1 : path + len;
    if (json_is_object(v)) {
      v = json_object_get(v, step);
      if (!v) return none;
    } else if (json_is_array(v)) {
      char *end;
      unsigned long idx = strtoul(step, &end, 10);
      if (step[0] >= '0' && step[0] <= '9' && !*end) {
        v = json_array_get(v, idx);
        if (!v) return none;
      } else {
        struct num acc = {NUM_INT, 0, 0};
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
          struct num x = resolve_number(e, path, how);
          if (x.kind == NUM_NONE) return none;
          acc = combine(acc, x, how, i == 0);
          if (acc.kind == NUM_NONE) return none;
        }
        size_t n = json_array_size(v);
        if (n == 0) return how == AGG_SUM ? (struct num){NUM_INT, 0, 0} : none;
        if (how == AGG_MEAN) return (struct num){NUM_REAL, 0, as_real(acc) / (double)n};
        return acc;
      }
    } else {
      return none;
    }
    path = rest;
  }
  if (json_is_integer(v)) return (struct num){NUM_INT, json_integer_value(v), 0};
  if (json_is_real(v)) return (struct num){NUM_REAL, 0, json_real_value(v)};
  return none;
}

/* The shortest "%.Ng" that reads back as the same double: the same bits
 * always give the same text. */
static void format_real(double r, char *buf, size_t len) {
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, len, "%.*g", prec, r);
    if (strtod(buf, NULL) == r) return;
  }
}

/* A cell: a number, a string or boolean verbatim, or "" when absent. A
 * "max:", "min:", "mean:" or "sum:" prefix says how entries of arrays on the
 * path combine (sum without one). */
static void metric_cell(const json_t *root, const char *metric, char *buf, size_t len) {
  buf[0] = '\0';
  static const struct {
    const char *prefix;
    enum agg how;
  } aggs[] = {{"sum:", AGG_SUM}, {"max:", AGG_MAX}, {"min:", AGG_MIN}, {"mean:", AGG_MEAN}};
  enum agg how = AGG_SUM;
  const char *path = metric;
  for (size_t i = 0; i < sizeof aggs / sizeof aggs[0]; i++)
    if (!strncmp(metric, aggs[i].prefix, strlen(aggs[i].prefix))) {
      how = aggs[i].how;
      path = metric + strlen(aggs[i].prefix);
    }
  /* Strings and booleans only directly (no sums). */
  const json_t *v = root;
  char copy[256];
  snprintf(copy, sizeof copy, "%s", path);
  for (char *save = NULL, *step = strtok_r(copy, "/", &save); step && v;
       step = strtok_r(NULL, "/", &save)) {
    if (json_is_object(v)) v = json_object_get(v, step);
    else if (json_is_array(v) && step[0] >= '0' && step[0] <= '9')
      v = json_array_get(v, strtoul(step, NULL, 10));
    else v = NULL;
  }
  if (v && json_is_string(v)) {
    snprintf(buf, len, "%s", json_string_value(v));
    return;
  }
  if (v && json_is_boolean(v)) {
    snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
    return;
  }
  struct num x = resolve_number(root, path, how);
  if (x.kind == NUM_INT) snprintf(buf, len, "%" JSON_INTEGER_FORMAT, x.i);
  else if (x.kind == NUM_REAL) format_real(x.r, buf, len);
}

/* ------------------------------------------------------------ rows */

static void add_point_fields(const struct sweep_plan *p, const struct sweep_point *pt,
                             struct csv_line *out) {
  char num[32];
  snprintf(num, sizeof num, "%" PRIu64, pt->index);
  csv_add(out, num);
  const struct sweep_spec *s = p->spec;
  for (size_t d = 0; d < s->n_dims; d++)
    for (size_t i = 0; i < s->dims[d].n_params; i++)
      csv_add(out, sweep_plan_value(p, pt->combo, d, i));
  snprintf(num, sizeof num, "%" PRIu64, pt->seed);
  csv_add(out, num);
  snprintf(num, sizeof num, "%" PRIu32, pt->rep);
  csv_add(out, num);
}

static void add_provenance(const struct sweep_plan *p, const char *version, const char *guest,
                           const char *trace, struct csv_line *out) {
  char num[32];
  csv_add(out, version);
  csv_add(out, guest);
  csv_add(out, trace);
  csv_add(out, p->fingerprint);
  snprintf(num, sizeof num, "%" PRIu64, p->n_points);
  csv_add(out, num);
}

bool sweep_row_from_summary(const struct sweep_plan *p, const struct sweep_point *pt,
                            const char *version, const char *json, size_t json_len,
                            struct csv_line *out, char *outcome_buf, size_t outcome_len,
                            char *why, size_t why_len) {
  json_error_t jerr;
  json_t *root = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root || !json_is_object(root)) {
    snprintf(why, why_len, "the summary is not a JSON object%s%s", root ? "" : ": ",
             root ? "" : jerr.text);
    json_decref(root);
    return false;
  }
  const json_t *outcome = json_object_get(root, "outcome");
  if (!json_is_string(outcome) || !json_string_value(outcome)[0]) {
    snprintf(why, why_len, "the summary has no outcome");
    json_decref(root);
    return false;
  }
  if (outcome_buf) snprintf(outcome_buf, outcome_len, "%s", json_string_value(outcome));
  csv_line_reset(out);
  add_point_fields(p, pt, out);
  csv_add(out, json_string_value(outcome));
  char cell[512];
  for (size_t i = 0; i < p->spec->n_metrics; i++) {
    metric_cell(root, p->spec->metrics[i], cell, sizeof cell);
    csv_add(out, cell);
  }
  const json_t *guest = json_object_get(root, "guest_image_sha256");
  const json_t *trace = json_object_get(root, "trace_sha256");
  add_provenance(p, version, json_is_string(guest) ? json_string_value(guest) : "none",
                 json_is_string(trace) ? json_string_value(trace) : "", out);
  json_decref(root);
  if (!csv_end(out)) {
    snprintf(why, why_len, "out of memory");
    return false;
  }
  return true;
}

bool sweep_row_failed(const struct sweep_plan *p, const struct sweep_point *pt,
                      const char *version, const char *outcome, struct csv_line *out) {
  csv_line_reset(out);
  add_point_fields(p, pt, out);
  csv_add(out, outcome);
  for (size_t i = 0; i < p->spec->n_metrics; i++) csv_add(out, "");
  add_provenance(p, version, "none", "", out);
  return csv_end(out);
}

bool sweep_row_header(const struct sweep_plan *p, struct csv_line *out) {
  csv_line_reset(out);
  for (size_t i = 0; i < p->n_columns; i++) csv_add(out, p->columns[i]);
  return csv_end(out);
}
