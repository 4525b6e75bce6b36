/* test_lapic_registers.c — the x2APIC MSR interface: IA32_APIC_BASE and its
 * mode transitions, register values, read-only / write-only / reserved
 * registers and reserved bits (#GP), ESR latching, software disable, INIT.
 * Facts from Intel SDM vol. 3A chapter 11 (x2APIC: 11.12). */
#include "lapic_test.h"

static void power_up_is_xapic_mode_enabled_at_default_base(void **state) {
  (void)state;
  struct lapic a, b;
  lapic_power_up(&a, 0, 1000000000);
  lapic_power_up(&b, 3, 1000000000);
  assert_int_equal(rd(&a, LAPIC_MSR_APIC_BASE, 0), 0xFEE00000u | LAPIC_BASE_EN | LAPIC_BASE_BSP);
  assert_int_equal(rd(&b, LAPIC_MSR_APIC_BASE, 0), 0xFEE00000u | LAPIC_BASE_EN);
  assert_false(lapic_x2apic_mode(&a));
}

static void x2apic_msrs_raise_gp_outside_x2apic_mode(void **state) {
  (void)state;
  struct lapic a;
  lapic_power_up(&a, 1, 1000000000);
  /* xAPIC mode: 11.12.2, any 0x800-0x8FF access is #GP. */
  assert_int_equal(rd_result(&a, LAPIC_MSR_ID, 0), LAPIC_MSR_GP);
  assert_int_equal(wr_result(&a, LAPIC_MSR_TPR, 0, 0), LAPIC_MSR_GP);
  /* Disabled. */
  wr(&a, LAPIC_MSR_APIC_BASE, LAPIC_BASE_DEFAULT_ADDR, 0);
  assert_int_equal(rd_result(&a, LAPIC_MSR_ID, 0), LAPIC_MSR_GP);
  assert_int_equal(wr_result(&a, LAPIC_MSR_EOI, 0, 0), LAPIC_MSR_GP);
}

static void apic_base_follows_the_x2apic_state_diagram(void **state) {
  (void)state;
  struct lapic a;
  lapic_power_up(&a, 1, 1000000000);
  const uint64_t base = LAPIC_BASE_DEFAULT_ADDR;
  /* EN=0, EXTD=1 is the invalid state. */
  assert_int_equal(wr_result(&a, LAPIC_MSR_APIC_BASE, base | LAPIC_BASE_EXTD, 0), LAPIC_MSR_GP);
  /* xAPIC -> x2APIC. */
  wr(&a, LAPIC_MSR_APIC_BASE, X2APIC_ON, 0);
  assert_true(lapic_x2apic_mode(&a));
  /* x2APIC -> xAPIC directly is illegal. */
  assert_int_equal(wr_result(&a, LAPIC_MSR_APIC_BASE, base | LAPIC_BASE_EN, 0), LAPIC_MSR_GP);
  assert_true(lapic_x2apic_mode(&a));
  /* x2APIC -> disabled -> (not x2APIC directly) -> xAPIC -> x2APIC. */
  wr(&a, LAPIC_MSR_APIC_BASE, base, 0);
  assert_int_equal(wr_result(&a, LAPIC_MSR_APIC_BASE, X2APIC_ON, 0), LAPIC_MSR_GP);
  wr(&a, LAPIC_MSR_APIC_BASE, base | LAPIC_BASE_EN, 0);
  wr(&a, LAPIC_MSR_APIC_BASE, X2APIC_ON, 0);
  assert_int_equal(rd(&a, LAPIC_MSR_APIC_BASE, 0), X2APIC_ON);
}

