/* lapic.c — the local APIC model of lapic.h. Section numbers are those of
 * Intel SDM vol. 3A chapter 11 "Advanced Programmable Interrupt Controller
 * (APIC)" (chapter 10 in editions before 2022); titles are given so either
 * edition can be searched. Modelling choices are listed in docs/lapic.md. */
#include "cpu/lapic.h"

#include <string.h>

#include "core/diag.h"

#define NS_PER_S UINT64_C(1000000000)

/* GCC/Clang's 128-bit integer: exact products of ns x Hz without floats.
 * __extension__ keeps -Wpedantic quiet about it. */
__extension__ typedef unsigned __int128 u128;

/* 11.12.1.2: "The upper 32-bits of all x2APIC MSRs (except for the ICR) are
 * reserved"; 11.12.1.3 "Reserved Bit Checking": a WRMSR setting a reserved
 * bit raises #GP. */
#define HIGH32 UINT64_C(0xFFFFFFFF00000000)

/* Writable bits per register (x2APIC mode). Everything else is reserved,
 * except the read-only status bits listed separately, which a write may
 * carry but cannot change. */
#define TPR_BITS UINT32_C(0x000000FF)
/* SVR (11.9, figure 11-23): vector 7:0, software enable 8, focus processor
 * checking 9 (kept as storage: it only affects lowest-priority arbitration,
 * which is not modelled). Bit 12 (EOI-broadcast suppression) is reserved
 * because the version register does not advertise it. */
#define SVR_BITS UINT32_C(0x000003FF)
/* LVT entries (11.5.1, figure 11-8). */
#define LVT_VECTOR UINT32_C(0x000000FF)
#define LVT_DELIVERY_MODE UINT32_C(0x00000700)
#define LVT_DELIVERY_STATUS UINT32_C(0x00001000) /* read-only */
#define LVT_POLARITY UINT32_C(0x00002000)
#define LVT_REMOTE_IRR UINT32_C(0x00004000) /* read-only */
#define LVT_TRIGGER UINT32_C(0x00008000)
#define LVT_MASK LAPIC_LVT_MASKED
#define LVT_TIMER_MODE UINT32_C(0x00060000)
#define LVT_TIMER_MODE_TSC_DEADLINE UINT32_C(0x00040000)
/* Divide configuration (11.5.4, figure 11-10): bits 0, 1 and 3. */
#define DIVIDE_BITS UINT32_C(0x0000000B)
/* ICR in x2APIC mode (11.12.9, figure 11-28): vector 7:0, delivery mode
 * 10:8, destination mode 11, level 14, trigger mode 15, shorthand 19:18,
 * destination 63:32. Bit 12 (delivery status) is gone in x2APIC mode, so it
 * is reserved like 13, 17:16 and 31:20. */
#define ICR_BITS UINT64_C(0xFFFFFFFF000CCFFF)
#define SELF_IPI_BITS UINT32_C(0x000000FF)

/* IA32_APIC_BASE (11.4.4, figure 11-5): bits 7:0 and 9 are reserved, as are
 * the base address bits at and above MAXPHYADDR. */
#define APIC_BASE_LOW_RESERVED UINT64_C(0x2FF)

#define X2APIC_BROADCAST UINT32_C(0xFFFFFFFF)

