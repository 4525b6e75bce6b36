/* test_apf_errors.c — a page the host cannot bring in (truncated DAX file page, I/O
 * error) under each error-reporting variant:
 *   APF_ERR_NONE         mainline: page-ready anyway, the guest retries, the host queues a
 *                        new async fault, for ever (the truncation livelock);
 *   APF_ERR_PAGE_READY   the June 2020 series: ready_flags PAGE_ERROR next to the token
 *                        when the guest opted in (EN bit 4); otherwise the gfn is
 *                        remembered and its next fault is synchronous -> EFAULT;
 *   APF_ERR_FORCE_SYNC   the July 2020 series (v4): the failed gfn's next fault is
 *                        synchronous -> EFAULT exit to the VMM;
 *   APF_ERR_SYNC_EXCEPTION  the same, ending in a synchronous error exception.
 * Plus the engine's refusals of bad configs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake.h"

static struct fx *with(enum apf_error_reporting er, uint64_t en_extra) {
  struct apf_engine_config c = fx_cfg_2020(1);
  c.error_reporting = er;
  if (er == APF_ERR_PAGE_READY) c.kvm_features |= 1u << APF_FEATURE_ASYNC_PF_ERROR;
  struct fx *f = fx_new(&c);
  fx_enable(f, 0, en_extra);
  return f;
}

/* One async fault on a lost page whose read fails, presented and handled. Returns the
 * page-ready token the guest saw. */
static uint32_t failed_round(struct fx *f, uint64_t gfn) {
  struct apf_decision d = fx_fault_x(f, 0, gfn, false, true);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0);
  apf_fetch_done(f->e, gfn, true);
  apf_vcpu_service(f->e, 0);
  return fx_guest_page_ready(f, 0);
}

static void without_error_reporting_a_lost_page_livelocks(void **state) {
  (void)state;
  struct fx *f = with(APF_ERR_NONE, 0);
  fx_wr32(f, FX_AREA(0) + APF_AREA_READY_FLAGS, 0x5a5a);
  uint32_t prev = 0;
  for (int i = 0; i < 5; i++) {
    uint32_t t = failed_round(f, 0x99);
    assert_int_not_equal(t, prev); /* a new token every time: a fresh async fault */
    prev = t;
  }
  const struct apf_stats *s = apf_vcpu_stats(f->e, 0);
  assert_int_equal(s->works, 5);
  assert_int_equal(s->failed, 5);
  assert_int_equal(s->page_ready, 5);
  assert_int_equal(s->efaults, 0);
  assert_int_equal(s->error_reports, 0);
  assert_int_equal(s->prefaults, 0); /* nothing to map */
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_READY_FLAGS), 0x5a5a); /* mainline never writes it */
  assert_true(fx_has_trace(f, "kvm_async_pf_completed: gva 0x99000 address 0x99000"));
  assert_true(fx_has_trace(f, "apf_fetch_failed: token 0x5000 gfn 0x99"));
  fx_free(f);
}

static void page_ready_reports_the_error_to_a_guest_that_opted_in(void **state) {
  (void)state;
  struct fx *f = with(APF_ERR_PAGE_READY, APF_EN_SEND_ERROR);
  /* A good page: ready_flags written as 0. */
  fx_wr32(f, FX_AREA(0) + APF_AREA_READY_FLAGS, 0x5a5a);
  assert_int_equal(fx_fault(f, 0, 0x10).outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0);
  apf_fetch_done(f->e, 0x10, false);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_READY_FLAGS), 0);
  fx_guest_page_ready(f, 0);
  /* A lost page: PAGE_ERROR with its token. */
  struct apf_decision d = fx_fault_x(f, 0, 0x99, false, true);
  fx_take_pf(f, 0);
  apf_fetch_done(f->e, 0x99, true);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_TOKEN), d.token);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_READY_FLAGS), APF_READY_FLAG_PAGE_ERROR);
  assert_true(fx_has_trace(f, "apf_page_error: token 0x2000 ready_flags 0x1"));
  assert_int_equal(apf_vcpu_stats(f->e, 0)->error_reports, 1);
  fx_guest_page_ready(f, 0);
  /* Reported: the next fault is not forced synchronous. */
  assert_int_equal(fx_fault_x(f, 0, 0x99, false, true).outcome, APF_OUTCOME_ASYNC);
  fx_free(f);
}

static void page_ready_variant_falls_back_to_a_synchronous_fault_when_not_reported(void **state) {
  (void)state;
  struct fx *f = with(APF_ERR_PAGE_READY, 0); /* the guest did not set EN bit 4 */
  failed_round(f, 0x99);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_READY_FLAGS), 0);
  assert_true(fx_has_trace(f, "apf_error_gfn: gfn 0x99 next fault synchronous"));
  fx_clear_records(f);
  struct apf_decision d = fx_fault_x(f, 0, 0x99, false, true);
  assert_int_equal(d.outcome, APF_OUTCOME_EFAULT);
  assert_int_equal(d.why, APF_WHY_FORCED_SYNC);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->forced_sync, 1);
  /* A hint used once: the next fault takes the async path again. */
  assert_int_equal(fx_fault_x(f, 0, 0x99, false, true).outcome, APF_OUTCOME_ASYNC);
  fx_free(f);
}

