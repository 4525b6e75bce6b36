/* test_shadow.c — the vCPU on H4's shadow MMU (sim/mmu/shadow.h): the same
 * guest code gives the same registers, memory and instruction counts with
 * and without shadowing; shadow fills never change the CR2 the guest sees;
 * each fault kind (fill, guest fault, host fault = EPT violation, bad
 * mapping) does what DESIGN.md §7 says; MOV CR3 / INVLPG / MOV CR0 are
 * intercepted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static void setup(struct harness *h, bool shadow, uint64_t entry) {
  h_init(h);
  h->use_shadow = shadow;
  h_gate(h, 0, H_DE_SKIP, 0, 0xe, 0);
  h_gate(h, 0x80, H_INT80, 0, 0xe, 0);
  h_gate(h, 14, H_PF_SKIP8, 0, 0xe, 0);
  h_boot(h, entry, false);
}

struct outcome {
  struct vcpu_regs regs;
  uint64_t retired, cr2;
  uint8_t *mem;
};

static struct outcome run_to_hlt(bool shadow, uint64_t entry, const unsigned *chunks, unsigned n_chunks) {
  struct harness h;
  setup(&h, shadow, entry);
  struct vcpu_exit e;
  unsigned k = 0;
  do {
    e = h_run(&h, chunks[k++ % n_chunks]);
    if (e.reason != VCPU_EXIT_QUANTUM && e.reason != VCPU_EXIT_HLT)
      fail_msg("exit %s: %s", vcpu_exit_reason_name(e.reason), e.message);
  } while (e.reason != VCPU_EXIT_HLT);
  if (shadow) assert_true(shadow_stats(h.shadow)->fills > 0);
  struct outcome o;
  vcpu_get_regs(h.v, &o.regs);
  o.retired = vcpu_retired(h.v);
  o.cr2 = vcpu_cr2(h.v);
  o.mem = malloc(G_MEM_BYTES);
  memcpy(o.mem, h.mem, G_MEM_BYTES);
  h_free(&h);
  return o;
}

static void compare(const struct outcome *a, const struct outcome *b) {
  assert_int_equal(a->retired, b->retired);
  assert_int_equal(a->cr2, b->cr2);
  const uint64_t *x = &a->regs.rax, *y = &b->regs.rax;
  for (unsigned i = 0; i < 18; i++)
    if (x[i] != y[i]) fail_msg("register %u: %#llx with shadowing, %#llx without", i, (unsigned long long)x[i],
                               (unsigned long long)y[i]);
  for (uint64_t i = 0; i < G_MEM_BYTES; i++)
    if (a->mem[i] != b->mem[i])
      fail_msg("guest memory differs at %#llx: %#x with shadowing, %#x without", (unsigned long long)i, a->mem[i],
               b->mem[i]);
}

static void same_result_with_and_without_shadowing(void **state) {
  (void)state;
  static const unsigned whole[] = {100000}, mixed[] = {1, 3, 7, 2, 13};
  static const uint64_t entries[] = {T_COUNT, T_COUNT_FAULTS};
  for (unsigned i = 0; i < 2; i++) {
    struct outcome plain = run_to_hlt(false, entries[i], whole, 1);
    struct outcome shadowed = run_to_hlt(true, entries[i], whole, 1);
    struct outcome stepped = run_to_hlt(true, entries[i], mixed, 5);
    compare(&shadowed, &plain);
    compare(&stepped, &plain);
    free(plain.mem);
    free(shadowed.mem);
    free(stepped.mem);
  }
}

static void fills_never_change_guest_cr2(void **state) {
  (void)state;
  struct harness h;
  setup(&h, true, T_COUNT);
  vcpu_set_cr2(h.v, 0x5a5a000);
  struct vcpu_exit e = h_run(&h, 100000);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_true(shadow_stats(h.shadow)->fills >= 4); /* code, stack and data pages */
  assert_int_equal(vcpu_cr2(h.v), 0x5a5a000);
  struct vcpu_sregs s;
  vcpu_get_sregs(h.v, &s);
  assert_int_equal(s.cr2, 0x5a5a000);
  h_free(&h);
}

