/* test_apf_decide.c — the three outcomes of a host fault (DESIGN.md §2) and every
 * condition that leads to each: synchronous (async off, fault during event delivery,
 * event re-injection, exception pending, IF = 0 / interrupt shadow, 64 already queued),
 * async read + synthetic halt (APF not enabled, a 2010-style guest on a 5.8+ host, CPL 0
 * without send-always, repeated fault on an in-flight gfn, unwritable shared area; any
 * completion ends the halt), and APF (#PF, error code 0, CR2 = token, flags = 1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake.h"

static struct fx *enabled2020(unsigned n) {
  struct apf_engine_config c = fx_cfg_2020(n);
  struct fx *f = fx_new(&c);
  for (unsigned v = 0; v < n; v++) fx_enable(f, v, 0);
  return f;
}

static void assert_sync(struct fx *f, struct apf_decision d, enum apf_why why, uint64_t gfn) {
  assert_int_equal(d.outcome, APF_OUTCOME_SYNC);
  assert_int_equal(d.why, why);
  assert_false(d.new_work);
  /* The vCPU waits for the read: the fetch is a blocking one, no #PF, no halt. */
  assert_int_equal(f->n_fetch, 1);
  assert_int_equal(f->fetch[0].gfn, gfn);
  assert_true(f->fetch[0].blocks);
  assert_int_equal(f->n_inj, 0);
  assert_int_equal(f->halts[0], 0);
}

/* ---- APF ---- */

static void apf_injects_pf_error_code_0_cr2_token_and_writes_flags_1(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  f->now = 5000;
  struct apf_decision d = fx_fault(f, 0, 0x123);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  assert_int_equal(d.why, APF_WHY_NONE);
  assert_true(d.new_work);
  assert_int_equal(d.token, 0x1000);
  assert_int_equal(f->n_inj, 1);
  assert_int_equal(f->inj[0].error_code, 0);
  assert_int_equal(f->inj[0].cr2, 0x1000);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_FLAGS), APF_REASON_PAGE_NOT_PRESENT);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_TOKEN), 0); /* untouched by not-present */
  assert_int_equal(f->n_fetch, 1);
  assert_false(f->fetch[0].blocks);
  assert_false(f->halted[0]);
  /* The decision's trace, in order. */
  assert_int_equal(f->n_trace, 3);
  assert_string_equal(f->trace[0], "5000 cpu0 kvm_try_async_get_page: gva = 0x123000, gfn = 0x123");
  assert_string_equal(f->trace[1], "5000 cpu0 kvm_async_pf_not_present: token 0x1000 gva 0x123000");
  assert_string_equal(f->trace[2], "5000 cpu0 apf_inject_pf: kind not_present error_code 0 cr2 0x1000");
  const struct apf_stats *s = apf_vcpu_stats(f->e, 0);
  assert_int_equal(s->works, 1);
  assert_int_equal(s->not_present, 1);
  assert_int_equal(s->outstanding, 1);
  fx_free(f);
}

static void apf_at_cpl0_needs_send_always(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(2);
  struct fx *f = fx_new(&c);
  fx_enable(f, 0, 0);
  fx_enable(f, 1, APF_EN_SEND_ALWAYS);
  f->st[0].cpl = 0;
  f->st[1].cpl = 0;
  struct apf_decision d = fx_fault(f, 0, 0x10);
  assert_int_equal(d.outcome, APF_OUTCOME_HALT);
  assert_int_equal(d.why, APF_WHY_CPL0);
  assert_true(d.new_work);
  assert_true(f->halted[0]);
  assert_int_equal(fx_rd32(f, FX_AREA(0)), 0); /* nothing written for the guest */
  d = fx_fault(f, 1, 0x10);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  /* CPL 1 and 2 are not CPL 0. */
  f->st[0].cpl = 1;
  d = fx_fault(f, 0, 0x11);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  assert_true(fx_has_trace(f, "apf_synthetic_halt: gva 0x10000 gfn 0x10 why cpl0_without_send_always"));
  fx_free(f);
}

