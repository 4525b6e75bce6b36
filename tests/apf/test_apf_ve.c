/* test_apf_ve.c — apfsim's #VE delivery in the host engine (sim/apf/ve.c, docs/guest.md
 * §1.10): the #VE information MSR, not-present by #VE instead of #PF, the busy-word rule
 * (a busy area makes the fault synchronous, before any token is taken), and page errors
 * as a synchronous #VE (ERROR_EXCEPTION). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "fake.h"

#define VE_AREA(v) (UINT64_C(0x9000) + (uint64_t)(v) * 0x40)

static uint64_t rd64(struct fx *f, uint64_t gpa) {
  return fx_rd32(f, gpa) | (uint64_t)fx_rd32(f, gpa + 4) << 32;
}

static void register_ve(struct fx *f, unsigned v, uint64_t bits) {
  assert_int_equal(apf_msr_write(f->e, v, APF_MSR_VE_INFO, VE_AREA(v) | bits), APF_MSR_OK);
}

static void ve_msr(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(2);
  struct fx *f = fx_new(&c);
  /* reserved bits 5:3, an area outside RAM */
  assert_int_equal(apf_msr_write(f->e, 0, APF_MSR_VE_INFO, VE_AREA(0) | APF_VE_INFO_ENABLE | 0x8), APF_MSR_GP);
  assert_int_equal(apf_msr_write(f->e, 0, APF_MSR_VE_INFO, (uint64_t)FX_RAM | APF_VE_INFO_ENABLE), APF_MSR_GP);
  fx_clear_records(f);
  register_ve(f, 0, APF_VE_INFO_ENABLE | APF_VE_INFO_NOT_PRESENT);
  uint64_t v = 0;
  assert_int_equal(apf_msr_read(f->e, 0, APF_MSR_VE_INFO, &v), APF_MSR_OK);
  assert_int_equal(v, VE_AREA(0) | APF_VE_INFO_ENABLE | APF_VE_INFO_NOT_PRESENT);
  /* the host writes the area at any time: pinned, and unpinned when disabled */
  assert_int_equal(f->n_pin, 1);
  assert_true(f->pin[0].in_use && f->pin[0].gpa == VE_AREA(0));
  assert_int_equal(apf_msr_write(f->e, 0, APF_MSR_VE_INFO, 0), APF_MSR_OK);
  assert_int_equal(f->n_pin, 2);
  assert_false(f->pin[1].in_use);
  struct apf_msr_spec spec;
  assert_true(apf_ve_msr_spec(f->e, &spec));
  assert_int_equal(spec.msr, APF_MSR_VE_INFO);
  assert_int_equal(spec.write_reserved, APF_VE_INFO_RESERVED);
  fx_free(f);

  /* a pre-5.8 host has no page-ready interrupt: not-present by #VE is refused, page
   * errors are not */
  c = fx_cfg_2010(1);
  f = fx_new(&c);
  assert_int_equal(apf_msr_write(f->e, 0, APF_MSR_VE_INFO, VE_AREA(0) | APF_VE_INFO_ENABLE | APF_VE_INFO_NOT_PRESENT),
                   APF_MSR_GP);
  register_ve(f, 0, APF_VE_INFO_ENABLE | APF_VE_INFO_PAGE_ERROR);
  fx_free(f);
}

static void not_present_by_ve(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(2);
  struct fx *f = fx_new(&c);
  fx_enable(f, 1, 0);
  register_ve(f, 1, APF_VE_INFO_ENABLE | APF_VE_INFO_NOT_PRESENT);
  fx_clear_records(f);
  struct apf_fault flt = {.gpa = 0x42000, .gva = 0x42123, .write = true};
  struct apf_decision d;
  apf_fault(f->e, 1, &flt, &d);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  assert_int_equal(d.token, (1u << 12) | 1);
  /* a #VE, not a #PF: the APF word stays 0, the token is in the #VE area */
  assert_int_equal(f->n_inj, 0);
  assert_int_equal(f->ves[1], 1);
  assert_int_equal(fx_rd32(f, FX_AREA(1) + APF_AREA_FLAGS), 0);
  assert_int_equal(fx_rd32(f, VE_AREA(1) + APF_VE_AREA_REASON), APF_VE_REASON_NOT_PRESENT);
  assert_int_equal(fx_rd32(f, VE_AREA(1) + APF_VE_AREA_BUSY), APF_VE_BUSY);
  assert_int_equal(rd64(f, VE_AREA(1) + APF_VE_AREA_TOKEN), d.token);
  assert_int_equal(rd64(f, VE_AREA(1) + APF_VE_AREA_GVA), 0x42123);
  assert_int_equal(rd64(f, VE_AREA(1) + APF_VE_AREA_GPA), 0x42000);
  assert_int_equal(fx_rd32(f, VE_AREA(1) + APF_VE_AREA_ACCESS), APF_VE_ACCESS_WRITE | APF_VE_ACCESS_USER);
  assert_true(fx_has_trace(f, "apf_inject_ve: kind not_present token 0x1001 gva 0x42123 gpa 0x42000 access 0x5"));
  const struct apf_stats *st = apf_vcpu_stats(f->e, 1);
  assert_int_equal(st->not_present, 1);
  assert_int_equal(st->ve_not_present, 1);
  /* its page-ready is the ordinary 2020 interrupt with the token */
  fx_take_pf(f, 1);
  fx_wr32(f, VE_AREA(1) + APF_VE_AREA_BUSY, 0); /* the guest released the area */
  apf_fetch_done(f->e, 0x42, false);
  apf_vcpu_service(f->e, 1);
  assert_int_equal(f->n_irq, 1);
  assert_int_equal(fx_guest_page_ready(f, 1), d.token);
  fx_free(f);
}