static void page_ready_variant_remembers_an_error_the_guest_never_heard_of(void **state) {
  (void)state;
  struct fx *f = with(APF_ERR_PAGE_READY, APF_EN_SEND_ERROR);
  f->st[0].cpl = 0; /* not-present withheld: no page-ready will carry the error */
  assert_int_equal(fx_fault_x(f, 0, 0x98, false, true).outcome, APF_OUTCOME_HALT);
  apf_fetch_done(f->e, 0x98, true);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_irq, 0);
  assert_int_equal(fx_fault_x(f, 0, 0x98, false, true).outcome, APF_OUTCOME_EFAULT);
  fx_free(f);
}

static void force_sync_turns_the_next_fault_on_a_failed_gfn_into_efault(void **state) {
  (void)state;
  struct fx *f = with(APF_ERR_FORCE_SYNC, 0);
  uint32_t t = failed_round(f, 0x99); /* the guest still gets a plain page-ready */
  assert_int_not_equal(t, 0);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_READY_FLAGS), 0);
  struct apf_decision d = fx_fault_x(f, 0, 0x99, false, true);
  assert_int_equal(d.outcome, APF_OUTCOME_EFAULT);
  assert_int_equal(d.why, APF_WHY_FORCED_SYNC);
  assert_true(fx_has_trace(f, "apf_efault: gva 0x99000 gfn 0x99 why forced_sync outcome efault"));
  fx_free(f);
}

static void force_sync_on_a_page_that_came_back_is_an_ordinary_sync_fault(void **state) {
  (void)state;
  struct fx *f = with(APF_ERR_FORCE_SYNC, 0);
  failed_round(f, 0x99);
  fx_clear_records(f);
  struct apf_decision d = fx_fault(f, 0, 0x99); /* the file grew back */
  assert_int_equal(d.outcome, APF_OUTCOME_SYNC);
  assert_int_equal(d.why, APF_WHY_FORCED_SYNC);
  assert_int_equal(f->n_fetch, 1);
  assert_true(f->fetch[0].blocks);
  fx_free(f);
}

static void sync_exception_variant_ends_in_the_error_exception(void **state) {
  (void)state;
  struct fx *f = with(APF_ERR_SYNC_EXCEPTION, 0);
  failed_round(f, 0x99);
  struct apf_decision d = fx_fault_x(f, 0, 0x99, false, true);
  assert_int_equal(d.outcome, APF_OUTCOME_ERROR_EXCEPTION);
  f->st[0].interrupts_allowed = false;
  d = fx_fault_x(f, 0, 0x97, false, true);
  assert_int_equal(d.outcome, APF_OUTCOME_ERROR_EXCEPTION);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->efaults, 2);
  fx_free(f);
}

static void bad_configs_are_refused_with_a_message(void **state) {
  (void)state;
  struct apf_host_ops ops;
  memset(&ops, 0, sizeof(ops));
  struct diag d;
  struct apf_engine_config c = fx_cfg_2020(1);
  assert_null(apf_engine_create(&c, &ops, &d));
  assert_non_null(strstr(d.msg, "now_ns is required"));
  /* Everything else is checked before the ops. */
  c.n_vcpus = 0;
  assert_null(apf_engine_create(&c, &ops, &d));
  assert_non_null(strstr(d.msg, "n_vcpus 0"));
  c.n_vcpus = APF_MAX_VCPUS + 1;
  assert_null(apf_engine_create(&c, &ops, &d));
  c = fx_cfg_2020(1);
  c.max_outstanding = APF_MAX_OUTSTANDING + 1;
  assert_null(apf_engine_create(&c, &ops, &d));
  assert_non_null(strstr(d.msg, "max_outstanding"));
  c = fx_cfg_2010(1);
  c.error_reporting = APF_ERR_PAGE_READY;
  assert_null(apf_engine_create(&c, &ops, &d));
  assert_non_null(strstr(d.msg, "needs a 5.8+ host"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(without_error_reporting_a_lost_page_livelocks),
      cmocka_unit_test(page_ready_reports_the_error_to_a_guest_that_opted_in),
      cmocka_unit_test(page_ready_variant_falls_back_to_a_synchronous_fault_when_not_reported),
      cmocka_unit_test(page_ready_variant_remembers_an_error_the_guest_never_heard_of),
      cmocka_unit_test(force_sync_turns_the_next_fault_on_a_failed_gfn_into_efault),
      cmocka_unit_test(force_sync_on_a_page_that_came_back_is_an_ordinary_sync_fault),
      cmocka_unit_test(sync_exception_variant_ends_in_the_error_exception),
      cmocka_unit_test(bad_configs_are_refused_with_a_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