static void apic_base_reserved_bits_raise_gp(void **state) {
  (void)state;
  struct lapic a;
  lapic_power_up(&a, 1, 1000000000); /* maxphyaddr 46 */
  const uint64_t ok = LAPIC_BASE_DEFAULT_ADDR | LAPIC_BASE_EN;
  assert_int_equal(wr_result(&a, LAPIC_MSR_APIC_BASE, ok | 1, 0), LAPIC_MSR_GP);
  assert_int_equal(wr_result(&a, LAPIC_MSR_APIC_BASE, ok | (1u << 9), 0), LAPIC_MSR_GP);
  assert_int_equal(wr_result(&a, LAPIC_MSR_APIC_BASE, ok | (UINT64_C(1) << 46), 0), LAPIC_MSR_GP);
  /* The base field below MAXPHYADDR and the BSP flag are writable. */
  wr(&a, LAPIC_MSR_APIC_BASE, UINT64_C(0x3FFFFFFFF000) | LAPIC_BASE_EN | LAPIC_BASE_BSP, 0);
  assert_int_equal(rd(&a, LAPIC_MSR_APIC_BASE, 0), UINT64_C(0x3FFFFFFFF000) | LAPIC_BASE_EN | LAPIC_BASE_BSP);
}

static void disabling_the_apic_resets_its_registers_but_not_its_id(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 5, 1000000000);
  wr(&a, LAPIC_MSR_TPR, 0x30, 0);
  wr(&a, LAPIC_MSR_TIMER_INITIAL, 1000, 0);
  wr(&a, LAPIC_MSR_LVT_TIMER, 0x40, 0);
  assert_true(lapic_accept(&a, 0x80));
  wr(&a, LAPIC_MSR_APIC_BASE, LAPIC_BASE_DEFAULT_ADDR, 10);
  assert_int_equal(lapic_pending_vector(&a), -1);
  assert_int_equal(lapic_next_timer_ns(&a), LAPIC_NO_TIMER);
  assert_false(lapic_accept(&a, 0x81)); /* a disabled APIC accepts nothing */
  wr(&a, LAPIC_MSR_APIC_BASE, LAPIC_BASE_DEFAULT_ADDR | LAPIC_BASE_EN, 20);
  wr(&a, LAPIC_MSR_APIC_BASE, X2APIC_ON, 20);
  assert_int_equal(rd(&a, LAPIC_MSR_ID, 20), 5);
  assert_int_equal(rd(&a, LAPIC_MSR_TPR, 20), 0);
  assert_int_equal(rd(&a, LAPIC_MSR_SVR, 20), 0xFF);
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_TIMER, 20), LAPIC_LVT_MASKED);
  assert_int_equal(rd(&a, LAPIC_MSR_TIMER_INITIAL, 20), 0);
  assert_true(irr_empty(&a));
}

static void id_version_and_logical_id_have_their_x2apic_values(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0x23, 1000000000);
  assert_int_equal(rd(&a, LAPIC_MSR_ID, 0), 0x23);
  assert_int_equal(rd(&a, LAPIC_MSR_VERSION, 0), 0x00050014);
  /* 11.12.10.2: cluster 0x23 >> 4 = 2 in bits 31:16, bit 0x23 & 0xF = 3. */
  assert_int_equal(rd(&a, LAPIC_MSR_LDR, 0), 0x00020008);
  struct lapic b;
  lapic_ready(&b, 0, 1000000000);
  assert_int_equal(rd(&b, LAPIC_MSR_LDR, 0), 0x00000001);
}

static void power_up_register_values_match_the_sdm(void **state) {
  (void)state;
  struct lapic a;
  lapic_power_up(&a, 2, 1000000000);
  wr(&a, LAPIC_MSR_APIC_BASE, X2APIC_ON, 0);
  assert_int_equal(rd(&a, LAPIC_MSR_TPR, 0), 0);
  assert_int_equal(rd(&a, LAPIC_MSR_PPR, 0), 0);
  assert_int_equal(rd(&a, LAPIC_MSR_SVR, 0), 0xFF);
  assert_int_equal(rd(&a, LAPIC_MSR_ESR, 0), 0);
  assert_int_equal(rd(&a, LAPIC_MSR_ICR, 0), 0);
  for (uint32_t m = LAPIC_MSR_LVT_TIMER; m <= LAPIC_MSR_LVT_ERROR; m++)
    assert_int_equal(rd(&a, m, 0), LAPIC_LVT_MASKED);
  for (uint32_t i = 0; i < 8; i++) {
    assert_int_equal(rd(&a, LAPIC_MSR_ISR0 + i, 0), 0);
    assert_int_equal(rd(&a, LAPIC_MSR_TMR0 + i, 0), 0);
    assert_int_equal(rd(&a, LAPIC_MSR_IRR0 + i, 0), 0);
  }
  assert_int_equal(rd(&a, LAPIC_MSR_TIMER_INITIAL, 0), 0);
  assert_int_equal(rd(&a, LAPIC_MSR_TIMER_CURRENT, 0), 0);
  assert_int_equal(rd(&a, LAPIC_MSR_TIMER_DIVIDE, 0), 0);
}