static void busy_area_is_synchronous(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  struct fx *f = fx_new(&c);
  fx_enable(f, 0, 0);
  register_ve(f, 0, APF_VE_INFO_ENABLE | APF_VE_INFO_NOT_PRESENT);
  struct apf_decision d = fx_fault(f, 0, 0x50);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0);
  fx_clear_records(f);
  /* the guest still owns the area: the next not-present cannot be a #VE */
  d = fx_fault(f, 0, 0x51);
  assert_int_equal(d.outcome, APF_OUTCOME_SYNC);
  assert_int_equal(d.why, APF_WHY_VE_BUSY);
  assert_false(d.new_work);
  assert_int_equal(f->ves[0], 1); /* only the first one */
  assert_int_equal(f->n_fetch, 1);
  assert_true(f->fetch[0].blocks);
  assert_true(fx_has_trace(f, "apf_ve_refused: kind not_present gva 0x51000 why busy"));
  assert_true(fx_has_trace(f, "apf_sync_fault: gva 0x51000 gfn 0x51 why ve_area_busy"));
  assert_int_equal(apf_vcpu_stats(f->e, 0)->ve_refused, 1);
  /* no token was taken for it: the next APF gets the next id */
  fx_wr32(f, VE_AREA(0) + APF_VE_AREA_BUSY, 0);
  d = fx_fault(f, 0, 0x52);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  assert_int_equal(d.token, 2u << 12);
  /* CPL 0 without send-always: not delivered, whatever the area says */
  fx_take_pf(f, 0);
  fx_wr32(f, VE_AREA(0) + APF_VE_AREA_BUSY, 0);
  f->st[0].cpl = 0;
  d = fx_fault(f, 0, 0x53);
  assert_int_equal(d.outcome, APF_OUTCOME_HALT);
  assert_int_equal(d.why, APF_WHY_CPL0);
  assert_int_equal(f->ves[0], 2);
  fx_free(f);
}

static void page_error_by_ve(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  c.error_reporting = APF_ERR_SYNC_EXCEPTION;
  struct fx *f = fx_new(&c);
  fx_enable(f, 0, 0);
  struct apf_fault flt = {.gpa = 0x60000, .gva = 0x60008, .unresolvable = true};
  f->st[0].interrupts_allowed = false; /* a synchronous fault */
  struct apf_decision d;
  apf_fault(f->e, 0, &flt, &d);
  assert_int_equal(d.outcome, APF_OUTCOME_ERROR_EXCEPTION);
  /* not registered: nothing reaches the guest (the caller exits with EFAULT) */
  assert_false(apf_ve_page_error(f->e, 0, &flt));
  assert_true(fx_has_trace(f, "apf_ve_refused: kind page_error gva 0x60008 why not_registered"));
  register_ve(f, 0, APF_VE_INFO_ENABLE | APF_VE_INFO_PAGE_ERROR);
  f->st[0].cpl = 0;
  assert_true(apf_ve_page_error(f->e, 0, &flt));
  assert_int_equal(f->ves[0], 1);
  assert_int_equal(fx_rd32(f, VE_AREA(0) + APF_VE_AREA_REASON), APF_VE_REASON_PAGE_ERROR);
  assert_int_equal(rd64(f, VE_AREA(0) + APF_VE_AREA_TOKEN), 0);
  assert_int_equal(rd64(f, VE_AREA(0) + APF_VE_AREA_GVA), 0x60008);
  assert_int_equal(fx_rd32(f, VE_AREA(0) + APF_VE_AREA_ACCESS), 0); /* a kernel read */
  /* busy: the second error cannot be delivered */
  fx_take_pf(f, 0);
  assert_false(apf_ve_page_error(f->e, 0, &flt));
  assert_true(fx_has_trace(f, "apf_ve_refused: kind page_error gva 0x60008 why busy"));
  const struct apf_stats *st = apf_vcpu_stats(f->e, 0);
  assert_int_equal(st->ve_page_errors, 1);
  assert_int_equal(st->ve_refused, 2);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ve_msr),
      cmocka_unit_test(not_present_by_ve),
      cmocka_unit_test(busy_area_is_synchronous),
      cmocka_unit_test(page_error_by_ve),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
