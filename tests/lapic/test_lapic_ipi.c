/* test_lapic_ipi.c — SELF IPI and the x2APIC ICR: what an ICR write reports
 * (fixed, NMI, INIT, SIPI; shorthands), which APICs it targets (physical,
 * logical cluster, broadcast), illegal vectors and lowest priority
 * (SDM vol. 3A 11.6.1, 11.5.3, 11.12.9-11.12.11). */
#include "lapic_test.h"

#define NCPU 20

static uint64_t icr(uint8_t vector, unsigned mode, bool logical, unsigned shorthand, uint32_t dest) {
  return vector | ((uint64_t)mode << 8) | ((uint64_t)logical << 11) | ((uint64_t)1 << 14) |
         ((uint64_t)shorthand << 18) | ((uint64_t)dest << 32);
}

/* A machine of NCPU APICs with IDs 0..NCPU-1, all in x2APIC mode. */
static void machine(struct lapic cpu[NCPU]) {
  for (uint32_t i = 0; i < NCPU; i++) lapic_ready(&cpu[i], i, 1000000000);
}

static struct lapic_ipi send(struct lapic *a, uint64_t value) {
  struct lapic_ipi ipi;
  assert_int_equal(lapic_wrmsr(a, LAPIC_MSR_ICR, value, 0, &ipi), LAPIC_MSR_OK);
  return ipi;
}

/* Bit i set if the IPI targets APIC i. */
static uint32_t targets(const struct lapic_ipi *ipi, const struct lapic cpu[NCPU]) {
  uint32_t mask = 0;
  for (uint32_t i = 0; i < NCPU; i++)
    if (lapic_ipi_targets(ipi, &cpu[i])) mask |= UINT32_C(1) << i;
  return mask;
}

static void self_ipi_sets_this_apics_irr_without_routing(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 4, 1000000000);
  wr(&a, LAPIC_MSR_SELF_IPI, 0xE1, 0); /* wr() also checks nothing is reported */
  assert_true(irr_has(&a, 0xE1));
  assert_int_equal(lapic_pending_vector(&a), 0xE1);
  assert_int_equal(esr_latch(&a), 0);
}

static void self_ipi_with_an_illegal_vector_is_sent_and_received_illegal(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 4, 1000000000);
  wr(&a, LAPIC_MSR_SELF_IPI, 0x0F, 0);
  assert_true(irr_empty(&a));
  assert_int_equal(esr_latch(&a), LAPIC_ESR_SEND_ILLEGAL_VECTOR | LAPIC_ESR_RECV_ILLEGAL_VECTOR);
}

static void fixed_ipi_is_reported_with_every_icr_field(void **state) {
  (void)state;
  struct lapic cpu[NCPU];
  machine(cpu);
  uint64_t v = icr(0xFD, LAPIC_DM_FIXED, false, LAPIC_SH_NONE, 3) | (UINT64_C(1) << 15);
  struct lapic_ipi ipi = send(&cpu[1], v);
  assert_true(ipi.valid);
  assert_int_equal(ipi.source_id, 1);
  assert_int_equal(ipi.dest, 3);
  assert_int_equal(ipi.vector, 0xFD);
  assert_int_equal(ipi.mode, LAPIC_DM_FIXED);
  assert_false(ipi.logical);
  assert_true(ipi.level_assert);
  assert_true(ipi.level_trigger);
  assert_int_equal(ipi.shorthand, LAPIC_SH_NONE);
  assert_int_equal(rd(&cpu[1], LAPIC_MSR_ICR, 0), v); /* the full 64 bits read back */
  assert_int_equal(targets(&ipi, cpu), 1u << 3);
  /* Routing is the platform's: accept on the target makes it pending there. */
  assert_true(lapic_accept(&cpu[3], ipi.vector));
  assert_int_equal(lapic_pending_vector(&cpu[3]), 0xFD);
  assert_int_equal(lapic_pending_vector(&cpu[1]), -1);
}

