/* kvm.h — the guest side of KVM asynchronous page faults (DESIGN.md §2), and apfsim's #VE
 * delivery of not-present events and page errors.
 *
 * The #PF entries (fault.c), the NMI handler (nmi.c) and the interrupt dispatch (traps.c)
 * call these at the places Linux does; kvm.c implements them, selected at boot by
 * boot_info.apf_protocol (off, halt, 2010, 2020), not_present_delivery and flags.
 * Not for: the host's side (sim/apf), the boot contract (apfsim_boot.h).
 */
#ifndef GUEST_KVM_H
#define GUEST_KVM_H

#include "kernel.h"

/* ---- the KVM ABI (Linux arch/x86/include/uapi/asm/kvm_para.h; Documentation/virt/kvm/
 * msr.rst and cpuid.rst) ---- */
#define KVM_CPUID_SIGNATURE 0x40000000u /* EBX ECX EDX = "KVMKVMKVM\0\0\0" */
#define KVM_CPUID_FEATURES 0x40000001u  /* EAX = feature bits */
#define KVM_FEATURE_ASYNC_PF 4
#define KVM_FEATURE_ASYNC_PF_INT 14
#define KVM_FEATURE_ASYNC_PF_ERROR 15 /* the 2020 error-reporting series, never merged
                                         (mainline later gave bit 15 to another feature) */

#define MSR_KVM_ASYNC_PF_EN 0x4b564d02u
#define MSR_KVM_ASYNC_PF_INT 0x4b564d06u
#define MSR_KVM_ASYNC_PF_ACK 0x4b564d07u
#define KVM_ASYNC_PF_ENABLED (1ull << 0)
#define KVM_ASYNC_PF_SEND_ALWAYS (1ull << 1)
#define KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT (1ull << 2)
#define KVM_ASYNC_PF_DELIVERY_AS_INT (1ull << 3)
#define KVM_ASYNC_PF_SEND_ERROR (1ull << 4) /* 2020 error-reporting series */
#define KVM_ASYNC_PF_ADDR_MASK (~0x3full)

/* flags (2020) / reason (2010) */
#define KVM_PV_REASON_PAGE_NOT_PRESENT 1u
#define KVM_PV_REASON_PAGE_READY 2u /* 2010 only: page-ready as #PF */
/* ready_flags bit (2020 error-reporting series) */
#define KVM_PV_REASON_PAGE_ERROR 1u

#define KVM_APF_WAKE_ALL 0xffffffffu /* page-ready token: wake every sleeper of this vCPU */

/* The per-vCPU shared area the host writes (64 bytes, 64-byte aligned). Linux's struct
 * kvm_vcpu_pv_apf_data has `enabled` after 56 bytes of padding; here the guest keeps it
 * in struct percpu. */
struct kvm_vcpu_pv_apf_data {
  uint32_t flags;       /* 0x00 2020: 1 = PAGE_NOT_PRESENT. 2010: reason, 1 or 2 */
  uint32_t token;       /* 0x04 2020: token of a page-ready; the guest zeroes it, then ACKs */
  uint32_t ready_flags; /* 0x08 2020 + SEND_ERROR: PAGE_ERROR for the page-ready in `token` */
  uint8_t pad[52];
};
_Static_assert(sizeof(struct kvm_vcpu_pv_apf_data) == 64, "APF shared area is 64 bytes");

/* ---- hooks ---- */

/* Per-vCPU set-up from the boot info: CPUID check, MSR_KVM_ASYNC_PF_INT, then
 * MSR_KVM_ASYNC_PF_EN; the #VE information area. Off/halt protocols write nothing. */
void kvm_guest_cpu_init(void);

/* Reads and zeroes this vCPU's APF word — Linux's kvm_read_and_reset_apf_flags() (2020)
 * and kvm_read_and_reset_pf_reason() (2010); 0 while APF is not enabled. */
uint32_t kvm_read_and_reset_apf_flags(void);

/* An APF event arrived as #PF (flags != 0, already reset); `address` is CR2 as the entry
 * read it, the token if nothing clobbered it. Returns true if handled as an APF event
 * (the task slept, was woken, or the kernel panicked), false for an ordinary fault. */
bool kvm_handle_async_pf(struct pt_regs *regs, uint64_t address, uint32_t flags);

/* The page-ready interrupt (boot_info.page_ready_vector; Linux 5.9+
 * sysvec_kvm_asyncpf_interrupt). */
void sysvec_kvm_asyncpf_interrupt(struct pt_regs *regs);

/* NMI entry/exit hooks of the stash-reason policy (APFSIM_NMI_CR2_STASH_REASON): take the
 * APF word away for the NMI's duration, so a #PF nested in the NMI cannot consume it. */
void kvm_nmi_stash_apf_reason(void);
void kvm_nmi_restore_apf_reason(void);

/* #VE (vector 20): not-present events (APFSIM_NP_VE) and synchronous page errors. */
void exc_virtualization_exception(struct pt_regs *regs);

#endif
