/* harness.c — see harness.h. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

extern const uint8_t guest_blob[];
extern const uint8_t guest_blob_end[];

static void w64(uint8_t *mem, uint64_t a, uint64_t v) { memcpy(mem + a, &v, 8); }

uint64_t h_q(const struct harness *h, uint64_t gpa) {
  uint64_t v;
  memcpy(&v, h->mem + gpa, 8);
  return v;
}

void h_pte(struct harness *h, uint64_t va, uint64_t flags) {
  w64(h->mem, G_PT + (va >> 12) * 8, flags ? ((va & ~UINT64_C(0xfff)) | flags) : 0);
}

void h_gate(struct harness *h, unsigned vector, uint64_t handler_off, unsigned ist, unsigned type, unsigned dpl) {
  uint64_t target = G_CODE + handler_off;
  uint8_t *g = h->mem + G_IDT + 16 * vector;
  memset(g, 0, 16);
  g[0] = (uint8_t)target;
  g[1] = (uint8_t)(target >> 8);
  g[2] = VCPU_SEL_KERNEL_CS;
  g[3] = 0;
  g[4] = (uint8_t)ist;
  g[5] = (uint8_t)(0x80 | dpl << 5 | type);
  g[6] = (uint8_t)(target >> 16);
  g[7] = (uint8_t)(target >> 24);
  uint32_t hi = (uint32_t)(target >> 32);
  memcpy(g + 8, &hi, 4);
}

void h_tss_rsp0(struct harness *h, uint64_t rsp0) { w64(h->mem, G_TSS + 4, rsp0); }
void h_tss_ist(struct harness *h, unsigned n, uint64_t top) { w64(h->mem, G_TSS + 36 + 8 * (n - 1), top); }

static uint64_t cb_tsc(void *ctx, struct vcpu *v) {
  (void)v;
  struct harness *h = ctx;
  return h->tsc;
}

static bool cb_random(void *ctx, struct vcpu *v, bool seed, uint64_t *value) {
  (void)v;
  (void)seed;
  struct harness *h = ctx;
  *value = h->random_next++;
  return true;
}

static enum vcpu_cb cb_out(void *ctx, struct vcpu *v, uint16_t port, unsigned bytes, uint32_t value) {
  (void)v;
  (void)bytes;
  struct harness *h = ctx;
  if (h->n_out < 16) {
    h->out_port[h->n_out] = port;
    h->out_value[h->n_out] = value;
    h->n_out++;
  }
  return port == 0xf4 ? VCPU_CB_EXIT : VCPU_CB_OK;
}

static enum vcpu_cb cb_in(void *ctx, struct vcpu *v, uint16_t port, unsigned bytes, uint32_t *value) {
  (void)ctx;
  (void)v;
  (void)bytes;
  *value = 0x40u + port;
  return VCPU_CB_OK;
}

static void cb_account(void *ctx, struct vcpu *v, enum vcpu_cost_kind kind, uint64_t cycles) {
  (void)v;
  struct harness *h = ctx;
  if ((unsigned)kind < 8) h->charged[kind] += cycles;
}

static int cb_ack(void *ctx, struct vcpu *v) {
  struct harness *h = ctx;
  int vec = h->irq_vector;
  h->irq_vector = -1;
  h->n_ack++;
  vcpu_set_irq_line(v, false);
  return vec;
}

void h_init(struct harness *h) {
  memset(h, 0, sizeof *h);
  h->irq_vector = -1;
  h->mem = aligned_alloc(4096, G_MEM_BYTES + G_POOL_BYTES);
  assert_non_null(h->mem);
  memset(h->mem, 0, G_MEM_BYTES + G_POOL_BYTES);
  vcpu_write_flat_gdt(h->mem, G_GDT, G_TSS);
  w64(h->mem, G_PML4, G_PDPT | 7);
  w64(h->mem, G_PDPT, G_PD | 7);
  for (uint64_t i = 0; i < 4; i++) w64(h->mem, G_PD + 8 * i, (G_PT + 0x1000 * i) | 7);
  for (uint64_t va = 0; va < G_MEM_BYTES; va += 4096) h_pte(h, va, PTE_FLAGS_USER);
  h_pte(h, G_NP, 0);
  h_pte(h, G_NP2, 0);
  h_pte(h, 0, 0); /* a NULL page, as a kernel would */
  memcpy(h->mem + G_CODE, guest_blob, (size_t)(guest_blob_end - guest_blob));
  for (unsigned i = 0; i < 64; i++) h->mem[G_DATA + i] = (uint8_t)(0x11 * (i + 1));
  for (unsigned vec = 0; vec < 256; vec++) h_gate(h, vec, H_HLT, 0, 0xe, 0);
  h_tss_rsp0(h, G_RSP0_TOP);
  h_tss_ist(h, 1, G_IST1_TOP);
  h_tss_ist(h, 2, G_IST2_TOP);

  h->pf = (struct vcpu_platform){.ctx = h, .tsc = cb_tsc, .random = cb_random, .port_in = cb_in,
                                 .port_out = cb_out, .irq_ack = cb_ack, .account = cb_account};
  h->msrs = vcpu_msr_table_new();
  h->text[0] = (struct vcpu_text_range){G_CODE, G_CODE + L_START};
  h->cfg = (struct vcpu_config){.id = 0, .mem = h->mem, .mem_bytes = G_MEM_BYTES, .text = h->text, .n_text = 1,
                                .platform = &h->pf, .msrs = h->msrs,
                                .costs = {.cpi_milli = 1000}};
}

