/* test_rows.c — CSV rows: field quoting round trip, a summary becoming a
 * row (metric paths, sums over arrays, missing keys, reals), failed runs,
 * resuming a results file (prefix check, incomplete last line, another
 * sweep's file), and merging shard files (identical to the whole; another
 * sweep, overlaps and missing points refused with the points named). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "sweep/csv.h"
#include "sweep/merge.h"
#include "sweep/results.h"
#include "sweep/row.h"

#define OUT SWEEP_TEST_OUT "/rows"

static void fields_round_trip(void **state) {
  (void)state;
  static const char *const fields[] = {"plain", "", "a,b", "say \"hi\"", " lead", "trail ",
                                       "\"", ",", "x\ny", "tab\there", "ünïcode"};
  size_t n = sizeof fields / sizeof fields[0];
  struct csv_line l = {0};
  for (size_t i = 0; i < n; i++) assert_true(csv_add(&l, fields[i]));
  assert_string_equal(l.s, "plain,,\"a,b\",\"say \"\"hi\"\"\",\" lead\",\"trail \",\"\"\"\",\",\","
                           "x y,tab here,ünïcode");
  char *copy = strdup(l.s);
  char *got[16];
  assert_int_equal(csv_split(copy, got, 16), (long)n);
  for (size_t i = 0; i < n; i++) {
    /* Control characters come back as spaces: a row is always one line. */
    if (!strcmp(fields[i], "x\ny")) assert_string_equal(got[i], "x y");
    else if (!strcmp(fields[i], "tab\there")) assert_string_equal(got[i], "tab here");
    else assert_string_equal(got[i], fields[i]);
  }
  free(copy);
  assert_true(csv_end(&l));
  assert_int_equal(l.s[l.len - 1], '\n');
  assert_ptr_equal(strchr(l.s, '\n'), l.s + l.len - 1); /* the only newline ends the row */
  csv_line_free(&l);

  static const char *const malformed[] = {"\"open", "a\"b", "\"a\"b", "x,\"y"};
  for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
    char buf[32];
    snprintf(buf, sizeof buf, "%s", malformed[i]);
    assert_int_equal(csv_split(buf, got, 16), -1);
  }
  char many[] = "a,b,c";
  assert_int_equal(csv_split(many, got, 2), -1);
}

static struct sweep_plan *small_plan(const char *metrics) {
  char body[2048];
  snprintf(body, sizeof body,
           "<param path='swap-device/channels'><values>1 4</values></param>"
           "<param path='smoke/request-interval'><values>2us 5us 9us</values></param>"
           "<seeds count='2'/>%s",
           metrics);
  struct diag err;
  struct sweep_plan *p = plan_from(body, &err);
  if (!p) fail_msg("%s", err.msg);
  return p;
}

static const char summary[] =
    "{\"outcome\": \"hung_task\", \"verdict\": \"v, with a comma\", \"seed\": 2,"
    " \"sim_time_ns\": 5000000, \"host_seconds\": 0.1,"
    " \"vcpus\": [{\"halted_ns\": 5, \"nmis\": 1}, {\"halted_ns\": 7, \"nmis\": 0}],"
    " \"storage\": {\"requests\": 20, \"mean_latency_ns\": 52050},"
    " \"flags\": {\"ok\": true}, \"trace_sha256\": \"abc123\"}";

static void summary_becomes_a_row(void **state) {
  (void)state;
  struct sweep_plan *p = small_plan(
      "<metrics><metric>sim_time_ns</metric><metric>vcpus/halted_ns</metric>"
      "<metric>vcpus/1/halted_ns</metric><metric>max:vcpus/halted_ns</metric>"
      "<metric>mean:vcpus/halted_ns</metric><metric>min:vcpus/nmis</metric>"
      "<metric>storage/mean_latency_ns</metric>"
      "<metric>storage/p99_latency_ns</metric><metric>verdict</metric><metric>flags/ok</metric>"
      "<metric>host_seconds</metric></metrics>");
  struct sweep_point pt;
  sweep_plan_point(p, 7, &pt); /* combo 3 (channels 4, interval 2us), seed 2 */
  struct csv_line l = {0};
  char outcome[32], why[256];
  assert_true(sweep_row_from_summary(p, &pt, "9.9.9", summary, strlen(summary), &l, outcome,
                                     sizeof outcome, why, sizeof why));
  assert_string_equal(outcome, "hung_task");
  char want[1024];
  snprintf(want, sizeof want,
           "7,4,2us,2,1,hung_task,5000000,12,7,7,6,0,52050,,\"v, with a comma\",true,0.1,"
           "9.9.9,none,abc123,%s,12\n",
           p->fingerprint);
  assert_string_equal(l.s, want);

  assert_false(sweep_row_from_summary(p, &pt, "9.9.9", "not json", 8, &l, NULL, 0, why,
                                      sizeof why));
  assert_false(sweep_row_from_summary(p, &pt, "9.9.9", "{\"seed\": 1}", 11, &l, NULL, 0, why,
                                      sizeof why));
  assert_string_equal(why, "the summary has no outcome");

  assert_true(sweep_row_failed(p, &pt, "9.9.9", SWEEP_OUTCOME_HOST_TIMEOUT, &l));
  snprintf(want, sizeof want, "7,4,2us,2,1,host_timeout,,,,,,,,,,,,9.9.9,none,,%s,12\n",
           p->fingerprint);
  assert_string_equal(l.s, want);
  csv_line_free(&l);
  sweep_plan_free(p);
}

