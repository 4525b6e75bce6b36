/* test_machine_boot.c — configs/boot.xml on the machine (sim/machine) driven by the test
 * harness: the guest boots on 2 vCPUs, every process finishes with its operation count,
 * the summary's per-vCPU and per-process counts add up, and two runs are identical. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static void boot_xml_runs_to_ok_with_every_process_counted(void **state) {
  (void)state;
  struct harness h;
  hx_start(&h, hx_config("boot.xml", NULL, 0), NULL);
  hx_run(&h, MACHINE_NEVER, NULL, NULL);
  struct run_summary s = {0};
  hx_finish(&h, &s);
  assert_int_equal(s.outcome, OUTCOME_OK);
  assert_non_null(strstr(s.verdict, "all 4 processes finished: pid 1 compute 2000 ops, pid 2 compute 2000 ops, "
                                    "pid 3 memory 100000 ops, pid 4 mixed 50000 ops in "));
  assert_non_null(strstr(s.verdict, " ms simulated"));
  const uint64_t ops[] = {2000, 2000, 100000, 50000}, kinds[] = {0, 0, 1, 2};
  for (size_t k = 0; k < 4; k++) {
    assert_int_equal(hx_section_value(&s, "processes", k, "pid"), k + 1);
    assert_int_equal(hx_section_value(&s, "processes", k, "kind"), kinds[k]);
    assert_int_equal(hx_section_value(&s, "processes", k, "ops"), ops[k]);
    assert_int_equal(hx_section_value(&s, "processes", k, "exited"), 1);
    assert_true(hx_section_value(&s, "processes", k, "cpu_ns") > 0);
  }
  assert_int_equal(s.workload.ops, 154000);
  assert_int_equal(s.n_vcpus, 2);
  uint64_t insns = 0, ept = 0;
  for (size_t i = 0; i < 2; i++) {
    insns += s.vcpus[i].instructions;
    ept += s.vcpus[i].ept_violations;
    assert_true(s.vcpus[i].instructions > 1000000);
    assert_true(s.vcpus[i].vm_exits >= s.vcpus[i].ept_violations);
    assert_true(s.vcpus[i].interrupts > 0);
    /* run + halted + blocked time covers the vCPU's whole life up to the end */
    uint64_t t = hx_section_value(&s, "vcpu_time", i, "run_ns") + hx_section_value(&s, "vcpu_time", i, "halted_ns") +
                 hx_section_value(&s, "vcpu_time", i, "blocked_ns");
    assert_true(t + 2 >= s.sim_time_ns * 99 / 100 && t <= s.sim_time_ns + 2);
  }
  assert_int_equal(insns, s.guest_instructions);
  assert_int_equal(hx_section_value(&s, "host", 0, "ept_violations"), ept);
  /* no memory limit: every EPT violation is a first-touch zero fill, no I/O */
  assert_int_equal(hx_section_value(&s, "host", 0, "zero_fills"), ept);
  assert_int_equal(hx_section_value(&s, "host", 0, "page_reads"), 0);
  assert_int_equal(s.apf.sync_faults, 0);
  hx_free(&h);
}

static void two_runs_give_the_same_trace(void **state) {
  (void)state;
  char sha[2][65];
  for (int r = 0; r < 2; r++) {
    struct harness h;
    hx_start(&h, hx_config("boot.xml", NULL, 0), NULL);
    hx_run(&h, MACHINE_NEVER, NULL, NULL);
    struct run_summary s = {0};
    hx_finish(&h, &s);
    memcpy(sha[r], s.trace_sha256, sizeof sha[r]);
    hx_free(&h);
  }
  assert_string_equal(sha[0], sha[1]);
}

static void one_vcpu_runs_the_same_workload(void **state) {
  (void)state;
  const char *set[] = {"machine/vcpus=1"};
  struct harness h;
  hx_start(&h, hx_config("boot.xml", set, 1), NULL);
  hx_run(&h, MACHINE_NEVER, NULL, NULL);
  struct run_summary s = {0};
  hx_finish(&h, &s);
  assert_int_equal(s.outcome, OUTCOME_OK);
  assert_int_equal(s.workload.ops, 154000);
  assert_int_equal(s.vcpus[0].halted_ns, 0); /* always something to run */
  hx_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(boot_xml_runs_to_ok_with_every_process_counted),
      cmocka_unit_test(two_runs_give_the_same_trace),
      cmocka_unit_test(one_vcpu_runs_the_same_workload),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
