/* test_apf_msr.c — MSR_KVM_ASYNC_PF_EN / _INT / _ACK: bit semantics and #GPs, PV-CPUID
 * enforcement, what "enabled" means for a 5.8+ and a pre-5.8 host, the wake-all every
 * enabling write queues, disabling, the shared-area pin, and the specs the vCPU's MSR
 * table gets. Rules and sources: docs/apf.md "MSRs". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake.h"

#define EN_2020 (APF_EN_ENABLED | APF_EN_DELIVERY_AS_INT)

static uint64_t rd(struct fx *f, unsigned v, uint32_t msr, enum apf_msr_result want) {
  uint64_t val = 0xdead;
  assert_int_equal(apf_msr_read(f->e, v, msr, &val), want);
  return val;
}

static enum apf_msr_result wr(struct fx *f, unsigned v, uint32_t msr, uint64_t val) {
  return apf_msr_write(f->e, v, msr, val);
}

static struct fx *new2020(void) {
  struct apf_engine_config c = fx_cfg_2020(2);
  return fx_new(&c);
}

static struct fx *new2010(void) {
  struct apf_engine_config c = fx_cfg_2010(2);
  return fx_new(&c);
}

/* ---- EN ---- */

static void en_value_is_stored_and_read_back_whole(void **state) {
  (void)state;
  struct fx *f = new2020();
  uint64_t val = FX_AREA(0) | EN_2020 | APF_EN_SEND_ALWAYS | APF_EN_DELIVERY_AS_PF_VMEXIT;
  assert_int_equal(wr(f, 0, APF_MSR_EN, val), APF_MSR_OK);
  assert_int_equal(rd(f, 0, APF_MSR_EN, APF_MSR_OK), val);
  assert_true(apf_vcpu_enabled(f->e, 0));
  assert_false(apf_vcpu_enabled(f->e, 1));
  assert_true(fx_has_trace(f, "apf_msr_write: msr 0x4b564d02 value 0x800f ok"));
  fx_free(f);
}

static void en_reserved_bits_5_4_are_gp_on_a_5_8_host(void **state) {
  (void)state;
  struct fx *f = new2020();
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020), APF_MSR_OK);
  for (int bit = 4; bit <= 5; bit++) {
    assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020 | (UINT64_C(1) << bit)), APF_MSR_GP);
    /* KVM checks reserved bits before storing: the old value stays. */
    assert_int_equal(rd(f, 0, APF_MSR_EN, APF_MSR_OK), FX_AREA(0) | EN_2020);
  }
  assert_int_equal(apf_vcpu_stats(f->e, 0)->msr_gp, 2);
  assert_true(fx_has_trace(f, "apf_msr_write: msr 0x4b564d02 value 0x8019 gp: reserved bits set"));
  fx_free(f);
}

static void en_reserved_bits_5_3_are_gp_on_a_pre_5_8_host(void **state) {
  (void)state;
  struct fx *f = new2010();
  for (int bit = 3; bit <= 5; bit++)
    assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | APF_EN_ENABLED | (UINT64_C(1) << bit)), APF_MSR_GP);
  assert_false(apf_vcpu_enabled(f->e, 0));
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | APF_EN_ENABLED | APF_EN_SEND_ALWAYS), APF_MSR_OK);
  assert_true(apf_vcpu_enabled(f->e, 0));
  fx_free(f);
}

static void en_bit4_is_allowed_only_with_the_error_reporting_variant(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  c.error_reporting = APF_ERR_PAGE_READY;
  struct fx *f = fx_new(&c);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020 | APF_EN_SEND_ERROR), APF_MSR_OK);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020 | (UINT64_C(1) << 5)), APF_MSR_GP);
  fx_free(f);
  /* Other variants keep bit 4 reserved. */
  c.error_reporting = APF_ERR_FORCE_SYNC;
  f = fx_new(&c);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020 | APF_EN_SEND_ERROR), APF_MSR_GP);
  fx_free(f);
}

static void a_5_8_host_counts_apf_enabled_only_with_bits_0_and_3(void **state) {
  (void)state;
  struct fx *f = new2020();
  /* A 2010-style guest: accepted, not enabled, no wake-all. */
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | APF_EN_ENABLED), APF_MSR_OK);
  assert_false(apf_vcpu_enabled(f->e, 0));
  assert_int_equal(apf_vcpu_stats(f->e, 0)->wake_all, 0);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | APF_EN_DELIVERY_AS_INT), APF_MSR_OK);
  assert_false(apf_vcpu_enabled(f->e, 0));
  assert_int_equal(f->n_irq + f->n_inj, 0);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020), APF_MSR_OK);
  assert_true(apf_vcpu_enabled(f->e, 0));
  assert_int_equal(apf_vcpu_stats(f->e, 0)->wake_all, 1);
  fx_free(f);
}

