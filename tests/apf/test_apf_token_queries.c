/* test_apf_token_queries.c — the engine's answers to the race lab (docs/race-lab.md): which
 * tokens it gave out (apf_token_issued) and for which a page-ready can still come
 * (apf_token_pending): from the fault until the page-ready is presented, on both ABIs, and
 * never for a value it did not issue (a CR2 the guest took for a token). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "fake.h"

static struct fx *enabled(struct apf_engine_config c, unsigned n) {
  struct fx *f = fx_new(&c);
  for (unsigned v = 0; v < n; v++) fx_enable(f, v, 0);
  return f;
}

static void issued_means_given_out_by_that_vcpu(void **state) {
  (void)state;
  struct fx *f = enabled(fx_cfg_2020(2), 2);
  assert_false(apf_token_issued(f->e, 0x1000));
  struct apf_decision d = fx_fault(f, 0, 0x10);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  assert_int_equal(d.token, 0x1000);
  assert_true(apf_token_issued(f->e, 0x1000));
  assert_false(apf_token_issued(f->e, 0x2000)); /* vCPU 0's next one */
  assert_false(apf_token_issued(f->e, 0x1001)); /* vCPU 1 gave out none */
  assert_false(apf_token_issued(f->e, 0x1004)); /* no vCPU 4 */
  assert_false(apf_token_issued(f->e, 0));
  assert_false(apf_token_issued(f->e, 0xe0bf20)); /* a user stack address as "token" */
  fx_free(f);
}

static void pending_until_the_page_ready_is_presented_2020(void **state) {
  (void)state;
  struct fx *f = enabled(fx_cfg_2020(1), 1);
  uint32_t t = fx_fault(f, 0, 0x10).token;
  fx_take_pf(f, 0);
  assert_true(apf_token_pending(f->e, t));
  assert_false(apf_token_pending(f->e, 0xe0bf20));
  apf_fetch_done(f->e, 0x10, false);
  assert_true(apf_token_pending(f->e, t)); /* completed, not presented yet */
  apf_vcpu_service(f->e, 0);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_TOKEN), t);
  assert_false(apf_token_pending(f->e, t)); /* in the guest's hands now */
  assert_true(apf_token_issued(f->e, t));
  fx_free(f);
}

static void pending_until_the_page_ready_is_injected_2010(void **state) {
  (void)state;
  struct fx *f = enabled(fx_cfg_2010(1), 1);
  uint32_t t = fx_fault(f, 0, 0x10).token;
  fx_take_pf(f, 0);
  apf_fetch_done(f->e, 0x10, false);
  assert_true(apf_token_pending(f->e, t));
  fx_clear_records(f);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_inj, 1);
  assert_int_equal(f->inj[0].cr2, t);
  assert_false(apf_token_pending(f->e, t));
  fx_free(f);
}

static void a_queued_wake_all_answers_every_token(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  struct fx *f = fx_new(&c);
  /* Enabling queues a wake-all; while the slot is busy it waits, and until it is presented
   * any sleeper may still be woken. */
  fx_wr32(f, FX_AREA(0) + APF_AREA_TOKEN, 0x1234);
  assert_int_equal(apf_msr_write(f->e, 0, APF_MSR_INT, FX_VEC), APF_MSR_OK);
  assert_int_equal(apf_msr_write(f->e, 0, APF_MSR_EN, FX_AREA(0) | APF_EN_ENABLED | APF_EN_DELIVERY_AS_INT),
                   APF_MSR_OK);
  assert_int_equal(f->n_irq, 0);
  assert_true(apf_token_pending(f->e, 0xe0bf20));
  fx_wr32(f, FX_AREA(0) + APF_AREA_TOKEN, 0);
  assert_int_equal(apf_msr_write(f->e, 0, APF_MSR_ACK, 1), APF_MSR_OK);
  assert_int_equal(f->n_irq, 1);
  assert_false(apf_token_pending(f->e, 0xe0bf20));
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(issued_means_given_out_by_that_vcpu),
      cmocka_unit_test(pending_until_the_page_ready_is_presented_2020),
      cmocka_unit_test(pending_until_the_page_ready_is_injected_2010),
      cmocka_unit_test(a_queued_wake_all_answers_every_token),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