static const uint32_t lvt_writable[LAPIC_LVT_COUNT] = {
    [LAPIC_LVT_TIMER_IDX] = LVT_VECTOR | LVT_MASK | LVT_TIMER_MODE,
    [LAPIC_LVT_THERMAL_IDX] = LVT_VECTOR | LVT_DELIVERY_MODE | LVT_MASK,
    [LAPIC_LVT_PERF_IDX] = LVT_VECTOR | LVT_DELIVERY_MODE | LVT_MASK,
    [LAPIC_LVT_LINT0_IDX] = LVT_VECTOR | LVT_DELIVERY_MODE | LVT_POLARITY | LVT_TRIGGER | LVT_MASK,
    [LAPIC_LVT_LINT1_IDX] = LVT_VECTOR | LVT_DELIVERY_MODE | LVT_POLARITY | LVT_TRIGGER | LVT_MASK,
    [LAPIC_LVT_ERROR_IDX] = LVT_VECTOR | LVT_MASK,
};
static const uint32_t lvt_read_only[LAPIC_LVT_COUNT] = {
    [LAPIC_LVT_TIMER_IDX] = LVT_DELIVERY_STATUS,
    [LAPIC_LVT_THERMAL_IDX] = LVT_DELIVERY_STATUS,
    [LAPIC_LVT_PERF_IDX] = LVT_DELIVERY_STATUS,
    [LAPIC_LVT_LINT0_IDX] = LVT_DELIVERY_STATUS | LVT_REMOTE_IRR,
    [LAPIC_LVT_LINT1_IDX] = LVT_DELIVERY_STATUS | LVT_REMOTE_IRR,
    [LAPIC_LVT_ERROR_IDX] = LVT_DELIVERY_STATUS,
};

/* ---- 256-bit vector sets (IRR, ISR, TMR: 11.8.4, figure 11-20) ---- */

static void vec_set(uint32_t v[8], unsigned vector) { v[vector >> 5] |= UINT32_C(1) << (vector & 31); }
static void vec_clear(uint32_t v[8], unsigned vector) { v[vector >> 5] &= ~(UINT32_C(1) << (vector & 31)); }

/* Highest set vector, or -1. */
static int vec_highest(const uint32_t v[8]) {
  for (int i = 7; i >= 0; i--)
    if (v[i]) return i * 32 + 31 - __builtin_clz(v[i]);
  return -1;
}

/* ---- state queries ---- */

static bool hw_enabled(const struct lapic *a) { return (a->apic_base & LAPIC_BASE_EN) != 0; }

bool lapic_x2apic_mode(const struct lapic *a) {
  return (a->apic_base & (LAPIC_BASE_EN | LAPIC_BASE_EXTD)) == (LAPIC_BASE_EN | LAPIC_BASE_EXTD);
}

static bool sw_enabled(const struct lapic *a) { return (a->svr & LAPIC_SVR_ENABLE) != 0; }

/* 11.8.3.1 "Task and Processor Priorities": if TPR[7:4] >= ISRV[7:4] then
 * PPR = TPR, else PPR = ISRV[7:4] with sub-class 0; ISRV is the highest
 * in-service vector, or 0 when none is. */
uint8_t lapic_ppr(const struct lapic *a) {
  int isrv = vec_highest(a->isr);
  uint32_t isrv_class = isrv < 0 ? 0 : (uint32_t)isrv >> 4;
  if ((a->tpr >> 4) >= isrv_class) return (uint8_t)a->tpr;
  return (uint8_t)(isrv_class << 4);
}

/* ---- errors (11.5.3 "Error Handling") ---- */

/* Errors are collected whether or not the LVT error entry is masked; an
 * unmasked entry raises its vector. An illegal error vector only adds
 * "receive illegal vector" (no second error interrupt, so no loop). */
static void record_error(struct lapic *a, uint32_t bits) {
  a->esr_pending |= bits;
  uint32_t lvt = a->lvt[LAPIC_LVT_ERROR_IDX];
  if (lvt & LVT_MASK) return;
  uint8_t vector = (uint8_t)(lvt & LVT_VECTOR);
  if (vector < 16)
    a->esr_pending |= LAPIC_ESR_RECV_ILLEGAL_VECTOR;
  else
    vec_set(a->irr, vector);
}

/* An interrupt from an LVT entry (the timer). 11.5.3 bit 6: an illegal
 * vector (0-15) is never put in IRR; it sets "receive illegal vector". */
static void lvt_interrupt(struct lapic *a, uint8_t vector) {
  if (vector < 16)
    record_error(a, LAPIC_ESR_RECV_ILLEGAL_VECTOR);
  else
    vec_set(a->irr, vector);
}