static void a_pre_5_8_host_counts_apf_enabled_with_bit_0(void **state) {
  (void)state;
  struct fx *f = new2010();
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | APF_EN_ENABLED), APF_MSR_OK);
  assert_true(apf_vcpu_enabled(f->e, 0));
  fx_free(f);
}

static void en_area_outside_guest_ram_is_gp_but_the_value_is_kept(void **state) {
  (void)state;
  struct fx *f = new2020();
  uint64_t val = (UINT64_C(1) << 30) | EN_2020;
  assert_int_equal(wr(f, 0, APF_MSR_EN, val), APF_MSR_GP);
  /* kvm_pv_enable_async_pf stores msr_en_val before the hva cache set-up fails. */
  assert_int_equal(rd(f, 0, APF_MSR_EN, APF_MSR_OK), val);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->wake_all, 0);
  /* With no usable area a not-present cannot be written: the fault halts. */
  struct apf_decision d = fx_fault(f, 0, 0x42);
  assert_int_equal(d.outcome, APF_OUTCOME_HALT);
  assert_int_equal(d.why, APF_WHY_AREA_WRITE_FAILED);
  fx_free(f);
}

/* ---- PV CPUID enforcement ---- */

static void pv_cpuid_enforcement_gps_msrs_and_bits_whose_feature_is_not_offered(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  c.enforce_pv_cpuid = true;
  c.kvm_features = 0;
  struct fx *f = fx_new(&c);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020), APF_MSR_GP);
  rd(f, 0, APF_MSR_EN, APF_MSR_GP);
  assert_int_equal(wr(f, 0, APF_MSR_INT, FX_VEC), APF_MSR_GP);
  rd(f, 0, APF_MSR_INT, APF_MSR_GP);
  assert_int_equal(wr(f, 0, APF_MSR_ACK, 1), APF_MSR_GP);
  rd(f, 0, APF_MSR_ACK, APF_MSR_GP);
  fx_free(f);

  /* ASYNC_PF only: EN works, but its bit 3 needs ASYNC_PF_INT, bit 2 ASYNC_PF_VMEXIT. */
  c.kvm_features = 1u << APF_FEATURE_ASYNC_PF;
  f = fx_new(&c);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | APF_EN_ENABLED), APF_MSR_OK);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020), APF_MSR_GP);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | APF_EN_ENABLED | APF_EN_DELIVERY_AS_PF_VMEXIT), APF_MSR_GP);
  assert_true(fx_has_trace(f, "apf_msr_write: msr 0x4b564d02 value 0x8009 gp: bit 3 needs ASYNC_PF_INT (CPUID bit 14)"));
  /* ACK belongs to ASYNC_PF_INT (the 5.14 fix), not ASYNC_PF. */
  assert_int_equal(wr(f, 0, APF_MSR_ACK, 1), APF_MSR_GP);
  fx_free(f);

  c.kvm_features = (1u << APF_FEATURE_ASYNC_PF) | (1u << APF_FEATURE_ASYNC_PF_INT);
  f = fx_new(&c);
  assert_int_equal(wr(f, 0, APF_MSR_INT, FX_VEC), APF_MSR_OK);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020), APF_MSR_OK);
  assert_int_equal(wr(f, 0, APF_MSR_ACK, 1), APF_MSR_OK);
  fx_free(f);
}

static void without_enforcement_features_do_not_matter(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  c.enforce_pv_cpuid = false;
  c.kvm_features = 0;
  struct fx *f = fx_new(&c);
  assert_int_equal(wr(f, 0, APF_MSR_INT, FX_VEC), APF_MSR_OK);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020 | APF_EN_DELIVERY_AS_PF_VMEXIT), APF_MSR_OK);
  assert_int_equal(wr(f, 0, APF_MSR_ACK, 1), APF_MSR_OK);
  fx_free(f);
}

static void pre_5_8_hosts_predate_pv_cpuid_enforcement(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2010(1);
  c.enforce_pv_cpuid = true;
  c.kvm_features = 0;
  struct fx *f = fx_new(&c);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | APF_EN_ENABLED), APF_MSR_OK);
  fx_free(f);
}

/* ---- INT and ACK ---- */

