/* test_trace_diff.c — the differ finds the first divergence, reports its
 * line numbers, and prints it with its neighbours like a unified diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers.h"
#include "trace/trace.h"

#define N_EVENTS 8
/* Header is 12 lines (see write_trace), so event i is on line 13 + i. */
#define FIRST_EVENT_LINE 13

enum variant { SAME, CHANGED_FIELD, MISSING_EVENT, EXTRA_EVENT, OTHER_SEED, OTHER_VERSION, OTHER_CONFIG };

static void write_trace(const char *path, enum variant v) {
  struct diag d = {0};
  const struct trace_kv header[] = {
      {"apfsim-version", v == OTHER_VERSION ? "0.2.0" : "0.1.0", 0},
      {"unicorn-version", "2.0.1", 0},
      {"guest-image-sha256", "none", 0},
      {"seed", v == OTHER_SEED ? "43" : "42", 0},
  };
  const struct trace_block config = {
      "config", v == OTHER_CONFIG ? "<apfsim>\n  <vcpus>2</vcpus>\n  <seed>7</seed>\n</apfsim>\n"
                                  : "<apfsim>\n  <vcpus>2</vcpus>\n  <seed>42</seed>\n</apfsim>\n",
      0};
  struct trace_writer *w = trace_writer_open(path, header, 4, &config, 1, &d);
  assert_non_null(w);
  for (int i = 0; i < N_EVENTS; i++) {
    if (v == MISSING_EVENT && i == 3) continue;
    unsigned gva = 0x7f000000u + (unsigned)i * 0x1000u + (v == CHANGED_FIELD && i == 5 ? 0x10u : 0u);
    assert_true(trace_event(w, (uint64_t)(i + 1) * 100, i % 2, "kvm_async_pf_not_present", "token %#x gva %#x",
                            0x1000 + i, gva));
  }
  if (v == EXTRA_EVENT) assert_true(trace_event(w, 5000, TRACE_CPU_HOST, "kvm_async_pf_ready", "token 0x1007"));
  assert_true(trace_close(w, NULL, &d));
}

/* The line write_trace prints for event i of the unchanged trace. */
static const char *event_line(int i, char buf[160]) {
  snprintf(buf, 160, "%15d cpu%d  kvm_async_pf_not_present token %#x gva %#x", (i + 1) * 100, i % 2, 0x1000 + i,
           0x7f000000u + (unsigned)i * 0x1000u);
  return buf;
}

struct pair {
  char a[256], b[256];
};

static struct pair make_pair(struct scratch *s, enum variant va, enum variant vb) {
  struct pair p;
  snprintf(p.a, sizeof p.a, "%s/a.trace", s->dir);
  snprintf(p.b, sizeof p.b, "%s/b.trace", s->dir);
  write_trace(p.a, va);
  write_trace(p.b, vb);
  return p;
}

static const char *const required[] = {"apfsim-trace", "seed", "guest-image-sha256", "config"};

/* Runs the differ, capturing what it prints. */
static enum trace_diff_result run_diff(const struct pair *p, struct trace_divergence *where, char **printed,
                                       struct diag *d) {
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  assert_non_null(out);
  enum trace_diff_result r = trace_diff(p->a, p->b, required, 4, out, where, d);
  fclose(out);
  *printed = buf;
  return r;
}

static void identical_traces_compare_equal(void **state) {
  struct pair p = make_pair(*state, SAME, SAME);
  struct trace_divergence where;
  struct diag d = {0};
  char *printed;
  assert_int_equal(run_diff(&p, &where, &printed, &d), TRACE_DIFF_IDENTICAL);
  assert_string_equal(printed, "");
  free(printed);
}

