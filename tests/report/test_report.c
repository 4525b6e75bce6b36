/* test_report.c — the run summary JSON: it parses back with every key of
 * DESIGN.md §6 in a fixed order and with the right types, outcome names
 * round-trip, and files appear atomically. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/report.h"

static const struct vcpu_summary vcpus[2] = {
    {.instructions = 184467, .vm_exits = 12, .ept_violations = 5, .guest_page_faults = 7, .apf_not_present = 3,
     .apf_page_ready = 2, .sync_faults = 1, .synthetic_halts = 0, .nmis = 1, .interrupts = 40, .halted_ns = 1000},
    {.instructions = 200000, .vm_exits = 9, .interrupts = 38},
};

#define VERDICT "race reproduced: token 0x1001 never woken; task 3 hung since t=1.23 ms"

static struct run_summary sample(void) {
  struct run_summary s = {
      .outcome = OUTCOME_HUNG_TASK,
      .seed = 42,
      .sim_time_ns = 2500000000u,
      .guest_instructions = 384467,
      .host_ns = 1234567890,
      .vcpus = vcpus,
      .n_vcpus = 2,
      .apf = {.not_present = 3, .page_ready = 2, .sync_faults = 1, .synthetic_halts = 0, .wake_all = 1,
              .dummy_nodes = 1, .outstanding = 1},
      .race = {.nmi_injected = 1, .cr2_clobbered = 1, .lost_tokens = 1},
      .workload = {.ops = 3},
      .storage = {.requests = 5, .completed = 4, .mean_latency_ns = 80000, .max_latency_ns = 120000},
  };
  snprintf(s.verdict, sizeof s.verdict, "%s", VERDICT);
  memset(s.trace_sha256, 'a', 64);
  memset(s.guest_image_sha256, 'b', 64);
  return s;
}

static json_t *parse(const char *text) {
  json_error_t err;
  json_t *j = json_loads(text, 0, &err);
  if (!j) fail_msg("JSON does not parse: %s (line %d)", err.text, err.line);
  return j;
}

static void assert_int_key(json_t *obj, const char *key, json_int_t want) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v)) fail_msg("%s: missing or not an integer", key);
  if (json_integer_value(v) != want) fail_msg("%s: %lld, want %lld", key, json_integer_value(v), want);
}

/* Keys of obj in document order must be exactly `want`. */
static void assert_key_order(json_t *obj, const char *const *want, size_t n) {
  size_t i = 0;
  for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it), i++) {
    if (i >= n) fail_msg("unexpected extra key %s", json_object_iter_key(it));
    if (strcmp(json_object_iter_key(it), want[i]) != 0)
      fail_msg("key %zu is %s, want %s", i, json_object_iter_key(it), want[i]);
  }
  assert_int_equal(i, n);
}