/* Writes the header and rows [from, to) of shard `sh` (a fake summary per
 * point) to path; `tail` is appended as is. */
static void write_csv(const char *path, const struct sweep_plan *p, const struct sweep_shard *sh,
                      uint64_t from, uint64_t to, const char *tail) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  struct csv_line l = {0};
  assert_true(sweep_row_header(p, &l));
  fputs(l.s, f);
  for (uint64_t i = from; i < to; i++) {
    struct sweep_point pt;
    sweep_plan_point(p, sweep_shard_point(sh, i), &pt);
    char json[256], why[128];
    snprintf(json, sizeof json, "{\"outcome\": \"ok\", \"sim_time_ns\": %" PRIu64 "}",
             pt.index * 1000);
    assert_true(sweep_row_from_summary(p, &pt, "1.0", json, strlen(json), &l, NULL, 0, why,
                                       sizeof why));
    fputs(l.s, f);
  }
  fputs(tail, f);
  csv_line_free(&l);
  assert_int_equal(fclose(f), 0);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return strdup(buf);
}

static void resume_takes_a_checked_prefix(void **state) {
  (void)state;
  mkdir(SWEEP_TEST_OUT, 0777);
  mkdir(OUT, 0777);
  struct sweep_plan *p = small_plan("<metrics><metric>sim_time_ns</metric></metrics>");
  struct sweep_shard all = {0, 1}, odd = {1, 2};
  struct sweep_results r;
  struct diag err;
  char note[1024];
  const char *path = OUT "/resume.csv";

  /* A complete prefix of 5 rows and half a sixth row. */
  write_csv(path, p, &all, 0, 5, "5,4,2us,2,1,ok,50");
  assert_true(sweep_results_open(path, p, &all, true, &r, note, sizeof note, &err));
  assert_int_equal(r.n_done, 5);
  assert_non_null(strstr(note, "dropped an incomplete last line (17 bytes)"));
  sweep_results_close(&r);
  char *text = slurp(path);
  assert_int_equal(text[strlen(text) - 1], '\n'); /* cut back to the last complete row */
  free(text);

  /* Without --resume an existing file is refused. */
  assert_false(sweep_results_open(path, p, &all, false, &r, note, sizeof note, &err));
  assert_non_null(strstr(err.msg, "already exists: use --resume"));

  /* Rows of another shard. */
  write_csv(path, p, &odd, 0, 2, "");
  assert_false(sweep_results_open(path, p, &all, true, &r, note, sizeof note, &err));
  assert_string_equal(err.msg, OUT "/resume.csv:2: point: row for point 1 where point 0 comes "
                               "next (a different --shard, or rows out of order)");
  assert_true(sweep_results_open(path, p, &odd, true, &r, note, sizeof note, &err));
  assert_int_equal(r.n_done, 2);
  sweep_results_close(&r);

  /* Another sweep with the same columns: the fingerprint tells. */
  struct diag e2;
  struct sweep_plan *other = plan_from(
      "<param path='swap-device/channels'><values>1 8</values></param>"
      "<param path='smoke/request-interval'><values>2us 5us 9us</values></param>"
      "<seeds count='2'/><metrics><metric>sim_time_ns</metric></metrics>",
      &e2);
  assert_non_null(other);
  write_csv(path, other, &all, 0, 3, "");
  assert_false(sweep_results_open(path, p, &all, true, &r, note, sizeof note, &err));
  char want[512];
  snprintf(want, sizeof want,
           OUT "/resume.csv:2: sweep: fingerprint %s is not this sweep's %s: the sweep file or "
               "its base config changed since the CSV was started",
           other->fingerprint, p->fingerprint);
  assert_string_equal(err.msg, want);
  sweep_plan_free(other);

  /* Different columns. */
  struct sweep_plan *cols = small_plan("<metrics><metric>storage/requests</metric></metrics>");
  write_csv(path, cols, &all, 0, 1, "");
  assert_false(sweep_results_open(path, p, &all, true, &r, note, sizeof note, &err));
  assert_string_equal(err.msg, OUT "/resume.csv:1: the header differs from this sweep's columns: "
                               "the file belongs to another sweep (or another version of this "
                               "one)");
  sweep_plan_free(cols);

  /* A missing file is created with just the header. */
  unlink(path);
  assert_true(sweep_results_open(path, p, &all, true, &r, note, sizeof note, &err));
  assert_int_equal(r.n_done, 0);
  const char row[] = "x\n";
  assert_true(sweep_results_append(&r, row, 2, &err));
  sweep_results_close(&r);
  text = slurp(path);
  assert_non_null(strstr(text, "point,swap-device/channels,"));
  assert_string_equal(text + strlen(text) - 2, "x\n");
  free(text);
  sweep_plan_free(p);
}