static void int_keeps_the_vector_and_gps_on_bits_63_8(void **state) {
  (void)state;
  struct fx *f = new2020();
  assert_int_equal(wr(f, 0, APF_MSR_INT, 0xf3), APF_MSR_OK);
  assert_int_equal(rd(f, 0, APF_MSR_INT, APF_MSR_OK), 0xf3);
  assert_int_equal(wr(f, 0, APF_MSR_INT, 0x1f3), APF_MSR_GP);
  assert_int_equal(wr(f, 0, APF_MSR_INT, UINT64_C(1) << 63), APF_MSR_GP);
  assert_int_equal(rd(f, 0, APF_MSR_INT, APF_MSR_OK), 0xf3);
  /* KVM checks no vector range: 0x10 is accepted as written. */
  assert_int_equal(wr(f, 0, APF_MSR_INT, 0x10), APF_MSR_OK);
  assert_int_equal(rd(f, 0, APF_MSR_INT, APF_MSR_OK), 0x10);
  fx_free(f);
}

static void ack_acts_on_bit_0_ignores_other_values_and_reads_0(void **state) {
  (void)state;
  struct fx *f = new2020();
  assert_int_equal(wr(f, 0, APF_MSR_ACK, 0), APF_MSR_OK);
  assert_int_equal(wr(f, 0, APF_MSR_ACK, 2), APF_MSR_OK);
  assert_int_equal(wr(f, 0, APF_MSR_ACK, ~UINT64_C(1)), APF_MSR_OK);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->acks, 0);
  assert_int_equal(wr(f, 0, APF_MSR_ACK, 3), APF_MSR_OK);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->acks, 1);
  assert_int_equal(rd(f, 0, APF_MSR_ACK, APF_MSR_OK), 0);
  fx_free(f);
}

static void int_and_ack_do_not_exist_on_a_pre_5_8_host(void **state) {
  (void)state;
  struct fx *f = new2010();
  assert_int_equal(wr(f, 0, APF_MSR_INT, 0xf3), APF_MSR_GP);
  assert_int_equal(wr(f, 0, APF_MSR_ACK, 1), APF_MSR_GP);
  rd(f, 0, APF_MSR_INT, APF_MSR_GP);
  rd(f, 0, APF_MSR_ACK, APF_MSR_GP);
  assert_true(fx_has_trace(f, "apf_msr_write: msr 0x4b564d06 value 0xf3 gp: no such MSR before Linux 5.8"));
  fx_free(f);
}

static void other_msrs_and_vcpus_are_gp(void **state) {
  (void)state;
  struct fx *f = new2020();
  assert_int_equal(wr(f, 0, 0x4b564d03, 1), APF_MSR_GP);
  rd(f, 0, 0x4b564d05, APF_MSR_GP);
  assert_int_equal(wr(f, 7, APF_MSR_EN, FX_AREA(0) | EN_2020), APF_MSR_GP);
  fx_free(f);
}

/* ---- wake-all ---- */

static void enabling_queues_a_wake_all_delivered_by_interrupt_on_a_5_8_host(void **state) {
  (void)state;
  struct fx *f = new2020();
  assert_int_equal(wr(f, 0, APF_MSR_INT, FX_VEC), APF_MSR_OK);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020), APF_MSR_OK);
  assert_int_equal(f->n_irq, 1);
  assert_int_equal(f->irq[0].vector, FX_VEC);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_TOKEN), APF_TOKEN_WAKE_ALL);
  assert_int_equal(f->n_inj, 0);
  assert_true(fx_has_trace(f, "apf_wake_all: token 0xffffffff queued"));
  assert_true(fx_has_trace(f, "kvm_async_pf_ready: token 0xffffffff gva 0"));
  assert_true(fx_has_trace(f, "apf_page_ready_irq: token 0xffffffff vector 0xf3"));
  const struct apf_stats *s = apf_vcpu_stats(f->e, 0);
  assert_int_equal(s->wake_all, 1);
  assert_int_equal(s->wake_all_delivered, 1);
  assert_int_equal(s->page_ready, 0);
  /* Until presented it counted in the queue; now nothing is outstanding. */
  assert_int_equal(s->outstanding_peak, 1);
  assert_int_equal(s->outstanding, 0);
  fx_free(f);
}

static void enabling_queues_a_wake_all_delivered_by_pf_on_a_pre_5_8_host(void **state) {
  (void)state;
  struct fx *f = new2010();
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | APF_EN_ENABLED), APF_MSR_OK);
  assert_int_equal(f->n_inj, 1);
  assert_int_equal(f->inj[0].error_code, 0);
  assert_int_equal(f->inj[0].cr2, APF_TOKEN_WAKE_ALL);
  assert_int_equal(fx_rd32(f, FX_AREA(0)), APF_REASON_PAGE_READY);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->wake_all_delivered, 1);
  fx_free(f);
}

