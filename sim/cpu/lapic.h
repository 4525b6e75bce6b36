/* lapic.h — one vCPU's local APIC in x2APIC mode, as a pure C model: the
 * x2APIC MSR interface (0x800-0x8FF) and IA32_APIC_BASE, IRR/ISR/TPR/PPR
 * priority, EOI, the LVT, the timer (one-shot and periodic) in simulated
 * time, and the ICR / SELF IPI. Facts: Intel SDM vol. 3A chapter 11
 * ("Advanced Programmable Interrupt Controller"), x2APIC in section 11.12.
 * docs/lapic.md lists every modelling choice.
 *
 * Not for: routing IPIs between vCPUs (the platform does that with
 * lapic_ipi_targets and lapic_accept), delivering the vector through the IDT
 * (sim/cpu's delivery code), NMI latching (the vCPU), the xAPIC MMIO page
 * (not modelled: guests use x2APIC), TSC-deadline mode (not offered).
 *
 * Time: every call that takes now_ns first catches the timer up to now_ns
 * (processing expiries at or before it). Times are a vCPU's own simulated
 * time in ns; they never go backwards — an earlier now_ns than one already
 * seen is treated as the latest one seen. No wall clock anywhere. */
#ifndef APFSIM_CPU_LAPIC_H
#define APFSIM_CPU_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

struct diag;

/* MSR numbers (SDM vol. 3A table 11-6; IA32_APIC_BASE: vol. 4 table 2-2). */
#define LAPIC_MSR_APIC_BASE 0x01Bu
#define LAPIC_MSR_X2APIC_FIRST 0x800u
#define LAPIC_MSR_X2APIC_LAST 0x8FFu
#define LAPIC_MSR_ID 0x802u
#define LAPIC_MSR_VERSION 0x803u
#define LAPIC_MSR_TPR 0x808u
#define LAPIC_MSR_PPR 0x80Au
#define LAPIC_MSR_EOI 0x80Bu
#define LAPIC_MSR_LDR 0x80Du
#define LAPIC_MSR_SVR 0x80Fu
#define LAPIC_MSR_ISR0 0x810u /* ..0x817, bits 31:0 of each = vectors 32i..32i+31 */
#define LAPIC_MSR_TMR0 0x818u /* ..0x81F */
#define LAPIC_MSR_IRR0 0x820u /* ..0x827 */
#define LAPIC_MSR_ESR 0x828u
#define LAPIC_MSR_ICR 0x830u
#define LAPIC_MSR_LVT_TIMER 0x832u
#define LAPIC_MSR_LVT_THERMAL 0x833u
#define LAPIC_MSR_LVT_PERF 0x834u
#define LAPIC_MSR_LVT_LINT0 0x835u
#define LAPIC_MSR_LVT_LINT1 0x836u
#define LAPIC_MSR_LVT_ERROR 0x837u
#define LAPIC_MSR_TIMER_INITIAL 0x838u
#define LAPIC_MSR_TIMER_CURRENT 0x839u
#define LAPIC_MSR_TIMER_DIVIDE 0x83Eu
#define LAPIC_MSR_SELF_IPI 0x83Fu

/* IA32_APIC_BASE bits (SDM vol. 3A 11.4.4, 11.12.1). */
#define LAPIC_BASE_BSP (UINT64_C(1) << 8)
#define LAPIC_BASE_EXTD (UINT64_C(1) << 10) /* x2APIC enable */
#define LAPIC_BASE_EN (UINT64_C(1) << 11)   /* APIC global enable */
#define LAPIC_BASE_DEFAULT_ADDR UINT64_C(0xFEE00000)

/* Version register: version 0x14 (an integrated APIC), max LVT entry 5
 * (six entries: no CMCI), bit 24 clear (no EOI-broadcast suppression). */
#define LAPIC_VERSION_VALUE UINT32_C(0x00050014)

/* ESR bits (SDM vol. 3A 11.5.3, figure 11-9). */
#define LAPIC_ESR_REDIRECTABLE_IPI (1u << 4)
#define LAPIC_ESR_SEND_ILLEGAL_VECTOR (1u << 5)
#define LAPIC_ESR_RECV_ILLEGAL_VECTOR (1u << 6)

