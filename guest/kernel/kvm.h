/* kvm.h — hooks for the guest side of KVM asynchronous page faults (DESIGN.md §2).
 *
 * The #PF entry paths, the NMI handler and the interrupt dispatch call these at the
 * places Linux does; kvm.c implements them. Today APF stays disabled (the guest never
 * writes MSR_KVM_ASYNC_PF_EN), so flags always read 0: issue 6 adds the wait/wake
 * protocol behind these same calls, issue 7 the #VE and NMI-stash variants.
 */
#ifndef GUEST_KVM_H
#define GUEST_KVM_H

#include "kernel.h"

/* Per-vCPU APF setup from boot_info.apf_protocol (MSR writes, when implemented). */
void kvm_guest_cpu_init(void);

/* Reads and zeroes this vCPU's APF flags (2020 ABI) / reason (2010 ABI) word:
 * Linux's kvm_read_and_reset_apf_flags() / kvm_read_and_reset_pf_reason(). */
uint32_t kvm_read_and_reset_apf_flags(void);

/* An APF event arrived as #PF (flags != 0): the token is in CR2 (`address`). Returns true
 * if it was handled (the task slept or was woken), false for an ordinary fault. */
bool kvm_handle_async_pf(struct pt_regs *regs, uint64_t error_code, uint64_t address, uint32_t flags);

/* The page-ready interrupt (boot_info.page_ready_vector, 2020 ABI). */
void kvm_async_pf_intr(struct pt_regs *regs);

/* NMI entry/exit hooks for the stash-reason policy (APFSIM_NMI_CR2_STASH_REASON). */
void kvm_nmi_stash_apf_reason(void);
void kvm_nmi_restore_apf_reason(void);

/* #VE (vector 20): APF not-present by #VE (APFSIM_NP_VE, issue 7). */
void exc_virtualization_exception(struct pt_regs *regs);

#endif
