/* apic.h — the local APIC in x2APIC mode (all access through MSRs 0x800+, which the
 * simulator intercepts like any MSR): EOI, IPIs, and the periodic scheduler tick.
 * Not for: what the tick does (sched.c, traps.c).
 */
#ifndef GUEST_APIC_H
#define GUEST_APIC_H

#include <stdint.h>

void apic_init(unsigned cpu); /* checks the x2APIC ID, enables the APIC, starts the timer */
void apic_eoi(void);
void apic_send_ipi(uint32_t dest_apic_id, uint8_t vector);

#endif
