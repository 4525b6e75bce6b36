/* test_machine_host_speed.c — a run does not depend on how fast the host runs it
 * (DESIGN.md §4): the same configuration, once straight through and once with pauses of
 * more than Unicorn's 100 ms TLB-sizing window, gives the same trace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

/* Unicorn sizes its TLB from the host's wall clock (a 100 ms window), and a translation
 * it still holds sets no accessed bit: a run must not depend on that (the machine flushes
 * the TLBs CLOCK aged). Pauses in the middle of a run change the TLB's sizing. */
static bool pause_now_and_then(struct harness *h, unsigned vcpu, const struct machine_step *st, void *ctx) {
  (void)h, (void)vcpu, (void)st;
  unsigned *slices = ctx;
  if (++*slices % 400 == 0) {
    struct timespec t = {0, 120 * 1000 * 1000};
    nanosleep(&t, NULL);
  }
  return false;
}

static void host_speed_does_not_change_the_run(void **state) {
  (void)state;
  char sha[2][65];
  unsigned slices = 0;
  for (int r = 0; r < 2; r++) {
    struct harness h;
    hx_start(&h, hx_config("swap-sync-nvme.xml", NULL, 0), NULL);
    hx_run(&h, MACHINE_NEVER, r ? pause_now_and_then : NULL, &slices);
    struct run_summary s = {0};
    hx_finish(&h, &s);
    assert_int_equal(s.outcome, OUTCOME_OK);
    memcpy(sha[r], s.trace_sha256, sizeof sha[r]);
    hx_free(&h);
  }
  print_message("%u slices, %u pauses\n", slices, slices / 400);
  assert_true(slices >= 1200); /* it did pause, more than once */
  assert_string_equal(sha[0], sha[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(host_speed_does_not_change_the_run),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
