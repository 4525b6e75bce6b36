/* plan.c — base config, point grid, columns, fingerprint (see plan.h). */
#include "sweep/plan.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "config/config.h"
#include "sweep/csv.h"
#include "sweep/quantity.h"
#include "sweep/row.h"

void sweep_strings_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

void sweep_plan_free(struct sweep_plan *p) {
  if (!p) return;
  sweep_spec_free(p->spec);
  sweep_strings_free(p->columns, p->n_columns);
  free(p);
}

/* ------------------------------------------------------------ grid */

void sweep_plan_point(const struct sweep_plan *p, uint64_t index, struct sweep_point *pt) {
  const struct sweep_spec *s = p->spec;
  uint64_t n_seeds = s->n_seeds ? s->n_seeds : 1;
  pt->index = index;
  pt->rep = (uint32_t)(index % s->repetitions) + 1;
  uint64_t t = index / s->repetitions;
  pt->seed = s->n_seeds ? s->seeds[t % n_seeds] : p->base_seed;
  pt->combo = t / n_seeds;
}

const char *sweep_plan_value(const struct sweep_plan *p, uint64_t combo, size_t dim,
                             size_t param) {
  const struct sweep_spec *s = p->spec;
  /* Mixed radix with the first dimension most significant. */
  uint64_t below = 1;
  for (size_t d = dim + 1; d < s->n_dims; d++) below *= s->dims[d].n_values;
  size_t i = (size_t)((combo / below) % s->dims[dim].n_values);
  return s->dims[dim].params[param].values[i];
}

static char *join_override(const char *path, const char *value) {
  size_t n = strlen(path) + strlen(value) + 2;
  char *o = malloc(n);
  if (o) snprintf(o, n, "%s=%s", path, value);
  return o;
}

bool sweep_plan_overrides(const struct sweep_plan *p, uint64_t combo, char ***out, size_t *n) {
  const struct sweep_spec *s = p->spec;
  size_t total = s->n_sets + 2;
  for (size_t d = 0; d < s->n_dims; d++) total += s->dims[d].n_params;
  char **v = calloc(total, sizeof *v);
  size_t k = 0;
  bool ok = v != NULL;
  for (size_t i = 0; ok && i < s->n_sets; i++)
    ok = (v[k++] = join_override(s->sets[i].path, s->sets[i].value)) != NULL;
  for (size_t d = 0; ok && d < s->n_dims; d++)
    for (size_t i = 0; ok && i < s->dims[d].n_params; i++)
      ok = (v[k++] = join_override(s->dims[d].params[i].path, sweep_plan_value(p, combo, d, i))) !=
           NULL;
  if (ok && p->window_override[0]) ok = (v[k++] = strdup(p->window_override)) != NULL;
  if (ok && p->measure_override[0]) ok = (v[k++] = strdup(p->measure_override)) != NULL;
  if (!ok) {
    if (v) sweep_strings_free(v, k);
    return false;
  }
  *out = v;
  *n = k;
  return true;
}

/* ------------------------------------------------------------ shards */

bool sweep_shard_parse(const char *text, struct sweep_shard *out, char *why, size_t why_len) {
  unsigned long long k, n;
  char tail;
  if (sscanf(text, "%llu/%llu%c", &k, &n, &tail) != 2 || text[0] < '0' || text[0] > '9' ||
      !strchr(text, '/') || strchr(text, '/')[1] < '0' || strchr(text, '/')[1] > '9') {
    snprintf(why, why_len, "'%s' is not K/N (e.g. 0/4: the first of four shards)", text);
    return false;
  }
  if (n == 0 || k >= n) {
    snprintf(why, why_len, "'%s': K must be in 0..N-1 and N at least 1", text);
    return false;
  }
  out->k = k;
  out->n = n;
  return true;
}

uint64_t sweep_shard_size(const struct sweep_shard *s, uint64_t n_points) {
  return n_points > s->k ? (n_points - s->k + s->n - 1) / s->n : 0;
}

uint64_t sweep_shard_point(const struct sweep_shard *s, uint64_t i) { return s->k + i * s->n; }

/* ------------------------------------------------------------ columns */

static bool add_column(struct sweep_plan *p, const char *name, size_t *cap) {
  for (size_t i = 0; i < p->n_columns; i++)
    if (!strcmp(p->columns[i], name)) return false;
  if (p->n_columns == *cap) {
    *cap = *cap ? *cap * 2 : 32;
    char **nv = realloc(p->columns, *cap * sizeof *nv);
    if (!nv) return false;
    p->columns = nv;
  }
  char *c = strdup(name);
  if (!c) return false;
  p->columns[p->n_columns++] = c;
  return true;
}

