/* test_lapic_priority.c — IRR/ISR, TPR/PPR priority classes, acknowledge,
 * EOI order with nested interrupts, spurious vector, illegal vectors and
 * disabled APICs (SDM vol. 3A 11.8.3-11.8.5, 11.9, 11.5.3, 11.4.7.2). */
#include "lapic_test.h"

static void accepted_vector_is_pending_and_highest_wins(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, 1000000000);
  assert_int_equal(lapic_pending_vector(&a), -1);
  assert_true(lapic_accept(&a, 0x31));
  assert_true(lapic_accept(&a, 0xF3));
  assert_true(lapic_accept(&a, 0x80));
  assert_true(irr_has(&a, 0x31) && irr_has(&a, 0xF3) && irr_has(&a, 0x80));
  assert_int_equal(rd(&a, LAPIC_MSR_IRR0 + 7, 0), UINT32_C(1) << 19); /* 0xF3 = 7*32 + 19 */
  assert_int_equal(lapic_pending_vector(&a), 0xF3);
}

static void acknowledge_moves_the_vector_from_irr_to_isr(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, 1000000000);
  assert_true(lapic_accept(&a, 0x41));
  assert_int_equal(lapic_acknowledge(&a), 0x41);
  assert_false(irr_has(&a, 0x41));
  assert_true(isr_has(&a, 0x41));
  assert_int_equal(rd(&a, LAPIC_MSR_PPR, 0), 0x40);
  wr(&a, LAPIC_MSR_EOI, 0, 0);
  assert_false(isr_has(&a, 0x41));
  assert_int_equal(rd(&a, LAPIC_MSR_PPR, 0), 0x00);
}

static void tpr_blocks_classes_at_or_below_its_own(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, 1000000000);
  wr(&a, LAPIC_MSR_TPR, 0x50, 0);
  assert_true(lapic_accept(&a, 0x5F)); /* class 5 == TPR class: held */
  assert_int_equal(lapic_pending_vector(&a), -1);
  assert_true(lapic_accept(&a, 0x60)); /* class 6 > 5 */
  assert_int_equal(lapic_pending_vector(&a), 0x60);
  assert_int_equal(lapic_acknowledge(&a), 0x60);
  assert_int_equal(lapic_pending_vector(&a), -1);
  wr(&a, LAPIC_MSR_EOI, 0, 0);
  /* The sub-class (TPR[3:0]) does not matter: 0x5F stays blocked by 0x50. */
  wr(&a, LAPIC_MSR_TPR, 0x4F, 0);
  assert_int_equal(lapic_pending_vector(&a), 0x5F);
  wr(&a, LAPIC_MSR_TPR, 0xF0, 0);
  assert_int_equal(lapic_pending_vector(&a), -1);
}

static void ppr_is_tpr_or_the_in_service_class_whichever_is_higher(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, 1000000000);
  wr(&a, LAPIC_MSR_TPR, 0x37, 0);
  assert_int_equal(rd(&a, LAPIC_MSR_PPR, 0), 0x37); /* no ISR: PPR = TPR */
  assert_true(lapic_accept(&a, 0x65));
  assert_int_equal(lapic_acknowledge(&a), 0x65);
  assert_int_equal(rd(&a, LAPIC_MSR_PPR, 0), 0x60); /* ISR class, sub-class 0 */
  wr(&a, LAPIC_MSR_TPR, 0x6A, 0);
  assert_int_equal(rd(&a, LAPIC_MSR_PPR, 0), 0x6A); /* TPR class >= ISR class: all of TPR */
  wr(&a, LAPIC_MSR_TPR, 0x7A, 0);
  assert_int_equal(rd(&a, LAPIC_MSR_PPR, 0), 0x7A);
  assert_int_equal(lapic_ppr(&a), 0x7A);
}

static void same_class_as_in_service_waits_for_eoi(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, 1000000000);
  assert_true(lapic_accept(&a, 0x70));
  assert_int_equal(lapic_acknowledge(&a), 0x70);
  assert_true(lapic_accept(&a, 0x7F)); /* same class, higher vector */
  assert_int_equal(lapic_pending_vector(&a), -1);
  assert_true(lapic_accept(&a, 0x6F)); /* lower class */
  assert_int_equal(lapic_pending_vector(&a), -1);
  wr(&a, LAPIC_MSR_EOI, 0, 0);
  assert_int_equal(lapic_pending_vector(&a), 0x7F);
}

static void nested_interrupts_are_eoied_highest_first(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, 1000000000);
  /* Timer-like 0x30 in service, then a page-ready 0xF3 nests, then an IPI
   * 0x90 arrives while 0xF3 is in service. */
  assert_true(lapic_accept(&a, 0x30));
  assert_int_equal(lapic_acknowledge(&a), 0x30);
  assert_true(lapic_accept(&a, 0xF3));
  assert_int_equal(lapic_pending_vector(&a), 0xF3);
  assert_int_equal(lapic_acknowledge(&a), 0xF3);
  assert_true(lapic_accept(&a, 0x90));
  assert_int_equal(lapic_pending_vector(&a), -1); /* class 9 < class 15 in service */
  assert_true(isr_has(&a, 0x30) && isr_has(&a, 0xF3));
  wr(&a, LAPIC_MSR_EOI, 0, 0); /* ends 0xF3, the innermost */
  assert_false(isr_has(&a, 0xF3));
  assert_true(isr_has(&a, 0x30));
  assert_int_equal(lapic_pending_vector(&a), 0x90); /* 9 > 3 */
  assert_int_equal(lapic_acknowledge(&a), 0x90);
  wr(&a, LAPIC_MSR_EOI, 0, 0); /* ends 0x90 */
  assert_true(isr_has(&a, 0x30));
  assert_false(isr_has(&a, 0x90));
  wr(&a, LAPIC_MSR_EOI, 0, 0); /* ends 0x30 */
  for (uint32_t i = 0; i < 8; i++) assert_int_equal(rd(&a, LAPIC_MSR_ISR0 + i, 0), 0);
}