/* ---- synchronous ---- */

static void async_handling_off_makes_every_fault_synchronous(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  c.async_pf = false;
  struct fx *f = fx_new(&c);
  fx_enable(f, 0, 0);
  assert_sync(f, fx_fault(f, 0, 0x20), APF_WHY_ASYNC_DISABLED, 0x20);
  assert_int_equal(fx_count_trace(f, "kvm_try_async_get_page"), 0);
  assert_true(fx_has_trace(f, "apf_sync_fault: gva 0x20000 gfn 0x20 why async_disabled"));
  fx_free(f);
}

static void a_fault_during_event_delivery_is_synchronous(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  assert_sync(f, fx_fault_x(f, 0, 0x21, true, false), APF_WHY_REINJECTION, 0x21);
  fx_free(f);
}

static void an_event_being_reinjected_makes_it_synchronous(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  f->st[0].event_reinjecting = true;
  assert_sync(f, fx_fault(f, 0, 0x22), APF_WHY_REINJECTION, 0x22);
  fx_free(f);
}

static void a_pending_exception_makes_it_synchronous(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  f->st[0].exception_pending = true;
  assert_sync(f, fx_fault(f, 0, 0x23), APF_WHY_EXCEPTION_PENDING, 0x23);
  fx_free(f);
}

static void interrupts_blocked_make_it_synchronous_even_without_apf(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  struct fx *f = fx_new(&c); /* the guest never enables APF: it would halt, but cannot */
  f->st[0].interrupts_allowed = false;
  assert_sync(f, fx_fault(f, 0, 0x24), APF_WHY_INTERRUPTS_BLOCKED, 0x24);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->sync_why[APF_WHY_INTERRUPTS_BLOCKED], 1);
  fx_free(f);
}

static void the_65th_outstanding_fault_is_synchronous(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  for (uint64_t g = 0; g < APF_PER_VCPU_DEFAULT; g++) {
    struct apf_decision d = fx_fault(f, 0, 0x100 + g);
    assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
    fx_take_pf(f, 0);
  }
  assert_int_equal(apf_vcpu_stats(f->e, 0)->outstanding, 64);
  fx_clear_records(f);
  assert_sync(f, fx_fault(f, 0, 0x200), APF_WHY_QUEUE_FULL, 0x200);
  /* One completes and is presented: room again. */
  apf_fetch_done(f->e, 0x100, false);
  apf_vcpu_service(f->e, 0);
  fx_guest_page_ready(f, 0);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->outstanding, 63);
  assert_int_equal(fx_fault(f, 0, 0x201).outcome, APF_OUTCOME_ASYNC);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->outstanding_peak, 64);
  fx_free(f);
}

static void the_queue_limit_is_configurable(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  c.max_outstanding = 2;
  struct fx *f = fx_new(&c);
  fx_enable(f, 0, 0);
  assert_int_equal(fx_fault(f, 0, 1).outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0);
  assert_int_equal(fx_fault(f, 0, 2).outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0);
  assert_int_equal(fx_fault(f, 0, 3).why, APF_WHY_QUEUE_FULL);
  fx_free(f);
}

static void a_synchronous_fault_on_a_lost_page_is_efault(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  f->st[0].interrupts_allowed = false;
  struct apf_decision d = fx_fault_x(f, 0, 0x25, false, true);
  assert_int_equal(d.outcome, APF_OUTCOME_EFAULT);
  assert_int_equal(d.why, APF_WHY_INTERRUPTS_BLOCKED);
  assert_int_equal(f->n_fetch, 0);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->efaults, 1);
  assert_true(fx_has_trace(f, "apf_efault: gva 0x25000 gfn 0x25 why interrupts_blocked outcome efault"));
  fx_free(f);
}

/* ---- synthetic halt ---- */