bool lapic_accept(struct lapic *a, uint8_t vector) {
  /* 11.4.7.2: a software-disabled APIC still responds to INIT, NMI, SMI and
   * SIPI, not to fixed interrupts; a hardware-disabled one to nothing. */
  if (!hw_enabled(a) || !sw_enabled(a)) {
    a->stat_dropped++;
    return false;
  }
  if (vector < 16) {
    record_error(a, LAPIC_ESR_RECV_ILLEGAL_VECTOR);
    return false;
  }
  vec_set(a->irr, vector);
  return true;
}

/* ---- timer (11.5.4 "APIC Timer") ---- */

/* Divide configuration bits 3,1,0: 000 -> 2, 001 -> 4, ... 110 -> 128,
 * 111 -> 1 (figure 11-10). */
static uint64_t timer_divisor(const struct lapic *a) {
  uint32_t code = ((a->timer_divide >> 1) & 4u) | (a->timer_divide & 3u);
  return code == 7 ? 1 : UINT64_C(2) << code;
}

/* The timer input clock runs at timer_hz and the counter decrements once per
 * `divisor` input cycles, with the divider phase starting when counting
 * starts. After t ns of counting, the input clock has made
 * floor(t * hz / 1e9) cycles, so the counter has moved
 * floor(cycles / divisor) steps. 128-bit products keep this exact (no
 * floats, no drift); with timer_hz <= 1e9, cycles <= elapsed ns < 2^64. */
static uint64_t counts_elapsed(const struct lapic *a, uint64_t now_ns) {
  u128 cycles = (u128)(now_ns - a->timer_start_ns) * a->cfg.timer_hz / NS_PER_S;
  return (uint64_t)(cycles / timer_divisor(a));
}

/* Count (since timer_start) at which expiry number timer_expiries+1 happens. */
static u128 next_expiry_count(const struct lapic *a) {
  return (u128)a->timer_start_count + (u128)a->timer_expiries * a->timer_initial;
}

/* Time of the next expiry: the first ns at which counts_elapsed reaches
 * next_expiry_count, i.e. start + ceil(count * divisor * 1e9 / hz). Rounding
 * up means the interrupt is never raised before the counter has really
 * reached 0, and the current count read at that very ns is 0 — the two views
 * agree. Saturates at UINT64_MAX (never, within 2^64 ns). */
static uint64_t next_expiry_ns(const struct lapic *a) {
  u128 num = next_expiry_count(a) * timer_divisor(a) * NS_PER_S;
  u128 dt = (num + a->cfg.timer_hz - 1) / a->cfg.timer_hz;
  u128 t = dt + a->timer_start_ns;
  return t >= UINT64_MAX ? UINT64_MAX : (uint64_t)t;
}

static bool timer_periodic(const struct lapic *a) {
  return (a->lvt[LAPIC_LVT_TIMER_IDX] & LVT_TIMER_MODE) == LAPIC_LVT_TIMER_PERIODIC;
}

/* Process every expiry at or before now_ns. The mode and mask in force now
 * apply (the platform is expected to call in at each lapic_next_timer_ns,
 * so "now" is the expiry time whenever it matters). Several periodic
 * expiries since the last call coalesce into one IRR bit, as one vector
 * would in hardware. */
static void timer_catch_up(struct lapic *a, uint64_t now_ns) {
  if (!a->timer_running || now_ns < next_expiry_ns(a)) return;
  uint64_t elapsed = counts_elapsed(a, now_ns);
  uint64_t fired;
  if (timer_periodic(a)) {
    /* Expiry k is at count start_count + (k-1)*initial: all k with that
     * count <= elapsed have happened. */
    uint64_t total = 1 + (elapsed - a->timer_start_count) / a->timer_initial;
    fired = total - a->timer_expiries;
    a->timer_expiries = total;
  } else {
    /* One-shot: "the timer remains at its 0 value until reprogrammed". */
    fired = 1;
    a->timer_expiries++;
    a->timer_running = false;
  }
  a->stat_timer_expiries += fired;
  uint32_t lvt = a->lvt[LAPIC_LVT_TIMER_IDX];
  if (!(lvt & LVT_MASK)) {
    lvt_interrupt(a, (uint8_t)(lvt & LVT_VECTOR));
    a->stat_timer_irqs++;
  }
}