static void a_vector_can_be_pending_and_in_service_at_once(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, 1000000000);
  assert_true(lapic_accept(&a, 0xA0));
  assert_true(lapic_accept(&a, 0xA0)); /* coalesces: one IRR bit */
  assert_int_equal(lapic_acknowledge(&a), 0xA0);
  assert_int_equal(lapic_pending_vector(&a), -1);
  assert_true(lapic_accept(&a, 0xA0)); /* arrives again while in service */
  assert_true(irr_has(&a, 0xA0) && isr_has(&a, 0xA0));
  assert_int_equal(lapic_pending_vector(&a), -1);
  wr(&a, LAPIC_MSR_EOI, 0, 0);
  assert_int_equal(lapic_pending_vector(&a), 0xA0);
}

static void acknowledge_with_nothing_deliverable_returns_the_spurious_vector(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, 1000000000);
  wr(&a, LAPIC_MSR_SVR, LAPIC_SVR_ENABLE | 0x3F, 0);
  assert_int_equal(lapic_acknowledge(&a), 0x3F);
  /* TPR raised above a pending vector: still spurious, IRR and ISR untouched. */
  assert_true(lapic_accept(&a, 0x45));
  wr(&a, LAPIC_MSR_TPR, 0x40, 0);
  assert_int_equal(lapic_acknowledge(&a), 0x3F);
  assert_true(irr_has(&a, 0x45));
  for (uint32_t i = 0; i < 8; i++) assert_int_equal(rd(&a, LAPIC_MSR_ISR0 + i, 0), 0);
}

static void eoi_with_nothing_in_service_changes_nothing(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, 1000000000);
  assert_true(lapic_accept(&a, 0x45));
  wr(&a, LAPIC_MSR_EOI, 0, 0);
  assert_true(irr_has(&a, 0x45));
  assert_int_equal(lapic_pending_vector(&a), 0x45);
}

static void illegal_vectors_never_reach_irr_and_set_esr(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, 1000000000);
  for (unsigned v = 0; v < 16; v++) assert_false(lapic_accept(&a, (uint8_t)v));
  assert_true(irr_empty(&a));
  assert_int_equal(lapic_pending_vector(&a), -1);
  assert_int_equal(esr_latch(&a), LAPIC_ESR_RECV_ILLEGAL_VECTOR);
  assert_true(lapic_accept(&a, 16)); /* the first legal vector */
  assert_int_equal(lapic_pending_vector(&a), 16);
  assert_int_equal(esr_latch(&a), 0);
}

static void software_disabled_apic_drops_new_interrupts_but_delivers_held_ones(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, 1000000000);
  assert_true(lapic_accept(&a, 0x50));
  wr(&a, LAPIC_MSR_SVR, 0xFF, 0); /* software disable */
  assert_false(lapic_accept(&a, 0x60));
  assert_false(irr_has(&a, 0x60));
  assert_int_equal(a.stat_dropped, 1);
  /* 11.4.7.2: pending IRR bits are held and still need handling. */
  assert_int_equal(lapic_pending_vector(&a), 0x50);
}

static void power_up_apic_is_software_disabled_and_accepts_nothing(void **state) {
  (void)state;
  struct lapic a;
  lapic_power_up(&a, 1, 1000000000);
  /* Power-up SVR is 0xFF: software-disabled, so nothing is accepted yet. */
  assert_false(lapic_accept(&a, 0x50));
  assert_int_equal(lapic_pending_vector(&a), -1);
  assert_int_equal(lapic_acknowledge(&a), 0xFF);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accepted_vector_is_pending_and_highest_wins),
      cmocka_unit_test(acknowledge_moves_the_vector_from_irr_to_isr),
      cmocka_unit_test(tpr_blocks_classes_at_or_below_its_own),
      cmocka_unit_test(ppr_is_tpr_or_the_in_service_class_whichever_is_higher),
      cmocka_unit_test(same_class_as_in_service_waits_for_eoi),
      cmocka_unit_test(nested_interrupts_are_eoied_highest_first),
      cmocka_unit_test(a_vector_can_be_pending_and_in_service_at_once),
      cmocka_unit_test(acknowledge_with_nothing_deliverable_returns_the_spurious_vector),
      cmocka_unit_test(eoi_with_nothing_in_service_changes_nothing),
      cmocka_unit_test(illegal_vectors_never_reach_irr_and_set_esr),
      cmocka_unit_test(software_disabled_apic_drops_new_interrupts_but_delivers_held_ones),
      cmocka_unit_test(power_up_apic_is_software_disabled_and_accepts_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