static void guest_fault_uses_the_walkers_error_code(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h.use_shadow = true;
  h_pte(&h, G_DATA, PTE_FLAGS_KERNEL); /* supervisor page */
  h_boot(&h, T_TO_USER, false);
  h_set_reg(&h, R_RDI, CODE(T_USER_WRITE));
  h_set_reg(&h, R_RSI, G_USTACK_TOP);
  h_set_reg(&h, R_RDX, 0x202);
  h_set_reg(&h, R_RBX, G_DATA + 8);
  struct vcpu_exit e = h_run(&h, 100);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_int_equal(e.rip, CODE(H_HLT) + 1);
  const uint64_t sp = h_reg(&h, R_RSP);
  assert_int_equal(h_q(&h, sp), 0x7); /* present, write, user */
  assert_int_equal(h_q(&h, sp + 8), CODE(T_USER_WRITE));
  assert_int_equal(vcpu_cr2(h.v), G_DATA + 8);
  assert_int_equal(shadow_stats(h.shadow)->guest_faults, 1);
  h_free(&h);
}

static void host_fault_is_an_ept_exit_on_the_instruction(void **state) {
  (void)state;
  /* Where does T_COUNT first touch G_DATA + 0x100 (its rep movsb)? */
  struct harness h;
  setup(&h, true, T_COUNT);
  h.not_resident = (G_DATA + 0x100) >> 12; /* same page as G_DATA */
  vcpu_set_cr2(h.v, 0x1234000);
  struct vcpu_exit e = h_run(&h, 100000);
  assert_int_equal(e.reason, VCPU_EXIT_EPT_VIOLATION);
  assert_int_equal(e.ept.gpa, G_DATA);
  assert_false(e.ept.during_delivery);
  assert_int_equal(h.mem[e.rip], 0xf3); /* RIP on the rep movsb, which has not run */
  const uint64_t before = vcpu_retired(h.v);
  assert_int_equal(e.instructions, before);
  assert_int_equal(vcpu_cr2(h.v), 0x1234000); /* an EPT violation never writes CR2 */
  /* The page comes in: the same instruction retries and the run ends as without the exit. */
  h.not_resident = 0;
  e = h_run(&h, 100000);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  const uint64_t total = vcpu_retired(h.v);
  h_free(&h);
  static const unsigned whole[] = {100000};
  struct outcome plain = run_to_hlt(false, T_COUNT, whole, 1);
  assert_int_equal(total, plain.retired);
  free(plain.mem);
}

static void host_fault_during_delivery_is_synchronous(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h.use_shadow = true;
  h_boot(&h, T_PF_WRITE, false);
  h.not_resident = (G_KSTACK_TOP - 8) >> 12; /* the kernel stack the #PF frame goes to */
  struct vcpu_exit e = h_run(&h, 100);
  assert_int_equal(e.reason, VCPU_EXIT_EPT_VIOLATION);
  assert_true(e.ept.during_delivery);
  assert_int_equal(e.ept.gpa, (G_KSTACK_TOP - 8) & ~UINT64_C(0xfff));
  assert_int_equal(e.rip, CODE(T_PF_WRITE));
  h.not_resident = 0;
  e = h_run(&h, 100);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_int_equal(e.rip, CODE(H_HLT) + 1);
  assert_int_equal(vcpu_cr2(h.v), G_NP);
  h_free(&h);
}

static void non_identity_mapping_is_reported(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h.use_shadow = true;
  /* the guest maps G_NP to G_DATA's frame */
  uint64_t pte = G_DATA | PTE_FLAGS_KERNEL;
  memcpy(h.mem + G_PT + (G_NP >> 12) * 8, &pte, 8);
  h_boot(&h, T_PF_WRITE, false);
  struct vcpu_exit e = h_run(&h, 100);
  assert_int_equal(e.reason, VCPU_EXIT_INTERNAL_ERROR);
  assert_true(strlen(e.message) > 10);
  h_free(&h);
}

