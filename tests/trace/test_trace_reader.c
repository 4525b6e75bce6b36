/* test_trace_reader.c — corrupt traces give one exact "FILE:LINE: field:
 * problem" message each, never a crash or a guess. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers.h"
#include "trace/trace.h"

#define HEADER "# apfsim-trace 1\n# seed 42\n# header-end\n"
#define EV1 "            100 cpu0  a\n"
#define EV2 "            200 cpu1  b f=1\n"

struct corrupt_case {
  const char *name;
  const char *text;
  const char *error; /* after "PATH" */
};

static const struct corrupt_case cases[] = {
    {"empty file", "", ": header: empty file, not an apfsim trace"},
    {"no header", EV1 "# trace-end 1\n",
     ":1: header: not an apfsim trace (the first line must be \"# apfsim-trace 1\")"},
    {"other format version", "# apfsim-trace 2\n# header-end\n# trace-end 0\n",
     ":1: apfsim-trace: format version \"2\" is not supported (this build reads 1)"},
    {"binary", "# apfsim-trace 1\n\x7f" "ELF\0\1\2\n", ":2: line: NUL byte (binary data, not a trace)"},
    {"CRLF", "# apfsim-trace 1\r\n# header-end\r\n", ":1: line: carriage return (CRLF line endings?)"},
    {"header ends early", "# apfsim-trace 1\n# seed 42\n",
     ":2: header: file ends inside the header (no \"# header-end\"; truncated?)"},
    {"garbage header line", "# apfsim-trace 1\nseed 42\n# header-end\n",
     ":2: header: expected \"# key value\", \"# begin NAME\" or \"# header-end\", got \"seed 42\""},
    {"duplicate field", "# apfsim-trace 1\n# seed 42\n# seed 43\n# header-end\n",
     ":3: seed: duplicate header field (first on line 2)"},
    {"bad key", "# apfsim-trace 1\n# Seed 42\n# header-end\n", ":2: header: invalid header key \"Seed\""},
    {"unclosed block", "# apfsim-trace 1\n# begin config\n#| <a/>\n# header-end\n",
     ":4: config: expected a block line (\"#| text\") or \"# end config\" (block begun on line 2)"},
    {"block truncated", "# apfsim-trace 1\n# begin config\n#| <a/>\n",
     ":3: config: file ends inside the block begun on line 2 (no \"# end config\"; truncated?)"},
    {"mismatched end", "# apfsim-trace 1\n# begin config\n# end other\n# header-end\n",
     ":3: config: \"# end other\" closes a different block than \"# begin config\" (line 2)"},
    {"stray end", "# apfsim-trace 1\n# end config\n# header-end\n", ":2: end: misplaced \"# end\" line in the header"},
    {"garbage event line", HEADER EV1 "this is not an event\n# trace-end 2\n",
     ":5: time: \"this\" is not a time in ns"},
    {"bad source", HEADER "            100 cpu01 a\n# trace-end 1\n",
     ":4: cpu: \"cpu01\" is not an event source (cpuN, host or dev)"},
    {"bad event name", HEADER "            100 host  Kvm-Exit\n# trace-end 1\n",
     ":4: name: \"Kvm-Exit\" is not an event name ([a-z0-9_]+)"},
    {"missing event name", HEADER "            100 dev\n# trace-end 1\n",
     ":4: name: \"\" is not an event name ([a-z0-9_]+)"},
    {"time overflow", HEADER "99999999999999999999 cpu0  a\n# trace-end 1\n",
     ":4: time: \"99999999999999999999\" is not a time in ns"},
    {"out of time order", HEADER EV2 EV1 "# trace-end 2\n",
     ":5: time: event at 100 ns (cpu0) comes after one at 200 ns (cpu1, line 4): not in (time, cpu) order"},
    {"out of cpu order", HEADER "            100 cpu1  a\n            100 host  b\n# trace-end 2\n",
     ":5: time: event at 100 ns (host) comes after one at 100 ns (cpu1, line 4): not in (time, cpu) order"},
    {"header line among events", HEADER EV1 "# seed 43\n# trace-end 1\n",
     ":5: event: header line after \"# header-end\": \"# seed 43\""},
    {"truncated: no trace-end", HEADER EV1 EV2,
     ":6: trace-end: missing: the file ends after 2 events without \"# trace-end\" (truncated?)"},
    {"truncated mid-line", HEADER EV1 "            2", ":5: line: no newline at the end of the file (truncated?)"},
    {"wrong event count", HEADER EV1 EV2 "# trace-end 3\n", ":6: trace-end: says 3 events, the file has 2"},
    {"bad event count", HEADER "# trace-end many\n", ":4: trace-end: \"many\" is not an event count"},
    {"text after trace-end", HEADER EV1 "# trace-end 1\n" EV2, ":6: trace-end: text after \"# trace-end\" (line 5)"},
};