/* LVT bits (SDM vol. 3A 11.5.1, figure 11-8). */
#define LAPIC_LVT_MASKED (1u << 16)
#define LAPIC_LVT_TIMER_ONESHOT (0u << 17)
#define LAPIC_LVT_TIMER_PERIODIC (1u << 17)

/* SVR bit 8: APIC software enable (SDM vol. 3A 11.9). */
#define LAPIC_SVR_ENABLE (1u << 8)

/* Upper bound of lapic_config.timer_hz: 1 GHz (KVM's own emulated APIC bus
 * rate). A faster input clock would step more often than simulated time's
 * 1 ns resolution, and this bound keeps every count below 2^64 for 2^64 ns. */
#define LAPIC_TIMER_HZ_MAX UINT64_C(1000000000)

/* Returned by lapic_next_timer_ns when no timer interrupt is due. */
#define LAPIC_NO_TIMER UINT64_MAX

enum lapic_msr_result {
  LAPIC_MSR_OK,       /* done; *value is valid for reads */
  LAPIC_MSR_GP,       /* the instruction must raise #GP(0); no state changed */
  LAPIC_MSR_NOT_APIC, /* not an APIC MSR: the caller's dispatch table decides */
};

/* ICR delivery modes (bits 10:8, SDM vol. 3A 11.6.1). 011 and 111 are
 * reserved encodings (apfsim: #GP); lowest priority is never sent (ESR). */
enum lapic_delivery_mode {
  LAPIC_DM_FIXED = 0,
  LAPIC_DM_LOWEST_PRIORITY = 1,
  LAPIC_DM_SMI = 2,
  LAPIC_DM_NMI = 4,
  LAPIC_DM_INIT = 5,
  LAPIC_DM_STARTUP = 6,
};

/* ICR destination shorthand (bits 19:18). */
enum lapic_shorthand {
  LAPIC_SH_NONE = 0,
  LAPIC_SH_SELF = 1,
  LAPIC_SH_ALL = 2,          /* all including self */
  LAPIC_SH_ALL_BUT_SELF = 3, /* all excluding self */
};

/* An interprocessor interrupt a WRMSR to the ICR sends. The platform finds
 * the targets with lapic_ipi_targets and then, per mode: FIXED ->
 * lapic_accept(target, vector); NMI -> raise NMI on the target vCPU (the
 * vector is ignored); INIT / STARTUP / SMI -> platform-defined (reported so
 * it can at least trace them). */
struct lapic_ipi {
  bool valid;          /* false: the write sent nothing */
  uint32_t source_id;  /* sender's x2APIC ID */
  uint32_t dest;       /* ICR[63:32]; used only with LAPIC_SH_NONE */
  uint8_t vector;      /* ICR[7:0] */
  enum lapic_delivery_mode mode;
  bool logical;        /* ICR[11]: logical (cluster) destination */
  bool level_assert;   /* ICR[14] */
  bool level_trigger;  /* ICR[15] */
  enum lapic_shorthand shorthand;
};

struct lapic_config {
  uint32_t apic_id;    /* x2APIC ID (apfsim: the vCPU index); not 0xFFFFFFFF */
  uint64_t timer_hz;   /* APIC timer input clock (the "bus clock"), 1..LAPIC_TIMER_HZ_MAX */
  unsigned maxphyaddr; /* physical-address width for IA32_APIC_BASE's base field, 32..52 */
  bool bsp;            /* IA32_APIC_BASE.BSP after reset */
};

enum { LAPIC_LVT_TIMER_IDX, LAPIC_LVT_THERMAL_IDX, LAPIC_LVT_PERF_IDX,
       LAPIC_LVT_LINT0_IDX, LAPIC_LVT_LINT1_IDX, LAPIC_LVT_ERROR_IDX, LAPIC_LVT_COUNT };

/* One per vCPU. A plain struct so the caller owns its storage; read it
 * through the functions below (fields are the model's state, not an API). */