static void nmi_ipi_is_reported_and_its_vector_ignored(void **state) {
  (void)state;
  struct lapic cpu[NCPU];
  machine(cpu);
  struct lapic_ipi ipi = send(&cpu[0], icr(0, LAPIC_DM_NMI, false, LAPIC_SH_NONE, 2));
  assert_true(ipi.valid);
  assert_int_equal(ipi.mode, LAPIC_DM_NMI);
  assert_int_equal(targets(&ipi, cpu), 1u << 2);
  assert_int_equal(esr_latch(&cpu[0]), 0); /* vector 0 is fine for NMI */
  /* NMI bypasses IRR/ISR: the platform raises it on the vCPU, not here. */
  assert_true(irr_empty(&cpu[2]));
}

static void shorthands_select_self_all_and_all_but_self(void **state) {
  (void)state;
  struct lapic cpu[NCPU];
  machine(cpu);
  const uint32_t all = (UINT32_C(1) << NCPU) - 1;
  /* The destination field is ignored with a shorthand. */
  struct lapic_ipi self = send(&cpu[5], icr(0x50, LAPIC_DM_FIXED, false, LAPIC_SH_SELF, 9));
  assert_int_equal(self.shorthand, LAPIC_SH_SELF);
  assert_int_equal(targets(&self, cpu), 1u << 5);
  struct lapic_ipi every = send(&cpu[5], icr(0x50, LAPIC_DM_FIXED, false, LAPIC_SH_ALL, 9));
  assert_int_equal(targets(&every, cpu), all);
  struct lapic_ipi others =
      send(&cpu[5], icr(0, LAPIC_DM_NMI, false, LAPIC_SH_ALL_BUT_SELF, 9));
  assert_int_equal(others.mode, LAPIC_DM_NMI);
  assert_int_equal(targets(&others, cpu), all & ~(1u << 5));
}

static void broadcast_id_reaches_every_apic_in_both_destination_modes(void **state) {
  (void)state;
  struct lapic cpu[NCPU];
  machine(cpu);
  const uint32_t all = (UINT32_C(1) << NCPU) - 1;
  struct lapic_ipi phys = send(&cpu[0], icr(0x60, LAPIC_DM_FIXED, false, 0, 0xFFFFFFFFu));
  assert_int_equal(targets(&phys, cpu), all);
  struct lapic_ipi logi = send(&cpu[0], icr(0x60, LAPIC_DM_FIXED, true, 0, 0xFFFFFFFFu));
  assert_int_equal(targets(&logi, cpu), all);
}

static void logical_destination_is_a_cluster_and_a_bit_mask(void **state) {
  (void)state;
  struct lapic cpu[NCPU];
  machine(cpu);
  /* Cluster 0 holds IDs 0-15, cluster 1 IDs 16-31 (11.12.10.2). */
  struct lapic_ipi c0 = send(&cpu[0], icr(0x70, LAPIC_DM_FIXED, true, 0, 0x00000005));
  assert_true(c0.logical);
  assert_int_equal(targets(&c0, cpu), (1u << 0) | (1u << 2));
  struct lapic_ipi c1 = send(&cpu[0], icr(0x70, LAPIC_DM_FIXED, true, 0, 0x00010009));
  assert_int_equal(targets(&c1, cpu), (1u << 16) | (1u << 19));
  /* Physical destination 0x10009 is no APIC here. */
  struct lapic_ipi p = send(&cpu[0], icr(0x70, LAPIC_DM_FIXED, false, 0, 0x00010009));
  assert_int_equal(targets(&p, cpu), 0);
}

static void init_and_startup_ipis_are_reported_for_the_platform(void **state) {
  (void)state;
  struct lapic cpu[NCPU];
  machine(cpu);
  struct lapic_ipi init = send(&cpu[0], icr(0, LAPIC_DM_INIT, false, 0, 1));
  assert_int_equal(init.mode, LAPIC_DM_INIT);
  assert_int_equal(targets(&init, cpu), 1u << 1);
  struct lapic_ipi sipi = send(&cpu[0], icr(0x09, LAPIC_DM_STARTUP, false, 0, 1));
  assert_int_equal(sipi.mode, LAPIC_DM_STARTUP);
  assert_int_equal(sipi.vector, 0x09); /* a page number, not an illegal vector */
  assert_int_equal(esr_latch(&cpu[0]), 0);
}