/* Time never goes backwards for one APIC; returns the effective now. */
static uint64_t observe_time(struct lapic *a, uint64_t now_ns) {
  if (now_ns > a->last_ns) a->last_ns = now_ns;
  timer_catch_up(a, a->last_ns);
  return a->last_ns;
}

void lapic_advance(struct lapic *a, uint64_t now_ns) { observe_time(a, now_ns); }

uint64_t lapic_next_timer_ns(const struct lapic *a) {
  if (!a->timer_running || (a->lvt[LAPIC_LVT_TIMER_IDX] & LVT_MASK)) return LAPIC_NO_TIMER;
  return next_expiry_ns(a);
}

static uint32_t timer_current_count(const struct lapic *a, uint64_t now_ns) {
  if (!a->timer_running) return 0;
  /* After catch-up the next expiry is still ahead, so this is >= 1. */
  return (uint32_t)(next_expiry_count(a) - counts_elapsed(a, now_ns));
}

/* 11.5.4: writing the initial count (re)starts counting from it; 0 stops
 * the timer in both modes. */
static void timer_start(struct lapic *a, uint32_t initial, uint64_t now_ns) {
  a->timer_initial = initial;
  a->timer_running = initial != 0;
  a->timer_start_ns = now_ns;
  a->timer_start_count = initial;
  a->timer_expiries = 0;
}

/* The SDM does not define a divide change mid-count; apfsim keeps the
 * current count and continues from it at the new rate (the partial step
 * under way is restarted). Periodic reloads still use the initial count. */
static void timer_set_divide(struct lapic *a, uint32_t divide, uint64_t now_ns) {
  if (a->timer_running) {
    uint32_t current = timer_current_count(a, now_ns);
    a->timer_start_ns = now_ns;
    a->timer_start_count = current;
    a->timer_expiries = 0;
  }
  a->timer_divide = divide;
}

/* ---- reset ---- */

/* Power-up values of everything but the ID and IA32_APIC_BASE
 * (11.12.5.1 "x2APIC States": IRR, ISR, TMR, ICR, LDR, TPR, divide
 * configuration, initial and current count zero; LVT zero but masked; SVR
 * 0xFF; ESR zero). LDR is zero outside x2APIC mode and derived from the ID
 * inside it (11.12.10.2). */
static uint32_t x2apic_logical_id(uint32_t id) {
  /* 11.12.10.2 "Deriving Logical x2APIC ID from the Local x2APIC ID":
   * cluster = ID[19:4] in bits 31:16, one bit 1 << ID[3:0] in bits 15:0. */
  return ((id >> 4) << 16) | (UINT32_C(1) << (id & 0xF));
}

static void reset_registers(struct lapic *a) {
  a->tpr = 0;
  a->svr = 0xFF;
  a->ldr = lapic_x2apic_mode(a) ? x2apic_logical_id(a->cfg.apic_id) : 0;
  memset(a->irr, 0, sizeof a->irr);
  memset(a->isr, 0, sizeof a->isr);
  memset(a->tmr, 0, sizeof a->tmr);
  a->esr = a->esr_pending = 0;
  a->icr = 0;
  for (int i = 0; i < LAPIC_LVT_COUNT; i++) a->lvt[i] = LVT_MASK;
  a->timer_divide = 0;
  timer_start(a, 0, a->last_ns);
}

