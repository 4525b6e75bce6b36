/* report.c — builds the run summary JSON with jansson (see report.h).
 *
 * Key order is fixed (jansson keeps insertion order) so summaries diff
 * cleanly:
 *   outcome, verdict, seed, sim_time_ns, guest_instructions, host_seconds,
 *   vcpus[{vcpu, instructions, vm_exits, ept_violations, guest_page_faults,
 *          apf_not_present, apf_page_ready, sync_faults, synthetic_halts,
 *          nmis, interrupts, halted_ns}],
 *   apf{not_present, page_ready, sync_faults, synthetic_halts, wake_all,
 *       dummy_nodes, outstanding},
 *   race{nmi_injected, cr2_clobbered, lost_tokens},
 *   workload{ops, ops_per_sec},
 *   storage{requests, completed, mean_latency_ns, max_latency_ns},
 *   trace_sha256, guest_image_sha256, then extra sections. */
#include "report/report.h"

#include "core/atomic_file.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const outcome_names[OUTCOME_COUNT] = {
    [OUTCOME_OK] = "ok",
    [OUTCOME_HUNG_TASK] = "hung_task",
    [OUTCOME_HUNG_VCPU] = "hung_vcpu",
    [OUTCOME_GUEST_PANIC] = "guest_panic",
    [OUTCOME_EFAULT_EXIT] = "efault_exit",
    [OUTCOME_LIVELOCK] = "livelock",
    [OUTCOME_SIGBUS] = "sigbus",
    [OUTCOME_TRIPLE_FAULT] = "triple_fault",
    [OUTCOME_TIMEOUT] = "timeout",
};

const char *outcome_name(enum run_outcome o) {
  return (unsigned)o < OUTCOME_COUNT ? outcome_names[o] : NULL;
}

bool outcome_parse(const char *name, enum run_outcome *out) {
  if (!name) return false;
  for (unsigned i = 0; i < OUTCOME_COUNT; i++) {
    if (strcmp(name, outcome_names[i]) == 0) {
      *out = (enum run_outcome)i;
      return true;
    }
  }
  return false;
}

uint64_t report_ops_per_sec(uint64_t ops, uint64_t sim_time_ns) {
  if (sim_time_ns == 0) return 0;
  __extension__ unsigned __int128 q =
      ((unsigned __int128)ops * 1000000000u + sim_time_ns / 2) / sim_time_ns;
  return q > UINT64_MAX ? UINT64_MAX : (uint64_t)q;
}

/* Builder state: the first failure wins, later calls become no-ops, so the
 * construction code reads straight through without an error check per key. */
struct builder {
  struct diag *d;
  bool failed;
};

static bool fail(struct builder *b, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(struct builder *b, const char *field, const char *fmt, ...) {
  if (b->failed) return false;
  b->failed = true;
  if (!b->d) return false;
  int n = snprintf(b->d->msg, sizeof b->d->msg, "%s: ", field);
  if (n < 0 || (size_t)n >= sizeof b->d->msg) return false;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b->d->msg + n, sizeof b->d->msg - (size_t)n, fmt, ap);
  va_end(ap);
  return false;
}

static void put(struct builder *b, json_t *obj, const char *key, json_t *value, const char *field) {
  if (!value) {
    fail(b, field, "cannot be represented in JSON");
    return;
  }
  if (b->failed || json_object_set_new(obj, key, value) != 0) {
    if (!b->failed) fail(b, field, "out of memory");
    json_decref(value);
  }
}

/* `path` names the value in error messages, e.g. "vcpus[1].nmis". */
static void put_u64(struct builder *b, json_t *obj, const char *key, uint64_t v, const char *path) {
  if (b->failed) return;
  if (v > (uint64_t)REPORT_MAX_INTEGER) {
    fail(b, path, "%" PRIu64 " exceeds the JSON integer range (2^63-1)", v);
    return;
  }
  put(b, obj, key, json_integer((json_int_t)v), path);
}

#define PUT_FIELD(b, obj, st, prefix, name) put_u64(b, obj, #name, (st)->name, prefix #name)

