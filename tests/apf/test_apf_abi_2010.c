/* test_apf_abi_2010.c — the 2010 ABI of a pre-5.8 host (Linux 5.4): not-present and
 * page-ready both as #PF with error code 0 and the token in CR2, reason 1 / 2 in the
 * shared word; page-ready waits until the vCPU could take an async #PF (no exception
 * pending, no re-injection, interrupts allowed), one per entry; page-ready is sent also
 * for faults whose not-present was never delivered — the orphans that leave dummy nodes
 * in the guest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake.h"

static struct fx *enabled2010(unsigned n) {
  struct apf_engine_config c = fx_cfg_2010(n);
  struct fx *f = fx_new(&c);
  for (unsigned v = 0; v < n; v++) fx_enable(f, v, 0);
  return f;
}

static void not_present_then_page_ready_as_pf_with_reason_1_then_2(void **state) {
  (void)state;
  struct fx *f = enabled2010(1);
  struct apf_decision d = fx_fault(f, 0, 0x123);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  assert_int_equal(f->n_inj, 1);
  assert_int_equal(f->inj[0].error_code, 0);
  assert_int_equal(f->inj[0].cr2, d.token);
  assert_int_equal(fx_rd32(f, FX_AREA(0)), APF_REASON_PAGE_NOT_PRESENT);
  /* The guest's #PF handler reads and clears the reason. */
  fx_take_pf(f, 0);
  fx_wr32(f, FX_AREA(0), 0);
  f->now = 9000;
  apf_fetch_done(f->e, 0x123, false);
  /* A pre-5.8 worker wakes a blocked vCPU but does not interrupt a running one. */
  assert_int_equal(f->kicks[0], 1);
  assert_int_equal(f->kicks_running[0], 0);
  assert_int_equal(f->n_inj, 1);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_inj, 2);
  assert_int_equal(f->inj[1].error_code, 0);
  assert_int_equal(f->inj[1].cr2, d.token);
  assert_int_equal(fx_rd32(f, FX_AREA(0)), APF_REASON_PAGE_READY);
  assert_int_equal(f->n_irq, 0);
  assert_true(fx_has_trace(f, "kvm_async_pf_completed: gva 0x123000 address 0x123000"));
  assert_true(fx_has_trace(f, "kvm_async_pf_ready: token 0x1000 gva 0x123000"));
  assert_true(fx_has_trace(f, "apf_inject_pf: kind page_ready error_code 0 cr2 0x1000"));
  const struct apf_stats *s = apf_vcpu_stats(f->e, 0);
  assert_int_equal(s->not_present, 1);
  assert_int_equal(s->page_ready, 1);
  assert_int_equal(s->orphan_page_ready, 0);
  assert_int_equal(s->outstanding, 0);
  assert_int_equal(f->n_prefault, 1);
  fx_free(f);
}

static void page_ready_waits_until_the_vcpu_can_take_a_pf(void **state) {
  (void)state;
  struct fx *f = enabled2010(1);
  assert_int_equal(fx_fault(f, 0, 0x10).outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0);
  apf_fetch_done(f->e, 0x10, false);
  f->st[0].interrupts_allowed = false;
  apf_vcpu_service(f->e, 0);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_inj, 1);
  assert_int_equal(fx_count_trace(f, "apf_page_ready_deferred"), 1); /* reported once */
  assert_true(fx_has_trace(f, "apf_page_ready_deferred: token 0x1000 why interrupts_blocked"));
  f->st[0].interrupts_allowed = true;
  f->st[0].exception_pending = true;
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_inj, 1);
  f->st[0].exception_pending = false;
  f->st[0].event_reinjecting = true;
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_inj, 1);
  f->st[0].event_reinjecting = false;
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_inj, 2);
  assert_int_equal(f->inj[1].cr2, 0x1000);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->page_ready_deferred, 1);
  fx_free(f);
}