/* Opens and reads the whole trace; returns the first error message. */
static const char *first_error(const char *path, struct diag *d) {
  struct trace_reader *r = trace_reader_open(path, d);
  if (!r) return d->msg;
  struct trace_record rec;
  enum trace_read_status st;
  while ((st = trace_reader_next(r, &rec, d)) == TRACE_READ_EVENT) {
  }
  trace_reader_close(r);
  return st == TRACE_READ_ERROR ? d->msg : NULL;
}

static void corrupt_traces_give_exact_errors(void **state) {
  struct scratch *s = *state;
  char path[256], want[512];
  int failures = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(path, sizeof path, "%s/case%02zu.trace", s->dir, i);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    /* "binary" holds a NUL: write through its last byte, not strlen. */
    size_t len = strlen(cases[i].text);
    if (strcmp(cases[i].name, "binary") == 0) len = sizeof("# apfsim-trace 1\n\x7f" "ELF\0\1\2\n") - 1;
    fwrite(cases[i].text, 1, len, f);
    fclose(f);
    struct diag d = {0};
    const char *got = first_error(path, &d);
    snprintf(want, sizeof want, "%s%s", path, cases[i].error);
    if (!got || strcmp(got, want) != 0) {
      print_error("case \"%s\":\n  got  %s\n  want %s\n", cases[i].name, got ? got : "(no error)", want);
      failures++;
    }
  }
  assert_int_equal(failures, 0);
}

static void missing_file_is_an_error(void **state) {
  struct scratch *s = *state;
  struct diag d = {0};
  const char *path = scratch_file(s, "absent.trace");
  assert_null(trace_reader_open(path, &d));
  char want[512];
  snprintf(want, sizeof want, "%s: cannot open trace: No such file or directory", path);
  assert_string_equal(d.msg, want);
}

static void minimal_and_empty_traces_are_valid(void **state) {
  struct scratch *s = *state;
  struct diag d = {0};
  const char *path = scratch_file(s, "min.trace");
  write_text(path, "# apfsim-trace 1\n# header-end\n# trace-end 0\n");
  assert_null(first_error(path, &d));
  write_text(path, "# apfsim-trace 1\n# empty-value\n# begin b\n#|\n#| x\n# end b\n# header-end\n"
                   "              1 dev   e\n# trace-end 1\n");
  struct trace_reader *r = trace_reader_open(path, &d);
  assert_non_null(r);
  assert_string_equal(trace_reader_header(r, "empty-value")->value, "");
  assert_string_equal(trace_reader_block(r, "b")->text, "\nx\n");
  trace_reader_close(r);
  assert_null(first_error(path, &d));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(corrupt_traces_give_exact_errors, scratch_setup, scratch_teardown),
      cmocka_unit_test_setup_teardown(missing_file_is_an_error, scratch_setup, scratch_teardown),
      cmocka_unit_test_setup_teardown(minimal_and_empty_traces_are_valid, scratch_setup, scratch_teardown),
  };
  return cmocka_run_group_tests_name("trace reader", tests, NULL, NULL);
}
