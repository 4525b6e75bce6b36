/* harness.h — a small x86-64 machine for the vCPU tests: 8 MiB of
 * identity-mapped guest RAM with a flat GDT, a TSS, an IDT and the snippets
 * of guest.S at G_CODE, booted in long mode at CPL0. */
#ifndef APFSIM_TESTS_CPU_HARNESS_H
#define APFSIM_TESTS_CPU_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu/vcpu.h"
#include "mmu/shadow.h"
#include "guest_layout.h"

#define PTE_FLAGS_KERNEL 0x3 /* P|RW */
#define PTE_FLAGS_USER 0x7   /* P|RW|US */

struct harness {
  uint8_t *mem;
  struct vcpu *v;
  struct vcpu_config cfg;
  struct vcpu_platform pf;
  struct vcpu_msr_table *msrs;
  struct vcpu_text_range text[2];
  /* what the default callbacks saw */
  unsigned n_out;
  uint16_t out_port[16];
  uint32_t out_value[16];
  uint64_t tsc;
  uint64_t random_next;
  uint64_t charged[8]; /* cycles by enum vcpu_cost_kind */
  int irq_vector; /* returned (once) by irq_ack; -1 none */
  unsigned n_ack;
  /* shadow MMU (set use_shadow before h_boot) */
  bool use_shadow;
  struct shadow_mmu *shadow;
  struct vcpu *peers[1];
  uint64_t not_resident; /* a gfn the residency callback refuses (0: none) */
};

/* Memory, tables and code; every IDT vector points at H_HLT (interrupt gate,
 * DPL0). The vCPU is not created yet, so tests can edit cfg first. */
void h_init(struct harness *h);
/* Creates the vCPU and boots it at G_CODE + entry, CPL0, RSP = G_KSTACK_TOP,
 * IF as given. Fails the test on error. */
void h_boot(struct harness *h, uint64_t entry, bool interrupts_on);
void h_free(struct harness *h);

void h_gate(struct harness *h, unsigned vector, uint64_t handler_off, unsigned ist, unsigned type, unsigned dpl);
void h_pte(struct harness *h, uint64_t va, uint64_t flags); /* 0: not present */
void h_tss_rsp0(struct harness *h, uint64_t rsp0);
void h_tss_ist(struct harness *h, unsigned n, uint64_t top);

uint64_t h_q(const struct harness *h, uint64_t gpa);
struct vcpu_exit h_run(struct harness *h, uint64_t n);
uint64_t h_reg(struct harness *h, int which); /* index into struct vcpu_regs as uint64_t[] */
#define R_RAX 0
#define R_RBX 1
#define R_RCX 2
#define R_RDX 3
#define R_RSI 4
#define R_RDI 5
#define R_RBP 6
#define R_RSP 7
#define R_R8 8
#define R_R9 9
#define R_R10 10
#define R_R11 11
#define R_R12 12
#define R_R13 13
#define R_R14 14
#define R_R15 15
#define R_RIP 16
#define R_RFLAGS 17
void h_set_reg(struct harness *h, int which, uint64_t value);

#define CODE(off) ((uint64_t)G_CODE + (off))

#endif