static bool build_columns(struct sweep_plan *p, struct diag *err) {
  const struct sweep_spec *s = p->spec;
  size_t cap = 0;
  bool ok = add_column(p, "point", &cap);
  for (size_t d = 0; ok && d < s->n_dims; d++)
    for (size_t i = 0; ok && i < s->dims[d].n_params; i++) {
      ok = add_column(p, s->dims[d].params[i].path, &cap);
      p->n_param_columns++;
    }
  ok = ok && add_column(p, "seed", &cap) && add_column(p, "rep", &cap);
  p->first_metric = p->n_columns;
  ok = ok && add_column(p, "outcome", &cap);
  for (size_t i = 0; ok && i < s->n_metrics; i++) {
    if (!add_column(p, s->metrics[i], &cap))
      return diag_at(err, s->path, 0, "metrics",
                     "metric '%s' has the name of another column", s->metrics[i]);
  }
  static const char *const prov[SWEEP_PROVENANCE_COLUMNS] = {
      "apfsim_version", "guest_image_sha256", "trace_sha256", "sweep", "sweep_points"};
  for (size_t i = 0; ok && i < SWEEP_PROVENANCE_COLUMNS; i++) ok = add_column(p, prov[i], &cap);
  if (!ok) return diag_set(err, "%s: out of memory", s->path);
  return true;
}

/* ------------------------------------------------------------ fingerprint */

struct text {
  char *s;
  size_t len, cap;
  bool oom;
};

__attribute__((format(printf, 2, 3))) static void addf(struct text *t, const char *fmt, ...) {
  if (t->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->oom = true;
      return;
    }
    if (t->s && t->len + (size_t)n < t->cap) {
      t->len += (size_t)n;
      return;
    }
    size_t nc = t->cap ? t->cap : 4096;
    while (nc <= t->len + (size_t)n) nc *= 2;
    char *ns = realloc(t->s, nc);
    if (!ns) {
      t->oom = true;
      return;
    }
    t->s = ns;
    t->cap = nc;
  }
}

/* Strings go in with their length so that no value can fake a separator. */
static void add_str(struct text *t, const char *tag, const char *v) {
  addf(t, "%s %zu:%s\n", tag, strlen(v), v);
}