static void writes_to_read_only_registers_raise_gp(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 1, 1000000000);
  const uint32_t ro[] = {LAPIC_MSR_ID,  LAPIC_MSR_VERSION, LAPIC_MSR_PPR, LAPIC_MSR_LDR,
                         LAPIC_MSR_TIMER_CURRENT};
  for (size_t i = 0; i < ARRAY_LEN(ro); i++) {
    assert_int_equal(wr_result(&a, ro[i], 0, 0), LAPIC_MSR_GP);
    assert_int_equal(wr_result(&a, ro[i], 0x1, 0), LAPIC_MSR_GP);
  }
  for (uint32_t i = 0; i < 8; i++) {
    assert_int_equal(wr_result(&a, LAPIC_MSR_ISR0 + i, 0, 0), LAPIC_MSR_GP);
    assert_int_equal(wr_result(&a, LAPIC_MSR_TMR0 + i, 0, 0), LAPIC_MSR_GP);
    assert_int_equal(wr_result(&a, LAPIC_MSR_IRR0 + i, 0, 0), LAPIC_MSR_GP);
  }
  assert_int_equal(rd(&a, LAPIC_MSR_ID, 0), 1);
}

static void reads_of_write_only_registers_raise_gp(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 1, 1000000000);
  assert_int_equal(rd_result(&a, LAPIC_MSR_EOI, 0), LAPIC_MSR_GP);
  assert_int_equal(rd_result(&a, LAPIC_MSR_SELF_IPI, 0), LAPIC_MSR_GP);
}

static void reserved_x2apic_msrs_raise_gp(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 1, 1000000000);
  /* 0x809 APR, 0x80C RRD, 0x80E DFR and 0x831 ICR-high do not exist in
   * x2APIC mode; 0x82F is CMCI, not offered (max LVT entry 5). */
  const uint32_t reserved[] = {0x800, 0x801, 0x804, 0x807, 0x809, 0x80C, 0x80E, 0x829,
                               0x82F, 0x831, 0x83A, 0x83D, 0x840, 0x8FF};
  for (size_t i = 0; i < ARRAY_LEN(reserved); i++) {
    assert_int_equal(rd_result(&a, reserved[i], 0), LAPIC_MSR_GP);
    assert_int_equal(wr_result(&a, reserved[i], 0, 0), LAPIC_MSR_GP);
  }
}

static void msrs_outside_the_apic_are_left_to_the_caller(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 1, 1000000000);
  /* 0x6E0 is IA32_TSC_DEADLINE: TSC-deadline mode is not offered, so the
   * caller's table answers it (#GP for an unknown MSR). */
  const uint32_t others[] = {0x10, 0x1A, 0x1C, 0x6E0, 0x7FF, 0x900, 0xC0000080u, 0x4b564d02};
  for (size_t i = 0; i < ARRAY_LEN(others); i++) {
    assert_int_equal(rd_result(&a, others[i], 0), LAPIC_MSR_NOT_APIC);
    assert_int_equal(wr_result(&a, others[i], 0, 0), LAPIC_MSR_NOT_APIC);
  }
}

