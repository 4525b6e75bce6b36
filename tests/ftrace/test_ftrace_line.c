/* test_ftrace_line.c — one ftrace line at a time: both line layouts (the
 * tracing `trace` file with its flags column, `trace-cmd report` without)
 * for every event read, each field format Linux has printed, exact integer
 * timestamps, and the lines that must be skipped or rejected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ftrace/ftrace.h"

/* The two layouts of the same event line. */
static const char *const prefixes[] = {
    "       qemu-kvm-4023  [003] d..1 12345.678901: ", /* tracing `trace` file */
    "       qemu-kvm-4023  [003] 12345.678901: ",      /* trace-cmd report */
};

static struct ftrace_record parse_ok(const char *line) {
  struct ftrace_record r;
  char why[256] = "";
  enum ftrace_line_status st = ftrace_parse_line(line, &r, why, sizeof why);
  if (st != FTRACE_LINE_EVENT) fail_msg("'%s' did not parse: %s", line, why);
  return r;
}

static struct ftrace_record parse_event(int layout, const char *event_and_fields) {
  char line[512];
  snprintf(line, sizeof line, "%s%s\n", prefixes[layout], event_and_fields);
  struct ftrace_record r = parse_ok(line);
  assert_int_equal(r.pid, 4023);
  assert_int_equal(r.cpu, 3);
  assert_string_equal(r.comm, "qemu-kvm");
  assert_true(r.time_ns == 12345678901000ULL);
  assert_int_equal(r.has_flags, layout == 0);
  if (layout == 0) assert_string_equal(r.flags, "d..1");
  return r;
}

static void both_layouts_every_event(void **state) {
  (void)state;
  for (int l = 0; l < 2; l++) {
    struct ftrace_record r =
        parse_event(l, "kvm_try_async_get_page: gva = 0x7f0012345000, gfn = 0x12345");
    assert_int_equal(r.kind, FTRACE_EV_TRY_ASYNC_GET_PAGE);
    assert_true(r.gva == 0x7f0012345000ULL && r.gfn == 0x12345);

    r = parse_event(l, "kvm_async_pf_repeated_fault: gva = 0x1000, gfn = 0x1");
    assert_int_equal(r.kind, FTRACE_EV_REPEATED_FAULT);
    assert_true(r.gva == 0x1000 && r.gfn == 1);

    r = parse_event(l, "kvm_async_pf_not_present: token 0x1001 gva 0x7f0012345000");
    assert_int_equal(r.kind, FTRACE_EV_NOT_PRESENT);
    assert_string_equal(r.event, "kvm_async_pf_not_present");
    assert_true(r.token == 0x1001 && r.gva == 0x7f0012345000ULL);

    r = parse_event(l, "kvm_async_pf_ready: token 0x1001 gva 0x7f0012345000");
    assert_int_equal(r.kind, FTRACE_EV_READY);
    assert_true(r.token == 0x1001 && r.gva == 0x7f0012345000ULL);

    r = parse_event(l, "kvm_async_pf_completed: gva 0x7f0012345000 address 0x7f3a12345000");
    assert_int_equal(r.kind, FTRACE_EV_COMPLETED);
    assert_true(r.gva == 0x7f0012345000ULL && r.address == 0x7f3a12345000ULL);
    assert_false(r.has_pfn);

    r = parse_event(l, "kvm_page_fault: vcpu 5 rip 0x7f08a4602116 address 0x0000000113600002 "
                       "error_code 0x181");
    assert_int_equal(r.kind, FTRACE_EV_PAGE_FAULT);
    assert_true(r.has_vcpu && r.vcpu == 5 && r.rip == 0x7f08a4602116ULL);
    assert_true(r.address == 0x113600002ULL && r.error_code == 0x181);

    r = parse_event(l, "kvm_exit: vcpu 1 reason EPT_VIOLATION rip 0xffffffff81040f72 info1 "
                       "0x0000000000000181 info2 0x0000000000000000 intr_info 0x00000000 "
                       "error_code 0x00000000");
    assert_int_equal(r.kind, FTRACE_EV_EXIT);
    assert_string_equal(r.reason, "EPT_VIOLATION");
    assert_true(r.has_vcpu && r.vcpu == 1 && r.rip == 0xffffffff81040f72ULL);
    assert_true(r.info1 == 0x181 && r.info2 == 0 && r.has_intr_info);
  }
}