static void every_enabling_write_queues_a_wake_all_unless_completions_are_pending(void **state) {
  (void)state;
  struct fx *f = new2020();
  fx_enable(f, 0, 0);
  /* A second enabling write while the slot is free: delivered at once. */
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020), APF_MSR_OK);
  assert_int_equal(f->n_irq, 1);
  /* A third with the slot still busy: queued, waits for the slot. */
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020), APF_MSR_OK);
  assert_int_equal(f->n_irq, 1);
  assert_true(apf_vcpu_has_events(f->e, 0));
  /* A fourth: completions pending, so none is queued. */
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020), APF_MSR_OK);
  assert_true(fx_has_trace(f, "apf_wake_all: skipped: completions pending"));
  const struct apf_stats *s = apf_vcpu_stats(f->e, 0);
  assert_int_equal(s->wake_all, 3);
  assert_int_equal(s->wake_all_skipped, 1);
  assert_int_equal(fx_guest_page_ready(f, 0), APF_TOKEN_WAKE_ALL);
  assert_int_equal(f->n_irq, 2);
  assert_int_equal(fx_guest_page_ready(f, 0), APF_TOKEN_WAKE_ALL);
  assert_int_equal(f->n_irq, 2);
  assert_int_equal(s->outstanding, 0);
  fx_free(f);
}

static void disabling_drops_queued_work_and_the_gfn_hash(void **state) {
  (void)state;
  struct fx *f = new2020();
  fx_enable(f, 0, 0);
  struct apf_decision d = fx_fault(f, 0, 0x77);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, 0);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->outstanding, 1);
  assert_int_equal(wr(f, 0, APF_MSR_EN, 0), APF_MSR_OK);
  assert_false(apf_vcpu_enabled(f->e, 0));
  assert_int_equal(apf_vcpu_stats(f->e, 0)->outstanding, 0);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->cancelled, 1);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->wake_all, 1); /* none for a disabling write */
  /* The read still finishes in the platform: nothing is left to complete. */
  fx_clear_records(f);
  apf_fetch_done(f->e, 0x77, false);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_trace, 0);
  /* The hash was reset: a new fault on the gfn is not a repeated fault. */
  d = fx_fault(f, 0, 0x77);
  assert_int_equal(d.outcome, APF_OUTCOME_HALT);
  assert_int_equal(d.why, APF_WHY_NOT_ENABLED);
  assert_true(d.new_work);
  fx_free(f);
}

static void the_shared_area_is_pinned_while_apf_is_enabled(void **state) {
  (void)state;
  struct fx *f = new2020();
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020), APF_MSR_OK);
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(0) | EN_2020), APF_MSR_OK); /* same area: no new pin */
  assert_int_equal(wr(f, 0, APF_MSR_EN, FX_AREA(1) | EN_2020), APF_MSR_OK); /* moved */
  assert_int_equal(wr(f, 0, APF_MSR_EN, 0), APF_MSR_OK);
  assert_int_equal(f->n_pin, 4);
  assert_true(f->pin[0].in_use && f->pin[0].gpa == FX_AREA(0));
  assert_true(!f->pin[1].in_use && f->pin[1].gpa == FX_AREA(0));
  assert_true(f->pin[2].in_use && f->pin[2].gpa == FX_AREA(1));
  assert_true(!f->pin[3].in_use && f->pin[3].gpa == FX_AREA(1));
  fx_free(f);
}

static void specs_describe_each_msr_for_the_vcpu_table(void **state) {
  (void)state;
  struct apf_msr_spec s[APF_N_MSRS];
  struct fx *f = new2020();
  assert_int_equal(apf_msr_specs(f->e, s), 3);
  assert_int_equal(s[0].msr, APF_MSR_EN);
  assert_int_equal(s[0].write_reserved, 0x30);
  assert_int_equal(s[0].pv_feature, 1u << 4);
  assert_int_equal(s[1].msr, APF_MSR_INT);
  assert_int_equal(s[1].write_reserved, ~UINT64_C(0xff));
  assert_int_equal(s[1].pv_feature, 1u << 14);
  assert_int_equal(s[2].msr, APF_MSR_ACK);
  assert_int_equal(s[2].write_reserved, 0);
  assert_int_equal(s[2].pv_feature, 1u << 14);
  assert_string_equal(s[2].name, "MSR_KVM_ASYNC_PF_ACK");
  fx_free(f);
  struct apf_engine_config c = fx_cfg_2020(1);
  c.error_reporting = APF_ERR_PAGE_READY;
  f = fx_new(&c);
  apf_msr_specs(f->e, s);
  assert_int_equal(s[0].write_reserved, 0x20);
  fx_free(f);
  f = new2010();
  assert_int_equal(apf_msr_specs(f->e, s), 1);
  assert_int_equal(s[0].write_reserved, 0x38);
  assert_int_equal(s[0].pv_feature, 0);
  fx_free(f);
}

