/* test_selfcheck.c — the start-up self-check passes on this Unicorn, and a
 * vCPU boots into long mode and runs to its first HLT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"

static void selfcheck_passes(void **state) {
  (void)state;
  struct diag err = {{0}};
  bool ok = vcpu_backend_selfcheck(&err);
  if (!ok) fail_msg("%s", err.msg);
}

static void boots_and_halts(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_NOPS, false);
  struct vcpu_exit e = h_run(&h, 1000);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_int_equal(e.instructions, 65); /* 64 nops and the hlt */
  assert_int_equal(e.rip, CODE(T_NOPS) + 65);
  assert_true(vcpu_halted(h.v));
  /* halted with nothing to deliver: no progress */
  e = h_run(&h, 1000);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_int_equal(e.instructions, 0);
  struct vcpu_sregs s;
  vcpu_get_sregs(h.v, &s);
  assert_int_equal(s.cpl, 0);
  assert_int_equal(s.cs, VCPU_SEL_KERNEL_CS);
  assert_int_equal(s.cr3, G_PML4);
  h_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(selfcheck_passes),
      cmocka_unit_test(boots_and_halts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