static void reserved_bits_raise_gp_and_change_nothing(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 1, 1000000000);
  wr(&a, LAPIC_MSR_TPR, 0x20, 0);
  struct {
    uint32_t msr;
    uint64_t value;
  } cases[] = {
      {LAPIC_MSR_TPR, 0x100},
      {LAPIC_MSR_TPR, UINT64_C(1) << 32}, /* upper half of a 32-bit register */
      {LAPIC_MSR_SVR, 0x1FF | (1u << 12)}, /* EOI-broadcast suppression not offered */
      {LAPIC_MSR_SVR, 0x1FF | (1u << 10)},
      {LAPIC_MSR_LVT_TIMER, 0x40 | (1u << 8)},
      {LAPIC_MSR_LVT_TIMER, 0x40 | (2u << 17)}, /* TSC-deadline, not offered */
      {LAPIC_MSR_LVT_TIMER, 0x40 | (3u << 17)}, /* reserved mode */
      {LAPIC_MSR_LVT_TIMER, 0x40 | (1u << 19)},
      {LAPIC_MSR_LVT_ERROR, 0x40 | (4u << 8)}, /* the error entry has no delivery mode */
      {LAPIC_MSR_LVT_LINT0, 0x40 | (1u << 11)},
      {LAPIC_MSR_LVT_LINT1, 0x40 | (1u << 17)},
      {LAPIC_MSR_LVT_THERMAL, 0x40 | (1u << 13)},
      {LAPIC_MSR_LVT_PERF, 0x40 | (1u << 15)},
      {LAPIC_MSR_TIMER_DIVIDE, 0x4},
      {LAPIC_MSR_TIMER_DIVIDE, 0x10},
      {LAPIC_MSR_TIMER_INITIAL, UINT64_C(1) << 32},
      {LAPIC_MSR_SELF_IPI, 0x140},
      {LAPIC_MSR_ICR, 0x40 | (1u << 12)}, /* delivery status is gone in x2APIC mode */
      {LAPIC_MSR_ICR, 0x40 | (1u << 13)},
      {LAPIC_MSR_ICR, 0x40 | (1u << 16)},
      {LAPIC_MSR_ICR, 0x40 | (1u << 20)},
      {LAPIC_MSR_ICR, 0x40 | (3u << 8)}, /* reserved delivery mode encodings */
      {LAPIC_MSR_ICR, 0x40 | (7u << 8)},
  };
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    struct lapic_ipi ipi;
    assert_int_equal(lapic_wrmsr(&a, cases[i].msr, cases[i].value, 0, &ipi), LAPIC_MSR_GP);
    assert_false(ipi.valid);
  }
  assert_int_equal(rd(&a, LAPIC_MSR_TPR, 0), 0x20);
  assert_int_equal(rd(&a, LAPIC_MSR_SVR, 0), 0x1FF);
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_TIMER, 0), LAPIC_LVT_MASKED);
  assert_int_equal(rd(&a, LAPIC_MSR_TIMER_DIVIDE, 0), 0);
  assert_int_equal(rd(&a, LAPIC_MSR_ICR, 0), 0);
  assert_true(irr_empty(&a));
}

static void eoi_and_esr_accept_only_zero(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 1, 1000000000);
  assert_true(lapic_accept(&a, 0x50));
  assert_int_equal(lapic_acknowledge(&a), 0x50);
  assert_int_equal(wr_result(&a, LAPIC_MSR_EOI, 1, 0), LAPIC_MSR_GP);
  assert_true(isr_has(&a, 0x50)); /* the faulting EOI did nothing */
  wr(&a, LAPIC_MSR_EOI, 0, 0);
  assert_false(isr_has(&a, 0x50));
  assert_int_equal(wr_result(&a, LAPIC_MSR_ESR, 0x40, 0), LAPIC_MSR_GP);
}