static void cpuid_features_follow_the_host_kind(void **state) {
  (void)state;
  struct apf_config a;
  memset(&a, 0, sizeof(a));
  a.cpuid_async_pf = a.cpuid_async_pf_int = a.cpuid_async_pf_vmexit = true;
  assert_int_equal(apf_cpuid_features(&a, false), (1u << 4) | (1u << 10) | (1u << 14));
  assert_int_equal(apf_cpuid_features(&a, true), (1u << 4) | (1u << 10));
  a.error_reporting = APF_ERR_PAGE_READY;
  assert_int_equal(apf_cpuid_features(&a, false), (1u << 4) | (1u << 10) | (1u << 14) | (1u << 15));
}

static void scenario_protocols_map_onto_host_configs(void **state) {
  (void)state;
  struct apf_config a;
  struct host_config h;
  memset(&a, 0, sizeof(a));
  memset(&h, 0, sizeof(h));
  a.max_outstanding = 64;
  struct apf_engine_config c;
  a.protocol = APF_OFF;
  apf_engine_config_from(&c, &a, &h, 2);
  assert_false(c.async_pf);
  assert_false(c.host_pre_5_8);
  a.protocol = APF_HALT;
  apf_engine_config_from(&c, &a, &h, 2);
  assert_true(c.async_pf);
  assert_false(c.host_pre_5_8);
  a.protocol = APF_2010;
  apf_engine_config_from(&c, &a, &h, 2);
  assert_true(c.async_pf);
  assert_true(c.host_pre_5_8);
  a.protocol = APF_2020;
  h.host_pre_5_8 = true;
  h.enforce_pv_cpuid = true;
  apf_engine_config_from(&c, &a, &h, 2);
  assert_true(c.host_pre_5_8);
  assert_true(c.enforce_pv_cpuid);
  assert_int_equal(c.n_vcpus, 2);
  assert_int_equal(c.max_outstanding, 64);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(en_value_is_stored_and_read_back_whole),
      cmocka_unit_test(en_reserved_bits_5_4_are_gp_on_a_5_8_host),
      cmocka_unit_test(en_reserved_bits_5_3_are_gp_on_a_pre_5_8_host),
      cmocka_unit_test(en_bit4_is_allowed_only_with_the_error_reporting_variant),
      cmocka_unit_test(a_5_8_host_counts_apf_enabled_only_with_bits_0_and_3),
      cmocka_unit_test(a_pre_5_8_host_counts_apf_enabled_with_bit_0),
      cmocka_unit_test(en_area_outside_guest_ram_is_gp_but_the_value_is_kept),
      cmocka_unit_test(pv_cpuid_enforcement_gps_msrs_and_bits_whose_feature_is_not_offered),
      cmocka_unit_test(without_enforcement_features_do_not_matter),
      cmocka_unit_test(pre_5_8_hosts_predate_pv_cpuid_enforcement),
      cmocka_unit_test(int_keeps_the_vector_and_gps_on_bits_63_8),
      cmocka_unit_test(ack_acts_on_bit_0_ignores_other_values_and_reads_0),
      cmocka_unit_test(int_and_ack_do_not_exist_on_a_pre_5_8_host),
      cmocka_unit_test(other_msrs_and_vcpus_are_gp),
      cmocka_unit_test(enabling_queues_a_wake_all_delivered_by_interrupt_on_a_5_8_host),
      cmocka_unit_test(enabling_queues_a_wake_all_delivered_by_pf_on_a_pre_5_8_host),
      cmocka_unit_test(every_enabling_write_queues_a_wake_all_unless_completions_are_pending),
      cmocka_unit_test(disabling_drops_queued_work_and_the_gfn_hash),
      cmocka_unit_test(the_shared_area_is_pinned_while_apf_is_enabled),
      cmocka_unit_test(specs_describe_each_msr_for_the_vcpu_table),
      cmocka_unit_test(cpuid_features_follow_the_host_kind),
      cmocka_unit_test(scenario_protocols_map_onto_host_configs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