static void json_has_every_key_with_its_type_in_order(void **state) {
  (void)state;
  struct run_summary s = sample();
  struct diag d = {0};
  char *text = report_format_json(&s, &d);
  if (!text) fail_msg("%s", d.msg);
  assert_int_equal(text[strlen(text) - 1], '\n');
  json_t *j = parse(text);

  static const char *const top[] = {"outcome", "verdict",  "seed",    "sim_time_ns", "guest_instructions",
                                    "host_seconds", "vcpus", "apf", "race", "workload", "storage",
                                    "trace_sha256", "guest_image_sha256"};
  assert_key_order(j, top, sizeof top / sizeof top[0]);
  assert_string_equal(json_string_value(json_object_get(j, "outcome")), "hung_task");
  assert_string_equal(json_string_value(json_object_get(j, "verdict")), VERDICT);
  assert_int_key(j, "seed", 42);
  assert_int_key(j, "sim_time_ns", 2500000000);
  assert_int_key(j, "guest_instructions", 384467);
  json_t *host = json_object_get(j, "host_seconds");
  assert_true(json_is_real(host));
  assert_true(json_real_value(host) == 1.235); /* rounded to ms */
  assert_non_null(strstr(text, "\"host_seconds\": 1.235,"));

  json_t *vc = json_object_get(j, "vcpus");
  assert_true(json_is_array(vc));
  assert_int_equal(json_array_size(vc), 2);
  static const char *const vkeys[] = {"vcpu",           "instructions",    "vm_exits",    "ept_violations",
                                      "guest_page_faults", "apf_not_present", "apf_page_ready", "sync_faults",
                                      "synthetic_halts", "nmis",            "interrupts",  "halted_ns"};
  assert_key_order(json_array_get(vc, 0), vkeys, sizeof vkeys / sizeof vkeys[0]);
  assert_int_key(json_array_get(vc, 0), "vcpu", 0);
  assert_int_key(json_array_get(vc, 0), "instructions", 184467);
  assert_int_key(json_array_get(vc, 0), "halted_ns", 1000);
  assert_int_key(json_array_get(vc, 1), "vcpu", 1);
  assert_int_key(json_array_get(vc, 1), "interrupts", 38);

  static const char *const apf_keys[] = {"not_present", "page_ready",  "sync_faults", "synthetic_halts",
                                         "wake_all",    "dummy_nodes", "outstanding"};
  json_t *apf = json_object_get(j, "apf");
  assert_key_order(apf, apf_keys, sizeof apf_keys / sizeof apf_keys[0]);
  assert_int_key(apf, "not_present", 3);
  assert_int_key(apf, "page_ready", 2);
  assert_int_key(apf, "sync_faults", 1);
  assert_int_key(apf, "synthetic_halts", 0);
  assert_int_key(apf, "wake_all", 1);
  assert_int_key(apf, "dummy_nodes", 1);
  assert_int_key(apf, "outstanding", 1);

  static const char *const race_keys[] = {"nmi_injected", "cr2_clobbered", "lost_tokens"};
  json_t *race = json_object_get(j, "race");
  assert_key_order(race, race_keys, 3);
  assert_int_key(race, "nmi_injected", 1);
  assert_int_key(race, "cr2_clobbered", 1);
  assert_int_key(race, "lost_tokens", 1);

  static const char *const wl_keys[] = {"ops", "ops_per_sec"};
  json_t *wl = json_object_get(j, "workload");
  assert_key_order(wl, wl_keys, 2);
  assert_int_key(wl, "ops", 3);
  assert_int_key(wl, "ops_per_sec", 1); /* 3 ops in 2.5 s = 1.2/s, rounded */

  static const char *const st_keys[] = {"requests", "completed", "mean_latency_ns", "max_latency_ns"};
  json_t *st = json_object_get(j, "storage");
  assert_key_order(st, st_keys, 4);
  assert_int_key(st, "requests", 5);
  assert_int_key(st, "completed", 4);
  assert_int_key(st, "mean_latency_ns", 80000);
  assert_int_key(st, "max_latency_ns", 120000);

  assert_string_equal(json_string_value(json_object_get(j, "trace_sha256")), s.trace_sha256);
  assert_string_equal(json_string_value(json_object_get(j, "guest_image_sha256")), s.guest_image_sha256);
  json_decref(j);
  free(text);
}

static void same_summary_gives_same_text(void **state) {
  (void)state;
  struct run_summary s = sample();
  struct diag d = {0};
  char *a = report_format_json(&s, &d), *b = report_format_json(&s, &d);
  assert_string_equal(a, b);
  free(a);
  free(b);
}

/* A calloc'd summary with only a verdict is valid: everything else is 0. */
static void zeroed_summary_with_a_verdict_is_valid(void **state) {
  (void)state;
  struct run_summary *s = calloc(1, sizeof *s);
  strcpy(s->verdict, "nothing ran");
  struct diag d = {0};
  char *text = report_format_json(s, &d);
  if (!text) fail_msg("%s", d.msg);
  json_t *j = parse(text);
  assert_string_equal(json_string_value(json_object_get(j, "outcome")), "ok");
  json_decref(j);
  free(text);
  free(s);
}

static void missing_trace_is_null_and_no_vcpus_is_an_empty_list(void **state) {
  (void)state;
  struct run_summary s = sample();
  s.trace_sha256[0] = '\0';
  s.guest_image_sha256[0] = '\0';
  s.n_vcpus = 0;
  s.vcpus = NULL;
  s.host_ns = 0;
  struct diag d = {0};
  char *text = report_format_json(&s, &d);
  assert_non_null(text);
  json_t *j = parse(text);
  assert_true(json_is_null(json_object_get(j, "trace_sha256")));
  assert_true(json_is_null(json_object_get(j, "guest_image_sha256")));
  assert_int_equal(json_array_size(json_object_get(j, "vcpus")), 0);
  assert_true(json_is_real(json_object_get(j, "host_seconds")));
  json_decref(j);
  free(text);
}