static void fixed_ipi_with_an_illegal_vector_is_flagged_at_both_ends(void **state) {
  (void)state;
  struct lapic cpu[NCPU];
  machine(cpu);
  struct lapic_ipi ipi = send(&cpu[0], icr(0x0E, LAPIC_DM_FIXED, false, 0, 1));
  assert_true(ipi.valid); /* the message still goes out */
  assert_int_equal(esr_latch(&cpu[0]), LAPIC_ESR_SEND_ILLEGAL_VECTOR);
  assert_false(lapic_accept(&cpu[1], ipi.vector));
  assert_true(irr_empty(&cpu[1]));
  assert_int_equal(esr_latch(&cpu[1]), LAPIC_ESR_RECV_ILLEGAL_VECTOR);
}

static void lowest_priority_ipi_is_not_sent_and_flags_redirectable(void **state) {
  (void)state;
  struct lapic cpu[NCPU];
  machine(cpu);
  /* Even with an illegal vector only "redirectable IPI" is set (11.5.3). */
  struct lapic_ipi ipi = send(&cpu[0], icr(0x02, LAPIC_DM_LOWEST_PRIORITY, true, 0, 3));
  assert_false(ipi.valid);
  assert_int_equal(esr_latch(&cpu[0]), LAPIC_ESR_REDIRECTABLE_IPI);
}

static void disabled_apics_are_not_targets(void **state) {
  (void)state;
  struct lapic cpu[NCPU];
  machine(cpu);
  wr(&cpu[7], LAPIC_MSR_APIC_BASE, LAPIC_BASE_DEFAULT_ADDR, 0);
  struct lapic_ipi ipi = send(&cpu[0], icr(0, LAPIC_DM_NMI, false, LAPIC_SH_ALL, 0));
  assert_int_equal(targets(&ipi, cpu), ((UINT32_C(1) << NCPU) - 1) & ~(1u << 7));
  struct lapic_ipi none = {0};
  assert_false(lapic_ipi_targets(&none, &cpu[0]));
}

static void a_null_ipi_out_is_allowed_for_writes_that_send_nothing(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, 1000000000);
  assert_int_equal(lapic_wrmsr(&a, LAPIC_MSR_TPR, 0x10, 0, NULL), LAPIC_MSR_OK);
  assert_int_equal(lapic_wrmsr(&a, LAPIC_MSR_ICR, icr(0x40, 0, false, 0, 1), 0, NULL), LAPIC_MSR_OK);
  assert_int_equal(rd(&a, LAPIC_MSR_ICR, 0), icr(0x40, 0, false, 0, 1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(self_ipi_sets_this_apics_irr_without_routing),
      cmocka_unit_test(self_ipi_with_an_illegal_vector_is_sent_and_received_illegal),
      cmocka_unit_test(fixed_ipi_is_reported_with_every_icr_field),
      cmocka_unit_test(nmi_ipi_is_reported_and_its_vector_ignored),
      cmocka_unit_test(shorthands_select_self_all_and_all_but_self),
      cmocka_unit_test(broadcast_id_reaches_every_apic_in_both_destination_modes),
      cmocka_unit_test(logical_destination_is_a_cluster_and_a_bit_mask),
      cmocka_unit_test(init_and_startup_ipis_are_reported_for_the_platform),
      cmocka_unit_test(fixed_ipi_with_an_illegal_vector_is_flagged_at_both_ends),
      cmocka_unit_test(lowest_priority_ipi_is_not_sent_and_flags_redirectable),
      cmocka_unit_test(disabled_apics_are_not_targets),
      cmocka_unit_test(a_null_ipi_out_is_allowed_for_writes_that_send_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