bool lapic_init(struct lapic *a, const struct lapic_config *cfg, struct diag *err) {
  if (cfg->timer_hz == 0 || cfg->timer_hz > LAPIC_TIMER_HZ_MAX)
    return diag_set(err, "lapic: timer_hz %llu is outside 1..%llu", (unsigned long long)cfg->timer_hz,
                    (unsigned long long)LAPIC_TIMER_HZ_MAX);
  if (cfg->maxphyaddr < 32 || cfg->maxphyaddr > 52)
    return diag_set(err, "lapic: maxphyaddr %u is outside 32..52", cfg->maxphyaddr);
  /* 11.12.1.3 reserves x2APIC ID 0xFFFFFFFF: it is the broadcast address. */
  if (cfg->apic_id == X2APIC_BROADCAST)
    return diag_set(err, "lapic: apic_id 0xffffffff is the broadcast address");
  memset(a, 0, sizeof *a);
  a->cfg = *cfg;
  /* 11.12.5.1: out of reset the APIC is enabled in xAPIC mode. */
  a->apic_base = LAPIC_BASE_DEFAULT_ADDR | LAPIC_BASE_EN | (cfg->bsp ? LAPIC_BASE_BSP : 0);
  reset_registers(a);
  return true;
}

void lapic_init_signal(struct lapic *a) { reset_registers(a); }

/* ---- IA32_APIC_BASE (11.4.4; transitions 11.12.5, figure 11-27) ---- */

static enum lapic_msr_result write_apic_base(struct lapic *a, uint64_t value) {
  uint64_t reserved = APIC_BASE_LOW_RESERVED | ~((UINT64_C(1) << a->cfg.maxphyaddr) - 1);
  if (value & reserved) return LAPIC_MSR_GP;
  bool en = value & LAPIC_BASE_EN, extd = value & LAPIC_BASE_EXTD;
  bool was_en = hw_enabled(a), was_x2 = lapic_x2apic_mode(a);
  if (extd && !en) return LAPIC_MSR_GP;        /* the invalid state */
  if (was_x2 && en && !extd) return LAPIC_MSR_GP; /* x2APIC -> xAPIC */
  if (!was_en && extd) return LAPIC_MSR_GP;    /* disabled -> x2APIC */
  a->apic_base = value;
  if (was_en && !en) {
    /* "All the APIC register states in the x2APIC, except for the x2APIC
     * ID, are not preserved across mode transitions": apfsim resets them,
     * which also stops the timer. */
    reset_registers(a);
  } else if (!was_x2 && extd) {
    /* xAPIC -> x2APIC: the logical x2APIC ID is initialized by hardware. */
    a->ldr = x2apic_logical_id(a->cfg.apic_id);
  }
  return LAPIC_MSR_OK;
}

/* ---- register reads ---- */

static enum lapic_msr_result read_x2apic(struct lapic *a, uint32_t msr, uint64_t now_ns,
                                         uint64_t *value) {
  if (msr >= LAPIC_MSR_ISR0 && msr < LAPIC_MSR_ISR0 + 8) {
    *value = a->isr[msr - LAPIC_MSR_ISR0];
    return LAPIC_MSR_OK;
  }
  if (msr >= LAPIC_MSR_TMR0 && msr < LAPIC_MSR_TMR0 + 8) {
    *value = a->tmr[msr - LAPIC_MSR_TMR0];
    return LAPIC_MSR_OK;
  }
  if (msr >= LAPIC_MSR_IRR0 && msr < LAPIC_MSR_IRR0 + 8) {
    *value = a->irr[msr - LAPIC_MSR_IRR0];
    return LAPIC_MSR_OK;
  }
  if (msr >= LAPIC_MSR_LVT_TIMER && msr <= LAPIC_MSR_LVT_ERROR) {
    *value = a->lvt[msr - LAPIC_MSR_LVT_TIMER];
    return LAPIC_MSR_OK;
  }
  switch (msr) {
  case LAPIC_MSR_ID: *value = a->cfg.apic_id; return LAPIC_MSR_OK;
  case LAPIC_MSR_VERSION: *value = LAPIC_VERSION_VALUE; return LAPIC_MSR_OK;
  case LAPIC_MSR_TPR: *value = a->tpr; return LAPIC_MSR_OK;
  case LAPIC_MSR_PPR: *value = lapic_ppr(a); return LAPIC_MSR_OK;
  case LAPIC_MSR_LDR: *value = a->ldr; return LAPIC_MSR_OK;
  case LAPIC_MSR_SVR: *value = a->svr; return LAPIC_MSR_OK;
  case LAPIC_MSR_ESR: *value = a->esr; return LAPIC_MSR_OK;
  case LAPIC_MSR_ICR: *value = a->icr; return LAPIC_MSR_OK;
  case LAPIC_MSR_TIMER_INITIAL: *value = a->timer_initial; return LAPIC_MSR_OK;
  case LAPIC_MSR_TIMER_CURRENT: *value = timer_current_count(a, now_ns); return LAPIC_MSR_OK;
  case LAPIC_MSR_TIMER_DIVIDE: *value = a->timer_divide; return LAPIC_MSR_OK;
  /* EOI and SELF IPI are write-only (table 11-6); everything else in the
   * range is reserved (11.12.1.2). Both raise #GP. */
  default: return LAPIC_MSR_GP;
  }
}

