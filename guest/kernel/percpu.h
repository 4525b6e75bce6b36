/* percpu.h — per-vCPU kernel data, reached through GS base.
 *
 * Each vCPU writes IA32_GS_BASE once at boot with the address of its struct percpu and
 * never changes it; user code does not use GS and cannot write GS base (no FSGSBASE), so
 * the kernel needs no swapgs and every entry path — NMI included — finds its per-CPU data
 * with one %gs-relative load. (Linux swaps GS on every entry from user mode; that buys it
 * user TLS, which our workloads do not need.)
 * Not for: data shared between vCPUs (run queue: sched.c).
 */
#ifndef GUEST_PERCPU_H
#define GUEST_PERCPU_H

#include "kernel.h"

struct task;

/* x86-64 TSS (SDM vol. 3A §8.7 "Task Management in 64-bit Mode") */
struct tss64 {
  uint32_t reserved0;
  uint64_t rsp[3];
  uint64_t reserved1;
  uint64_t ist[7];
  uint64_t reserved2;
  uint16_t reserved3;
  uint16_t iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss64) == 104, "64-bit TSS is 104 bytes");

/* IST slots (TSS.IST1..7 are 1-based in the gate) */
#define IST_NMI 1
#define IST_DF 2
#define IST_MC 3

struct percpu {
  struct percpu *self;      /* PCPU_SELF: this_cpu() reads it */
  uint64_t nmi_running;     /* PCPU_NMI_RUNNING: entry.S nested-NMI protocol */
  uint64_t nmi_latched;     /* PCPU_NMI_LATCHED */
  uint64_t nmi_frame[5];    /* PCPU_NMI_FRAME: the outermost NMI's return frame */
  uint64_t nmi_stack_top;   /* PCPU_NMI_STACK_TOP */
  uint64_t nmi_nested;      /* PCPU_NMI_NESTED: NMIs latched while the handler ran */
  uint32_t cpu;             /* vCPU index = x2APIC ID */
  uint32_t nmi_depth;       /* >0 while the NMI handler body runs: page faults are not served */
  struct task *current;
  struct task *idle;
  volatile uint32_t need_resched;
  volatile uint32_t idle_now; /* in the idle loop's halt section: a wake-up IPI is worth sending */
  uint64_t loaded_cr3;      /* what this vCPU's CR3 holds (idle tasks borrow it) */
  uint64_t last_switch_tsc;
  uint64_t nmi_saved_cr2;   /* NMI CR2 policy save slot */
  struct apfsim_vcpu_stats *stats;
  uint64_t gdt[7];          /* null, kcode, kdata, udata, ucode, TSS (2 slots) */
  struct tss64 tss;
  /* The KVM APF shared area of this vCPU (struct kvm_vcpu_pv_apf_data, kvm.h), 64-byte
   * aligned as MSR_KVM_ASYNC_PF_EN requires. */
  uint8_t apf_area[64] __attribute__((aligned(64)));
  /* The #VE information area (struct apfsim_ve_info), registered with MSR_APFSIM_VE_INFO. */
  uint8_t ve_info[64] __attribute__((aligned(64)));
  /* APF state of this vCPU (kvm.c). Linux keeps `enabled` in the per-CPU apf_reason
   * beyond the 64 bytes the host writes; here it sits beside it. */
  uint32_t apf_enabled;     /* enum apfsim_apf_protocol enabled with the host, 0 if none */
  uint32_t apf_send_error;  /* EN bit 4 accepted: page-ready carries ready_flags */
  uint32_t ve_enabled;      /* MSR_APFSIM_VE_INFO bits the guest set (APFSIM_VE_INFO_*) */
  uint32_t nmi_apf_stash;   /* APF flags/reason the NMI took away (stash-reason policy) */
  /* Last perf-like user samples the NMI read: the call chain (count in nmi_chain_len) and
   * the words at the top of the user stack (PERF_SAMPLE_STACK_USER-like). */
  uint64_t nmi_chain[8];
  uint32_t nmi_chain_len;
  uint64_t nmi_stack_dump[8];
  struct apfsim_panic_record panic_record;
} __attribute__((aligned(64)));

_Static_assert(__builtin_offsetof(struct percpu, self) == PCPU_SELF, "asm_offsets.h");
_Static_assert(__builtin_offsetof(struct percpu, nmi_running) == PCPU_NMI_RUNNING, "asm_offsets.h");
_Static_assert(__builtin_offsetof(struct percpu, nmi_latched) == PCPU_NMI_LATCHED, "asm_offsets.h");
_Static_assert(__builtin_offsetof(struct percpu, nmi_frame) == PCPU_NMI_FRAME, "asm_offsets.h");
_Static_assert(__builtin_offsetof(struct percpu, nmi_stack_top) == PCPU_NMI_STACK_TOP, "asm_offsets.h");
_Static_assert(__builtin_offsetof(struct percpu, nmi_nested) == PCPU_NMI_NESTED, "asm_offsets.h");

extern struct percpu percpu_area[APFSIM_MAX_VCPUS];

static inline struct percpu *this_cpu(void) {
  struct percpu *p;
  __asm__ volatile("mov %%gs:%c1, %0" : "=r"(p) : "i"(PCPU_SELF));
  return p;
}

/* this_cpu(), or NULL while this vCPU's GS base is not set up yet (early boot, or a
 * simulator that ignored the GS base write): for the console and panic paths. */
static inline struct percpu *this_cpu_checked(void) {
  struct percpu *p = this_cpu();
  for (unsigned i = 0; i < APFSIM_MAX_VCPUS; i++)
    if (p == &percpu_area[i]) return p;
  return 0;
}

static inline struct task *current_task(void) { return this_cpu()->current; }

#endif