/* Older and newer field formats of the same events (docs/ftrace-import.md). */
static void old_and_new_formats(void **state) {
  (void)state;
  /* kvm_async_pf_completed in early kernels also printed the pfn. */
  struct ftrace_record r =
      parse_event(0, "kvm_async_pf_completed: gva 0x1000 address 0x7f0000001000 pfn 0x3b2a1");
  assert_true(r.has_pfn && r.pfn == 0x3b2a1 && r.address == 0x7f0000001000ULL);
  /* The older name of the repeated-fault tracepoint. */
  r = parse_event(1, "kvm_async_pf_doublefault: gva = 0x2000, gfn = 0x2");
  assert_int_equal(r.kind, FTRACE_EV_REPEATED_FAULT);
  /* %#llx prints zero as a bare 0. */
  r = parse_event(0, "kvm_async_pf_ready: token 0xffffffff gva 0");
  assert_true(r.token == 0xffffffffULL && r.gva == 0);
  /* A later field appended by a patched kernel is accepted. */
  r = parse_event(0, "kvm_async_pf_not_present: token 0x2001 gva 0x3000 type %s");
  assert_true(r.token == 0x2001 && r.gva == 0x3000);
  r = parse_event(0, "kvm_try_async_get_page: gva = 0x4000, gfn = 0x4, type = async");
  assert_true(r.gva == 0x4000 && r.gfn == 4);

  /* kvm_page_fault before vcpu/rip: "address %lx error_code %x", bare hex. */
  r = parse_event(1, "kvm_page_fault: address 7f0012345000 error_code 182");
  assert_false(r.has_vcpu);
  assert_true(r.address == 0x7f0012345000ULL && r.error_code == 0x182);
  /* As first posted with vcpu/rip: "address 0x%lx error_code %x". */
  r = parse_event(0, "kvm_page_fault: vcpu 7 rip 0xffffffff81511f37 address 0x113674000 "
                     "error_code 182");
  assert_true(r.has_vcpu && r.vcpu == 7 && r.address == 0x113674000ULL && r.error_code == 0x182);

  /* kvm_exit before 5.10, with and without the vcpu field. */
  r = parse_event(0, "kvm_exit: vcpu 0 reason EXTERNAL_INTERRUPT rip 0xffffffff8106d3a6 info 0 "
                     "800000f6");
  assert_true(r.has_vcpu && r.vcpu == 0 && !r.has_intr_info);
  assert_string_equal(r.reason, "EXTERNAL_INTERRUPT");
  assert_true(r.info1 == 0 && r.info2 == 0x800000f6ULL);
  r = parse_event(1, "kvm_exit: reason EPT_VIOLATION rip 0x400123 info 181 0");
  assert_false(r.has_vcpu);
  assert_string_equal(r.reason, "EPT_VIOLATION");
  assert_true(r.rip == 0x400123 && r.info1 == 0x181);
  /* A VMX exit reason with flags prints several words. */
  r = parse_event(0, "kvm_exit: vcpu 2 reason INVALID_STATE FAILED_VMENTRY rip 0x0 info1 "
                     "0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 "
                     "error_code 0x00000000");
  assert_string_equal(r.reason, "INVALID_STATE FAILED_VMENTRY");
  /* SVM prints its own reason names. */
  r = parse_event(0, "kvm_exit: vcpu 3 reason npf rip 0xffffffff81000000 info1 "
                     "0x0000000100000014 info2 0x00000000fee000b0 intr_info 0x00000000 "
                     "error_code 0x00000000");
  assert_string_equal(r.reason, "npf");
  assert_true(r.info2 == 0xfee000b0ULL);
}

static void timestamps_are_exact(void **state) {
  (void)state;
  static const struct {
    const char *ts;
    uint64_t ns;
  } cases[] = {
      {"0.000001", 1000},
      {"12345.678901", 12345678901000ULL},
      {"1.123456789", 1123456789ULL},
      {"5.5", 5500000000ULL},
      {"86.581928", 86581928000ULL},
      {"4398046.511104", 4398046511104000ULL}, /* x 1e9 in a double would round */
      {"18446744073.709551615", UINT64_MAX},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char line[256];
    snprintf(line, sizeof line, "qemu-1 [000] .... %s: kvm_exit: reason HLT rip 0x1 info 0 0",
             cases[i].ts);
    struct ftrace_record r = parse_ok(line);
    if (r.time_ns != cases[i].ns)
      fail_msg("%s -> %llu", cases[i].ts, (unsigned long long)r.time_ns);
  }
  static const char *const bad_ts[] = {"18446744073.709551616", "1.1234567890", "12345", "12.",
                                       ".5", "1e3.0"};
  for (size_t i = 0; i < sizeof bad_ts / sizeof *bad_ts; i++) {
    char line[256], why[256];
    struct ftrace_record r;
    snprintf(line, sizeof line, "qemu-1 [000] .... %s: kvm_exit: reason HLT rip 0x1 info 0 0",
             bad_ts[i]);
    if (ftrace_parse_line(line, &r, why, sizeof why) != FTRACE_LINE_BAD)
      fail_msg("timestamp %s accepted", bad_ts[i]);
  }
}