enum lapic_msr_result lapic_rdmsr(struct lapic *a, uint32_t msr, uint64_t now_ns, uint64_t *value) {
  if (msr == LAPIC_MSR_APIC_BASE) {
    *value = a->apic_base;
    return LAPIC_MSR_OK;
  }
  if (msr < LAPIC_MSR_X2APIC_FIRST || msr > LAPIC_MSR_X2APIC_LAST) return LAPIC_MSR_NOT_APIC;
  /* 11.12.2 "x2APIC Register Availability": outside x2APIC mode these MSRs
   * raise #GP. */
  if (!lapic_x2apic_mode(a)) return LAPIC_MSR_GP;
  now_ns = observe_time(a, now_ns);
  uint64_t v = 0;
  enum lapic_msr_result r = read_x2apic(a, msr, now_ns, &v);
  if (r == LAPIC_MSR_OK) *value = v;
  return r;
}

/* ---- register writes ---- */

/* 11.8.5 "Signaling Interrupt Servicing Completion": EOI clears the highest
 * ISR bit. With no IOAPIC and only edge-triggered sources, TMR is always
 * clear, so no EOI broadcast is ever due. */
static void write_eoi(struct lapic *a) {
  int v = vec_highest(a->isr);
  if (v >= 0) vec_clear(a->isr, (unsigned)v);
}

/* 11.9 / 11.4.7.2: clearing the software-enable bit sets every LVT mask. */
static void write_svr(struct lapic *a, uint32_t value) {
  a->svr = value;
  if (!sw_enabled(a))
    for (int i = 0; i < LAPIC_LVT_COUNT; i++) a->lvt[i] |= LVT_MASK;
}

static enum lapic_msr_result write_lvt(struct lapic *a, unsigned idx, uint32_t value) {
  if (value & ~(lvt_writable[idx] | lvt_read_only[idx])) return LAPIC_MSR_GP;
  if (idx == LAPIC_LVT_TIMER_IDX) {
    uint32_t mode = value & LVT_TIMER_MODE;
    /* Mode 10 is TSC-deadline, which CPUID does not offer, so bit 18 is
     * reserved (11.5.4.1); mode 11 is reserved outright. */
    if (mode & LVT_TIMER_MODE_TSC_DEADLINE) return LAPIC_MSR_GP;
  }
  uint32_t kept = a->lvt[idx] & lvt_read_only[idx];
  uint32_t next = (value & lvt_writable[idx]) | kept;
  /* 11.4.7.2: while software-disabled, attempts to clear a mask are ignored. */
  if (!sw_enabled(a)) next |= LVT_MASK;
  /* Changing the timer mode does not start or restart the timer (11.5.4);
   * the running count continues under the new mode. */
  a->lvt[idx] = next;
  return LAPIC_MSR_OK;
}