static void changed_field_is_reported_with_three_neighbours(void **state) {
  struct pair p = make_pair(*state, SAME, CHANGED_FIELD);
  struct trace_divergence where;
  struct diag d = {0};
  char *printed, l2[160], l3[160], l4[160], l5[160], want[4096];
  assert_int_equal(run_diff(&p, &where, &printed, &d), TRACE_DIFF_DIVERGED);
  assert_int_equal(where.line_a, FIRST_EVENT_LINE + 5);
  assert_int_equal(where.line_b, FIRST_EVENT_LINE + 5);
  assert_int_equal(where.event_index, 5);
  assert_false(where.in_header);
  assert_string_equal(where.what, "event 5");
  event_line(5, l5);
  snprintf(want, sizeof want,
           "traces diverge at event 5: %s line 18, %s line 18\n"
           "--- %s\n+++ %s\n"
           "@@ -15,4 +15,4 @@\n"
           " %s\n %s\n %s\n"
           "-%s\n"
           "+            600 cpu1  kvm_async_pf_not_present token 0x1005 gva 0x7f005010\n",
           p.a, p.b, p.a, p.b, event_line(2, l2), event_line(3, l3), event_line(4, l4), l5);
  assert_string_equal(printed, want);
  free(printed);
}

static void missing_event_is_reported_where_it_was_expected(void **state) {
  struct pair p = make_pair(*state, SAME, MISSING_EVENT);
  struct trace_divergence where;
  struct diag d = {0};
  char *printed, l0[160], l1[160], l2[160], l3[160], l4[160], want[4096];
  assert_int_equal(run_diff(&p, &where, &printed, &d), TRACE_DIFF_DIVERGED);
  assert_int_equal(where.event_index, 3);
  assert_int_equal(where.line_a, FIRST_EVENT_LINE + 3);
  snprintf(want, sizeof want,
           "traces diverge at event 3: %s line 16, %s line 16\n"
           "--- %s\n+++ %s\n"
           "@@ -13,4 +13,4 @@\n"
           " %s\n %s\n %s\n"
           "-%s\n+%s\n",
           p.a, p.b, p.a, p.b, event_line(0, l0), event_line(1, l1), event_line(2, l2), event_line(3, l3),
           event_line(4, l4));
  assert_string_equal(printed, want);
  free(printed);
}

static void extra_event_at_the_end_shows_the_shorter_trace_ending(void **state) {
  struct pair p = make_pair(*state, SAME, EXTRA_EVENT);
  struct trace_divergence where;
  struct diag d = {0};
  char *printed, l5[160], l6[160], l7[160], want[4096];
  assert_int_equal(run_diff(&p, &where, &printed, &d), TRACE_DIFF_DIVERGED);
  assert_int_equal(where.event_index, 8);
  assert_int_equal(where.line_a, FIRST_EVENT_LINE + 8); /* a's trace-end line */
  assert_int_equal(where.line_b, FIRST_EVENT_LINE + 8);
  snprintf(want, sizeof want,
           "traces diverge at event 8: %s ends after 8 events, %s continues at line 21\n"
           "--- %s\n+++ %s\n"
           "@@ -18,4 +18,4 @@\n"
           " %s\n %s\n %s\n"
           "-# trace-end 8\n"
           "+           5000 host  kvm_async_pf_ready token 0x1007\n",
           p.a, p.b, p.a, p.b, event_line(5, l5), event_line(6, l6), event_line(7, l7));
  assert_string_equal(printed, want);
  free(printed);

  /* The other way round, the longer trace is on the "-" side. */
  struct pair q = make_pair(*state, EXTRA_EVENT, SAME);
  assert_int_equal(run_diff(&q, &where, &printed, &d), TRACE_DIFF_DIVERGED);
  assert_non_null(strstr(printed, "+# trace-end 8\n"));
  free(printed);
}

static void required_header_field_mismatch_is_a_divergence(void **state) {
  struct pair p = make_pair(*state, SAME, OTHER_SEED);
  struct trace_divergence where;
  struct diag d = {0};
  char *printed, want[4096];
  assert_int_equal(run_diff(&p, &where, &printed, &d), TRACE_DIFF_DIVERGED);
  assert_true(where.in_header);
  assert_int_equal(where.line_a, 5);
  assert_string_equal(where.what, "header field seed");
  snprintf(want, sizeof want,
           "traces differ in header field \"seed\", which must match\n"
           "--- %s\n+++ %s\n"
           "@@ -5,1 +5,1 @@\n"
           "-# seed 42\n+# seed 43\n",
           p.a, p.b);
  assert_string_equal(printed, want);
  free(printed);
}

static void unrequired_header_field_is_ignored(void **state) {
  struct pair p = make_pair(*state, SAME, OTHER_VERSION);
  struct diag d = {0};
  char *printed;
  assert_int_equal(run_diff(&p, NULL, &printed, &d), TRACE_DIFF_IDENTICAL);
  free(printed);
}