struct lapic {
  struct lapic_config cfg;
  uint64_t apic_base;          /* IA32_APIC_BASE */
  uint32_t tpr, svr, ldr;
  uint32_t irr[8], isr[8], tmr[8];
  uint32_t esr;                /* what RDMSR(ESR) shows */
  uint32_t esr_pending;        /* errors since the last ESR write */
  uint64_t icr;
  uint32_t lvt[LAPIC_LVT_COUNT];
  uint32_t timer_initial, timer_divide;
  /* Timer: counting started at timer_start_ns from timer_start_count; it has
   * expired timer_expiries times since (periodic reloads with the initial
   * count). Expiry k (k >= 1) is at count start_count + (k-1)*initial. */
  bool timer_running;
  uint64_t timer_start_ns;
  uint32_t timer_start_count;
  uint64_t timer_expiries;
  uint64_t last_ns;            /* latest now_ns seen */
  /* Statistics, for traces and summaries. */
  uint64_t stat_timer_expiries;   /* every expiry, masked or coalesced ones too */
  uint64_t stat_timer_irqs;       /* expiries that set IRR */
  uint64_t stat_dropped;          /* fixed interrupts not accepted (APIC disabled) */
};

/* Power-up state (SDM 11.12.5.1): xAPIC mode, EN=1, EXTD=0, base 0xFEE00000.
 * The guest (or the platform, for firmware that pre-enables x2APIC) writes
 * IA32_APIC_BASE with EN|EXTD to reach x2APIC mode. False, with a message,
 * if cfg is out of range. */
bool lapic_init(struct lapic *a, const struct lapic_config *cfg, struct diag *err);

/* INIT (SDM 11.12.5.1): every register but the ID and IA32_APIC_BASE returns
 * to its power-up value; the mode (x2APIC, xAPIC, disabled) is kept. */
void lapic_init_signal(struct lapic *a);

/* RDMSR/WRMSR of msr at simulated time now_ns. For writes, *ipi_out (may be
 * NULL only if the caller never routes IPIs) is cleared and, after an ICR
 * write that sends an IPI, filled in. */
enum lapic_msr_result lapic_rdmsr(struct lapic *a, uint32_t msr, uint64_t now_ns, uint64_t *value);
enum lapic_msr_result lapic_wrmsr(struct lapic *a, uint32_t msr, uint64_t value, uint64_t now_ns,
                                  struct lapic_ipi *ipi_out);

/* Does the IPI reach the APIC `target` (the sender included, per shorthand)?
 * False if target is hardware-disabled. Physical or logical (cluster)
 * destination, 0xFFFFFFFF = broadcast (SDM 11.12.9, 11.12.10). */
bool lapic_ipi_targets(const struct lapic_ipi *ipi, const struct lapic *target);

/* A fixed, edge-triggered interrupt arrives (device, IPI, APF page-ready):
 * IRR[vector] is set (coalescing with one already pending). Vectors 0-15
 * are illegal: ESR "receive illegal vector", nothing pending. Not accepted
 * while the APIC is hardware- or software-disabled. Returns whether IRR was
 * set. */
bool lapic_accept(struct lapic *a, uint8_t vector);

/* Highest IRR vector whose priority class is above the PPR's, or -1. The
 * vCPU still checks RFLAGS.IF and the interrupt shadow. */
int lapic_pending_vector(const struct lapic *a);

/* The vCPU takes the interrupt: that vector moves from IRR to ISR and is
 * returned. If nothing is deliverable, the spurious vector (SVR[7:0]) is
 * returned and ISR is unchanged — the guest must not EOI it (SDM 11.9). */
uint8_t lapic_acknowledge(struct lapic *a);

/* Absolute time of the next timer expiry that sets IRR (or reports an illegal
 * vector), LAPIC_NO_TIMER if none: stopped, or masked (a masked timer still
 * counts — current count and one-shot completion follow simulated time — but
 * its expiries need no exact stop). Re-read it after every lapic call. */
uint64_t lapic_next_timer_ns(const struct lapic *a);

/* Process timer expiries at or before now_ns (one-shot: once; periodic:
 * re-arm, several missed periods set IRR once). */
void lapic_advance(struct lapic *a, uint64_t now_ns);

/* Current PPR value (SDM 11.8.3.1). */
uint8_t lapic_ppr(const struct lapic *a);

/* Whether the APIC is in x2APIC mode (EN=1, EXTD=1). */
bool lapic_x2apic_mode(const struct lapic *a);

#endif