static void tpr_svr_divide_and_lvt_storage_read_back(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 1, 1000000000);
  wr(&a, LAPIC_MSR_TPR, 0xA7, 0);
  assert_int_equal(rd(&a, LAPIC_MSR_TPR, 0), 0xA7);
  wr(&a, LAPIC_MSR_SVR, 0x3F | LAPIC_SVR_ENABLE | (1u << 9), 0);
  assert_int_equal(rd(&a, LAPIC_MSR_SVR, 0), 0x33F);
  wr(&a, LAPIC_MSR_TIMER_DIVIDE, DIV_128, 0);
  assert_int_equal(rd(&a, LAPIC_MSR_TIMER_DIVIDE, 0), DIV_128);
  /* LINT0 as ExtINT level, LINT1 as NMI, thermal and perf as NMI, error vector. */
  wr(&a, LAPIC_MSR_LVT_LINT0, (7u << 8) | (1u << 15) | (1u << 13), 0);
  wr(&a, LAPIC_MSR_LVT_LINT1, 4u << 8, 0);
  wr(&a, LAPIC_MSR_LVT_THERMAL, 0x10000 | (4u << 8) | 0x22, 0);
  wr(&a, LAPIC_MSR_LVT_PERF, (4u << 8), 0);
  wr(&a, LAPIC_MSR_LVT_ERROR, 0xFE, 0);
  wr(&a, LAPIC_MSR_LVT_TIMER, 0x20 | LAPIC_LVT_TIMER_PERIODIC, 0);
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_LINT0, 0), (7u << 8) | (1u << 15) | (1u << 13));
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_LINT1, 0), 4u << 8);
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_THERMAL, 0), 0x10000 | (4u << 8) | 0x22);
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_PERF, 0), 4u << 8);
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_ERROR, 0), 0xFE);
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_TIMER, 0), 0x20 | LAPIC_LVT_TIMER_PERIODIC);
}

static void lvt_read_only_status_bits_are_ignored_on_write(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 1, 1000000000);
  /* Delivery status (12) and remote IRR (14) are read-only, not reserved:
   * a write carrying them is accepted and they stay 0 (delivery is
   * instantaneous here, and no level-triggered LINT input is modelled). */
  wr(&a, LAPIC_MSR_LVT_LINT0, 0x31 | (1u << 12) | (1u << 14), 0);
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_LINT0, 0), 0x31);
  wr(&a, LAPIC_MSR_LVT_TIMER, 0x31 | (1u << 12), 0);
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_TIMER, 0), 0x31);
}

static void software_disable_masks_every_lvt_and_keeps_them_masked(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 1, 1000000000);
  wr(&a, LAPIC_MSR_LVT_TIMER, 0x40, 0);
  wr(&a, LAPIC_MSR_LVT_ERROR, 0x41, 0);
  wr(&a, LAPIC_MSR_SVR, 0xFF, 0); /* software disable */
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_TIMER, 0), 0x40 | LAPIC_LVT_MASKED);
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_ERROR, 0), 0x41 | LAPIC_LVT_MASKED);
  wr(&a, LAPIC_MSR_LVT_TIMER, 0x42, 0); /* unmask ignored while disabled */
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_TIMER, 0), 0x42 | LAPIC_LVT_MASKED);
  wr(&a, LAPIC_MSR_SVR, 0x1FF, 0); /* re-enabling does not unmask */
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_TIMER, 0), 0x42 | LAPIC_LVT_MASKED);
  wr(&a, LAPIC_MSR_LVT_TIMER, 0x42, 0);
  assert_int_equal(rd(&a, LAPIC_MSR_LVT_TIMER, 0), 0x42);
}

static void esr_shows_errors_only_after_a_write_latches_them(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 1, 1000000000);
  assert_false(lapic_accept(&a, 7));
  assert_int_equal(rd(&a, LAPIC_MSR_ESR, 0), 0); /* not latched yet */
  assert_int_equal(esr_latch(&a), LAPIC_ESR_RECV_ILLEGAL_VECTOR);
  assert_int_equal(rd(&a, LAPIC_MSR_ESR, 0), LAPIC_ESR_RECV_ILLEGAL_VECTOR); /* reads are stable */
  assert_int_equal(esr_latch(&a), 0); /* nothing new since */
}

static void an_error_raises_the_unmasked_lvt_error_vector(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 1, 1000000000);
  assert_false(lapic_accept(&a, 3)); /* masked error entry: logged only */
  assert_true(irr_empty(&a));
  wr(&a, LAPIC_MSR_LVT_ERROR, 0xFE, 0);
  assert_false(lapic_accept(&a, 3));
  assert_true(irr_has(&a, 0xFE));
  assert_int_equal(lapic_pending_vector(&a), 0xFE);
  /* An illegal error vector adds "receive illegal vector" and nothing else. */
  struct lapic b;
  lapic_ready(&b, 1, 1000000000);
  wr(&b, LAPIC_MSR_LVT_ERROR, 0x05, 0);
  wr(&b, LAPIC_MSR_SELF_IPI, 0x02, 0);
  assert_true(irr_empty(&b));
  assert_int_equal(esr_latch(&b), LAPIC_ESR_SEND_ILLEGAL_VECTOR | LAPIC_ESR_RECV_ILLEGAL_VECTOR);
}