static json_t *vcpu_json(struct builder *b, const struct vcpu_summary *v, size_t index) {
  json_t *o = json_object();
  if (!o) {
    fail(b, "vcpus", "out of memory");
    return NULL;
  }
  char p[64];
  snprintf(p, sizeof p, "vcpus[%zu]", index);
  char f[96];
#define VCPU_FIELD(name) (snprintf(f, sizeof f, "%s.%s", p, #name), put_u64(b, o, #name, v->name, f))
  put_u64(b, o, "vcpu", index, p);
  VCPU_FIELD(instructions);
  VCPU_FIELD(vm_exits);
  VCPU_FIELD(ept_violations);
  VCPU_FIELD(guest_page_faults);
  VCPU_FIELD(apf_not_present);
  VCPU_FIELD(apf_page_ready);
  VCPU_FIELD(sync_faults);
  VCPU_FIELD(synthetic_halts);
  VCPU_FIELD(nmis);
  VCPU_FIELD(interrupts);
  VCPU_FIELD(halted_ns);
#undef VCPU_FIELD
  return o;
}

static bool is_sha256_hex(const char *s) {
  for (int i = 0; i < 64; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  return s[64] == '\0';
}

/* A hash as 64 lowercase hex digits, or null when there is none (""). */
static void put_sha256(struct builder *b, json_t *root, const char *key, const char *hex) {
  if (hex[0] == '\0')
    put(b, root, key, json_null(), key);
  else if (!is_sha256_hex(hex))
    fail(b, key, "not 64 lowercase hex digits");
  else
    put(b, root, key, json_string(hex), key);
}

static json_t *section_row(struct builder *b, const struct report_section *sec, size_t row) {
  json_t *o = json_object();
  if (!o) {
    fail(b, sec->name, "out of memory");
    return NULL;
  }
  for (size_t k = 0; k < sec->n_keys; k++) {
    if (!sec->keys || !sec->keys[k] || !sec->keys[k][0]) {
      fail(b, sec->name, "column %zu has no name", k);
      break;
    }
    char path[160];
    if (sec->as_list)
      snprintf(path, sizeof path, "%s[%zu].%s", sec->name, row, sec->keys[k]);
    else
      snprintf(path, sizeof path, "%s.%s", sec->name, sec->keys[k]);
    if (json_object_get(o, sec->keys[k])) {
      fail(b, path, "duplicate key");
      break;
    }
    put_u64(b, o, sec->keys[k], sec->values[row * sec->n_keys + k], path);
  }
  return o;
}

static void put_section(struct builder *b, json_t *root, const struct report_section *sec) {
  if (b->failed) return;
  if (!sec->name || !sec->name[0]) {
    fail(b, "sections", "a section has no name");
    return;
  }
  if (json_object_get(root, sec->name)) {
    fail(b, sec->name, "section name is already a key of the summary");
    return;
  }
  if (sec->n_keys > 0 && sec->n_rows > 0 && !sec->values) {
    fail(b, sec->name, "no values");
    return;
  }
  if (!sec->as_list) {
    if (sec->n_rows != 1) {
      fail(b, sec->name, "an object section needs exactly 1 row, got %zu", sec->n_rows);
      return;
    }
    put(b, root, sec->name, section_row(b, sec, 0), sec->name);
    return;
  }
  json_t *arr = json_array();
  if (!arr) {
    fail(b, sec->name, "out of memory");
    return;
  }
  for (size_t r = 0; r < sec->n_rows && !b->failed; r++) {
    json_t *row = section_row(b, sec, r);
    if (!row || json_array_append_new(arr, row) != 0) fail(b, sec->name, "out of memory");
  }
  put(b, root, sec->name, arr, sec->name);
}

static json_t *summary_json(const struct run_summary *s, struct builder *b) {
  json_t *root = json_object();
  if (!root) {
    fail(b, "summary", "out of memory");
    return NULL;
  }
  const char *outcome = outcome_name(s->outcome);
  if (!outcome) fail(b, "outcome", "%d is not a run outcome", (int)s->outcome);
  put(b, root, "outcome", outcome ? json_string(outcome) : NULL, "outcome");
  if (memchr(s->verdict, '\0', sizeof s->verdict) == NULL) fail(b, "verdict", "not NUL-terminated");
  if (s->verdict[0] == '\0') fail(b, "verdict", "empty");
  /* json_string refuses invalid UTF-8: report that rather than "cannot be represented". */
  json_t *verdict = b->failed ? NULL : json_string(s->verdict);
  if (!verdict) fail(b, "verdict", "not valid UTF-8");
  put(b, root, "verdict", verdict, "verdict");
  put_u64(b, root, "seed", s->seed, "seed");
  put_u64(b, root, "sim_time_ns", s->sim_time_ns, "sim_time_ns");
  put_u64(b, root, "guest_instructions", s->guest_instructions, "guest_instructions");
  /* Milliseconds are all a wall-clock figure is good for; rounding first keeps
   * the printed number short (1.235, not 1.2345678901). */
  uint64_t host_ms = s->host_ns / 1000000u + (s->host_ns % 1000000u >= 500000u);
  put(b, root, "host_seconds", json_real((double)host_ms / 1000.0), "host_seconds");

  json_t *vcpus = json_array();
  if (!vcpus) fail(b, "vcpus", "out of memory");
  if (s->n_vcpus > 0 && !s->vcpus) fail(b, "vcpus", "count %zu but no array", s->n_vcpus);
  for (size_t i = 0; i < s->n_vcpus && !b->failed; i++) {
    json_t *v = vcpu_json(b, &s->vcpus[i], i);
    if (!v || json_array_append_new(vcpus, v) != 0) fail(b, "vcpus", "out of memory");
  }
  put(b, root, "vcpus", vcpus, "vcpus");

  json_t *apf = json_object();
  PUT_FIELD(b, apf, &s->apf, "apf.", not_present);
  PUT_FIELD(b, apf, &s->apf, "apf.", page_ready);
  PUT_FIELD(b, apf, &s->apf, "apf.", sync_faults);
  PUT_FIELD(b, apf, &s->apf, "apf.", synthetic_halts);
  PUT_FIELD(b, apf, &s->apf, "apf.", wake_all);
  PUT_FIELD(b, apf, &s->apf, "apf.", dummy_nodes);
  PUT_FIELD(b, apf, &s->apf, "apf.", outstanding);
  put(b, root, "apf", apf, "apf");

  json_t *race = json_object();
  PUT_FIELD(b, race, &s->race, "race.", nmi_injected);
  PUT_FIELD(b, race, &s->race, "race.", cr2_clobbered);
  PUT_FIELD(b, race, &s->race, "race.", lost_tokens);
  put(b, root, "race", race, "race");

  json_t *workload = json_object();
  put_u64(b, workload, "ops", s->workload.ops, "workload.ops");
  put_u64(b, workload, "ops_per_sec", report_ops_per_sec(s->workload.ops, s->sim_time_ns),
          "workload.ops_per_sec");
  put(b, root, "workload", workload, "workload");

  json_t *storage = json_object();
  PUT_FIELD(b, storage, &s->storage, "storage.", requests);
  PUT_FIELD(b, storage, &s->storage, "storage.", completed);
  PUT_FIELD(b, storage, &s->storage, "storage.", mean_latency_ns);
  PUT_FIELD(b, storage, &s->storage, "storage.", max_latency_ns);
  put(b, root, "storage", storage, "storage");

  put_sha256(b, root, "trace_sha256", s->trace_sha256);
  put_sha256(b, root, "guest_image_sha256", s->guest_image_sha256);

  if (s->n_sections > 0 && !s->sections) fail(b, "sections", "count %zu but no array", s->n_sections);
  for (size_t i = 0; i < s->n_sections && !b->failed; i++) put_section(b, root, &s->sections[i]);

  if (b->failed) {
    json_decref(root);
    return NULL;
  }
  return root;
}

char *report_format_json(const struct run_summary *s, struct diag *d) {
  struct builder b = {.d = d};
  if (!s) {
    fail(&b, "summary", "missing");
    return NULL;
  }
  json_t *root = summary_json(s, &b);
  if (!root) return NULL;
  char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
  json_decref(root);
  if (!text) {
    fail(&b, "summary", "JSON encoding failed");
    return NULL;
  }
  size_t n = strlen(text);
  char *with_nl = realloc(text, n + 2);
  if (!with_nl) {
    free(text);
    fail(&b, "summary", "out of memory");
    return NULL;
  }
  with_nl[n] = '\n';
  with_nl[n + 1] = '\0';
  return with_nl;
}

bool report_write_json(const struct run_summary *s, const char *path_or_dash, struct diag *d) {
  if (!path_or_dash) return diag_set(d, "summary: no output path");
  char *text = report_format_json(s, d);
  if (!text) return false;
  size_t len = strlen(text);
  bool ok;
  if (strcmp(path_or_dash, "-") == 0) {
    ok = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0;
    if (!ok) diag_set(d, "<stdout>: cannot write the summary: %s", strerror(errno));
  } else {
    ok = atomic_file_write_all(path_or_dash, text, len, "summary", d);
  }
  free(text);
  return ok;
}
