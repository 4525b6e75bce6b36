/* guest_machine.h — the real guest kernel on apfsim's vCPUs under a minimal platform, with
 * a fake KVM host for the guest's APF side (tests/guest/).
 *
 * The platform is the one of tests/loader/test_loader_guest_boot.c (round-robin quanta,
 * time = retired instructions at 1 cycle each, halted vCPUs skip ahead to their next
 * timer), extended with what the host side of APF does — by hand, at the test's command:
 * it answers the guest's MSR_KVM_ASYNC_PF_EN/_INT/_ACK and MSR_APFSIM_VE_INFO writes
 * (recording them), offers CPUID feature bits, writes the shared and #VE areas and injects
 * #PF, #VE, the page-ready interrupt and NMIs at exact instruction counts. It is not the
 * host engine (sim/apf) nor the platform (sim/machine): it decides nothing by itself.
 */
#ifndef TESTS_GUEST_MACHINE_H
#define TESTS_GUEST_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apfsim_boot.h"
#include "config/config.h"
#include "cpu/lapic.h"
#include "cpu/vcpu.h"
#include "loader/boot_info.h"
#include "loader/elf_loader.h"

#define GM_MAX_VCPUS 4
#define GM_RAM (UINT64_C(32) << 20)
/* A DAX window right above RAM, backed by the same buffer (the vCPU sees RAM + window;
 * the guest's boot info says RAM ends at GM_RAM). gm_config enables it. */
#define GM_DAX_GPA GM_RAM
#define GM_DAX_BYTES (UINT64_C(1) << 20)
#define GM_MEM (GM_RAM + GM_DAX_BYTES)
#define GM_MHZ 2000
#define GM_QUANTUM 5000

/* KVM ABI numbers the fake host answers (Documentation/virt/kvm/msr.rst, cpuid.rst) */
#define GM_MSR_KVM_ASYNC_PF_EN 0x4b564d02u
#define GM_MSR_KVM_ASYNC_PF_INT 0x4b564d06u
#define GM_MSR_KVM_ASYNC_PF_ACK 0x4b564d07u
#define GM_KVM_FEATURE_ASYNC_PF (1u << 4)
#define GM_KVM_FEATURE_ASYNC_PF_INT (1u << 14)
#define GM_KVM_FEATURE_ASYNC_PF_ERROR (1u << 15)
#define GM_KVM_ASYNC_PF_ENABLED (1ull << 0)
#define GM_KVM_ASYNC_PF_SEND_ALWAYS (1ull << 1)
#define GM_KVM_ASYNC_PF_DELIVERY_AS_INT (1ull << 3)
#define GM_KVM_ASYNC_PF_SEND_ERROR (1ull << 4)

struct gm_node {
  struct vcpu *v;
  struct lapic apic;
  uint64_t idle_ns;
  bool halted;
  /* the fake host's view of this vCPU */
  uint64_t msr_en, msr_int, msr_ve; /* last values written */
  uint32_t en_writes, int_writes, ve_writes, acks;
  uint32_t acks_with_token_set; /* ACK written while the token slot was not zero */
  char msr_log[128];            /* "I E A A ...": order of INT, EN, ACK, VE writes */
};

enum gm_state { GM_RUNNING, GM_SHUTDOWN, GM_PANIC, GM_FAILED };

struct gm {
  struct guest_image *img;
  uint8_t *mem;
  unsigned nv;
  struct gm_node cpu[GM_MAX_VCPUS];
  struct vcpu_msr_table *msrs;
  struct vcpu_platform plat;
  struct vcpu_text_range text[4];
  char console[65536];
  size_t console_len;
  enum gm_state state;
  uint64_t panic_gpa;
  uint32_t sigbus_pids[8], n_sigbus; /* APFSIM_PORT_SIGBUS writes */
  uint32_t hung_pids[8], n_hung;     /* APFSIM_PORT_HUNG_TASK writes */
  char failure[512];
  uint64_t instructions;
};

struct gm_options {
  unsigned vcpus;
  uint32_t kvm_features;  /* CPUID 0x40000001 EAX */
  bool ve_msr_gp;         /* the host refuses MSR_APFSIM_VE_INFO (#GP) */
};

/* The image, opened once per test program (gm_setup/gm_teardown as the group's). */
extern struct guest_image *gm_image;
int gm_setup(void **state);
int gm_teardown(void **state);

/* A configuration the tests start from: `vcpus` vCPUs, APF 2020, CR2-first, NMI save-
 * restore, no processes; the test adds processes and variants. free() it. */
struct sim_config *gm_config(unsigned vcpus);

/* Boots (heap-allocated machine; free with gm_free). Fails the test on a setup error. */
struct gm *gm_boot(const struct sim_config *cfg, const struct gm_options *opt);
void gm_free(struct gm *m);

/* Rounds of one quantum per vCPU until the state leaves GM_RUNNING or `rounds` ran.
 * A failure (triple fault, internal error) fails the test. */
void gm_run(struct gm *m, unsigned rounds);
/* Single vCPU steps (no interrupts delivered while steering: the APIC keeps them). */
void gm_step(struct gm *m, unsigned cpu, uint64_t n);

/* Runs vCPU `cpu` (alone, interrupts held) until it executes at CPL3 in process `pid`
 * with RSP in its top stack page (`deep` false) or on the never-touched page the memory
 * op uses (`deep` true: APFSIM_USER_F_FRESH_STACK_ACCESS, the instruction is the op's
 * working-set load). */
void gm_run_until_user(struct gm *m, unsigned cpu, unsigned pid, bool deep);
/* Steps vCPU `cpu` until RFLAGS.IF = 1 (a halted vCPU with IF = 1 counts). */
void gm_run_until_interruptible(struct gm *m, unsigned cpu);

/* Guest reports */
struct apfsim_proc_stats gm_proc(struct gm *m, unsigned pid);
struct apfsim_vcpu_stats gm_vcpu(struct gm *m, unsigned cpu);
struct apfsim_panic_record gm_panic(struct gm *m);
struct vcpu_regs gm_regs(struct gm *m, unsigned cpu);
const char *gm_console(struct gm *m); /* NUL-terminated */
/* "symbol+0xoff" of a guest address */
const char *gm_sym(struct gm *m, uint64_t addr, char *buf, size_t n);

/* ---- the fake host ---- */
/* APF word (2020 flags / 2010 reason) and token slot of vCPU `cpu`'s shared area (the
 * address the guest wrote to MSR_KVM_ASYNC_PF_EN). */
uint32_t *gm_apf_word(struct gm *m, unsigned cpu);
uint32_t *gm_apf_token(struct gm *m, unsigned cpu);
uint32_t *gm_apf_ready_flags(struct gm *m, unsigned cpu);
struct apfsim_ve_info *gm_ve_info(struct gm *m, unsigned cpu);

/* Not-present: flags/reason = 1, #PF with error code 0 and CR2 = token. */
void gm_inject_not_present(struct gm *m, unsigned cpu, uint32_t token);
/* 2020 page-ready: only if the token slot is free (returns false otherwise, as KVM
 * waits for the ACK); writes token (and ready_flags), raises the vector on the APIC. */
bool gm_inject_page_ready(struct gm *m, unsigned cpu, uint32_t token, uint32_t ready_flags);
/* 2010 page-ready: reason = 2, #PF with CR2 = token. */
void gm_inject_page_ready_2010(struct gm *m, unsigned cpu, uint32_t token);
/* #VE (only while the area is free; false otherwise). */
bool gm_inject_ve(struct gm *m, unsigned cpu, uint32_t reason, uint64_t token, uint64_t gva, uint32_t access);

#endif