static bool compute_fingerprint(struct sweep_plan *p, const char *base_xml, struct diag *err) {
  const struct sweep_spec *s = p->spec;
  struct text t = {0};
  addf(&t, "apfsim-sweep 1\n");
  add_str(&t, "base-config", base_xml);
  for (size_t i = 0; i < s->n_sets; i++) {
    add_str(&t, "set", s->sets[i].path);
    add_str(&t, "to", s->sets[i].value);
  }
  for (size_t d = 0; d < s->n_dims; d++) {
    addf(&t, "dim %zu\n", s->dims[d].n_values);
    for (size_t i = 0; i < s->dims[d].n_params; i++) {
      add_str(&t, "param", s->dims[d].params[i].path);
      for (size_t v = 0; v < s->dims[d].n_values; v++)
        add_str(&t, "value", s->dims[d].params[i].values[v]);
    }
  }
  if (s->n_seeds)
    for (size_t i = 0; i < s->n_seeds; i++) addf(&t, "seed %" PRIu64 "\n", s->seeds[i]);
  else
    addf(&t, "base-seed %" PRIu64 "\n", p->base_seed);
  addf(&t, "repetitions %" PRIu32 "\n", s->repetitions);
  if (s->has_window)
    addf(&t, "window %" PRIu64 " %" PRIu64 "\n", s->warm_up_ns, s->measure_ns);
  for (size_t i = 0; i < s->n_metrics; i++) add_str(&t, "metric", s->metrics[i]);
  if (t.oom) {
    free(t.s);
    return diag_set(err, "%s: out of memory", s->path);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  bool ok = EVP_Digest(t.s, t.len, md, &md_len, EVP_sha256(), NULL) == 1 && md_len >= 8;
  free(t.s);
  if (!ok) return diag_set(err, "%s: SHA-256 failed", s->path);
  for (int i = 0; i < 8; i++) snprintf(p->fingerprint + 2 * i, 3, "%02x", md[i]);
  return true;
}

/* ------------------------------------------------------------ open */

bool sweep_plan_from_spec(struct sweep_spec *spec, struct sweep_plan **out, struct diag *err) {
  *out = NULL;
  struct sweep_plan *p = calloc(1, sizeof *p);
  struct sim_config *base = config_new();
  if (!p || !base) {
    free(p);
    free(base);
    sweep_spec_free(spec);
    return diag_set(err, "out of memory");
  }
  p->spec = spec;
  struct diag cerr = {{0}};
  bool ok = config_load(spec->base_path, NULL, 0, NULL, base, &cerr);
  if (!ok)
    diag_at(err, spec->path, spec->base_line, "base", "base config '%s' cannot be used: %s",
            spec->base, cerr.msg);
  char *xml = NULL;
  if (ok) {
    p->base_seed = base->seed;
    p->n_points = sweep_spec_points(spec);
    p->n_combos = p->n_points / spec->repetitions / (spec->n_seeds ? spec->n_seeds : 1);
    if (spec->has_window) {
      struct quantity q = {.family = QUANTITY_DURATION,
                           .milli = (spec->warm_up_ns + spec->measure_ns) * 1000};
      char d[64];
      quantity_format(&q, d, sizeof d);
      snprintf(p->window_override, sizeof p->window_override, "limits/max-sim-time=%s", d);
      if (spec->warm_up_ns) {
        q.milli = spec->warm_up_ns * 1000;
        quantity_format(&q, d, sizeof d);
        snprintf(p->measure_override, sizeof p->measure_override, "limits/measure-from=%s", d);
      }
    }
    xml = config_to_xml(base);
    ok = xml ? build_columns(p, err) && compute_fingerprint(p, xml, err)
             : diag_set(err, "out of memory");
  }
  free(xml);
  free(base);
  if (!ok) {
    sweep_plan_free(p);
    return false;
  }
  *out = p;
  return true;
}

bool sweep_plan_open(const char *sweep_path, struct sweep_plan **out, struct diag *err) {
  struct sweep_spec *spec;
  *out = NULL;
  if (!sweep_spec_load(sweep_path, &spec, err)) return false;
  return sweep_plan_from_spec(spec, out, err);
}

/* ------------------------------------------------------------ checking */

/* The parameter or <set> a config message blames ("... --set PATH: ...");
 * set_field is storage for a "set[k]" name. */
static void blame(const struct sweep_plan *p, const char *msg, long *line, const char **field,
                  char *set_field, size_t set_field_len) {
  const struct sweep_spec *s = p->spec;
  *line = s->base_line;
  *field = "base";
  const char *at = strstr(msg, "--set ");
  if (!at) return;
  at += 6;
  size_t len = strcspn(at, ":");
  for (size_t d = 0; d < s->n_dims; d++)
    for (size_t i = 0; i < s->dims[d].n_params; i++)
      if (strlen(s->dims[d].params[i].path) == len &&
          !strncmp(s->dims[d].params[i].path, at, len)) {
        *line = s->dims[d].params[i].line;
        *field = s->dims[d].params[i].field;
        return;
      }
  for (size_t i = 0; i < s->n_sets; i++)
    if (strlen(s->sets[i].path) == len && !strncmp(s->sets[i].path, at, len)) {
      *line = s->sets[i].line;
      snprintf(set_field, set_field_len, "set[%zu]", i + 1);
      *field = set_field;
      return;
    }
  if (s->has_window && (!strncmp(at, "limits/max-sim-time", len) || !strncmp(at, "limits/measure-from", len))) {
    *line = s->window_line;
    *field = "window";
  }
}

bool sweep_plan_check_points(const struct sweep_plan *p, struct diag *err) {
  const struct sweep_spec *s = p->spec;
  struct sim_config *cfg = config_new();
  if (!cfg) return diag_set(err, "out of memory");
  bool ok = true;
  for (uint64_t combo = 0; ok && combo < p->n_combos; combo++) {
    char **ov;
    size_t n;
    if (!sweep_plan_overrides(p, combo, &ov, &n)) {
      ok = diag_set(err, "out of memory");
      break;
    }
    struct diag cerr = {{0}};
    if (!config_load(s->base_path, (const char *const *)ov, n, NULL, cfg, &cerr)) {
      /* Name the point by its parameters, so the bad value is visible. */
      char desc[512] = "";
      size_t used = 0;
      for (size_t d = 0; d < s->n_dims && used < sizeof desc; d++)
        for (size_t i = 0; i < s->dims[d].n_params && used < sizeof desc; i++)
          used += (size_t)snprintf(desc + used, sizeof desc - used, "%s%s=%s", used ? ", " : "",
                                   s->dims[d].params[i].path, sweep_plan_value(p, combo, d, i));
      long line;
      const char *field;
      char set_field[32];
      blame(p, cerr.msg, &line, &field, set_field, sizeof set_field);
      uint64_t first = combo * (s->n_seeds ? s->n_seeds : 1) * s->repetitions;
      ok = diag_at(err, s->path, line, field, "point %" PRIu64 "%s%s%s: %s", first,
                   desc[0] ? " (" : "", desc, desc[0] ? ")" : "", cerr.msg);
    }
    sweep_strings_free(ov, n);
  }
  free(cfg);
  return ok;
}