static void init_signal_resets_registers_but_keeps_x2apic_mode_and_id(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 9, 1000000000);
  wr(&a, LAPIC_MSR_TPR, 0x40, 0);
  wr(&a, LAPIC_MSR_LVT_TIMER, 0x40, 0);
  wr(&a, LAPIC_MSR_TIMER_INITIAL, 100, 0);
  assert_true(lapic_accept(&a, 0x90));
  lapic_init_signal(&a);
  assert_true(lapic_x2apic_mode(&a));
  assert_int_equal(rd(&a, LAPIC_MSR_ID, 0), 9);
  assert_int_equal(rd(&a, LAPIC_MSR_LDR, 0), 0x00000200);
  assert_int_equal(rd(&a, LAPIC_MSR_TPR, 0), 0);
  assert_int_equal(rd(&a, LAPIC_MSR_SVR, 0), 0xFF);
  assert_int_equal(lapic_next_timer_ns(&a), LAPIC_NO_TIMER);
  assert_int_equal(lapic_pending_vector(&a), -1);
}

static void init_rejects_out_of_range_configuration(void **state) {
  (void)state;
  struct lapic a;
  struct diag d = {{0}};
  struct lapic_config ok = {.apic_id = 0, .timer_hz = 1000000000, .maxphyaddr = 46};
  struct lapic_config c = ok;
  c.timer_hz = 0;
  assert_false(lapic_init(&a, &c, &d));
  assert_non_null(strstr(d.msg, "timer_hz"));
  c = ok;
  c.timer_hz = LAPIC_TIMER_HZ_MAX + 1;
  assert_false(lapic_init(&a, &c, &d));
  c = ok;
  c.maxphyaddr = 53;
  assert_false(lapic_init(&a, &c, &d));
  assert_non_null(strstr(d.msg, "maxphyaddr"));
  c = ok;
  c.apic_id = 0xFFFFFFFFu;
  assert_false(lapic_init(&a, &c, &d));
  assert_non_null(strstr(d.msg, "apic_id"));
  assert_true(lapic_init(&a, &ok, &d));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(power_up_is_xapic_mode_enabled_at_default_base),
      cmocka_unit_test(x2apic_msrs_raise_gp_outside_x2apic_mode),
      cmocka_unit_test(apic_base_follows_the_x2apic_state_diagram),
      cmocka_unit_test(apic_base_reserved_bits_raise_gp),
      cmocka_unit_test(disabling_the_apic_resets_its_registers_but_not_its_id),
      cmocka_unit_test(id_version_and_logical_id_have_their_x2apic_values),
      cmocka_unit_test(power_up_register_values_match_the_sdm),
      cmocka_unit_test(writes_to_read_only_registers_raise_gp),
      cmocka_unit_test(reads_of_write_only_registers_raise_gp),
      cmocka_unit_test(reserved_x2apic_msrs_raise_gp),
      cmocka_unit_test(msrs_outside_the_apic_are_left_to_the_caller),
      cmocka_unit_test(reserved_bits_raise_gp_and_change_nothing),
      cmocka_unit_test(eoi_and_esr_accept_only_zero),
      cmocka_unit_test(tpr_svr_divide_and_lvt_storage_read_back),
      cmocka_unit_test(lvt_read_only_status_bits_are_ignored_on_write),
      cmocka_unit_test(software_disable_masks_every_lvt_and_keeps_them_masked),
      cmocka_unit_test(esr_shows_errors_only_after_a_write_latches_them),
      cmocka_unit_test(an_error_raises_the_unmasked_lvt_error_vector),
      cmocka_unit_test(init_signal_resets_registers_but_keeps_x2apic_mode_and_id),
      cmocka_unit_test(init_rejects_out_of_range_configuration),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