static void one_page_ready_pf_per_entry(void **state) {
  (void)state;
  struct fx *f = enabled2010(1);
  uint32_t t[3];
  for (int i = 0; i < 3; i++) {
    t[i] = fx_fault(f, 0, 0x20 + (uint64_t)i).token;
    fx_take_pf(f, 0);
  }
  fx_clear_records(f);
  for (int i = 0; i < 3; i++) apf_fetch_done(f->e, 0x20 + (uint64_t)i, false);
  for (int i = 0; i < 3; i++) {
    apf_vcpu_service(f->e, 0);
    apf_vcpu_service(f->e, 0); /* the #PF is still pending: nothing more */
    assert_int_equal(f->n_inj, (size_t)i + 1);
    assert_int_equal(f->inj[i].cr2, t[i]); /* completion order */
    fx_take_pf(f, 0);
  }
  assert_int_equal(apf_vcpu_stats(f->e, 0)->outstanding, 0);
  fx_free(f);
}

static void page_ready_goes_also_to_faults_whose_not_present_was_never_delivered(void **state) {
  (void)state;
  struct fx *f = enabled2010(1);
  f->st[0].cpl = 0; /* no send-always: the not-present is withheld, the vCPU halts */
  struct apf_decision d = fx_fault(f, 0, 0x30);
  assert_int_equal(d.outcome, APF_OUTCOME_HALT);
  assert_int_equal(d.why, APF_WHY_CPL0);
  assert_int_equal(f->n_inj, 0);
  apf_fetch_done(f->e, 0x30, false);
  assert_false(f->halted[0]);
  apf_vcpu_service(f->e, 0);
  /* The pre-5.8 host sends the page-ready anyway: the guest finds no sleeper. */
  assert_int_equal(f->n_inj, 1);
  assert_int_equal(f->inj[0].cr2, d.token);
  assert_int_equal(fx_rd32(f, FX_AREA(0)), APF_REASON_PAGE_READY);
  assert_true(fx_has_trace(f, "apf_orphan_page_ready: token 0x1000 not-present was never delivered"));
  const struct apf_stats *s = apf_vcpu_stats(f->e, 0);
  assert_int_equal(s->orphan_page_ready, 1);
  assert_int_equal(s->page_ready, 1);
  fx_free(f);
}

static void a_guest_that_never_enabled_apf_gets_no_page_ready(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2010(1);
  struct fx *f = fx_new(&c);
  assert_int_equal(fx_fault(f, 0, 0x40).why, APF_WHY_NOT_ENABLED);
  apf_fetch_done(f->e, 0x40, false);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_inj, 0);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->page_ready_suppressed, 1);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->outstanding, 0);
  fx_free(f);
}

static void page_ready_overwrites_a_reason_the_guest_has_not_read_yet(void **state) {
  (void)state;
  /* The 2010 design flaw: one word for both events. */
  struct fx *f = enabled2010(1);
  assert_int_equal(fx_fault(f, 0, 0x50).outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0); /* delivered, but the handler has not read the reason yet */
  assert_int_equal(fx_rd32(f, FX_AREA(0)), APF_REASON_PAGE_NOT_PRESENT);
  assert_int_equal(fx_fault(f, 0, 0x51).outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0);
  apf_fetch_done(f->e, 0x50, false);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(fx_rd32(f, FX_AREA(0)), APF_REASON_PAGE_READY);
  fx_free(f);
}

static void the_token_slot_is_never_used(void **state) {
  (void)state;
  struct fx *f = enabled2010(1);
  fx_wr32(f, FX_AREA(0) + APF_AREA_TOKEN, 0xabcd);
  fx_fault(f, 0, 0x60);
  fx_take_pf(f, 0);
  apf_fetch_done(f->e, 0x60, false);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_inj, 2); /* a busy "slot" means nothing to a pre-5.8 host */
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_TOKEN), 0xabcd);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(not_present_then_page_ready_as_pf_with_reason_1_then_2),
      cmocka_unit_test(page_ready_waits_until_the_vcpu_can_take_a_pf),
      cmocka_unit_test(one_page_ready_pf_per_entry),
      cmocka_unit_test(page_ready_goes_also_to_faults_whose_not_present_was_never_delivered),
      cmocka_unit_test(a_guest_that_never_enabled_apf_gets_no_page_ready),
      cmocka_unit_test(page_ready_overwrites_a_reason_the_guest_has_not_read_yet),
      cmocka_unit_test(the_token_slot_is_never_used),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
