/* boot_info.h — the simulator's half of the boot contract (docs/guest.md): the boot info
 * built from a configuration, the register state every vCPU starts with, and bounds-checked
 * reads of what the guest reports (panic record, statistics).
 *
 * Not for: ELF parsing (elf_loader.h), running vCPUs (sim/cpu), deciding outcomes.
 */
#ifndef APFSIM_LOADER_BOOT_INFO_H
#define APFSIM_LOADER_BOOT_INFO_H

#include <stdbool.h>
#include <stdint.h>

#include "apfsim_boot.h"
#include "config/config.h"
#include "core/diag.h"
#include "loader/elf_loader.h"

/* The x2APIC timer's count rate: KVM emulates the APIC bus at 1 GHz (APIC_BUS_CYCLE_NS
 * = 1 in arch/x86/kvm/lapic.h). */
#define GUEST_APIC_TIMER_KHZ_KVM UINT64_C(1000000)

/* IA32_APIC_BASE at entry: default base, APIC enabled, x2APIC mode (SDM vol. 3A §11.12.1),
 * BSP flag on vCPU 0. */
#define GUEST_APIC_BASE_ENTRY (UINT64_C(0xFEE00000) | (UINT64_C(1) << 11) | (UINT64_C(1) << 10))
#define GUEST_APIC_BASE_BSP (UINT64_C(1) << 8)

/* Fills *bi from a validated configuration. The TSC counts at costs/cpu-frequency; the
 * APIC timer at apic_timer_khz (GUEST_APIC_TIMER_KHZ_KVM unless the APIC model says
 * otherwise). Fails, naming the configuration field, for what this guest kernel cannot do
 * (too little RAM, #VE delivery or page-ready errors without the 2020 protocol, DAX
 * workloads without a DAX window or with zipf lines, a vector the kernel uses itself). */
bool guest_boot_info_from_config(const struct sim_config *cfg, uint64_t apic_timer_khz, struct apfsim_boot_info *bi,
                                 struct diag *err);

/* Does the workload of bi fit in guest RAM beside this image's kernel? Fails naming the
 * configuration file (cfg->source_path) and field, as bad input: the same check
 * guest_boot_info_write makes, for callers that know which config bi came from. */
bool guest_boot_layout_check(const struct guest_image *img, const struct sim_config *cfg,
                             const struct apfsim_boot_info *bi, struct diag *err);

/* Checks bi against the image (the workload must fit: apfsim_guest_layout), writes it at
 * the contract's boot info address and zeroes the rest of that page. layout (may be NULL)
 * receives where the kernel will put its page pool and the processes. */
bool guest_boot_info_write(const struct guest_image *img, const struct apfsim_boot_info *bi, uint8_t *mem,
                           uint64_t mem_bytes, struct apfsim_guest_layout *layout, struct diag *err);

/* The state vCPU `vcpu` must have at its first instruction. Every vCPU starts at once;
 * the guest's APs wait for the BSP by themselves. */
struct guest_entry_state {
  uint64_t rip, rsp, rflags, rdi, rsi; /* other general registers: 0 */
  uint64_t cr0, cr3, cr4, efer;        /* cr3: the guest's (the shadow MMU's root is the simulator's business) */
  uint64_t gdt_base, idt_base;
  uint16_t gdt_limit, idt_limit; /* IDT base 0, limit 0: an exception before the kernel's IDT is a triple fault */
  uint16_t cs, ss, ds, es, fs, gs, tr; /* tr 0: the kernel loads its own TSS */
  uint64_t fs_base, gs_base;           /* 0: the kernel writes IA32_GS_BASE itself */
  uint64_t apic_base;                  /* IA32_APIC_BASE */
  uint32_t x2apic_id;                  /* = vcpu */
};
bool guest_entry_state(const struct guest_image *img, unsigned vcpu, unsigned n_vcpus, struct guest_entry_state *st,
                       struct diag *err);

/* The record whose address the guest wrote to APFSIM_PORT_PANIC: checked for bounds and
 * magic, message NUL-terminated. */
bool guest_read_panic_record(const uint8_t *mem, uint64_t mem_bytes, uint64_t gpa, struct apfsim_panic_record *out,
                             struct diag *err);

/* Entry `index` of the guest's statistics arrays (contract addresses). */
bool guest_read_proc_stats(const struct guest_image *img, const uint8_t *mem, uint64_t mem_bytes, unsigned index,
                           struct apfsim_proc_stats *out, struct diag *err);
bool guest_read_vcpu_stats(const struct guest_image *img, const uint8_t *mem, uint64_t mem_bytes, unsigned vcpu,
                           struct apfsim_vcpu_stats *out, struct diag *err);

#endif