static void extra_sections_follow_the_fixed_keys(void **state) {
  (void)state;
  static const char *const queue_keys[] = {"reads", "bytes_read", "max_queue_depth"};
  static const uint64_t queue_vals[] = {10, 40960, 4};
  static const char *const proc_keys[] = {"pid", "ops", "apf_waits"};
  static const uint64_t proc_vals[] = {1, 2, 0, /**/ 3, 1, 1};
  const struct report_section sections[] = {
      {"swap_queue", queue_keys, 3, queue_vals, 1, false},
      {"processes", proc_keys, 3, proc_vals, 2, true},
  };
  struct run_summary s = sample();
  s.sections = sections;
  s.n_sections = 2;
  struct diag d = {0};
  char *text = report_format_json(&s, &d);
  if (!text) fail_msg("%s", d.msg);
  json_t *j = parse(text);
  const char *last_two[2] = {NULL, NULL};
  size_t n = 0;
  for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it)) {
    last_two[0] = last_two[1];
    last_two[1] = json_object_iter_key(it);
    n++;
  }
  assert_int_equal(n, 15);
  assert_string_equal(last_two[0], "swap_queue");
  assert_string_equal(last_two[1], "processes");
  assert_key_order(json_object_get(j, "swap_queue"), queue_keys, 3);
  assert_int_key(json_object_get(j, "swap_queue"), "bytes_read", 40960);
  json_t *procs = json_object_get(j, "processes");
  assert_int_equal(json_array_size(procs), 2);
  assert_int_key(json_array_get(procs, 1), "pid", 3);
  assert_int_key(json_array_get(procs, 1), "apf_waits", 1);
  json_decref(j);
  free(text);
}

static void unrepresentable_values_are_named(void **state) {
  (void)state;
  struct diag d = {0};
  struct run_summary s = sample();
  s.seed = UINT64_MAX;
  assert_null(report_format_json(&s, &d));
  assert_string_equal(d.msg, "seed: 18446744073709551615 exceeds the JSON integer range (2^63-1)");

  s = sample();
  struct vcpu_summary big[2] = {vcpus[0], vcpus[1]};
  big[1].nmis = (uint64_t)INT64_MAX + 1;
  s.vcpus = big;
  assert_null(report_format_json(&s, &d));
  assert_string_equal(d.msg, "vcpus[1].nmis: 9223372036854775808 exceeds the JSON integer range (2^63-1)");

  s = sample();
  s.apf.dummy_nodes = UINT64_MAX;
  assert_null(report_format_json(&s, &d));
  assert_string_equal(d.msg, "apf.dummy_nodes: 18446744073709551615 exceeds the JSON integer range (2^63-1)");

  s = sample();
  strcpy(s.verdict, "bad \xff utf-8");
  assert_null(report_format_json(&s, &d));
  assert_string_equal(d.msg, "verdict: not valid UTF-8");

  s = sample();
  s.verdict[0] = '\0';
  assert_null(report_format_json(&s, &d));
  assert_string_equal(d.msg, "verdict: empty");

  s = sample();
  memset(s.verdict, 'x', sizeof s.verdict);
  assert_null(report_format_json(&s, &d));
  assert_string_equal(d.msg, "verdict: not NUL-terminated");

  s = sample();
  s.storage.max_latency_ns = UINT64_MAX;
  assert_null(report_format_json(&s, &d));
  assert_string_equal(d.msg, "storage.max_latency_ns: 18446744073709551615 exceeds the JSON integer range (2^63-1)");

  s = sample();
  s.trace_sha256[3] = 'G';
  assert_null(report_format_json(&s, &d));
  assert_string_equal(d.msg, "trace_sha256: not 64 lowercase hex digits");

  s = sample();
  s.outcome = OUTCOME_COUNT;
  assert_null(report_format_json(&s, &d));
  assert_string_equal(d.msg, "outcome: 9 is not a run outcome");

  static const char *const keys[] = {"x"};
  static const uint64_t vals[] = {1};
  const struct report_section clash = {"apf", keys, 1, vals, 1, false};
  s = sample();
  s.sections = &clash;
  s.n_sections = 1;
  assert_null(report_format_json(&s, &d));
  assert_string_equal(d.msg, "apf: section name is already a key of the summary");
}