/* Decode an ICR write into the IPI it sends (11.6.1, 11.12.9). */
static enum lapic_msr_result write_icr(struct lapic *a, uint64_t value, struct lapic_ipi *ipi_out) {
  if (value & ~ICR_BITS) return LAPIC_MSR_GP;
  unsigned mode = (unsigned)(value >> 8) & 7u;
  /* 011 and 111 are reserved encodings; apfsim surfaces them as #GP rather
   * than inventing a behaviour the SDM does not define. */
  if (mode == 3 || mode == 7) return LAPIC_MSR_GP;
  a->icr = value;
  uint8_t vector = (uint8_t)value;
  if (mode == LAPIC_DM_LOWEST_PRIORITY) {
    /* 11.5.3 bit 4: an APIC that cannot send lowest-priority IPIs sets
     * "redirectable IPI" and does not process the interrupt (so no "send
     * illegal vector" either). apfsim's APIC is such an APIC. */
    record_error(a, LAPIC_ESR_REDIRECTABLE_IPI);
    return LAPIC_MSR_OK;
  }
  /* 11.5.3 bit 5: a fixed IPI with vector 0-15 sets "send illegal vector";
   * the message still goes out and each receiver flags "receive illegal
   * vector" (lapic_accept). Other modes ignore the vector (SIPI: a page
   * number, any value). */
  if (mode == LAPIC_DM_FIXED && vector < 16) record_error(a, LAPIC_ESR_SEND_ILLEGAL_VECTOR);
  if (ipi_out) {
    ipi_out->valid = true;
    ipi_out->source_id = a->cfg.apic_id;
    ipi_out->dest = (uint32_t)(value >> 32);
    ipi_out->vector = vector;
    ipi_out->mode = (enum lapic_delivery_mode)mode;
    ipi_out->logical = (value >> 11) & 1;
    ipi_out->level_assert = (value >> 14) & 1;
    ipi_out->level_trigger = (value >> 15) & 1;
    ipi_out->shorthand = (enum lapic_shorthand)((value >> 18) & 3u);
  }
  return LAPIC_MSR_OK;
}

/* 11.12.11 "SELF IPI Register": a fixed, edge-triggered interrupt to this
 * APIC only, so it is delivered here and never reported for routing. An
 * illegal vector is both sent and received by this APIC (11.5.3 bits 5, 6). */
static void write_self_ipi(struct lapic *a, uint8_t vector) {
  if (vector < 16) {
    record_error(a, LAPIC_ESR_SEND_ILLEGAL_VECTOR | LAPIC_ESR_RECV_ILLEGAL_VECTOR);
    return;
  }
  lapic_accept(a, vector);
}

static enum lapic_msr_result write_x2apic(struct lapic *a, uint32_t msr, uint64_t value,
                                          uint64_t now_ns, struct lapic_ipi *ipi_out) {
  if (msr == LAPIC_MSR_ICR) return write_icr(a, value, ipi_out);
  if (value & HIGH32) return LAPIC_MSR_GP;
  uint32_t v = (uint32_t)value;
  if (msr >= LAPIC_MSR_LVT_TIMER && msr <= LAPIC_MSR_LVT_ERROR)
    return write_lvt(a, msr - LAPIC_MSR_LVT_TIMER, v);
  switch (msr) {
  case LAPIC_MSR_TPR:
    if (v & ~TPR_BITS) return LAPIC_MSR_GP;
    a->tpr = v;
    return LAPIC_MSR_OK;
  case LAPIC_MSR_EOI:
    /* Table 11-6: "WRMSR of a non-zero value causes #GP(0)". */
    if (v != 0) return LAPIC_MSR_GP;
    write_eoi(a);
    return LAPIC_MSR_OK;
  case LAPIC_MSR_SVR:
    if (v & ~SVR_BITS) return LAPIC_MSR_GP;
    write_svr(a, v);
    return LAPIC_MSR_OK;
  case LAPIC_MSR_ESR:
    /* 11.5.3: x2APIC enforces writing zero; the write latches the errors
     * collected since the previous write into the readable ESR and starts
     * collecting afresh. */
    if (v != 0) return LAPIC_MSR_GP;
    a->esr = a->esr_pending;
    a->esr_pending = 0;
    return LAPIC_MSR_OK;
  case LAPIC_MSR_TIMER_INITIAL:
    timer_start(a, v, now_ns);
    return LAPIC_MSR_OK;
  case LAPIC_MSR_TIMER_DIVIDE:
    if (v & ~DIVIDE_BITS) return LAPIC_MSR_GP;
    timer_set_divide(a, v, now_ns);
    return LAPIC_MSR_OK;
  case LAPIC_MSR_SELF_IPI:
    if (v & ~SELF_IPI_BITS) return LAPIC_MSR_GP;
    write_self_ipi(a, (uint8_t)v);
    return LAPIC_MSR_OK;
  /* ID, version, PPR, LDR, ISR, TMR, IRR and current count are read-only;
   * the rest of the range is reserved. Both raise #GP. */
  default: return LAPIC_MSR_GP;
  }
}

