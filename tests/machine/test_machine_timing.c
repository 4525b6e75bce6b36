/* test_machine_timing.c — the machine's timing rules (docs/platform.md "Timing"):
 * a LAPIC timer expiry stops the running vCPU at its own time even with a quantum far
 * longer than the tick; the simulated-time limit ends the run ok only when no bounded
 * process is left unfinished, else timeout naming them; the instruction limit is exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* The longest an exit's own cost can carry a vCPU past a bound with the default costs:
 * VM exit + entry + EPT violation handling (700 + 650 + 2000 cycles at 2 GHz). */
#define MAX_EXIT_OVERSHOOT_NS 1675u

static void timer_expiries_stop_the_vcpu_at_their_time(void **state) {
  (void)state;
  /* a quantum of 1M instructions is 500 us at 2 GHz: five ticks of 100 us */
  const char *set[] = {"machine/quantum-instructions=1000000", "guest/timer-period=100us"};
  char trace_path[] = "/tmp/apfsim-machine-timer-XXXXXX";
  int fd = mkstemp(trace_path);
  assert_true(fd >= 0);
  close(fd);
  struct harness h;
  hx_start(&h, hx_config("boot.xml", set, 2), trace_path);
  hx_run(&h, MACHINE_NEVER, NULL, NULL);
  struct run_summary s = {0};
  hx_finish(&h, &s);
  assert_int_equal(s.outcome, OUTCOME_OK);

  struct diag d = {{0}};
  struct trace_reader *r = trace_reader_open(trace_path, &d);
  assert_non_null(r);
  struct trace_record rec;
  unsigned expiries = 0, exact = 0;
  uint64_t worst = 0;
  while (trace_reader_next(r, &rec, &d) == TRACE_READ_EVENT) {
    if (strcmp(rec.name, "apic_timer")) continue;
    unsigned long long due;
    assert_int_equal(sscanf(rec.fields, "due_ns %llu", &due), 1);
    assert_true(rec.time_ns >= due);
    uint64_t late = rec.time_ns - due;
    expiries++;
    if (late <= 1) exact++; /* the first instruction boundary at or after the expiry */
    if (late > worst) worst = late;
  }
  trace_reader_close(r);
  unlink(trace_path);
  print_message("%u expiries, %u at their ns, worst %llu ns late\n", expiries, exact, (unsigned long long)worst);
  assert_true(expiries > 200);
  assert_true(exact * 100 >= expiries * 90); /* the others expired during an exit */
  /* late only behind an exit's own cost (the vCPU was in the host), never a quantum */
  assert_true(worst <= MAX_EXIT_OVERSHOOT_NS);
  hx_free(&h);
}

static void time_limit_with_unfinished_processes_is_a_timeout_naming_them(void **state) {
  (void)state;
  const char *set[] = {"limits/max-sim-time=3ms"};
  struct harness h;
  hx_start(&h, hx_config("boot.xml", set, 1), NULL);
  hx_run(&h, 3000000000ull, NULL, NULL);
  struct run_summary s = {0};
  hx_finish(&h, &s);
  print_message("verdict: %s\n", s.verdict);
  assert_int_equal(s.outcome, OUTCOME_TIMEOUT);
  assert_int_equal(s.sim_time_ns, 3000000);
  assert_non_null(strstr(s.verdict, "the simulated time limit (3.000 ms, limits/max-sim-time) was reached with 4 of 4 "
                                    "processes unfinished: pid 1 compute "));
  assert_non_null(strstr(s.verdict, " of 2000 ops, pid 2 compute "));
  assert_non_null(strstr(s.verdict, " of 100000 ops, pid 4 mixed "));
  hx_free(&h);
}

static void time_limit_with_only_unbounded_processes_is_ok(void **state) {
  (void)state;
  const char *set[] = {"limits/max-sim-time=3ms", "workload/process[1]/ops=unlimited",
                       "workload/process[2]/ops=unlimited", "workload/process[3]/ops=unlimited"};
  struct harness h;
  hx_start(&h, hx_config("boot.xml", set, 4), NULL);
  hx_run(&h, 3000000000ull, NULL, NULL);
  struct run_summary s = {0};
  hx_finish(&h, &s);
  print_message("verdict: %s\n", s.verdict);
  assert_int_equal(s.outcome, OUTCOME_OK);
  assert_non_null(strstr(s.verdict, "ran to the simulated time limit (3.000 ms) with no process left unfinished"));
  assert_true(s.workload.ops > 0);
  hx_free(&h);
}

static void instruction_limit_is_exact(void **state) {
  (void)state;
  const char *set[] = {"limits/max-guest-instructions=1234567"};
  struct harness h;
  hx_start(&h, hx_config("boot.xml", set, 1), NULL);
  hx_run(&h, MACHINE_NEVER, NULL, NULL);
  struct run_summary s = {0};
  hx_finish(&h, &s);
  assert_int_equal(s.outcome, OUTCOME_TIMEOUT);
  assert_int_equal(s.guest_instructions, 1234567);
  assert_non_null(strstr(s.verdict, "the guest instruction limit (1234567, limits/max-guest-instructions)"));
  hx_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(timer_expiries_stop_the_vcpu_at_their_time),
      cmocka_unit_test(time_limit_with_unfinished_processes_is_a_timeout_naming_them),
      cmocka_unit_test(time_limit_with_only_unbounded_processes_is_ok),
      cmocka_unit_test(instruction_limit_is_exact),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