static void task_column_variants(void **state) {
  (void)state;
  /* QEMU names vCPU threads "CPU N/KVM": spaces and a slash in comm. */
  struct ftrace_record r =
      parse_ok("       CPU 5/KVM-4145    [002] .....    86.581928: kvm_page_fault: vcpu 5 rip "
               "0x7f08a4602116 address 0x0000000113600002 error_code 0x181");
  assert_string_equal(r.comm, "CPU 5/KVM");
  assert_int_equal(r.pid, 4145);
  assert_int_equal(r.cpu, 2);
  assert_string_equal(r.flags, ".....");
  assert_true(r.time_ns == 86581928000ULL);
  r = parse_ok("          <idle>-0     [000] d.h1  100.000001: sched_wakeup: comm=x pid=1");
  assert_string_equal(r.comm, "<idle>");
  assert_int_equal(r.kind, FTRACE_EV_OTHER);
  r = parse_ok(" kworker/u16:2-123   [007] 7.000002: kvm_async_pf_completed: gva 0x1 address 0x2");
  assert_string_equal(r.comm, "kworker/u16:2");
  assert_int_equal(r.pid, 123);
  /* With the record-tgid option: a "(TGID)" column. */
  r = parse_ok("qemu-system-x86-4023  (   4020) [001] d..2. 9.000003: kvm_async_pf_ready: "
               "token 0x1 gva 0x2");
  assert_string_equal(r.comm, "qemu-system-x86");
  assert_int_equal(r.pid, 4023);
  assert_true(r.time_ns == 9000003000ULL);
  r = parse_ok("qemu-4023 (-----) [001] 9.000003: kvm_async_pf_ready: token 0x1 gva 0x2\r\n");
  assert_int_equal(r.pid, 4023);
}

static void skipped_lines(void **state) {
  (void)state;
  static const char *const skip[] = {"",
                                     "\n",
                                     "   \t  ",
                                     "# tracer: nop",
                                     "#           TASK-PID     CPU#  ||||   TIMESTAMP  FUNCTION",
                                     "cpus=8",
                                     "version = 6",
                                     "CPU 3 is empty",
                                     "CPU:2 [LOST 1234 EVENTS]"};
  for (size_t i = 0; i < sizeof skip / sizeof *skip; i++) {
    struct ftrace_record r;
    char why[256];
    if (ftrace_parse_line(skip[i], &r, why, sizeof why) != FTRACE_LINE_SKIP)
      fail_msg("'%s' not skipped", skip[i]);
  }
}

static void bad_lines_say_why(void **state) {
  (void)state;
  static const struct {
    const char *line, *why_prefix;
  } cases[] = {
      {"garbage", "line: not an ftrace event line"},
      {"qemu [003] 1.000001: kvm_exit: reason HLT rip 0x1 info 0 0", "line: expected COMM-PID"},
      {"qemu-1 [003] toolongflags 1.000001: kvm_exit:", "timestamp: expected SECS.USECS:"},
      {"qemu-1 [003] d..1 1.000001 kvm_exit: x", "timestamp: \"1.000001\" is not SECS.FRAC:"},
      {"qemu-1 [003] 1.000001: no colon here", "event: expected \"EVENT:\""},
      {"qemu-1 [003] 1.000001: kvm_async_pf_not_present: token zz gva 0x1",
       "kvm_async_pf_not_present: fields \"token zz gva 0x1\" match no known format"},
      {"qemu-1 [003] 1.000001: kvm_async_pf_ready: token 0x1", "kvm_async_pf_ready: fields"},
      {"qemu-1 [003] 1.000001: kvm_try_async_get_page: gva 0x1 gfn 0x1",
       "kvm_try_async_get_page: fields"},
      {"qemu-1 [003] 1.000001: kvm_async_pf_completed: gva 0x1", "kvm_async_pf_completed: fields"},
      {"qemu-1 [003] 1.000001: kvm_page_fault: address 0x1", "kvm_page_fault: fields"},
      {"qemu-1 [003] 1.000001: kvm_exit: vcpu 0 reason HLT", "kvm_exit: fields"},
      {"qemu-1 [003] 1.000001: kvm_async_pf_not_present: token 0x1001zz gva 0x1",
       "kvm_async_pf_not_present: fields"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct ftrace_record r;
    char why[256] = "";
    enum ftrace_line_status st = ftrace_parse_line(cases[i].line, &r, why, sizeof why);
    if (st != FTRACE_LINE_BAD) fail_msg("'%s' accepted", cases[i].line);
    if (strncmp(why, cases[i].why_prefix, strlen(cases[i].why_prefix)))
      fail_msg("'%s': got \"%s\", expected \"%s...\"", cases[i].line, why, cases[i].why_prefix);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(both_layouts_every_event), cmocka_unit_test(old_and_new_formats),
      cmocka_unit_test(timestamps_are_exact),     cmocka_unit_test(task_column_variants),
      cmocka_unit_test(skipped_lines),            cmocka_unit_test(bad_lines_say_why),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