enum lapic_msr_result lapic_wrmsr(struct lapic *a, uint32_t msr, uint64_t value, uint64_t now_ns,
                                  struct lapic_ipi *ipi_out) {
  if (ipi_out) memset(ipi_out, 0, sizeof *ipi_out);
  if (msr == LAPIC_MSR_APIC_BASE) {
    observe_time(a, now_ns);
    return write_apic_base(a, value);
  }
  if (msr < LAPIC_MSR_X2APIC_FIRST || msr > LAPIC_MSR_X2APIC_LAST) return LAPIC_MSR_NOT_APIC;
  if (!lapic_x2apic_mode(a)) return LAPIC_MSR_GP;
  now_ns = observe_time(a, now_ns);
  return write_x2apic(a, msr, value, now_ns, ipi_out);
}

/* ---- interrupt delivery to the core ---- */

/* 11.8.3.1: the APIC hands the core the highest IRR vector only if its
 * priority class (bits 7:4) is above PPR[7:4]. */
int lapic_pending_vector(const struct lapic *a) {
  if (!hw_enabled(a)) return -1;
  int v = vec_highest(a->irr);
  if (v < 0 || ((unsigned)v >> 4) <= (unsigned)(lapic_ppr(a) >> 4)) return -1;
  return v;
}

/* 11.8.4: on acknowledge the highest-priority IRR bit moves to ISR. 11.9:
 * if by then nothing is deliverable (the vCPU asked without checking, or
 * TPR rose in between), the spurious vector is delivered and ISR is left
 * alone. */
uint8_t lapic_acknowledge(struct lapic *a) {
  int v = lapic_pending_vector(a);
  if (v < 0) return (uint8_t)(a->svr & 0xFF);
  vec_clear(a->irr, (unsigned)v);
  vec_set(a->isr, (unsigned)v);
  return (uint8_t)v;
}

/* ---- IPI destinations (11.12.9, 11.12.10) ---- */

bool lapic_ipi_targets(const struct lapic_ipi *ipi, const struct lapic *target) {
  if (!ipi->valid || !hw_enabled(target)) return false;
  uint32_t id = target->cfg.apic_id;
  switch (ipi->shorthand) {
  case LAPIC_SH_SELF: return id == ipi->source_id;
  case LAPIC_SH_ALL: return true;
  case LAPIC_SH_ALL_BUT_SELF: return id != ipi->source_id;
  case LAPIC_SH_NONE: break;
  }
  /* "A destination ID value of FFFF_FFFFH is used for broadcast of
   * interrupts in both logical destination and physical destination modes." */
  if (ipi->dest == X2APIC_BROADCAST) return true;
  if (!ipi->logical) return ipi->dest == id;
  /* Logical: same cluster (bits 31:16), and the target's bit in the 16-bit
   * mask (11.12.10.1). LDR is 0 (matches nothing) outside x2APIC mode. */
  uint32_t ldr = target->ldr;
  return (ipi->dest >> 16) == (ldr >> 16) && (ipi->dest & ldr & 0xFFFFu) != 0;
}