static bool resident(void *ctx, uint64_t gfn) {
  const struct harness *h = ctx;
  return gfn != h->not_resident;
}

void h_boot(struct harness *h, uint64_t entry, bool interrupts_on) {
  struct diag err = {{0}};
  /* Booting again starts a fresh vCPU on the same memory and MSR table. */
  vcpu_destroy(h->v);
  h->v = NULL;
  if (h->shadow) shadow_destroy(h->shadow);
  h->shadow = NULL;
  if (h->use_shadow) {
    struct shadow_config sc = {h->mem, G_MEM_BYTES, PAGING_MAXPHYADDR_DEFAULT, G_MEM_BYTES, G_POOL_BYTES, 1};
    h->shadow = shadow_create(&sc, &err);
    if (!h->shadow) fail_msg("shadow_create: %s", err.msg);
    shadow_set_residency(h->shadow, resident, h);
    if (!vcpu_shadow_setup(h->shadow, &err)) fail_msg("vcpu_shadow_setup: %s", err.msg);
    h->cfg.shadow = h->shadow;
    h->cfg.shadow_base = G_MEM_BYTES;
    h->cfg.shadow_bytes = G_POOL_BYTES;
    h->cfg.peers = h->peers;
    h->cfg.n_peers = 1;
  }
  h->v = vcpu_create(&h->cfg, &err);
  if (!h->v) fail_msg("vcpu_create: %s", err.msg);
  struct vcpu_boot b = {.rip = G_CODE + entry, .rsp = G_KSTACK_TOP, .rflags = interrupts_on ? 0x202 : 0x2,
                        .cr0 = 0x80010033, .cr3 = G_PML4, .cr4 = 0x6a0, .efer = 0x500,
                        .gdt_base = G_GDT, .gdt_limit = VCPU_SEL_TSS + 15,
                        .idt_base = G_IDT, .idt_limit = 256 * 16 - 1,
                        .cs = VCPU_SEL_KERNEL_CS, .ss = VCPU_SEL_KERNEL_DS, .ds = VCPU_SEL_KERNEL_DS,
                        .tr = VCPU_SEL_TSS};
  if (!vcpu_boot(h->v, &b, &err)) fail_msg("vcpu_boot: %s", err.msg);
}

void h_free(struct harness *h) {
  vcpu_destroy(h->v);
  if (h->shadow) shadow_destroy(h->shadow);
  vcpu_msr_table_free(h->msrs);
  free(h->mem);
  memset(h, 0, sizeof *h);
}

struct vcpu_exit h_run(struct harness *h, uint64_t n) {
  struct vcpu_exit e;
  vcpu_run(h->v, n, &e);
  return e;
}

uint64_t h_reg(struct harness *h, int which) {
  struct vcpu_regs r;
  vcpu_get_regs(h->v, &r);
  return (&r.rax)[which];
}

void h_set_reg(struct harness *h, int which, uint64_t value) {
  struct vcpu_regs r;
  vcpu_get_regs(h->v, &r);
  (&r.rax)[which] = value;
  vcpu_set_regs(h->v, &r);
}