static void required_block_mismatch_shows_the_block_line(void **state) {
  struct pair p = make_pair(*state, SAME, OTHER_CONFIG);
  struct trace_divergence where;
  struct diag d = {0};
  char *printed, want[4096];
  assert_int_equal(run_diff(&p, &where, &printed, &d), TRACE_DIFF_DIVERGED);
  assert_string_equal(where.what, "header block config");
  snprintf(want, sizeof want,
           "traces differ in header block \"config\", which must match: %s line 9, %s line 9\n"
           "--- %s\n+++ %s\n"
           "@@ -7,3 +7,3 @@\n"
           " #| <apfsim>\n"
           " #|   <vcpus>2</vcpus>\n"
           "-#|   <seed>42</seed>\n"
           "+#|   <seed>7</seed>\n",
           p.a, p.b, p.a, p.b);
  assert_string_equal(printed, want);
  free(printed);
}

static void field_absent_on_one_side_is_a_divergence(void **state) {
  struct scratch *s = *state;
  struct pair p = make_pair(s, SAME, SAME);
  write_text(p.b, "# apfsim-trace 1\n# header-end\n# trace-end 0\n");
  struct trace_divergence where;
  struct diag d = {0};
  char *printed;
  assert_int_equal(run_diff(&p, &where, &printed, &d), TRACE_DIFF_DIVERGED);
  assert_string_equal(where.what, "header field seed");
  assert_non_null(strstr(printed, "-# seed 42\n+(no \"seed\" in the header)\n"));
  free(printed);
}

static void corrupt_trace_is_an_error_not_a_divergence(void **state) {
  struct scratch *s = *state;
  struct pair p = make_pair(s, SAME, SAME);
  struct diag d = {0};
  char *printed, want[4096];

  /* Truncated copy: every event matches, then b has no "# trace-end". */
  size_t len = 0;
  char *text = read_all(p.a, &len);
  char *trailer = strstr(text, "# trace-end");
  assert_non_null(trailer);
  *trailer = '\0';
  write_text(p.b, text);
  free(text);
  assert_int_equal(run_diff(&p, NULL, &printed, &d), TRACE_DIFF_ERROR);
  assert_string_equal(printed, "");
  free(printed);
  snprintf(want, sizeof want,
           "%s:21: trace-end: missing: the file ends after 8 events without \"# trace-end\" (truncated?)", p.b);
  assert_string_equal(d.msg, want);

  /* Not a trace at all. */
  write_text(p.a, "<apfsim/>\n");
  assert_int_equal(run_diff(&p, NULL, &printed, &d), TRACE_DIFF_ERROR);
  free(printed);
  snprintf(want, sizeof want, "%s:1: header: not an apfsim trace (the first line must be \"# apfsim-trace 1\")",
           p.a);
  assert_string_equal(d.msg, want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(identical_traces_compare_equal, scratch_setup, scratch_teardown),
      cmocka_unit_test_setup_teardown(changed_field_is_reported_with_three_neighbours, scratch_setup,
                                      scratch_teardown),
      cmocka_unit_test_setup_teardown(missing_event_is_reported_where_it_was_expected, scratch_setup,
                                      scratch_teardown),
      cmocka_unit_test_setup_teardown(extra_event_at_the_end_shows_the_shorter_trace_ending, scratch_setup,
                                      scratch_teardown),
      cmocka_unit_test_setup_teardown(required_header_field_mismatch_is_a_divergence, scratch_setup,
                                      scratch_teardown),
      cmocka_unit_test_setup_teardown(unrequired_header_field_is_ignored, scratch_setup, scratch_teardown),
      cmocka_unit_test_setup_teardown(required_block_mismatch_shows_the_block_line, scratch_setup,
                                      scratch_teardown),
      cmocka_unit_test_setup_teardown(field_absent_on_one_side_is_a_divergence, scratch_setup, scratch_teardown),
      cmocka_unit_test_setup_teardown(corrupt_trace_is_an_error_not_a_divergence, scratch_setup, scratch_teardown),
  };
  return cmocka_run_group_tests_name("trace diff", tests, NULL, NULL);
}