static void cr3_and_invlpg_are_intercepted(void **state) {
  (void)state;
  struct harness h;
  setup(&h, true, T_CR3);
  const uint64_t resets = shadow_stats(h.shadow)->resets;
  struct vcpu_exit e = h_run(&h, 100);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_int_equal(h_reg(&h, R_RAX), G_PML4); /* the guest's CR3, not the shadow root */
  assert_int_equal(h_reg(&h, R_RBX), G_PML4);
  assert_int_equal(h_reg(&h, R_RCX), 0x80010033); /* the guest's CR0 view */
  assert_true(shadow_stats(h.shadow)->resets > resets);
  assert_int_equal(shadow_stats(h.shadow)->invlpgs, 1);
  struct vcpu_sregs s;
  vcpu_get_sregs(h.v, &s);
  assert_int_equal(s.cr3, G_PML4);
  h_free(&h);
}

/* Two vCPUs share memory and the shadow MMU: vCPU 1 rewrites code vCPU 0
 * ran. Unicorn does not see another engine's writes; the shadow MMU names
 * vCPU 0 in the flush and vCPU 0 drops the stale code before it runs again. */
static void code_rewritten_by_another_vcpu_is_seen(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  /* 8 nops; mov eax, 1; hlt — the rewrite is past the first 8 bytes, which
   * the vCPU's own rewritten-code check looks at: only the flush can help */
  static const uint8_t x[] = {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4};
  memcpy(h.mem + G_XCODE, x, sizeof x);
  struct diag err = {{0}};
  struct shadow_config sc = {h.mem, G_MEM_BYTES, PAGING_MAXPHYADDR_DEFAULT, G_MEM_BYTES, G_POOL_BYTES, 2};
  struct shadow_mmu *m = shadow_create(&sc, &err);
  assert_non_null(m);
  assert_true(vcpu_shadow_setup(m, &err));
  struct vcpu *peers[2] = {NULL, NULL};
  struct vcpu_config cfg = h.cfg;
  cfg.shadow = m;
  cfg.shadow_base = G_MEM_BYTES;
  cfg.shadow_bytes = G_POOL_BYTES;
  cfg.peers = peers;
  cfg.n_peers = 2;
  struct vcpu_boot b = {.rsp = G_KSTACK_TOP, .rflags = 0x2, .cr0 = 0x80010033, .cr3 = G_PML4, .cr4 = 0x6a0,
                        .efer = 0x500, .gdt_base = G_GDT, .gdt_limit = VCPU_SEL_TSS + 15, .idt_base = G_IDT,
                        .idt_limit = 0xfff, .cs = VCPU_SEL_KERNEL_CS, .ss = VCPU_SEL_KERNEL_DS,
                        .ds = VCPU_SEL_KERNEL_DS, .tr = VCPU_SEL_TSS};
  struct vcpu *v[2];
  for (unsigned i = 0; i < 2; i++) {
    cfg.id = i;
    v[i] = vcpu_create(&cfg, &err);
    if (!v[i]) fail_msg("%s", err.msg);
    b.rip = i == 0 ? G_XCODE : CODE(T_WRITE_X);
    b.rsp = G_KSTACK_TOP - 0x4000 * i;
    assert_true(vcpu_boot(v[i], &b, &err));
  }
  assert_ptr_equal(peers[1], v[1]);
  struct vcpu_exit e;
  vcpu_run(v[0], 100, &e);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  struct vcpu_regs r;
  vcpu_get_regs(v[0], &r);
  assert_int_equal(r.rax, 1);
  vcpu_run(v[1], 100, &e); /* rewrites the immediate: mov eax, 2 */
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_int_equal(h.mem[G_XCODE + 9], 2);
  vcpu_get_regs(v[0], &r);
  r.rip = G_XCODE;
  vcpu_set_regs(v[0], &r);
  vcpu_run(v[0], 100, &e);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  vcpu_get_regs(v[0], &r);
  assert_int_equal(r.rax, 2);
  for (unsigned i = 0; i < 2; i++) vcpu_destroy(v[i]);
  assert_null(peers[0]);
  shadow_destroy(m);
  h_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(same_result_with_and_without_shadowing),
      cmocka_unit_test(fills_never_change_guest_cr2),
      cmocka_unit_test(guest_fault_uses_the_walkers_error_code),
      cmocka_unit_test(host_fault_is_an_ept_exit_on_the_instruction),
      cmocka_unit_test(host_fault_during_delivery_is_synchronous),
      cmocka_unit_test(non_identity_mapping_is_reported),
      cmocka_unit_test(cr3_and_invlpg_are_intercepted),
      cmocka_unit_test(code_rewritten_by_another_vcpu_is_seen),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