static void a_guest_without_apf_gets_async_io_and_a_synthetic_halt(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  struct fx *f = fx_new(&c);
  struct apf_decision d = fx_fault(f, 0, 0x30);
  assert_int_equal(d.outcome, APF_OUTCOME_HALT);
  assert_int_equal(d.why, APF_WHY_NOT_ENABLED);
  assert_true(d.new_work);
  assert_true(f->halted[0]);
  assert_int_equal(f->n_inj, 0);
  assert_int_equal(f->n_fetch, 1);
  assert_false(f->fetch[0].blocks);
  /* The read finishing ends the halt; the page-ready has nobody to go to. */
  apf_fetch_done(f->e, 0x30, false);
  assert_false(f->halted[0]);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_irq, 0);
  const struct apf_stats *s = apf_vcpu_stats(f->e, 0);
  assert_int_equal(s->page_ready_suppressed, 1);
  assert_int_equal(s->outstanding, 0);
  assert_int_equal(s->synthetic_halts, 1);
  assert_int_equal(s->halt_why[APF_WHY_NOT_ENABLED], 1);
  fx_free(f);
}

static void a_2010_style_guest_on_a_5_8_host_only_halts(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  struct fx *f = fx_new(&c);
  assert_int_equal(apf_msr_write(f->e, 0, APF_MSR_EN, FX_AREA(0) | APF_EN_ENABLED), APF_MSR_OK);
  struct apf_decision d = fx_fault(f, 0, 0x31);
  assert_int_equal(d.outcome, APF_OUTCOME_HALT);
  assert_int_equal(d.why, APF_WHY_NOT_ENABLED);
  fx_free(f);
}

static void a_repeated_fault_on_an_in_flight_gfn_halts_without_new_work(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  struct apf_decision d = fx_fault(f, 0, 0x40);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0);
  fx_clear_records(f);
  d = fx_fault(f, 0, 0x40);
  assert_int_equal(d.outcome, APF_OUTCOME_HALT);
  assert_int_equal(d.why, APF_WHY_REPEATED_FAULT);
  assert_false(d.new_work);
  assert_int_equal(f->n_fetch, 0); /* the read is already running */
  assert_int_equal(f->n_inj, 0);
  assert_true(f->halted[0]);
  assert_true(fx_has_trace(f, "kvm_async_pf_repeated_fault: gva = 0x40000, gfn = 0x40"));
  assert_int_equal(apf_vcpu_stats(f->e, 0)->repeated_faults, 1);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->outstanding, 1);
  /* No token was taken: the next APF gets the next one. */
  f->halted[0] = false;
  assert_int_equal(fx_fault(f, 0, 0x41).token, 0x2000);
  fx_free(f);
}

static void the_retry_of_a_halted_fault_is_a_repeated_fault(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  struct fx *f = fx_new(&c);
  assert_int_equal(fx_fault(f, 0, 0x42).why, APF_WHY_NOT_ENABLED);
  f->halted[0] = false; /* an interrupt woke it; the guest retries the access */
  struct apf_decision d = fx_fault(f, 0, 0x42);
  assert_int_equal(d.outcome, APF_OUTCOME_HALT);
  assert_int_equal(d.why, APF_WHY_REPEATED_FAULT);
  assert_int_equal(f->n_fetch, 1);
  fx_free(f);
}

static void any_completion_of_the_vcpu_ends_its_halt(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  assert_int_equal(fx_fault(f, 0, 0x50).outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0);
  f->st[0].cpl = 0;
  assert_int_equal(fx_fault(f, 0, 0x51).outcome, APF_OUTCOME_HALT);
  assert_true(f->halted[0]);
  /* Not its own page: the other work's completion wakes it all the same. */
  apf_fetch_done(f->e, 0x50, false);
  assert_false(f->halted[0]);
  fx_free(f);
}

