/* apic.c — x2APIC programming (Intel SDM vol. 3A ch. 11, §11.12 "x2APIC").
 *
 * Timer: periodic mode on APFSIM_VEC_TIMER with the period of the boot info; the count
 * rate is boot_info.apic_timer_khz at divide-by-1, and the smallest divider that keeps
 * the initial count within 32 bits is used.
 */
#include "apic.h"

#include "kernel.h"
#include "x86.h"

#define APIC_SVR_ENABLE (1u << 8)
#define APIC_LVT_TIMER_PERIODIC (1u << 17)
#define APIC_ICR_LEVEL_ASSERT (1u << 14)

/* Divide configuration encodings (SDM vol. 3A figure 11-10), for /1, /2, ... /128 */
static const uint8_t divide_code[8] = {0xB, 0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA};

void apic_init(unsigned cpu) {
  uint32_t id = (uint32_t)rdmsr(MSR_X2APIC_ID);
  if (id != cpu) panic("vCPU %u has x2APIC ID %u (the boot contract says they are equal)", cpu, id);
  wrmsr(MSR_X2APIC_TPR, 0);
  wrmsr(MSR_X2APIC_SVR, APIC_SVR_ENABLE | APFSIM_VEC_SPURIOUS);

  uint64_t count = boot_info.timer_period_ns * boot_info.apic_timer_khz / 1000000;
  unsigned shift = 0;
  while (count >> shift > 0xffffffffull && shift < 7) shift++;
  count >>= shift;
  if (count > 0xffffffffull) panic("timer period %llu ns too long for the APIC timer", (unsigned long long)boot_info.timer_period_ns);
  if (count == 0) count = 1;
  wrmsr(MSR_X2APIC_TIMER_DCR, divide_code[shift]);
  wrmsr(MSR_X2APIC_LVT_TIMER, APIC_LVT_TIMER_PERIODIC | APFSIM_VEC_TIMER);
  wrmsr(MSR_X2APIC_TIMER_ICR, count);
}

void apic_eoi(void) { wrmsr(MSR_X2APIC_EOI, 0); }

void apic_send_ipi(uint32_t dest, uint8_t vector) {
  /* x2APIC ICR: destination in bits 63:32, fixed delivery, physical mode, edge */
  wrmsr(MSR_X2APIC_ICR, ((uint64_t)dest << 32) | APIC_ICR_LEVEL_ASSERT | vector);
}