static void outcome_names_round_trip(void **state) {
  (void)state;
  static const char *const names[] = {"ok",       "hung_task", "hung_vcpu",    "guest_panic", "efault_exit",
                                      "livelock", "sigbus",    "triple_fault", "timeout"};
  assert_int_equal(sizeof names / sizeof names[0], OUTCOME_COUNT);
  for (int i = 0; i < OUTCOME_COUNT; i++) {
    assert_string_equal(outcome_name((enum run_outcome)i), names[i]);
    enum run_outcome o = OUTCOME_COUNT;
    assert_true(outcome_parse(names[i], &o));
    assert_int_equal(o, i);
  }
  enum run_outcome o;
  assert_false(outcome_parse("OK", &o));
  assert_false(outcome_parse("ok ", &o));
  assert_false(outcome_parse("", &o));
  assert_false(outcome_parse(NULL, &o));
  assert_null(outcome_name(OUTCOME_COUNT));
  assert_null(outcome_name((enum run_outcome)-1));
}

static void ops_per_sec_is_integer_arithmetic(void **state) {
  (void)state;
  assert_int_equal(report_ops_per_sec(3, 2500000000u), 1);
  assert_int_equal(report_ops_per_sec(5, 2000000000u), 3); /* 2.5 rounds up */
  assert_int_equal(report_ops_per_sec(1000, 1000000), 1000000);
  assert_int_equal(report_ops_per_sec(7, 0), 0);
  assert_int_equal(report_ops_per_sec(UINT64_MAX, 1000000000u), UINT64_MAX);
  assert_int_equal(report_ops_per_sec(UINT64_MAX, 1), UINT64_MAX);
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d)) != NULL) n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  if (d) closedir(d);
  return n;
}

static void writing_a_file_leaves_no_temporary_file(void **state) {
  (void)state;
  char dir[] = "/tmp/apfsim-report-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof path, "%s/summary.json", dir);
  struct run_summary s = sample();
  struct diag d = {0};
  assert_true(report_write_json(&s, path, &d));
  assert_int_equal(count_entries(dir), 1);
  s.outcome = OUTCOME_OK; /* overwrite in place */
  assert_true(report_write_json(&s, path, &d));
  assert_int_equal(count_entries(dir), 1);
  json_error_t err;
  json_t *j = json_load_file(path, 0, &err);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "outcome")), "ok");
  json_decref(j);

  /* A failed write keeps the old file and leaves nothing else. */
  s.seed = UINT64_MAX;
  assert_false(report_write_json(&s, path, &d));
  assert_int_equal(count_entries(dir), 1);
  s = sample();
  char missing[160];
  snprintf(missing, sizeof missing, "%s/no/such/dir/summary.json", dir);
  assert_false(report_write_json(&s, missing, &d));
  assert_non_null(strstr(d.msg, "cannot create the summary's temporary file"));
  assert_false(report_write_json(&s, dir, &d));
  char want[200];
  snprintf(want, sizeof want, "%s: the summary path names a directory", dir);
  assert_string_equal(d.msg, want);
  assert_int_equal(count_entries(dir), 1);

  unlink(path);
  rmdir(dir);
}

static void dash_writes_to_stdout(void **state) {
  (void)state;
  char capture[] = "/tmp/apfsim-report-stdout-XXXXXX";
  int fd = mkstemp(capture);
  assert_true(fd >= 0);
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  dup2(fd, STDOUT_FILENO);
  struct run_summary s = sample();
  struct diag d = {0};
  bool ok = report_write_json(&s, "-", &d);
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  close(fd);
  assert_true(ok);
  json_error_t err;
  json_t *j = json_load_file(capture, 0, &err);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "outcome")), "hung_task");
  json_decref(j);
  unlink(capture);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(json_has_every_key_with_its_type_in_order),
      cmocka_unit_test(same_summary_gives_same_text),
      cmocka_unit_test(zeroed_summary_with_a_verdict_is_valid),
      cmocka_unit_test(missing_trace_is_null_and_no_vcpus_is_an_empty_list),
      cmocka_unit_test(extra_sections_follow_the_fixed_keys),
      cmocka_unit_test(unrepresentable_values_are_named),
      cmocka_unit_test(outcome_names_round_trip),
      cmocka_unit_test(ops_per_sec_is_integer_arithmetic),
      cmocka_unit_test(writing_a_file_leaves_no_temporary_file),
      cmocka_unit_test(dash_writes_to_stdout),
  };
  return cmocka_run_group_tests_name("report", tests, NULL, NULL);
}