static void a_halt_with_completions_pending_ends_at_once(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  assert_int_equal(fx_fault(f, 0, 0x60).outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0);
  assert_int_equal(fx_fault(f, 0, 0x61).outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0);
  apf_fetch_done(f->e, 0x60, false);
  apf_fetch_done(f->e, 0x61, false);
  apf_vcpu_service(f->e, 0); /* 0x60 presented; 0x61 waits for the slot */
  assert_true(apf_vcpu_has_events(f->e, 0));
  f->st[0].cpl = 0;
  unsigned kicks = f->kicks[0];
  assert_int_equal(fx_fault(f, 0, 0x62).outcome, APF_OUTCOME_HALT);
  assert_false(f->halted[0]);
  assert_int_equal(f->kicks[0], kicks + 1);
  fx_free(f);
}

static void each_vcpu_has_its_own_work_for_the_same_gfn(void **state) {
  (void)state;
  struct fx *f = enabled2020(2);
  struct apf_decision a = fx_fault(f, 0, 0x70);
  struct apf_decision b = fx_fault(f, 1, 0x70);
  assert_int_equal(a.outcome, APF_OUTCOME_ASYNC);
  assert_int_equal(b.outcome, APF_OUTCOME_ASYNC); /* not a repeated fault: per-vCPU hash */
  assert_int_equal(a.token, 0x1000);
  assert_int_equal(b.token, 0x1001);
  apf_fetch_done(f->e, 0x70, false);
  apf_vcpu_service(f->e, 0);
  apf_vcpu_service(f->e, 1);
  assert_int_equal(f->n_irq, 2);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_TOKEN), 0x1000);
  assert_int_equal(fx_rd32(f, FX_AREA(1) + APF_AREA_TOKEN), 0x1001);
  struct apf_stats t;
  apf_total_stats(f->e, &t);
  assert_int_equal(t.not_present, 2);
  assert_int_equal(t.page_ready, 2);
  assert_int_equal(t.completed, 2);
  assert_int_equal(t.wake_all, 2);
  fx_free(f);
}

static void the_order_of_checks_is_kvms(void **state) {
  (void)state;
  /* IF = 0 wins over "APF not enabled" (sync, not halt); a pending exception wins over a
   * repeated fault (sync, not halt). */
  struct fx *f = enabled2020(1);
  assert_int_equal(fx_fault(f, 0, 0x80).outcome, APF_OUTCOME_ASYNC);
  /* the #PF is still pending */
  fx_clear_records(f);
  assert_sync(f, fx_fault(f, 0, 0x80), APF_WHY_EXCEPTION_PENDING, 0x80);
  fx_take_pf(f, 0);
  f->st[0].interrupts_allowed = false;
  fx_clear_records(f);
  assert_sync(f, fx_fault(f, 0, 0x80), APF_WHY_INTERRUPTS_BLOCKED, 0x80);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(apf_injects_pf_error_code_0_cr2_token_and_writes_flags_1),
      cmocka_unit_test(apf_at_cpl0_needs_send_always),
      cmocka_unit_test(async_handling_off_makes_every_fault_synchronous),
      cmocka_unit_test(a_fault_during_event_delivery_is_synchronous),
      cmocka_unit_test(an_event_being_reinjected_makes_it_synchronous),
      cmocka_unit_test(a_pending_exception_makes_it_synchronous),
      cmocka_unit_test(interrupts_blocked_make_it_synchronous_even_without_apf),
      cmocka_unit_test(the_65th_outstanding_fault_is_synchronous),
      cmocka_unit_test(the_queue_limit_is_configurable),
      cmocka_unit_test(a_synchronous_fault_on_a_lost_page_is_efault),
      cmocka_unit_test(a_guest_without_apf_gets_async_io_and_a_synthetic_halt),
      cmocka_unit_test(a_2010_style_guest_on_a_5_8_host_only_halts),
      cmocka_unit_test(a_repeated_fault_on_an_in_flight_gfn_halts_without_new_work),
      cmocka_unit_test(the_retry_of_a_halted_fault_is_a_repeated_fault),
      cmocka_unit_test(any_completion_of_the_vcpu_ends_its_halt),
      cmocka_unit_test(a_halt_with_completions_pending_ends_at_once),
      cmocka_unit_test(each_vcpu_has_its_own_work_for_the_same_gfn),
      cmocka_unit_test(the_order_of_checks_is_kvms),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