static void merge_joins_shards_and_refuses_mismatches(void **state) {
  (void)state;
  mkdir(SWEEP_TEST_OUT, 0777);
  mkdir(OUT, 0777);
  struct sweep_plan *p = small_plan("<metrics><metric>sim_time_ns</metric></metrics>");
  struct sweep_shard all = {0, 1}, s0 = {0, 3}, s1 = {1, 3}, s2 = {2, 3};
  write_csv(OUT "/all.csv", p, &all, 0, 12, "");
  write_csv(OUT "/s0.csv", p, &s0, 0, 4, "");
  write_csv(OUT "/s1.csv", p, &s1, 0, 4, "");
  write_csv(OUT "/s2.csv", p, &s2, 0, 4, "");
  struct diag err;
  char note[1024];
  const char *three[] = {OUT "/s2.csv", OUT "/s0.csv", OUT "/s1.csv"};
  if (!sweep_merge(three, 3, OUT "/merged.csv", false, note, sizeof note, &err))
    fail_msg("%s", err.msg);
  assert_string_equal(note, "");
  char *a = slurp(OUT "/all.csv"), *m = slurp(OUT "/merged.csv");
  assert_string_equal(m, a); /* byte for byte */
  free(a);
  free(m);

  /* Missing points, listed as ranges. */
  const char *two[] = {OUT "/s0.csv", OUT "/s2.csv"};
  assert_false(sweep_merge(two, 2, OUT "/x.csv", false, note, sizeof note, &err));
  assert_string_equal(err.msg, "4 of 12 points missing: 1, 4, 7, 10 (run their shards, or use "
                               "--partial to merge what there is)");
  assert_true(sweep_merge(two, 2, OUT "/x.csv", true, note, sizeof note, &err));
  assert_string_equal(note, "4 of 12 points missing: 1, 4, 7, 10");

  /* The same shard twice. */
  const char *dup[] = {OUT "/s0.csv", OUT "/s1.csv", OUT "/s2.csv", OUT "/s1.csv"};
  assert_false(sweep_merge(dup, 4, OUT "/x.csv", false, note, sizeof note, &err));
  assert_string_equal(err.msg, "point 1 is in both " OUT "/s1.csv:2 and " OUT
                               "/s1.csv:2 (4 overlapping rows in all): shards must be disjoint");

  /* A shard of another sweep with the same columns. */
  struct diag e2;
  struct sweep_plan *other = plan_from(
      "<param path='swap-device/channels'><values>1 8</values></param>"
      "<param path='smoke/request-interval'><values>2us 5us 9us</values></param>"
      "<seeds count='2'/><metrics><metric>sim_time_ns</metric></metrics>",
      &e2);
  assert_non_null(other);
  write_csv(OUT "/other.csv", other, &s1, 0, 4, "");
  const char *mixed[] = {OUT "/s0.csv", OUT "/other.csv", OUT "/s2.csv"};
  assert_false(sweep_merge(mixed, 3, OUT "/x.csv", false, note, sizeof note, &err));
  char want[512];
  snprintf(want, sizeof want,
           OUT "/other.csv:2: sweep: fingerprint %s differs from " OUT
               "/s0.csv's %s: not the same sweep",
           other->fingerprint, p->fingerprint);
  assert_string_equal(err.msg, want);
  sweep_plan_free(other);

  /* A file with other columns. */
  struct sweep_plan *cols = small_plan("");
  write_csv(OUT "/cols.csv", cols, &s1, 0, 4, "");
  const char *c2[] = {OUT "/s0.csv", OUT "/cols.csv"};
  assert_false(sweep_merge(c2, 2, OUT "/x.csv", false, note, sizeof note, &err));
  assert_string_equal(err.msg, OUT "/cols.csv:1: the header differs from " OUT
                                   "/s0.csv's: not shards of the same sweep");
  sweep_plan_free(cols);

  /* A shard cut short by a kill: its incomplete line is skipped, said so. */
  write_csv(OUT "/s1cut.csv", p, &s1, 0, 4, "13,4,5us");
  const char *cut[] = {OUT "/s0.csv", OUT "/s1cut.csv", OUT "/s2.csv"};
  assert_true(sweep_merge(cut, 3, OUT "/merged2.csv", false, note, sizeof note, &err));
  assert_string_equal(note, OUT "/s1cut.csv: skipped an incomplete last line (8 bytes)");
  sweep_plan_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fields_round_trip),
      cmocka_unit_test(summary_becomes_a_row),
      cmocka_unit_test(resume_takes_a_checked_prefix),
      cmocka_unit_test(merge_joins_shards_and_refuses_mismatches),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
