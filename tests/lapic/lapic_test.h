/* lapic_test.h — shared set-up for the tests of sim/cpu/lapic.c: an APIC
 * brought into x2APIC mode and software-enabled, and MSR accessors that fail
 * the test on an unexpected result. */
#ifndef APFSIM_TESTS_LAPIC_TEST_H
#define APFSIM_TESTS_LAPIC_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/diag.h"
#include "cpu/lapic.h"

#define ARRAY_LEN(x) (sizeof(x) / sizeof((x)[0]))

/* Divide configuration encodings (SDM vol. 3A figure 11-10, bits 3,1,0). */
#define DIV_1 0xBu
#define DIV_2 0x0u
#define DIV_4 0x1u
#define DIV_8 0x2u
#define DIV_16 0x3u
#define DIV_32 0x8u
#define DIV_64 0x9u
#define DIV_128 0xAu

#define X2APIC_ON (LAPIC_BASE_DEFAULT_ADDR | LAPIC_BASE_EN | LAPIC_BASE_EXTD)

static inline void lapic_power_up(struct lapic *a, uint32_t id, uint64_t timer_hz) {
  struct lapic_config cfg = {.apic_id = id, .timer_hz = timer_hz, .maxphyaddr = 46, .bsp = id == 0};
  struct diag d = {{0}};
  assert_true(lapic_init(a, &cfg, &d));
}

static inline uint64_t rd(struct lapic *a, uint32_t msr, uint64_t now) {
  uint64_t v = 0xdeadbeef;
  assert_int_equal(lapic_rdmsr(a, msr, now, &v), LAPIC_MSR_OK);
  return v;
}

static inline void wr(struct lapic *a, uint32_t msr, uint64_t value, uint64_t now) {
  struct lapic_ipi ipi;
  assert_int_equal(lapic_wrmsr(a, msr, value, now, &ipi), LAPIC_MSR_OK);
  assert_false(ipi.valid);
}

static inline enum lapic_msr_result wr_result(struct lapic *a, uint32_t msr, uint64_t value,
                                              uint64_t now) {
  struct lapic_ipi ipi;
  return lapic_wrmsr(a, msr, value, now, &ipi);
}

static inline enum lapic_msr_result rd_result(struct lapic *a, uint32_t msr, uint64_t now) {
  uint64_t v = 0;
  return lapic_rdmsr(a, msr, now, &v);
}

/* Power-up, then what a guest does first: x2APIC mode, software enable with
 * spurious vector 0xFF. */
static inline void lapic_ready(struct lapic *a, uint32_t id, uint64_t timer_hz) {
  lapic_power_up(a, id, timer_hz);
  wr(a, LAPIC_MSR_APIC_BASE, X2APIC_ON | (id == 0 ? LAPIC_BASE_BSP : 0), 0);
  wr(a, LAPIC_MSR_SVR, LAPIC_SVR_ENABLE | 0xFF, 0);
}

static inline bool irr_has(struct lapic *a, unsigned vector) {
  return (rd(a, LAPIC_MSR_IRR0 + vector / 32, 0) >> (vector % 32)) & 1;
}

static inline bool isr_has(struct lapic *a, unsigned vector) {
  return (rd(a, LAPIC_MSR_ISR0 + vector / 32, 0) >> (vector % 32)) & 1;
}

static inline bool irr_empty(struct lapic *a) {
  for (uint32_t i = 0; i < 8; i++)
    if (rd(a, LAPIC_MSR_IRR0 + i, 0)) return false;
  return true;
}

/* Latch and read the ESR the way software must: write 0, then read. */
static inline uint32_t esr_latch(struct lapic *a) {
  wr(a, LAPIC_MSR_ESR, 0, 0);
  return (uint32_t)rd(a, LAPIC_MSR_ESR, 0);
}

#endif
